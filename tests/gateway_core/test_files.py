"""Files Toolgate writes: replaced in one step, with the intended mode, never through a planted link."""

from __future__ import annotations

import errno
import os
import stat
import sys
from pathlib import Path

import pytest

from gateway_core.files import Links, atomic_file, create_exclusively, write_atomically

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits and symbolic links")


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """A folder of its own (tmp_path also holds the test's TOOLGATE_HOME)."""
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def a_private_file_of_the_users(work: Path) -> Path:
    secret = work / "elsewhere" / "id_key"
    secret.parent.mkdir()
    secret.write_text("the user's secret")
    secret.chmod(0o600)
    return secret


@posix_only
def test_a_file_is_replaced_with_mode_0600_and_no_temporary_file_is_left(work: Path):
    target = work / "file.json"
    target.write_text("old")
    target.chmod(0o644)

    assert write_atomically(target, "new") == target

    assert target.read_text() == "new"
    assert mode_of(target) == 0o600
    assert [p.name for p in work.iterdir()] == ["file.json"]


@posix_only
def test_the_mode_asked_for_is_the_mode_the_file_gets_whatever_the_umask(work: Path):
    previous = os.umask(0o077)
    try:
        write_atomically(work / "entry.desktop", b"[Desktop Entry]\n", mode=0o644)
    finally:
        os.umask(previous)
    assert mode_of(work / "entry.desktop") == 0o644


@posix_only
def test_keeping_the_mode_keeps_the_replaced_files_and_gives_a_new_file_0600(work: Path):
    shared = work / "shared.json"
    shared.write_text("{}")
    shared.chmod(0o640)

    write_atomically(shared, "{ }", mode=None)
    write_atomically(work / "new.json", "{}", mode=None)

    assert mode_of(shared) == 0o640
    assert mode_of(work / "new.json") == 0o600


@posix_only
def test_a_link_at_the_target_is_replaced_and_the_file_it_points_to_is_untouched(work: Path):
    secret = a_private_file_of_the_users(work)
    target = work / "control.json"
    target.symlink_to(secret)

    write_atomically(target, "state")

    assert not target.is_symlink() and target.read_text() == "state"
    assert secret.read_text() == "the user's secret" and mode_of(secret) == 0o600


@posix_only
def test_following_a_link_writes_the_file_it_points_to_and_keeps_the_link(work: Path):
    dotfile = work / "dotfiles" / "config.json"
    dotfile.parent.mkdir()
    dotfile.write_text("{}")
    link = work / "config.json"
    link.symlink_to(dotfile)

    assert write_atomically(link, '{"servers": {}}', links=Links.FOLLOW) == dotfile

    assert link.is_symlink() and dotfile.read_text() == '{"servers": {}}'
    assert sorted(p.name for p in dotfile.parent.iterdir()) == ["config.json"]


@posix_only
def test_refusing_links_raises_and_writes_nothing_anywhere(work: Path):
    secret = a_private_file_of_the_users(work)
    target = work / ".mcp.json"
    target.symlink_to(secret)

    with pytest.raises(OSError, match="symbolic link") as refused:
        write_atomically(target, "{}", links=Links.REFUSE)

    assert refused.value.errno == errno.ELOOP
    assert target.is_symlink() and secret.read_text() == "the user's secret"
    assert sorted(p.name for p in work.iterdir()) == [".mcp.json", "elsewhere"]


def test_a_failed_write_keeps_the_old_content_and_leaves_no_temporary_file(work: Path):
    target = work / "export.jsonl"
    target.write_text("old")

    def write_half_then_fail() -> None:
        with atomic_file(target) as out:
            out.write(b"half of it")
            raise RuntimeError("the disk is full")

    with pytest.raises(RuntimeError):
        write_half_then_fail()

    assert target.read_text() == "old"
    assert [p.name for p in work.iterdir()] == ["export.jsonl"]


@posix_only
def test_a_new_file_is_never_created_through_a_planted_link(work: Path):
    secret = a_private_file_of_the_users(work)
    backup = work / "mcp.json.20261202-101010.bak"
    backup.symlink_to(secret)

    with pytest.raises(FileExistsError):
        create_exclusively(backup, b"the client's config")

    assert secret.read_text() == "the user's secret" and mode_of(secret) == 0o600
    create_exclusively(work / "fresh.bak", b"the client's config")
    assert mode_of(work / "fresh.bak") == 0o600

"""Files only the user can open on Windows (access lists), and the not-encrypted warning on each system."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from gateway_core.files import write_atomically
from gateway_core.paths import Paths, ensure_private_dir
from gateway_core.secrets import open_secret_store, unencrypted_reason
from gateway_core.user_only import others_allowed, restrict_to_user

windows_only = pytest.mark.skipif(sys.platform != "win32", reason="access lists are Windows'; elsewhere the mode")


@windows_only
def test_a_private_file_written_on_windows_can_be_opened_by_its_user_only(tmp_path: Path) -> None:
    path = write_atomically(tmp_path / "state.json", "{}")

    assert others_allowed(path) == []


@windows_only
def test_a_private_folder_on_windows_is_the_users_only_and_so_is_what_is_created_in_it(tmp_path: Path) -> None:
    folder = tmp_path / "home"
    ensure_private_dir(folder)
    (folder / "later.txt").write_text("x")

    assert others_allowed(folder) == []
    assert others_allowed(folder / "later.txt") == []


@windows_only
def test_a_secrets_file_others_may_open_is_restricted_with_a_warning_on_windows(
    toolgate_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    paths = Paths.from_env()
    paths.secrets_file.write_text('{"GH": "ghp_value"}')
    subprocess.run(["icacls", str(paths.secrets_file), "/grant", "*S-1-1-0:R"], check=True, capture_output=True)
    assert others_allowed(paths.secrets_file) != []

    with caplog.at_level(logging.WARNING, logger="gateway_core.secrets"):
        store = open_secret_store(paths)

    assert others_allowed(paths.secrets_file) == []
    assert "now only by you" in caplog.text
    assert store.get("GH") == "ghp_value"


@pytest.mark.skipif(sys.platform == "win32", reason="the Windows side is tested above")
def test_access_lists_are_refused_where_the_file_mode_applies(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="Windows only"):
        restrict_to_user(tmp_path)
    with pytest.raises(OSError, match="Windows only"):
        others_allowed(tmp_path)


def test_the_not_encrypted_warning_names_each_systems_keychain_and_who_can_read_the_file() -> None:
    assert "Windows Credential Manager" in unencrypted_reason("win32")
    assert "only your Windows account can open" in unencrypted_reason("win32")
    assert "macOS Keychain" in unencrypted_reason("darwin") and "0600" in unencrypted_reason("darwin")
    assert "Secret Service" in unencrypted_reason("linux") and "0600" in unencrypted_reason("linux")
    assert "0600" not in unencrypted_reason("win32")

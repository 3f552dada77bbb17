from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest
from platformdirs import PlatformDirs

from gateway_core.paths import Paths

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")


def test_toolgate_home_puts_every_file_under_it(tmp_path: Path) -> None:
    paths = Paths.from_env({"TOOLGATE_HOME": str(tmp_path)})

    assert paths.home == tmp_path
    assert paths.config_file == tmp_path / "config.json"
    assert paths.secrets_file == tmp_path / "secrets.json"
    assert paths.audit_db == tmp_path / "audit.sqlite3"
    for path in (paths.state_dir, paths.lock_file):
        assert path.is_relative_to(tmp_path)


def test_from_env_reads_the_process_environment_by_default(toolgate_home: Path) -> None:
    assert Paths.from_env().config_file == toolgate_home / "config.json"


def test_without_toolgate_home_files_go_to_the_platform_user_folders() -> None:
    dirs = PlatformDirs("Toolgate", appauthor=False)

    paths = Paths.from_env({})

    assert paths.config_file == Path(dirs.user_config_dir) / "config.json"
    assert paths.secrets_file == Path(dirs.user_data_dir) / "secrets.json"
    assert paths.audit_db == Path(dirs.user_data_dir) / "audit.sqlite3"
    assert paths.lock_file.parent == Path(dirs.user_state_dir)


def test_building_paths_creates_nothing(tmp_path: Path) -> None:
    paths = Paths.from_env({"TOOLGATE_HOME": str(tmp_path / "home")})

    assert not paths.home.exists()


@posix_only
def test_ensure_dirs_creates_folders_only_the_owner_can_open(tmp_path: Path) -> None:
    paths = Paths.under(tmp_path / "home")

    paths.ensure_dirs()

    for folder in (paths.home, paths.state_dir):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700

import plistlib
import sys
from pathlib import Path

import pytest

from app import autostart


def test_enabling_on_linux_writes_a_desktop_entry_in_the_xdg_autostart_folder(tmp_path: Path):
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config"), "HOME": str(tmp_path / "home")}
    icon = tmp_path / "toolgate-256.png"

    autostart.enable(["/usr/bin/python3", "-m", "app"], icon=icon, platform="linux", environ=env)

    entry = tmp_path / "config" / "autostart" / "toolgate.desktop"
    assert entry.read_text().splitlines() == [
        "[Desktop Entry]",
        "Type=Application",
        "Name=Toolgate",
        "Comment=Local MCP gateway with per-agent policy",
        "Exec=/usr/bin/python3 -m app",
        f"Icon={icon}",
        "Terminal=false",
        "X-GNOME-Autostart-enabled=true",
    ]
    assert autostart.is_enabled(platform="linux", environ=env)


def test_disabling_on_linux_removes_the_entry_and_is_harmless_when_there_is_none(tmp_path: Path):
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    autostart.enable(["toolgate"], platform="linux", environ=env)
    autostart.disable(platform="linux", environ=env)
    autostart.disable(platform="linux", environ=env)
    assert not (tmp_path / "autostart" / "toolgate.desktop").exists()
    assert not autostart.is_enabled(platform="linux", environ=env)


def test_without_xdg_config_home_the_entry_goes_under_home_dot_config(tmp_path: Path):
    env = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": ""}
    autostart.enable(["toolgate"], platform="linux", environ=env)
    assert (tmp_path / ".config" / "autostart" / "toolgate.desktop").is_file()


def test_an_entry_the_desktop_has_switched_off_does_not_count_as_enabled(tmp_path: Path):
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    autostart.enable(["toolgate"], platform="linux", environ=env)
    entry = tmp_path / "autostart" / "toolgate.desktop"
    entry.write_text(entry.read_text().replace("X-GNOME-Autostart-enabled=true", "X-GNOME-Autostart-enabled=false"))
    assert not autostart.is_enabled(platform="linux", environ=env)


def test_exec_arguments_are_quoted_and_escaped_per_the_desktop_entry_spec():
    assert autostart.exec_line(["/opt/My Apps/python", "-m", "app"]) == '"/opt/My Apps/python" -m app'
    assert autostart.exec_line(["/a/100%/b"]) == "/a/100%%/b"
    assert autostart.exec_line(["cost $5"]) == '"cost \\\\$5"'
    # A literal backslash inside quotes takes four backslashes in the file.
    assert autostart.exec_line(["C:\\x"]) == '"C:\\\\\\\\x"'
    assert autostart.exec_line([""]) == '""'


def test_enabling_on_macos_writes_a_launch_agent_that_runs_at_login(tmp_path: Path):
    env = {"HOME": str(tmp_path)}

    autostart.enable(["/Applications/Toolgate.app/Contents/MacOS/Toolgate"], platform="darwin", environ=env)

    path = tmp_path / "Library" / "LaunchAgents" / "dev.toolgate.Toolgate.plist"
    agent = plistlib.loads(path.read_bytes())
    assert agent["Label"] == "dev.toolgate.Toolgate"
    assert agent["ProgramArguments"] == ["/Applications/Toolgate.app/Contents/MacOS/Toolgate"]
    assert agent["RunAtLoad"] is True
    assert autostart.is_enabled(platform="darwin", environ=env)
    autostart.disable(platform="darwin", environ=env)
    assert not path.exists()
    assert not autostart.is_enabled(platform="darwin", environ=env)


def test_the_os_environment_is_used_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setattr(sys, "platform", "linux")
    autostart.enable(["toolgate"])
    assert autostart.is_enabled()
    autostart.disable()
    assert not autostart.is_enabled()


def test_from_source_the_app_is_launched_as_a_module_of_this_interpreter(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delattr(sys, "frozen", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    assert autostart.launch_command() == [sys.executable, "-m", "app"]


def test_a_frozen_app_is_launched_as_its_own_executable(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert autostart.launch_command() == [sys.executable]


def test_at_login_the_app_starts_in_the_background(monkeypatch: pytest.MonkeyPatch):
    from app.main import BACKGROUND_FLAG

    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert autostart.login_command() == [sys.executable, BACKGROUND_FLAG]

r"""Start Toolgate at login, the way each OS expects (no Qt here).

- Linux and other freedesktop systems: ``$XDG_CONFIG_HOME/autostart/toolgate.desktop``.
- macOS: a LaunchAgent, ``~/Library/LaunchAgents/dev.toolgate.Toolgate.plist`` with ``RunAtLoad``.
- Windows: the ``Toolgate`` value under ``HKCU\Software\Microsoft\Windows\CurrentVersion\Run``.

Each function takes the platform (``sys.platform`` by default) and the environment (``os.environ``)
so every branch can be pointed at a temporary home.
"""

from __future__ import annotations

import os
import plistlib
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from gateway_core import write_atomically

APP_NAME = "Toolgate"
DESKTOP_FILE = "toolgate.desktop"
MAC_LABEL = "dev.toolgate.Toolgate"
# app.main's flag for "started at login": stay in the tray instead of opening the window.
BACKGROUND_FLAG = "--background"
# Login items are read by the desktop session, and hold nothing secret: the usual mode for them.
AUTOSTART_FILE_MODE = 0o644
WINDOWS_RUN_KEY = r"Software\Microsoft\Windows\CurrentVersion\Run"
# Characters that make an Exec argument need double quotes (desktop entry spec, "The Exec key").
EXEC_RESERVED = set(" \t\n\"'\\><~|&;$*?#()`")
# Inside double quotes these four must be backslash-escaped.
EXEC_QUOTED_ESCAPES = set('"`$\\')


def login_command() -> list[str]:
    """The command run at login: ``launch_command()`` plus ``--background`` (stay in the tray, no window)."""
    return [*launch_command(), BACKGROUND_FLAG]


def launch_command() -> list[str]:
    """The command that starts the Toolgate app as it is installed now.

    A frozen app is its own executable; from source it is this interpreter running ``-m app``
    (on Windows ``pythonw.exe`` when it is there, so no console window opens at login).
    """
    if getattr(sys, "frozen", False):
        return [sys.executable]
    python = Path(sys.executable)
    windowless = python.with_name("pythonw.exe")
    if sys.platform == "win32" and windowless.is_file():
        python = windowless
    return [str(python), "-m", "app"]


def is_enabled(*, platform: str | None = None, environ: Mapping[str, str] | None = None) -> bool:
    """Whether Toolgate is set to start at login."""
    platform = platform or sys.platform
    env = os.environ if environ is None else environ
    if platform == "win32":
        return _windows_command() is not None
    if platform == "darwin":
        return mac_plist_path(env).is_file()
    path = desktop_file_path(env)
    if not path.is_file():
        return False
    lines = {line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines()}
    return "Hidden=true" not in lines and "X-GNOME-Autostart-enabled=false" not in lines


def enable(
    command: list[str],
    *,
    icon: Path | None = None,
    platform: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> None:
    """Make ``command`` run at login (replacing an earlier entry); ``icon`` is used where the OS shows one.

    Raises:
        OSError: the entry could not be written.
    """
    platform = platform or sys.platform
    env = os.environ if environ is None else environ
    if platform == "win32":
        _windows_set(subprocess.list2cmdline(command))
    elif platform == "darwin":
        _write(mac_plist_path(env), mac_plist(command))
    else:
        _write(desktop_file_path(env), desktop_entry(command, icon).encode())


def disable(*, platform: str | None = None, environ: Mapping[str, str] | None = None) -> None:
    """Stop Toolgate starting at login (nothing happens when it was not set).

    Raises:
        OSError: the entry exists but could not be removed.
    """
    platform = platform or sys.platform
    env = os.environ if environ is None else environ
    if platform == "win32":
        _windows_delete()
    elif platform == "darwin":
        mac_plist_path(env).unlink(missing_ok=True)
    else:
        desktop_file_path(env).unlink(missing_ok=True)


# --- Linux and other freedesktop systems ----------------------------------------------------------


def desktop_file_path(environ: Mapping[str, str]) -> Path:
    """``$XDG_CONFIG_HOME/autostart/toolgate.desktop`` (``~/.config`` when the variable is unset or relative)."""
    config_home = environ.get("XDG_CONFIG_HOME", "")
    base = Path(config_home) if os.path.isabs(config_home) else _home(environ) / ".config"
    return base / "autostart" / DESKTOP_FILE


def desktop_entry(command: list[str], icon: Path | None = None) -> str:
    """The text of the autostart desktop entry that runs ``command``."""
    lines = [
        "[Desktop Entry]",
        "Type=Application",
        f"Name={APP_NAME}",
        "Comment=Local MCP gateway with per-agent policy",
        f"Exec={exec_line(command)}",
    ]
    if icon is not None:
        lines.append(f"Icon={_escape_string(str(icon))}")
    lines += ["Terminal=false", "X-GNOME-Autostart-enabled=true", ""]
    return "\n".join(lines)


def exec_line(command: list[str]) -> str:
    """``command`` as an ``Exec`` value: arguments quoted per the spec, ``%`` doubled, then string-escaped."""
    return _escape_string(" ".join(_quote_exec_argument(argument) for argument in command))


def _quote_exec_argument(argument: str) -> str:
    argument = argument.replace("%", "%%")
    if argument and not EXEC_RESERVED.intersection(argument):
        return argument
    escaped = "".join(f"\\{char}" if char in EXEC_QUOTED_ESCAPES else char for char in argument)
    return f'"{escaped}"'


def _escape_string(value: str) -> str:
    # The general string escapes are undone before Exec quoting, so a backslash is written twice again.
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")


# --- macOS ----------------------------------------------------------------------------------------


def mac_plist_path(environ: Mapping[str, str]) -> Path:
    """``~/Library/LaunchAgents/dev.toolgate.Toolgate.plist``."""
    return _home(environ) / "Library" / "LaunchAgents" / f"{MAC_LABEL}.plist"


def mac_plist(command: list[str]) -> bytes:
    """The LaunchAgent that runs ``command`` once when the person logs in."""
    agent = {
        "Label": MAC_LABEL,
        "ProgramArguments": list(command),
        "RunAtLoad": True,
        "ProcessType": "Interactive",
    }
    return plistlib.dumps(agent)


# --- Windows --------------------------------------------------------------------------------------


def _windows_command() -> str | None:
    if sys.platform == "win32":
        import winreg

        try:
            with winreg.OpenKey(winreg.HKEY_CURRENT_USER, WINDOWS_RUN_KEY) as key:
                value, _ = winreg.QueryValueEx(key, APP_NAME)
        except FileNotFoundError:
            return None
        return str(value)
    return None


def _windows_set(command_line: str) -> None:
    if sys.platform == "win32":
        import winreg

        with winreg.CreateKey(winreg.HKEY_CURRENT_USER, WINDOWS_RUN_KEY) as key:
            winreg.SetValueEx(key, APP_NAME, 0, winreg.REG_SZ, command_line)
        return
    raise OSError("the Run key is a Windows registry key")


def _windows_delete() -> None:
    if sys.platform == "win32":
        import winreg

        try:
            with winreg.OpenKey(winreg.HKEY_CURRENT_USER, WINDOWS_RUN_KEY, 0, winreg.KEY_SET_VALUE) as key:
                winreg.DeleteValue(key, APP_NAME)
        except FileNotFoundError:
            pass


# --- shared ---------------------------------------------------------------------------------------


def _home(environ: Mapping[str, str]) -> Path:
    home = environ.get("HOME", "")
    return Path(home) if home else Path.home()


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, data, mode=AUTOSTART_FILE_MODE)

"""Where the installed ``toolgate-shim`` is, for the IDE entries that launch it.

Used by ``toolgate connect`` and by the tray app's IDE snippets.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

SHIM_NAME = "toolgate-shim"


def shim_command(
    executable: str | None = None,
    which: Callable[[str], str | None] = shutil.which,
    platform: str | None = None,
    recorded: Callable[[], str | None] | None = None,
) -> str:
    """Where the installed ``toolgate-shim`` is: as the installer recorded it, beside the app, or on PATH.

    Args:
        executable: the running interpreter or frozen app (``sys.executable`` when None); a venv's
            ``bin``/``Scripts`` folder and a frozen bundle's folder hold the shim beside it.
        which: looks a command up on PATH.
        platform: ``sys.platform`` when None (``win32`` adds ``.exe``).
        recorded: the path the installer recorded (Windows: ``HKCU/Software/Toolgate`` ``ShimPath``);
            read from the registry on Windows when None.

    Returns:
        An absolute path when one is found, else plain ``toolgate-shim`` for the IDE to find on its PATH.
    """
    platform = sys.platform if platform is None else platform
    if recorded is None:
        recorded = _registry_shim_path if platform == "win32" else (lambda: None)
    installed = recorded()
    if installed and Path(installed).is_file():
        return installed
    name = SHIM_NAME + (".exe" if platform == "win32" else "")
    beside = Path(executable or sys.executable).parent / name
    if beside.is_file():
        return str(beside)
    return which(SHIM_NAME) or SHIM_NAME


def _registry_shim_path() -> str | None:
    """``ShimPath`` under ``HKCU/Software/Toolgate``, which the Windows installer writes."""
    if sys.platform == "win32":
        import winreg

        try:
            with winreg.OpenKey(winreg.HKEY_CURRENT_USER, r"Software\Toolgate") as key:
                value, _ = winreg.QueryValueEx(key, "ShimPath")
        except OSError:
            return None
        return value if isinstance(value, str) else None
    return None

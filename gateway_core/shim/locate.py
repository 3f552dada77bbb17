"""Finding the running gateway from the shim, and starting one when none runs.

Mirrors ``gateway_core.paths`` (state folder, ``control.json``) with the standard library only: the
shim must not import platformdirs, pydantic or the SDK.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Mapping
from pathlib import Path

APP_NAME = "Toolgate"
HOME_ENV = "TOOLGATE_HOME"
CONTROL_FILE_NAME = "control.json"
DEFAULT_URL = "http://127.0.0.1:47800"
# `toolgate serve` starts its downstream servers in the background; it publishes control.json quickly.
AUTOSTART_WAIT_S = 10.0
_POLL_S = 0.1


def state_dir(environ: Mapping[str, str]) -> Path:
    """Where a running Toolgate keeps ``control.json``: as ``Paths.from_env(environ).state_dir``."""
    home = environ.get(HOME_ENV, "").strip()
    if home:
        return Path(home).expanduser().absolute() / "state"
    if sys.platform == "win32":
        local = environ.get("LOCALAPPDATA", "").strip()
        return (Path(local) if local else Path.home() / "AppData" / "Local") / APP_NAME
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / APP_NAME
    xdg = environ.get("XDG_STATE_HOME", "").strip()
    return (Path(xdg) if xdg else Path.home() / ".local" / "state") / APP_NAME


def published_url(environ: Mapping[str, str]) -> str | None:
    """The URL the running gateway published in ``control.json``, or None when there is none."""
    try:
        content = json.loads((state_dir(environ) / CONTROL_FILE_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    url = content.get("url") if isinstance(content, dict) else None
    return url if isinstance(url, str) and url else None


def gateway_url(environ: Mapping[str, str]) -> str:
    """The published URL, or the default port's when Toolgate has not published one."""
    return published_url(environ) or DEFAULT_URL


def find_toolgate() -> str | None:
    """The ``toolgate`` command installed beside this shim (or its interpreter), else the one on PATH."""
    name = "toolgate.exe" if sys.platform == "win32" else "toolgate"
    # argv[0] is the console script or frozen binary; sys.executable covers `python -m gateway_core.shim`.
    for folder in (Path(sys.argv[0]).resolve().parent, Path(sys.executable).parent):
        beside = folder / name
        if beside.is_file() and os.access(beside, os.X_OK):
            return str(beside)
    return shutil.which("toolgate")


def start_toolgate(environ: Mapping[str, str]) -> str | None:
    """Start ``toolgate serve`` detached from this process and wait for it to publish its URL.

    Returns:
        The URL it published within ``AUTOSTART_WAIT_S``, or None (not installed, or not up in time).
    """
    import subprocess

    command = find_toolgate()
    if command is None:
        return None
    flags = getattr(subprocess, "DETACHED_PROCESS", 0) | getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)
    try:
        subprocess.Popen(
            [command, "serve"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=dict(environ),
            start_new_session=sys.platform != "win32",
            creationflags=flags if sys.platform == "win32" else 0,
        )
    except OSError:
        return None
    deadline = time.monotonic() + AUTOSTART_WAIT_S
    while time.monotonic() < deadline:
        url = published_url(environ)
        if url is not None:
            return url
        time.sleep(_POLL_S)
    return None

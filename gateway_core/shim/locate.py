"""Finding the running gateway from the shim, and starting one when none runs.

Mirrors ``gateway_core.paths`` (state folder, ``control.json``, token files) with the standard
library only: the shim must not import platformdirs, pydantic or the SDK. There is no default
address: a gateway that has not published one in this person's state folder is not running (any
process could listen on a well-known port).
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
TOKEN_FILES_FOLDER = "agent-tokens"
# control.json holds a URL, a token and a pid.
MAX_CONTROL_FILE_BYTES = 64 * 1024
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


def published(environ: Mapping[str, str]) -> tuple[str, str] | None:
    """The URL and control token the running gateway published in ``control.json``, or None.

    A file that is a link, belongs to another user or is damaged counts as none.
    """
    path = state_dir(environ) / CONTROL_FILE_NAME
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, "rb") as file:
            if hasattr(os, "getuid") and os.fstat(file.fileno()).st_uid != os.getuid():
                return None
            content = json.loads(file.read(MAX_CONTROL_FILE_BYTES))
    except (OSError, ValueError):
        return None
    if not isinstance(content, dict):
        return None
    url, token = content.get("url"), content.get("token")
    if isinstance(url, str) and url and isinstance(token, str) and token:
        return url, token
    return None


def token_file(environ: Mapping[str, str], agent: str) -> Path:
    """Where ``toolgate connect --project`` keeps ``agent``'s token (as ``gateway_core.token_files``)."""
    return state_dir(environ) / TOKEN_FILES_FOLDER / f"{agent}.token"


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
    stale = published(environ)  # left by a Toolgate that did not exit cleanly: wait for a new one
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
        found = published(environ)
        if found is not None and found != stale:
            return found[0]
        time.sleep(_POLL_S)
    return None

"""Ready-made IDE configuration for one agent: the ``{"mcpServers": {"toolgate": …}}`` JSON most IDEs read.

Pure functions (no Qt) so the text can be checked directly; the Agents panel puts it on the clipboard.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

# The key the entry gets under "mcpServers"; the IDE shows it as the server's name.
SERVER_KEY = "toolgate"
SHIM_NAME = "toolgate-shim"
# The shim reads the agent's token from this environment variable (gateway_core/shim/cli.py TOKEN_ENV).
SHIM_TOKEN_ENV = "TOOLGATE_TOKEN"


def http_snippet(agent_id: str, url: str, token: str) -> str:
    """The entry for an IDE that speaks Streamable HTTP: Toolgate's URL and the agent's bearer token.

    Args:
        agent_id: the agent; not written, since over HTTP the token alone says who it is.
        url: the gateway's endpoint, e.g. ``http://127.0.0.1:47800/mcp``.
        token: the agent's token.

    Returns:
        Indented JSON text.
    """
    entry = {"type": "http", "url": url, "headers": {"Authorization": f"Bearer {token}"}}
    return _document(entry)


def shim_snippet(agent_id: str, token: str, shim_command: str) -> str:
    """The entry for an IDE that can only launch a stdio server: ``toolgate-shim --agent ID``.

    Args:
        agent_id: the agent, passed as ``--agent``.
        token: the agent's token, passed in ``TOOLGATE_TOKEN``.
        shim_command: the shim's path (see ``shim_command()``).

    Returns:
        Indented JSON text.
    """
    entry = {"command": shim_command, "args": ["--agent", agent_id], "env": {SHIM_TOKEN_ENV: token}}
    return _document(entry)


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
    try:
        import winreg  # type: ignore[import-not-found,unused-ignore]  # Windows only

        with winreg.OpenKey(winreg.HKEY_CURRENT_USER, r"Software\Toolgate") as key:
            value, _ = winreg.QueryValueEx(key, "ShimPath")
    except (ImportError, OSError):
        return None
    return value if isinstance(value, str) else None


def _document(entry: dict[str, object]) -> str:
    return json.dumps({"mcpServers": {SERVER_KEY: entry}}, indent=2)

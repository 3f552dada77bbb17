"""Ready-made IDE configuration for one agent: the ``{"mcpServers": {"toolgate": …}}`` JSON most IDEs read.

Pure functions (no Qt) so the text can be checked directly; the Agents panel puts it on the clipboard.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

# The key the entry gets under "mcpServers"; the IDE shows it as the server's name.
SERVER_KEY = "toolgate"
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


def _document(entry: Mapping[str, object]) -> str:
    return json.dumps({"mcpServers": {SERVER_KEY: entry}}, indent=2)

"""Server entries pasted from a README: the ``mcpServers`` / ``servers`` JSON that server projects publish.

Accepted, with comments and trailing commas allowed (JSONC):

* a whole client config: ``{"mcpServers": {...}}``, ``{"servers": {...}}`` (VS Code),
  ``{"mcp": {"servers": {...}}}`` (VS Code settings) or ``{"context_servers": {...}}`` (Zed);
* the entries alone: ``{"github": {"command": ...}}``, or without the outer braces
  (``"github": {"command": ...}``, as READMEs often quote them);
* one entry without a name: ``{"command": "npx", "args": [...]}`` — named after its package.

Each entry becomes a ``FoundServer`` (from client ``pasted``), so the importer's rules apply to it
(names, secrets to the secret store, duplicates); nothing is guessed about an entry of no known shape.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from gateway_core.clients import jsonc
from gateway_core.clients.found import FoundServer, parse_entry

PASTED = "pasted"
_PASTED_PATH = Path("<pasted>")
_WRAPPERS = (("mcpServers",), ("servers",), ("mcp", "servers"), ("context_servers",))
_ENTRY_KEYS = frozenset({"command", "url", "serverUrl", "httpUrl"})
# A value a README leaves for the reader to fill in: <YOUR_TOKEN>, Bearer <token>, your-api-key, xxx,
# ${input:…} (VS Code's prompt), "…" or nothing.
_PLACEHOLDER = re.compile(r"^$|<[^<>]*>|your[-_ ]|^x{3,}$|\$\{input:|^(\.\.\.|…)$|^(changeme|todo)$", re.IGNORECASE)


class SnippetError(ValueError):
    """The pasted text holds no server entry Toolgate can read; the message says why and what to paste."""


def parse_snippet(text: str) -> tuple[list[FoundServer], list[str]]:
    """The server entries in ``text``, and a note for each entry that could not be understood.

    Raises:
        SnippetError: the text is not JSON, or holds no server entry.
    """
    if not text.strip():
        raise SnippetError("Paste the JSON a server's README gives for its MCP configuration.")
    data = _parse(text)
    if not isinstance(data, dict):
        raise SnippetError('Expected a JSON object with server entries, e.g. {"mcpServers": {"name": {...}}}.')
    entries = _entries(data)
    servers, notes = [], []
    for name, raw in entries.items():
        server = parse_entry(str(name), raw, client=PASTED, scope="user", path=_PASTED_PATH)
        if server is None:
            notes.append(f"{name}: has neither a command nor a URL; skipped")
        else:
            servers.append(server)
    if not servers:
        raise SnippetError(
            'No server entry found: each needs a "command" (a local server) or a "url" (a remote one)'
            + (f" ({'; '.join(notes)})." if notes else ".")
        )
    return servers, notes


def placeholders(server: FoundServer) -> list[str]:
    """The env variables and headers of ``server`` still holding a README's placeholder value."""
    values = {**server.env, **server.headers}
    return [key for key, value in values.items() if _PLACEHOLDER.search(value.strip())]


def _parse(text: str) -> Any:
    try:
        return jsonc.parse(text)
    except jsonc.JsoncError as first:
        stripped = text.strip().rstrip(",")
        if not stripped.startswith("{"):  # "name": {...} without the outer braces
            try:
                return jsonc.parse("{" + stripped + "}")
            except jsonc.JsoncError:
                pass
        raise SnippetError(f"This is not valid JSON: {first}") from first


def _entries(data: dict[str, Any]) -> dict[str, Any]:
    for path in _WRAPPERS:
        value: Any = data
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, dict):
            return value
    if _ENTRY_KEYS & set(data):
        return {_name_of(data): data}
    return data


def _name_of(entry: dict[str, Any]) -> str:
    """A name for an unnamed entry: its package (``@scope/server-github`` → ``github``) or host."""
    url = entry.get("url") or entry.get("serverUrl") or entry.get("httpUrl")
    if isinstance(url, str) and "//" in url:
        host = url.split("//", 1)[1].split("/", 1)[0].split(":", 1)[0]
        parts = [part for part in host.split(".") if part not in ("www", "mcp", "api", "com", "app", "io")]
        return parts[0] if parts else "server"
    words = [str(arg) for arg in entry.get("args") or () if not str(arg).startswith("-")]
    candidate = words[0] if words else str(entry.get("command") or "server")
    candidate = candidate.rsplit("/", 1)[-1].split("@", 1)[0]
    candidate = re.sub(r"^(mcp-server-|server-|mcp-)|(-mcp-server|-mcp|-server)$", "", candidate)
    return candidate or "server"

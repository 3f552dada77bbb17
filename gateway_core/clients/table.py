"""The IDE clients Toolgate knows: where each keeps its MCP servers, and how it writes an entry.

One row per client. Adding a client is adding a row: its config files per OS and scope, the file
format, the key that holds the servers, how a stdio entry and an HTTP entry look, and whether the
client can use an HTTP entry at all (else Toolgate connects it through ``toolgate-shim``).
Paths are templates: ``~`` is the home folder, ``{appdata}`` Windows' roaming AppData, ``{config}``
the XDG config folder (``~/.config``), ``{project}`` the project folder given by the user.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Format = Literal["json", "toml"]
Scope = Literal["user", "project"]
OS = Literal["linux", "darwin", "win32"]


@dataclass(frozen=True)
class ConfigLocation:
    """One config file a client reads: its scope and its path template per OS."""

    scope: Scope
    paths: Mapping[OS, str]


@dataclass(frozen=True)
class EntryStyle:
    """How a client writes one server entry.

    Attributes:
        stdio_fields: fixed fields of a stdio entry besides command/args/env (e.g. ``{"type": "stdio"}``).
        http_fields: fixed fields of an HTTP entry besides the URL and headers (e.g. ``{"type": "http"}``).
        url_key: the key holding an HTTP entry's URL (``url``, ``serverUrl``, ``httpUrl``).
        headers_key: the key holding an HTTP entry's headers.
    """

    stdio_fields: Mapping[str, Any] = field(default_factory=dict)
    http_fields: Mapping[str, Any] = field(default_factory=dict)
    url_key: str = "url"
    headers_key: str = "headers"

    def stdio(self, command: str, args: list[str], env: Mapping[str, str]) -> dict[str, Any]:
        """A stdio entry in this client's words."""
        entry: dict[str, Any] = {**self.stdio_fields, "command": command, "args": list(args)}
        if env:
            entry["env"] = dict(env)
        return entry

    def http(self, url: str, headers: Mapping[str, str]) -> dict[str, Any]:
        """An HTTP entry in this client's words."""
        entry: dict[str, Any] = {**self.http_fields, self.url_key: url}
        if headers:
            entry[self.headers_key] = dict(headers)
        return entry


@dataclass(frozen=True)
class Client:
    """One IDE or agent that reads MCP servers from a config file.

    Attributes:
        id: the short id used everywhere (CLI, agent id): ``cursor``, ``vscode``, ….
        name: the name people know it by.
        locations: its config files, user scope first.
        format: ``json`` (comments and trailing commas allowed) or ``toml``.
        servers_key: the key (a path of keys) under which the file keeps its servers.
        style: how it writes entries.
        supports_http: whether an HTTP entry works in it; otherwise it gets the shim.
    """

    id: str
    name: str
    locations: tuple[ConfigLocation, ...]
    format: Format
    servers_key: tuple[str, ...]
    style: EntryStyle
    supports_http: bool


def _everywhere(linux_and_mac: str, windows: str | None = None) -> Mapping[OS, str]:
    return {"linux": linux_and_mac, "darwin": linux_and_mac, "win32": windows or linux_and_mac}


_VSCODE_USER: dict[OS, str] = {
    "linux": "{config}/Code/User",
    "darwin": "~/Library/Application Support/Code/User",
    "win32": "{appdata}/Code/User",
}
_CLINE = "globalStorage/saoudrizwan.claude-dev/settings/cline_mcp_settings.json"

CLIENTS: tuple[Client, ...] = (
    Client(
        id="claude-desktop",
        name="Claude Desktop",
        locations=(
            ConfigLocation(
                "user",
                {
                    "linux": "{config}/Claude/claude_desktop_config.json",
                    "darwin": "~/Library/Application Support/Claude/claude_desktop_config.json",
                    "win32": "{appdata}/Claude/claude_desktop_config.json",
                },
            ),
        ),
        format="json",
        servers_key=("mcpServers",),
        style=EntryStyle(),
        supports_http=False,  # remote servers are added in its UI as connectors, not in this file
    ),
    Client(
        id="claude-code",
        name="Claude Code",
        locations=(
            ConfigLocation("user", _everywhere("~/.claude.json")),
            ConfigLocation("project", _everywhere("{project}/.mcp.json")),
        ),
        format="json",
        servers_key=("mcpServers",),
        style=EntryStyle(stdio_fields={"type": "stdio"}, http_fields={"type": "http"}),
        supports_http=True,
    ),
    Client(
        id="cursor",
        name="Cursor",
        locations=(
            ConfigLocation("user", _everywhere("~/.cursor/mcp.json")),
            ConfigLocation("project", _everywhere("{project}/.cursor/mcp.json")),
        ),
        format="json",
        servers_key=("mcpServers",),
        style=EntryStyle(),
        supports_http=True,
    ),
    Client(
        id="vscode",
        name="VS Code",
        locations=(
            ConfigLocation("user", {os: f"{folder}/mcp.json" for os, folder in _VSCODE_USER.items()}),
            ConfigLocation("project", _everywhere("{project}/.vscode/mcp.json")),
        ),
        format="json",
        servers_key=("servers",),
        style=EntryStyle(stdio_fields={"type": "stdio"}, http_fields={"type": "http"}),
        supports_http=True,
    ),
    Client(
        id="windsurf",
        name="Windsurf",
        locations=(ConfigLocation("user", _everywhere("~/.codeium/windsurf/mcp_config.json")),),
        format="json",
        servers_key=("mcpServers",),
        style=EntryStyle(url_key="serverUrl"),
        supports_http=True,
    ),
    Client(
        id="codex",
        name="Codex CLI",
        locations=(ConfigLocation("user", _everywhere("~/.codex/config.toml")),),
        format="toml",
        servers_key=("mcp_servers",),
        style=EntryStyle(http_fields={}, headers_key="http_headers"),
        supports_http=False,  # its HTTP client is still experimental; the shim works everywhere
    ),
    Client(
        id="gemini",
        name="Gemini CLI",
        locations=(
            ConfigLocation("user", _everywhere("~/.gemini/settings.json")),
            ConfigLocation("project", _everywhere("{project}/.gemini/settings.json")),
        ),
        format="json",
        servers_key=("mcpServers",),
        style=EntryStyle(url_key="httpUrl"),
        supports_http=True,
    ),
    Client(
        id="zed",
        name="Zed",
        locations=(
            ConfigLocation(
                "user",
                {
                    "linux": "{config}/zed/settings.json",
                    "darwin": "~/.config/zed/settings.json",
                    "win32": "{appdata}/Zed/settings.json",
                },
            ),
            ConfigLocation("project", _everywhere("{project}/.zed/settings.json")),
        ),
        format="json",
        servers_key=("context_servers",),
        style=EntryStyle(stdio_fields={"source": "custom"}),
        supports_http=False,
    ),
    Client(
        id="cline",
        name="Cline",
        locations=(ConfigLocation("user", {os: f"{folder}/{_CLINE}" for os, folder in _VSCODE_USER.items()}),),
        format="json",
        servers_key=("mcpServers",),
        style=EntryStyle(http_fields={"type": "streamableHttp"}),
        supports_http=True,
    ),
)

CLIENT_IDS: tuple[str, ...] = tuple(client.id for client in CLIENTS)


def client(client_id: str) -> Client:
    """The client with this id.

    Raises:
        KeyError: no such client; the message lists the known ids.
    """
    for candidate in CLIENTS:
        if candidate.id == client_id:
            return candidate
    raise KeyError(f"unknown client {client_id!r}; known clients: {', '.join(CLIENT_IDS)}")

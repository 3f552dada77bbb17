"""Finding the clients installed here and the MCP servers their config files hold.

A client counts as installed when one of its config files exists. Each server entry is read into a
``FoundServer`` whatever the client's way of writing it (``url``/``serverUrl``/``httpUrl``,
``headers``/``http_headers``, Zed's ``context_servers``); an entry of no known shape is reported,
not guessed at. A file that cannot be parsed is reported with the parser's reason and left alone.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from gateway_core.clients import jsonc, toml_edit
from gateway_core.clients.mcp_remote import PACKAGE, parse_mcp_remote
from gateway_core.clients.table import CLIENTS, OS, Client, Scope

Transport = Literal["stdio", "http", "sse"]


class ClientConfigError(ValueError):
    """A client's config file cannot be read or parsed; the message names the file and the problem."""


@dataclass(frozen=True)
class ConfigFile:
    """One config file of one client, resolved to a path on this machine."""

    client: Client
    scope: Scope
    path: Path


@dataclass(frozen=True)
class FoundServer:
    """One server entry as a client has it.

    Attributes:
        client: the client's id.
        scope: ``user`` or ``project``.
        path: the file it is in.
        name: its key in that file.
        transport: ``stdio``, ``http`` or ``sse``.
        command, args, env: a stdio server's launch.
        url, headers: a remote server's address and HTTP headers.
        oauth: the pre-registered OAuth client an ``mcp-remote`` launch names (``mcp_remote.py``).
        via: ``"mcp-remote"`` when the client reaches this remote server through that stdio bridge.
    """

    client: str
    scope: Scope
    path: Path
    name: str
    transport: Transport
    command: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    oauth: Mapping[str, Any] = field(default_factory=dict)
    via: str | None = None

    @property
    def identity(self) -> tuple[str, ...]:
        """What makes two entries the same server (see ``server_identity``)."""
        return server_identity(self.url, self.command, self.args)


def server_identity(url: str | None, command: str | None, args: Sequence[str]) -> tuple[str, ...]:
    """What makes two server entries the same server: the URL (trailing slash aside), or command and arguments."""
    if url is not None:
        return ("url", url.rstrip("/"))
    return ("command", command or "", *args)


def current_os() -> OS:
    """The OS Toolgate runs on, in the table's words."""
    if sys.platform == "win32":
        return "win32"
    return "darwin" if sys.platform == "darwin" else "linux"


def resolve_path(template: str, *, home: Path, environ: Mapping[str, str], project: Path | None) -> Path | None:
    """A table path on this machine; None for a project path when no project was given."""
    if "{project}" in template:
        if project is None:
            return None
        template = template.replace("{project}", str(project))
    appdata = environ.get("APPDATA") or str(home / "AppData" / "Roaming")
    xdg = environ.get("XDG_CONFIG_HOME", "").strip()
    config = xdg if xdg and os.path.isabs(xdg) else str(home / ".config")
    text = template.replace("{appdata}", appdata).replace("{config}", config)
    if text.startswith("~"):
        text = str(home) + text[1:]
    return Path(text)


def config_files(
    client: Client,
    *,
    home: Path | None = None,
    environ: Mapping[str, str] | None = None,
    platform: OS | None = None,
    project: Path | None = None,
) -> list[ConfigFile]:
    """Every config file of ``client`` on this machine (existing or not), user scope first."""
    home = Path.home() if home is None else home
    environ = os.environ if environ is None else environ
    platform = current_os() if platform is None else platform
    files = []
    for location in client.locations:
        path = resolve_path(location.paths[platform], home=home, environ=environ, project=project)
        if path is not None:
            files.append(ConfigFile(client, location.scope, path))
    return files


def installed(
    *,
    home: Path | None = None,
    environ: Mapping[str, str] | None = None,
    platform: OS | None = None,
    project: Path | None = None,
) -> list[ConfigFile]:
    """The config files that exist here, client by client in the table's order."""
    found: list[ConfigFile] = []
    for client in CLIENTS:
        files = config_files(client, home=home, environ=environ, platform=platform, project=project)
        found.extend(file for file in files if file.path.is_file())
    return found


def read_servers(file: ConfigFile) -> tuple[list[FoundServer], list[str]]:
    """The servers in ``file`` and a note for each entry that could not be understood.

    Raises:
        ClientConfigError: the file cannot be read or parsed (nothing about it is guessed).
    """
    try:
        text = file.path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ClientConfigError(f"{file.path}: cannot be read: {exc}") from exc
    entries = _entries(file, text)
    servers, notes = [], []
    for name, raw in entries.items():
        server = _server(file, name, raw)
        if server is None:
            notes.append(f"{file.path}: server {name!r} has neither a command nor a URL; skipped")
        else:
            servers.append(server)
    return servers, notes


def _entries(file: ConfigFile, text: str) -> dict[str, Any]:
    try:
        if file.client.format == "toml":
            return dict(toml_edit.servers(text))
        value = jsonc.get(text, list(file.client.servers_key)) if text.strip() else None
    except (jsonc.JsoncError, toml_edit.TomlEditError) as exc:
        raise ClientConfigError(f"{file.path}: {exc}") from exc
    if value is None:
        return {}
    if not isinstance(value, dict):
        key = ".".join(file.client.servers_key)
        raise ClientConfigError(f"{file.path}: {key!r} should hold an object of servers")
    return value


def _strings(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def _server(file: ConfigFile, name: str, raw: Any) -> FoundServer | None:
    return parse_entry(name, raw, client=file.client.id, scope=file.scope, path=file.path)


def parse_entry(name: str, raw: Any, *, client: str, scope: Scope, path: Path) -> FoundServer | None:
    """One server entry in any client's way of writing it, or None when it has neither command nor URL.

    Args:
        name: the entry's key.
        raw: the entry's JSON value.
        client: the id of the client it comes from (kept on the ``FoundServer``, as are scope and path).
        scope: ``user`` or ``project``.
        path: the file it is in.
    """
    fields = read_entry(raw)
    return None if fields is None else FoundServer(client, scope, path, name, **fields)


def read_entry(raw: Any) -> dict[str, Any] | None:
    """One server entry in any client's shape, as ``FoundServer`` fields (``transport`` and the rest); None if none.

    Reads ``url`` (or ``serverUrl``, ``httpUrl``) with ``type``/``transport`` and ``headers`` (or
    ``http_headers``), else ``command`` (Zed's older ``{"command": {"path", "args", "env"}}`` too),
    ``args`` and ``env``.
    """
    if not isinstance(raw, dict):
        return None
    url = raw.get("url") or raw.get("serverUrl") or raw.get("httpUrl")
    if isinstance(url, str) and url:
        kind = str(raw.get("type", raw.get("transport", ""))).lower()
        transport: Transport = "sse" if kind == "sse" or url.rstrip("/").endswith("/sse") else "http"
        headers = _strings(raw.get("headers") or raw.get("http_headers"))
        return {"transport": transport, "url": url, "headers": headers}
    command = raw.get("command")
    if isinstance(command, dict):  # Zed's older form: {"command": {"path", "args", "env"}}
        raw = {**raw, **command, "command": command.get("path")}
        command = raw["command"]
    if isinstance(command, str) and command:
        args = tuple(str(arg) for arg in raw.get("args") or ())
        env = _strings(raw.get("env"))
        remote = parse_mcp_remote(command, args, env)
        if remote is not None:  # a stdio bridge to a remote server: Toolgate reaches the server itself
            return {
                "transport": remote.transport,
                "url": remote.url,
                "headers": remote.headers,
                "oauth": remote.oauth,
                "via": PACKAGE,
            }
        return {"transport": "stdio", "command": command, "args": args, "env": env}
    return None

"""Recognising an IDE entry that reaches a remote server through ``mcp-remote``, to import it as the remote server.

IDEs that only speak stdio reach remote servers with ``npx mcp-remote URL`` (or ``npx -y
mcp-remote@latest URL``, ``pnpm dlx``, ``bunx``, a global ``mcp-remote``, ``cmd /c npx …`` on Windows),
with options such as ``--header "Authorization: Bearer ${TOKEN}"`` (``${VAR}`` taken from the entry's
``env``), ``--transport sse-only``, a callback port, and ``--static-oauth-client-info '{json}'``.
Such an entry becomes a native remote server: Toolgate connects and signs in itself, instead of
running a second process with its own token cache. An entry using an option not understood here
(or a ``${VAR}`` its ``env`` does not hold) is left as it is, a stdio server: nothing is lost.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePath, PureWindowsPath
from typing import Any, Literal

PACKAGE = "mcp-remote"
# Runners that take a package name (and their own flags, which start with "-") before it.
_RUNNERS = {"npx", "pnpx", "bunx", "pnpm", "yarn", "bun", "npm"}
_RUNNER_WORDS = {"dlx", "exec", "x"}  # pnpm dlx, npm exec, bun x
_WINDOWS_SHELL = {"cmd", "cmd.exe"}
# mcp-remote options that change nothing for Toolgate; the value-taking ones are skipped with their value.
_IGNORED_FLAGS = {"--allow-http", "--debug", "--silent", "--enable-proxy"}
_IGNORED_WITH_VALUE = {"--auth-timeout", "--host", "--resource"}
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class RemoteLaunch:
    """What an ``mcp-remote`` entry reaches: the URL, how, with which headers and OAuth client."""

    url: str
    transport: Literal["http", "sse"] = "http"
    headers: Mapping[str, str] = field(default_factory=dict)
    oauth: Mapping[str, Any] = field(default_factory=dict)
    """``client_id``, ``client_secret`` (the value: the importer moves it to the secret store), ``redirect_port``."""


def parse_mcp_remote(command: str, args: Sequence[str], env: Mapping[str, str]) -> RemoteLaunch | None:
    """The remote server an ``mcp-remote`` launch reaches, or None (not one, or not fully understood)."""
    words = [command, *args]
    if _program(words[0]) in _WINDOWS_SHELL and len(words) > 2 and words[1].lower() == "/c":
        words = words[2:]
    rest = _after_package(words)
    if rest is None or not rest or not rest[0].startswith(("https://", "http://")):
        return None
    url, options = rest[0], rest[1:]
    transport: Literal["http", "sse"] | None = None  # None: as for any URL entry (``/sse`` at the end: sse)
    headers: dict[str, str] = {}
    oauth: dict[str, Any] = {}
    i = 0
    while i < len(options):
        option, value = options[i], options[i + 1] if i + 1 < len(options) else None
        if option in _IGNORED_FLAGS:
            i += 1
            continue
        if value is None and option.startswith("-"):
            return None  # an option missing its value
        if option in _IGNORED_WITH_VALUE:
            pass
        elif option == "--transport" and value in ("http-first", "sse-first"):
            transport = None
        elif option == "--transport" and value in ("http-only", "sse-only"):
            transport = "sse" if value == "sse-only" else "http"
        elif option == "--header" and value is not None:
            header = _header(value, env)
            if header is None:
                return None
            headers[header[0]] = header[1]
        elif option == "--static-oauth-client-info" and value is not None:
            client = _client(value)
            if client is None:
                return None
            oauth.update(client)
        elif option.isdigit() and 0 < int(option) < 65536 and "redirect_port" not in oauth:
            oauth["redirect_port"] = int(option)
            i += 1
            continue
        else:
            return None
        i += 2
    if "redirect_port" in oauth and "client_id" not in oauth:
        del oauth["redirect_port"]  # a callback port matters only to a client registered with it
    if transport is None:
        transport = "sse" if url.rstrip("/").endswith("/sse") else "http"
    return RemoteLaunch(url, transport, headers, oauth)


def _program(word: str) -> str:
    name = PureWindowsPath(word).name if "\\" in word else PurePath(word).name
    return name.lower().removesuffix(".cmd").removesuffix(".exe").removesuffix(".ps1")


def _after_package(words: Sequence[str]) -> list[str] | None:
    """The words after ``mcp-remote`` (optionally ``@version``), when the launch runs it; else None."""
    if _is_package(words[0]):
        return list(words[1:])
    if _program(words[0]) not in _RUNNERS:
        return None
    for i, word in enumerate(words[1:], start=1):
        if _is_package(word):
            return list(words[i + 1 :])
        if not (word.startswith("-") or word in _RUNNER_WORDS):
            return None  # another package, or a runner option with a value: not mcp-remote's launch
    return None


def _is_package(word: str) -> bool:
    name = _program(word) if "/" in word or "\\" in word else word
    return name == PACKAGE or name.startswith(PACKAGE + "@")


def _header(value: str, env: Mapping[str, str]) -> tuple[str, str] | None:
    name, sep, text = value.partition(":")
    if not sep or not name.strip():
        return None
    missing = [var for var in _VARIABLE.findall(text) if var not in env]
    if missing:
        return None  # its value comes from outside the entry: keep the entry as it is
    return name.strip(), _VARIABLE.sub(lambda m: env[m.group(1)], text).strip()


def _client(value: str) -> dict[str, Any] | None:
    try:
        info = json.loads(value)
    except ValueError:
        return None  # e.g. "@file.json": not read here
    if not isinstance(info, dict) or not isinstance(info.get("client_id"), str) or not info["client_id"]:
        return None
    client: dict[str, Any] = {"client_id": info["client_id"]}
    if isinstance(info.get("client_secret"), str) and info["client_secret"]:
        client["client_secret"] = info["client_secret"]
    return client

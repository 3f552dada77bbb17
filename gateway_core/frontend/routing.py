"""The routing table: every ready server's tools, prompts and resources under the names agents see.

A configured server that is starting, restarting or failed keeps its routes (what it listed last,
and its prefix) as *unavailable*: a call to one of its names is told which server is down and why,
not that the name is unknown.

Built whole (``build_routes``) each time a server's catalog or state changes, then only read. A call
is routed by looking its public name up in this table, never by parsing the name.

Naming: ``prefix + upstream name``. A name the spec allows (``[A-Za-z0-9_.-]``, 1 to 128 characters)
passes unchanged; otherwise characters outside that set become ``_`` and a name over 128 characters
is shortened to 119 characters, ``_`` and 8 hex digits of a hash of the full name, so the same inputs
always give the same name. When two servers produce the same public
name, the server whose name sorts first keeps it and the other gets a hash suffix of
``server/name``; every such collision is reported in ``Routes.collisions`` (the caller logs new ones).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import mcp_types as types
from mcp.shared.uri_template import InvalidUriTemplate, UriTemplate

from gateway_core.downstream.base import Catalog

logger = logging.getLogger(__name__)

# The spec's limit for tool names (SEP-986); clients with shorter limits shorten names themselves,
# as they would for the server reached directly.
MAX_NAME_LENGTH = 128
_HASH_LENGTH = 8
_INVALID_CHARACTERS = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True)
class ServerCatalog:
    """One server's contribution: its name, its name prefix and what it lists.

    ``available`` False: a configured server that is starting, restarting or failed, with what it
    listed last. Its names stay routed (to say the server is unavailable) but are not listed.
    """

    server: str
    prefix: str
    catalog: Catalog
    available: bool = True


@dataclass(frozen=True)
class Route:
    """Where a public tool or prompt name leads: the server and the name it has there."""

    server: str
    upstream_name: str


@dataclass(frozen=True)
class _Template:
    server: str
    template: UriTemplate


@dataclass(frozen=True)
class Routes:
    """The lookup tables of one catalog generation, plus the public listings built from them."""

    tools: dict[str, Route] = field(default_factory=dict)
    prompts: dict[str, Route] = field(default_factory=dict)
    resources: dict[str, str] = field(default_factory=dict)
    tool_list: tuple[types.Tool, ...] = ()
    prompt_list: tuple[types.Prompt, ...] = ()
    resource_list: tuple[types.Resource, ...] = ()
    template_list: tuple[types.ResourceTemplate, ...] = ()
    # The server of each listed item, position by position (for per-agent filtering).
    template_servers: tuple[str, ...] = ()
    input_schemas: dict[str, dict[str, object]] = field(default_factory=dict)
    collisions: tuple[str, ...] = ()
    # The names of servers that are configured but not ready: where a call would go when they are.
    unavailable_tools: dict[str, Route] = field(default_factory=dict)
    unavailable_prompts: dict[str, Route] = field(default_factory=dict)
    unavailable_prefixes: tuple[tuple[str, str], ...] = ()
    _templates: tuple[_Template, ...] = ()

    def unavailable_server(self, name: str, *, prompt: bool = False) -> Route | None:
        """The unavailable server a tool (or prompt) name belongs to: by what it listed last, else by prefix."""
        route = (self.unavailable_prompts if prompt else self.unavailable_tools).get(name)
        if route is not None:
            return route
        for prefix, server in self.unavailable_prefixes:  # longest prefix first
            if prefix and name.startswith(prefix):
                return Route(server, name[len(prefix) :])
        return None

    def server_for_uri(self, uri: str) -> str | None:
        """The server a resource URI belongs to: a listed resource first, else the first matching template."""
        server = self.resources.get(uri)
        if server is not None:
            return server
        for candidate in self._templates:
            if candidate.template.match(uri) is not None:
                return candidate.server
        return None

    def server_for_template(self, uri_template: str) -> str | None:
        """The server that lists the resource template ``uri_template`` (as written in templates/list)."""
        for template, server in zip(self.template_list, self.template_servers, strict=True):
            if template.uri_template == uri_template:
                return server
        return None


def public_name(prefix: str, name: str) -> str:
    """The name an agent sees for ``name`` under ``prefix``, within MCP's name rules."""
    candidate = _INVALID_CHARACTERS.sub("_", prefix + name)
    if len(candidate) <= MAX_NAME_LENGTH:
        return candidate
    return _with_hash(candidate, prefix + name)


def _with_hash(candidate: str, identity: str) -> str:
    digest = hashlib.sha1(identity.encode(), usedforsecurity=False).hexdigest()[:_HASH_LENGTH]
    keep = MAX_NAME_LENGTH - _HASH_LENGTH - 1
    return f"{candidate[:keep]}_{digest}"


def build_routes(servers: Iterable[ServerCatalog]) -> Routes:
    """Merge the catalogs of the servers into one routing table, deterministically.

    Unavailable servers list nothing; their names (what they listed last) are routed as unavailable
    unless a ready server lists the same name.
    """
    everything = sorted(servers, key=lambda s: s.server)
    ordered = [entry for entry in everything if entry.available]
    collisions: list[str] = []
    tools: dict[str, Route] = {}
    tool_list: list[types.Tool] = []
    prompts: dict[str, Route] = {}
    prompt_list: list[types.Prompt] = []
    held_tools: dict[str, Route] = {}
    held_prompts: dict[str, Route] = {}
    for entry in everything:
        if not entry.available:
            for tool in entry.catalog.tools:
                _claim(held_tools, entry, tool.name, "tool", [])
            for prompt in entry.catalog.prompts:
                _claim(held_prompts, entry, prompt.name, "prompt", [])
    resources: dict[str, str] = {}
    resource_list: list[types.Resource] = []
    template_list: list[types.ResourceTemplate] = []
    template_servers: list[str] = []
    templates: list[_Template] = []
    for entry in ordered:
        for tool in entry.catalog.tools:
            name = _claim(tools, entry, tool.name, "tool", collisions)
            tool_list.append(tool if name == tool.name else tool.model_copy(update={"name": name}))
        for prompt in entry.catalog.prompts:
            name = _claim(prompts, entry, prompt.name, "prompt", collisions)
            prompt_list.append(prompt if name == prompt.name else prompt.model_copy(update={"name": name}))
        for resource in entry.catalog.resources:
            owner = resources.setdefault(resource.uri, entry.server)
            if owner != entry.server:
                collisions.append(
                    f"resource {resource.uri!r} of server {entry.server!r} is hidden: server {owner!r} lists it too"
                )
                continue
            resource_list.append(resource)
        for template in entry.catalog.resource_templates:
            template_list.append(template)
            template_servers.append(entry.server)
            try:
                templates.append(_Template(entry.server, UriTemplate.parse(template.uri_template)))
            except InvalidUriTemplate:
                logger.warning("server %r lists an invalid resource template %r", entry.server, template.uri_template)
    return Routes(
        tools=tools,
        prompts=prompts,
        resources=resources,
        tool_list=tuple(tool_list),
        prompt_list=tuple(prompt_list),
        resource_list=tuple(resource_list),
        template_list=tuple(template_list),
        template_servers=tuple(template_servers),
        input_schemas={t.name: t.input_schema for t in tool_list},
        collisions=tuple(collisions),
        unavailable_tools={name: route for name, route in held_tools.items() if name not in tools},
        unavailable_prompts={name: route for name, route in held_prompts.items() if name not in prompts},
        unavailable_prefixes=tuple(
            sorted(
                ((entry.prefix, entry.server) for entry in everything if not entry.available),
                key=lambda pair: -len(pair[0]),
            )
        ),
        _templates=tuple(templates),
    )


def _claim(table: dict[str, Route], entry: ServerCatalog, upstream: str, kind: str, collisions: list[str]) -> str:
    """Register ``upstream`` of ``entry`` in ``table`` under a free public name and return that name."""
    name = public_name(entry.prefix, upstream)
    if name in table:
        taken_by = table[name]
        name = _with_hash(name, f"{entry.server}/{upstream}")
        collisions.append(
            f"{kind} {upstream!r} of server {entry.server!r} is listed as {name!r}: "
            f"{public_name(entry.prefix, upstream)!r} is already {taken_by.server!r}'s {taken_by.upstream_name!r}"
        )
    table[name] = Route(entry.server, upstream)
    return name

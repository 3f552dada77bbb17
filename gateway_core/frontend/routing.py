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
``Routes.names`` keeps, for every listed tool and prompt, its server's own name and why the name
agents see differs (``PublicName.reason``, the one wording the CLI and the GUI show).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum

import mcp_types as types
from mcp.shared.uri_template import InvalidUriTemplate, UriTemplate

from gateway_core.downstream.base import Catalog
from gateway_core.policy import tool_hints

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


class NameKind(Enum):
    """What a public name names."""

    TOOL = "tool"
    PROMPT = "prompt"


class Renaming(Enum):
    """Why the name agents see differs from the server's own name, in the order they are applied."""

    PREFIX = "prefix"
    """The server's ``prefix`` is put in front."""
    CHARACTERS = "characters"
    """Characters the spec does not allow in names became ``_``."""
    LENGTH = "length"
    """Over ``MAX_NAME_LENGTH`` characters: shortened, with a hash of the whole name."""
    CLASH = "clash"
    """Another server's tool (or prompt) already had the name: a hash of ``server/name`` was added."""


@dataclass(frozen=True)
class PublicName:
    """One listed tool or prompt: the name agents see, its server, the server's own name, and why they differ.

    Attributes:
        kind: tool or prompt.
        name: the name agents see.
        server: the server it leads to.
        upstream_name: the server's own name for it.
        prefix: the server's name prefix.
        renamings: why ``name`` differs from ``upstream_name``, in the order applied (empty: it does not).
        taken_by: with ``Renaming.CLASH``, the tool (or prompt) that kept the name.
    """

    kind: NameKind
    name: str
    server: str
    upstream_name: str
    prefix: str = ""
    renamings: tuple[Renaming, ...] = ()
    taken_by: Route | None = None

    @property
    def rewritten(self) -> bool:
        """Whether the name is changed beyond the server's prefix (characters, length or a clash)."""
        return any(renaming is not Renaming.PREFIX for renaming in self.renamings)

    @property
    def reason(self) -> str:
        """Why agents see this name, in one line (empty when it is the server's own name)."""
        parts = []
        for renaming in self.renamings:
            if renaming is Renaming.PREFIX:
                parts.append(f"prefix {_quoted(self.prefix)}")
            elif renaming is Renaming.CHARACTERS:
                forbidden = sorted(set(_INVALID_CHARACTERS.findall(self.prefix + self.upstream_name)))
                shown = ", ".join(_quoted(character) for character in forbidden)
                parts.append(f'characters the MCP spec does not allow in names ({shown}) became "_"')
            elif renaming is Renaming.LENGTH:
                parts.append(f"over {MAX_NAME_LENGTH} characters: shortened, with a hash")
            elif self.taken_by is not None:
                taken_by = (
                    f"{self.kind.value} {_quoted(self.taken_by.upstream_name)} of {_quoted(self.taken_by.server)}"
                )
                parts.append(f"{taken_by} already has that name: a hash was added")
        return "; ".join(parts)


def _quoted(text: str) -> str:
    """``text`` in double quotes; what a reader could not see, or tell from the quotes, is escaped."""
    return '"' + "".join(map(_escaped, text)) + '"'


def _escaped(character: str) -> str:
    if character in '"\\':
        return "\\" + character
    return character if character.isprintable() else character.encode("unicode_escape").decode()


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
    # Every listed tool, then every listed prompt: where its public name comes from.
    names: tuple[PublicName, ...] = ()
    # The names of servers that are configured but not ready: where a call would go when they are.
    unavailable_tools: dict[str, Route] = field(default_factory=dict)
    unavailable_prompts: dict[str, Route] = field(default_factory=dict)
    unavailable_prefixes: tuple[tuple[str, str], ...] = ()
    # The annotation hints each listed tool's server states, by (server, the server's own name); none: left out.
    hints: dict[tuple[str, str], dict[str, bool]] = field(default_factory=dict)
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
    return _renamed(prefix, name)[0]


def _renamed(prefix: str, name: str) -> tuple[str, tuple[Renaming, ...]]:
    """``public_name`` and the renamings that made it."""
    joined = prefix + name
    candidate = _INVALID_CHARACTERS.sub("_", joined)
    renamings = [Renaming.PREFIX] if prefix else []
    if candidate != joined:
        renamings.append(Renaming.CHARACTERS)
    if len(candidate) > MAX_NAME_LENGTH:
        candidate = _with_hash(candidate, joined)
        renamings.append(Renaming.LENGTH)
    return candidate, tuple(renamings)


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
    tool_names: list[PublicName] = []
    prompt_names: list[PublicName] = []
    held_tools: dict[str, Route] = {}
    held_prompts: dict[str, Route] = {}
    for entry in everything:
        if not entry.available:
            for tool in entry.catalog.tools:
                _claim(held_tools, entry, tool.name, NameKind.TOOL, [])
            for prompt in entry.catalog.prompts:
                _claim(held_prompts, entry, prompt.name, NameKind.PROMPT, [])
    resources: dict[str, str] = {}
    resource_list: list[types.Resource] = []
    template_list: list[types.ResourceTemplate] = []
    template_servers: list[str] = []
    templates: list[_Template] = []
    hints: dict[tuple[str, str], dict[str, bool]] = {}
    for entry in ordered:
        for tool in entry.catalog.tools:
            stated = definition_hints(tool)
            if stated is not None:
                hints[(entry.server, tool.name)] = stated
            named = _claim(tools, entry, tool.name, NameKind.TOOL, collisions)
            tool_names.append(named)
            tool_list.append(tool if named.name == tool.name else tool.model_copy(update={"name": named.name}))
        for prompt in entry.catalog.prompts:
            named = _claim(prompts, entry, prompt.name, NameKind.PROMPT, collisions)
            prompt_names.append(named)
            prompt_list.append(prompt if named.name == prompt.name else prompt.model_copy(update={"name": named.name}))
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
        names=(*tool_names, *prompt_names),
        unavailable_tools={name: route for name, route in held_tools.items() if name not in tools},
        unavailable_prompts={name: route for name, route in held_prompts.items() if name not in prompts},
        unavailable_prefixes=tuple(
            sorted(
                ((entry.prefix, entry.server) for entry in everything if not entry.available),
                key=lambda pair: -len(pair[0]),
            )
        ),
        hints=hints,
        _templates=tuple(templates),
    )


def definition_hints(tool: types.Tool) -> dict[str, bool] | None:
    """The annotation hints (``readOnlyHint`` …) ``tool``'s definition states, or None when it states none."""
    annotations = tool.annotations
    return None if annotations is None else tool_hints(annotations.model_dump(by_alias=True, exclude_none=True))


def _claim(
    table: dict[str, Route], entry: ServerCatalog, upstream: str, kind: NameKind, collisions: list[str]
) -> PublicName:
    """Register ``upstream`` of ``entry`` in ``table`` under a free public name; how it is named."""
    name, renamings = _renamed(entry.prefix, upstream)
    taken_by = table.get(name)
    if taken_by is not None:
        wanted, name = name, _with_hash(name, f"{entry.server}/{upstream}")
        renamings = (*renamings, Renaming.CLASH)
        collisions.append(
            f"{kind.value} {upstream!r} of server {entry.server!r} is listed as {name!r}: "
            f"{wanted!r} is already {taken_by.server!r}'s {taken_by.upstream_name!r}"
        )
    table[name] = Route(entry.server, upstream)
    return PublicName(kind, name, entry.server, upstream, entry.prefix, renamings, taken_by)

"""Each agent's tools and prompts as their servers list them to a client of the agent's era and capabilities.

The routing table holds what each server lists to a 2026-07-28 client that can answer everything. A
server reached in 2026-07-28 may list less to an agent that cannot (``downstream/by_capability.py``);
a server that offers the handshake era something else lists a handshake-era agent what its
handshake-era twin lists, with the twin's definitions (``downstream/era_twin.py``). An agent's listing
keeps, of each such server, only what the server lists to it, as the server defines it for it.
What only the handshake era lists is routed too, and listed to handshake-era agents alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal, Protocol, TypeVar, cast

import anyio
import mcp_types as types

from gateway_core.downstream.by_capability import ListedNames
from gateway_core.downstream.pool import DownstreamPool
from gateway_core.frontend.routing import Route

_T = TypeVar("_T")


class Named(Protocol):
    """A tool or prompt: what is listed under a name."""

    name: str


async def as_listed_to(
    pool: DownstreamPool,
    capabilities: types.ClientCapabilities | None,
    items: Sequence[_T],
    route_of: Callable[[_T], Route],
    kind: Literal["tools", "prompts"],
    *,
    modern: bool = True,
) -> list[_T]:
    """``items`` (tools or prompts, each with its route) as their server lists them to such a client.

    Those it does not list to it are left out; those it defines otherwise for it are defined so.
    """
    listed: dict[str, ListedNames | None] = {}

    async def ask(name: str) -> None:
        server = pool.servers.get(name)
        listed[name] = None if server is None else await server.listed_to(capabilities, modern=modern)

    async with anyio.create_task_group() as tg:
        for name in {route_of(item).server for item in items}:
            tg.start_soon(ask, name)

    def as_listed(item: _T) -> _T | None:
        route = route_of(item)
        names = listed.get(route.server)
        if names is None:
            return item
        if route.upstream_name not in getattr(names, kind):
            return None
        if names.definitions is None:
            return item
        own = next(d for d in getattr(names.definitions, kind) if d.name == route.upstream_name)
        return cast(_T, own.model_copy(update={"name": cast(Named, item).name}))

    return [listed_item for item in items if (listed_item := as_listed(item)) is not None]

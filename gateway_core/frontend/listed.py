"""Each agent's tools and prompts as their servers list them to a client with the agent's capabilities.

The routing table holds what each server lists to a client that can answer everything. A server
reached in 2026-07-28 may list less to an agent that cannot (``downstream/by_capability.py``); an
agent's listing keeps, of each such server, only what the server lists to it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal, TypeVar

import anyio
import mcp_types as types

from gateway_core.downstream.by_capability import ListedNames
from gateway_core.downstream.pool import DownstreamPool
from gateway_core.frontend.routing import Route

_T = TypeVar("_T")


async def as_listed_to(
    pool: DownstreamPool,
    capabilities: types.ClientCapabilities | None,
    items: Sequence[_T],
    route_of: Callable[[_T], Route],
    kind: Literal["tools", "prompts"],
) -> list[_T]:
    """``items`` (tools or prompts, each with its route) without those their server lists not to such a client."""
    listed: dict[str, ListedNames | None] = {}

    async def ask(name: str) -> None:
        server = pool.servers.get(name)
        listed[name] = None if server is None else await server.listed_to(capabilities)

    async with anyio.create_task_group() as tg:
        for name in {route_of(item).server for item in items}:
            tg.start_soon(ask, name)

    def kept(item: _T) -> bool:
        route = route_of(item)
        names = listed.get(route.server)
        return names is None or route.upstream_name in getattr(names, kind)

    return [item for item in items if kept(item)]

"""What a 2026-07-28 server lists to one agent: the tools and prompts it offers a client with that agent's capabilities.

A server may list some tools or prompts only to clients that can answer what they ask (sampling,
elicitation, roots). Toolgate's catalog of a server is what it lists to a client that can answer
everything (``offer.EVERYTHING``). A 2026-07-28 server is told its client's capabilities with each
request, so it is also asked what it lists to a client with exactly an agent's capabilities: once per
set of capabilities and catalog, only when they differ from everything. A handshake-era server was
told Toolgate's capabilities once, at ``initialize``, and has one listing for all.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import anyio
import mcp_types as types
from mcp.shared.exceptions import MCPError
from pydantic import ValidationError

from gateway_core.downstream.base import Catalog
from gateway_core.downstream.catalog import Listing, all_pages
from gateway_core.downstream.envelope import speaking_for
from gateway_core.downstream.live import LiveSession
from gateway_core.downstream.offer import EVERYTHING, offer_for

logger = logging.getLogger(__name__)

# An agent's tools/list waits this long at most for one server's listing for it; then it gets the catalog.
LISTING_WAIT_S = 5.0


@dataclass(frozen=True)
class ListedNames:
    """The tool and prompt names a server lists to one client (names as the server gives them)."""

    tools: frozenset[str]
    prompts: frozenset[str]
    definitions: Catalog | None = None
    """Where the client is listed other definitions than the catalog's (a handshake-era twin's): those."""

    @classmethod
    def of(cls, catalog: Catalog, *, definitions: bool = True) -> ListedNames:
        """What ``catalog`` lists, with its own definitions (or the routing table's)."""
        tools = frozenset(tool.name for tool in catalog.tools)
        prompts = frozenset(prompt.name for prompt in catalog.prompts)
        return cls(tools=tools, prompts=prompts, definitions=catalog if definitions else None)


def _key(capabilities: types.ClientCapabilities) -> str:
    return json.dumps(capabilities.model_dump(by_alias=True, mode="json", exclude_none=True), sort_keys=True)


def capability_key(capabilities: types.ClientCapabilities | None) -> str:
    """Which listing a client with ``capabilities`` gets: equal for clients a server cannot tell apart."""
    return _key(offer_for(capabilities))


_EVERYTHING = _key(EVERYTHING)


class ListingsByCapability:
    """One server's listings per set of client capabilities, kept while its catalog stays the same."""

    def __init__(self, server: str) -> None:
        self._server = server
        self._catalog: Catalog | None = None
        self._listed: dict[str, ListedNames] = {}

    async def listed_to(
        self, live: LiveSession | None, catalog: Catalog, capabilities: types.ClientCapabilities | None
    ) -> ListedNames | None:
        """What the server lists to a client with ``capabilities``; ``None``: what ``catalog`` holds.

        ``catalog`` is the server's current catalog (its listing for everything); when it changes,
        every listing kept for it is dropped. A listing that fails or takes longer than
        ``LISTING_WAIT_S`` gives ``None``: the agent is shown the catalog, as before.
        """
        if live is None or not live.modern:
            return None
        key = capability_key(capabilities)
        if key == _EVERYTHING:
            return None
        if catalog is not self._catalog:
            self._catalog, self._listed = catalog, {}
        if (known := self._listed.get(key)) is not None:
            return known
        listed = await self._list(live, capabilities)
        if listed is not None and catalog is self._catalog:
            self._listed[key] = listed
        return listed

    async def _list(self, live: LiveSession, capabilities: types.ClientCapabilities | None) -> ListedNames | None:
        session = live.session
        tools: tuple[types.Tool, ...] = ()
        prompts: tuple[types.Prompt, ...] = ()
        try:
            with anyio.fail_after(LISTING_WAIT_S), speaking_for(capabilities):
                if Listing.TOOLS in live.listings:
                    tools = await all_pages(lambda p: session.list_tools(params=p), "tools")
                if Listing.PROMPTS in live.listings:
                    prompts = await all_pages(lambda p: session.list_prompts(params=p), "prompts")
        except (MCPError, TimeoutError, ValidationError) as exc:
            logger.warning("server %r: listing for an agent's capabilities failed: %s", self._server, exc)
            return None
        return ListedNames(tools=frozenset(t.name for t in tools), prompts=frozenset(p.name for p in prompts))

"""Listing what a connected server offers: tools, resources, resource templates and prompts.

Only what the server's capabilities advertise is listed; every page is followed. A listing that fails
keeps what was known before (empty at first), so a server with one broken capability still serves the rest.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import anyio
import mcp_types as types
from mcp.client.session import ClientSession
from mcp.shared.exceptions import MCPError
from pydantic import ValidationError

from gateway_core.downstream.base import Catalog

logger = logging.getLogger(__name__)

# A server that keeps returning cursors is broken; stop rather than loop forever.
MAX_PAGES = 100


class Listing(enum.Enum):
    """One kind of list a server may offer, named after its ``list_changed`` family."""

    TOOLS = "tools"
    RESOURCES = "resources"
    PROMPTS = "prompts"


def advertised(capabilities: types.ServerCapabilities | None) -> frozenset[Listing]:
    """The listings a server's capabilities promise."""
    if capabilities is None:
        return frozenset()
    present = {
        Listing.TOOLS: capabilities.tools is not None,
        Listing.RESOURCES: capabilities.resources is not None,
        Listing.PROMPTS: capabilities.prompts is not None,
    }
    return frozenset(kind for kind, on in present.items() if on)


def announced(capabilities: types.ServerCapabilities | None) -> frozenset[Listing]:
    """The listings whose changes a server's capabilities promise to announce (``listChanged``)."""
    if capabilities is None:
        return frozenset()
    present = {
        Listing.TOOLS: bool(capabilities.tools and capabilities.tools.list_changed),
        Listing.RESOURCES: bool(capabilities.resources and capabilities.resources.list_changed),
        Listing.PROMPTS: bool(capabilities.prompts and capabilities.prompts.list_changed),
    }
    return frozenset(kind for kind, on in present.items() if on)


async def all_pages(
    fetch: Callable[[types.PaginatedRequestParams | None], Awaitable[Any]], field: str
) -> tuple[Any, ...]:
    """Every item of one listing (``field`` of each page), following cursors up to ``MAX_PAGES`` pages."""
    items: list[Any] = []
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        page = await fetch(types.PaginatedRequestParams(cursor=cursor) if cursor else None)
        items.extend(getattr(page, field))
        cursor = page.next_cursor
        if not cursor:
            return tuple(items)
    logger.warning("stopped listing %s after %d pages: the server keeps returning cursors", field, MAX_PAGES)
    return tuple(items)


def _fetchers(session: ClientSession) -> dict[str, Callable[[types.PaginatedRequestParams | None], Awaitable[Any]]]:
    return {
        "tools": lambda p: session.list_tools(params=p),
        "resources": lambda p: session.list_resources(params=p),
        "resource_templates": lambda p: session.list_resource_templates(params=p),
        "prompts": lambda p: session.list_prompts(params=p),
    }


_FIELDS: dict[Listing, Sequence[str]] = {
    Listing.TOOLS: ("tools",),
    Listing.RESOURCES: ("resources", "resource_templates"),
    Listing.PROMPTS: ("prompts",),
}


async def list_catalog(
    server: str, session: ClientSession, kinds: Iterable[Listing], previous: Catalog, *, timeout_s: float
) -> Catalog:
    """List ``kinds`` from ``session`` and return ``previous`` with those parts replaced.

    Args:
        server: the server's name, for log messages.
        session: an initialized session.
        kinds: which listings to fetch (the caller passes only advertised ones).
        previous: the catalog so far; parts that fail to list keep their previous value.
        timeout_s: bound for each listing, all its pages together.
    """
    fetchers = _fetchers(session)
    changes: dict[str, tuple[Any, ...]] = {}
    for kind in kinds:
        for field in _FIELDS[kind]:
            try:
                with anyio.fail_after(timeout_s):
                    changes[field] = await all_pages(fetchers[field], field)
            except MCPError as exc:
                if field == "resource_templates" and exc.code == types.METHOD_NOT_FOUND:
                    continue  # optional even when resources are advertised
                logger.warning("server %r: listing %s failed: %s", server, field, exc.error.message)
            except TimeoutError:
                logger.warning("server %r: listing %s took longer than %g s", server, field, timeout_s)
            except ValidationError as exc:
                count = exc.error_count()
                logger.warning("server %r: listing %s returned an invalid result (%d errors)", server, field, count)
    return dataclasses.replace(previous, **changes)

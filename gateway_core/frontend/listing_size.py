"""How large an agent's ``tools/list`` is in each tool mode, so the person sees what on-demand saves.

A pure function of the routing table, the agent's policy and its ``always_listed`` matches: the
tools it may see (not denied, not task-only), as ``{"tools": [...]}`` in compact JSON, the form an
agent puts into its model's context. The protocol's envelope (ids, era fields) is not counted.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import mcp_types as types

from gateway_core.frontend.on_demand import CHARS_PER_TOKEN, META_TOOLS, always_listed
from gateway_core.frontend.routing import Routes
from gateway_core.frontend.tasks import requires_task
from gateway_core.policy import AgentPolicy

_EMPTY = '{"tools":[]}'


@dataclass(frozen=True)
class ListingSize:
    """The size of one ``tools/list``.

    Attributes:
        bytes: its compact JSON, UTF-8 encoded.
        tokens: an estimate of the tokens a model reads for it (``on_demand.CHARS_PER_TOKEN``).
    """

    bytes: int
    tokens: int

    def short(self) -> str:
        """Both in a few characters, as tables show them: ``52 kB ~13k tok``."""
        return f"{_short(self.bytes, ('B', 'kB', 'MB'), ' ')} ~{_short(self.tokens, ('', 'k', 'M'), '')} tok"


@dataclass(frozen=True)
class ListingSizes:
    """One agent's ``tools/list`` in both tool modes.

    Attributes:
        all: with ``"tools": "all"``, every tool it may use.
        on_demand: with ``"tools": "on_demand"``, the gateway tools and its always-listed ones.
    """

    all: ListingSize
    on_demand: ListingSize


def listing_sizes(routes: Routes, policy: AgentPolicy, always: Sequence[str] = ()) -> ListingSizes:
    """The size of the ``tools/list`` an agent with ``policy`` gets from ``routes`` in each tool mode.

    Args:
        routes: the routing table in force.
        policy: the agent's policy (denied tools are not listed).
        always: the agent's ``always_listed`` matches (counted in on-demand mode).
    """
    now = time.time()
    visible = [
        tool
        for tool in routes.tool_list
        if not requires_task(tool)
        and policy.visible(
            (route := routes.tools[tool.name]).server,
            route.upstream_name,
            now=now,
            annotations=routes.hints.get((route.server, route.upstream_name)),
        )
    ]
    return ListingSizes(_size(visible), _size([*META_TOOLS, *always_listed(routes, always, visible)]))


def _size(tools: Sequence[types.Tool]) -> ListingSize:
    definitions = [tool.model_dump_json(by_alias=True, exclude_none=True) for tool in tools]
    # The listing is {"tools":[a,b,…]}: the definitions, a comma between each two, and the envelope.
    commas = max(len(definitions) - 1, 0)
    chars = len(_EMPTY) + commas + sum(len(text) for text in definitions)
    size = len(_EMPTY) + commas + sum(len(text.encode()) for text in definitions)
    return ListingSize(size, -(-chars // CHARS_PER_TOKEN))


def _short(n: int, units: tuple[str, str, str], space: str) -> str:
    """``n`` in the largest of ``units`` (powers of 1000) that keeps it under 1000, to 2 or 3 digits."""
    if n < 1000:
        return f"{n}{space}{units[0]}"
    for power, unit in enumerate(units[1:], start=1):
        scaled = n / 1000**power
        if scaled < 9.95:
            return f"{scaled:.1f}{space}{unit}"
        if scaled < 999.5 or power == len(units) - 1:
            return f"{scaled:.0f}{space}{unit}"
    raise AssertionError("unreachable: the last unit takes any size")

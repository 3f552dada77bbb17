"""An agent's tools/list size in both tool modes is the size of what it is listed in each."""

from __future__ import annotations

import json

import mcp_types as types
import pytest

from gateway_core.frontend.listing_size import ListingSize, listing_sizes
from gateway_core.frontend.on_demand import CHARS_PER_TOKEN
from tests.gateway_core.frontend.conftest import FakeServers, agent, running_gateway

pytestmark = pytest.mark.anyio

POLICIES = {
    "full": {"default": "allow"},
    "lean": {"default": "allow", "tools": "on_demand", "always_listed": ["fake/echo"]},
    "narrow": {"default": "allow", "rules": [{"match": "fake/add*", "effect": "deny"}]},
}


def size_of(tools: list[types.Tool]) -> ListingSize:
    text = json.dumps(
        {"tools": [json.loads(tool.model_dump_json(by_alias=True, exclude_none=True)) for tool in tools]},
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return ListingSize(len(text.encode()), -(-len(text) // CHARS_PER_TOKEN))


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_each_agents_sizes_are_those_of_the_listings_it_gets_in_each_mode(fake_servers: FakeServers, mode: str):
    async with running_gateway(fake_servers, {"fake": {}}, POLICIES) as gw:
        now = gw.runtime.now
        sizes = {
            name: listing_sizes(now.routes, now.policy(name), entry.always_listed)
            for name, entry in now.config.agents.items()
        }
        listed = {}
        for name in POLICIES:
            async with agent(gw.front.server, name, mode) as client:
                listed[name] = (await client.list_tools()).tools

    assert sizes["full"].all == size_of(listed["full"])
    assert sizes["lean"].on_demand == size_of(listed["lean"])  # the gateway tools and the always-listed echo
    assert sizes["lean"].all == sizes["full"].all
    assert sizes["narrow"].all == size_of(listed["narrow"]) and sizes["narrow"].all.bytes < sizes["full"].all.bytes
    assert sizes["full"].on_demand.bytes < sizes["lean"].on_demand.bytes < sizes["full"].all.bytes


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (ListingSize(0, 0), "0 B ~0 tok"),
        (ListingSize(999, 250), "999 B ~250 tok"),
        (ListingSize(1_640, 410), "1.6 kB ~410 tok"),
        (ListingSize(9_999, 2_500), "10 kB ~2.5k tok"),
        (ListingSize(52_345, 13_087), "52 kB ~13k tok"),
        (ListingSize(999_999, 250_000), "1.0 MB ~250k tok"),
        (ListingSize(12_345_678, 3_086_420), "12 MB ~3.1M tok"),
    ],
)
def test_a_size_is_shown_in_a_few_characters(size: ListingSize, text: str):
    assert size.short() == text

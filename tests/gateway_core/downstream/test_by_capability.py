"""What a server lists to clients with given capabilities, against the fake server as a real subprocess."""

from __future__ import annotations

import mcp_types as types
import pytest

from gateway_core.downstream.offer import EVERYTHING
from tests.gateway_core.downstream.conftest import fake_config, ready_fake

pytestmark = pytest.mark.anyio

NOTHING = types.ClientCapabilities()
SAMPLING = types.ClientCapabilities(sampling=types.SamplingCapability())


async def test_a_2026_server_is_asked_once_what_it_lists_to_each_set_of_capabilities_until_its_catalog_changes():
    async with ready_fake(fake_config("--by-capability")) as (server, changes):
        plain = await server.listed_to(NOTHING)
        again = await server.listed_to(NOTHING)
        sampling = await server.listed_to(SAMPLING)
        everything = await server.listed_to(EVERYTHING)
        catalog = {tool.name for tool in server.catalog.tools}
        await server.session.call_tool("add_tool", {"name": "brand_new"})
        await changes.until(lambda: any(tool.name == "brand_new" for tool in server.catalog.tools))
        after = await server.listed_to(NOTHING)

    assert plain is not None and sampling is not None and after is not None
    assert plain is again
    assert ("summarise" in plain.tools, "summarise" in sampling.tools) == (False, True)
    assert ("interview" in plain.prompts, "interview" in sampling.prompts) == (False, False)
    assert everything is None  # what the catalog holds
    assert "summarise" in catalog
    assert "brand_new" in after.tools


async def test_a_handshake_era_server_lists_the_same_to_every_agent():
    async with ready_fake(fake_config("--by-capability", "--handshake-only")) as (server, _):
        listed = await server.listed_to(NOTHING)

    assert listed is None

"""Handshake-era twins of servers reached in 2026-07-28, against the fake server as a real subprocess."""

from __future__ import annotations

import os
from pathlib import Path

import mcp_types as types
import pytest

from gateway_core.downstream.base import ServerState
from gateway_core.downstream.era_twin import HandshakeTwin
from gateway_core.downstream.offer import EVERYTHING
from gateway_core.errors import ServerUnavailableError
from tests.gateway_core.downstream.conftest import fake_config, ready_fake

pytestmark = pytest.mark.anyio

PROC = Path("/proc")


def fake_processes() -> int:
    """How many fake servers this test process has running (its children started from fake_server.py)."""
    count, me = 0, str(os.getpid())
    for entry in PROC.iterdir():
        try:
            status = (entry / "status").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except (OSError, ValueError):
            continue
        parent = next((line.split()[1] for line in status.splitlines() if line.startswith("PPid:")), "")
        count += parent == me and b"fake_server.py" in cmdline
    return count


def text(result: object) -> str:
    assert isinstance(result, types.CallToolResult) and isinstance(result.content[0], types.TextContent)
    return result.content[0].text


@pytest.mark.skipif(not PROC.is_dir(), reason="counts processes through /proc")
async def test_a_server_that_offers_both_eras_the_same_serves_every_agent_from_one_process():
    async with ready_fake(fake_config()) as (server, _):
        await server.era_settled()

        assert fake_processes() == 1

        assert server.for_era(modern=False) is server
        assert server.for_handshake_era_now() is server
        assert await server.listed_to(EVERYTHING, modern=False) is None  # the catalog, as for a 2026 agent
        assert server.era_generation == 0


async def test_a_server_that_lists_by_era_keeps_a_handshake_era_twin_that_lists_and_answers_in_its_era():
    async with ready_fake(fake_config("--by-era")) as (server, _):
        await server.era_settled()
        twin = server.for_era(modern=False)
        known_at_once = server.for_handshake_era_now()
        listed = await server.listed_to(None, modern=False)
        answered_by_twin = text(await twin.session.call_tool("era", {}))
        answered_by_server = text(await server.session.call_tool("era", {}))
        catalog = {tool.name for tool in server.catalog.tools}
        modern = server.for_era(modern=True)

    assert twin is not server and modern is server and known_at_once is twin
    assert listed is not None and "era" in listed.tools and "whats_new" not in listed.tools
    assert "whats_new" in catalog
    assert (answered_by_twin, answered_by_server) == ("2025-11-25", "2026-07-28")


async def test_a_twin_is_gone_with_its_servers_session_and_a_new_one_comes_with_the_next():
    async with ready_fake(fake_config("--by-era")) as (server, changes):
        await server.era_settled()
        first = server.for_era(modern=False)
        with pytest.raises(ServerUnavailableError):
            await server.session.call_tool("crash", None)
        await changes.until(lambda: server.status.restarts == 1 and server.status.state is ServerState.READY)
        await server.era_settled()
        second = server.for_era(modern=False)
        answered = text(await second.session.call_tool("era", {}))

    assert first is not server and second is not server and second is not first
    assert answered == "2025-11-25"


async def test_a_handshake_era_server_has_no_twin():
    async with ready_fake(fake_config("--by-era", "--handshake-only")) as (server, _):
        await server.era_settled()

        assert server.for_era(modern=False) is server
        assert server.for_handshake_era_now() is server
        assert text(await server.session.call_tool("era", {})) == "2025-11-25"


def test_which_session_serves_handshake_era_agents_is_not_known_while_a_twin_is_being_compared():
    twin = HandshakeTwin("fake", lambda: None)
    assert twin.is_settled and twin.serving is None

    twin.expect()

    assert not twin.is_settled

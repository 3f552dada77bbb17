"""Servers with "isolation": "per_agent": each agent's own process, its own roots, stopped when idle."""

from __future__ import annotations

import json
import os
from typing import Any

import anyio
import mcp_types as types
import pytest

from tests.integration.harness import agent_client, running_gateway, stdio_fake, text_of

pytestmark = pytest.mark.anyio

WAIT_S = 20.0


class Workspace:
    """An agent's roots, which the test can change."""

    def __init__(self, *folders: str) -> None:
        self.folders = list(folders)

    async def roots(self, context: Any) -> types.ListRootsResult:
        return types.ListRootsResult(roots=[types.Root(uri=f"file://{folder}") for folder in self.folders])


async def wait_for_exit(pid: int) -> None:
    """Wait until process ``pid`` has exited (a pidfd becomes readable then)."""
    fd = os.pidfd_open(pid)
    try:
        with anyio.fail_after(WAIT_S):
            await anyio.wait_readable(fd)
    finally:
        os.close(fd)


PER_AGENT = stdio_fake(isolation="per_agent")
# Servers that ask for roots by themselves, and are told the client's capabilities once: the handshake era.
HANDSHAKE_PER_AGENT = stdio_fake("--handshake-only", isolation="per_agent")


async def test_each_agent_gets_its_own_process_of_a_per_agent_server():
    async with running_gateway({"fake": PER_AGENT}, agents=("agent-a", "agent-b")) as gw:
        await gw.wait_ready()
        async with (
            agent_client(gw.url, gw.tokens["agent-a"]) as client_a,
            agent_client(gw.url, gw.tokens["agent-b"], mode="2026-07-28") as client_b,
        ):
            first_a = text_of(await client_a.call_tool("fake__pid", {}))
            again_a = text_of(await client_a.call_tool("fake__pid", {}))
            first_b = text_of(await client_b.call_tool("fake__pid", {}))
            assert gw.gateway.instance_agents("fake") == ["agent-a", "agent-b"]
    assert first_a == again_a
    assert first_a != first_b


async def test_an_agents_own_instance_gets_that_agents_roots_when_it_asks_by_itself():
    alice, bob = Workspace("/work/alice"), Workspace("/work/bob")
    async with running_gateway({"fake": HANDSHAKE_PER_AGENT}, agents=("agent-a", "agent-b")) as gw:
        await gw.wait_ready()
        async with (
            agent_client(gw.url, gw.tokens["agent-a"], list_roots_callback=alice.roots) as client_a,
            agent_client(gw.url, gw.tokens["agent-b"], list_roots_callback=bob.roots) as client_b,
        ):
            roots_a = text_of(await client_a.call_tool("fake__known_roots", {}))
            roots_b = text_of(await client_b.call_tool("fake__known_roots", {}))
    assert roots_a == "file:///work/alice"
    assert roots_b == "file:///work/bob"


async def test_an_agents_roots_change_reaches_its_own_instance():
    workspace = Workspace("/work/one")
    async with running_gateway({"fake": HANDSHAKE_PER_AGENT}) as gw:
        await gw.wait_ready()
        async with agent_client(gw.url, gw.tokens["agent-a"], list_roots_callback=workspace.roots) as client:
            before = text_of(await client.call_tool("fake__known_roots", {"answers": 1}))
            workspace.folders = ["/work/one", "/work/two"]
            await client.session.send_notification(types.RootsListChangedNotification())
            after = text_of(await client.call_tool("fake__known_roots", {"answers": 2}))
    assert before == "file:///work/one"
    assert after == "file:///work/one\nfile:///work/two"


async def test_a_shared_server_asking_for_roots_outside_a_call_gets_an_empty_list():
    workspace = Workspace("/work/private")
    async with running_gateway({"fake": stdio_fake("--handshake-only")}) as gw:
        await gw.wait_ready()
        async with agent_client(gw.url, gw.tokens["agent-a"], list_roots_callback=workspace.roots) as client:
            startup = text_of(await client.call_tool("fake__known_roots", {}))
            during_call = text_of(await client.call_tool("fake__roots", {}))
    assert startup == "no roots"
    assert during_call == "file:///work/private"


async def test_an_idle_per_agent_instance_is_stopped_and_started_again_on_next_use():
    entry = stdio_fake(isolation="per_agent", idle_timeout_s=0.3)
    async with running_gateway({"fake": entry}) as gw:
        await gw.wait_ready()
        async with agent_client(gw.url, gw.tokens["agent-a"]) as client:
            first = int(text_of(await client.call_tool("fake__pid", {})))
            await wait_for_exit(first)
            assert gw.gateway.instance_agents("fake") == []
            second = int(text_of(await client.call_tool("fake__pid", {})))
    assert second != first


async def _sample(context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
    return types.CreateMessageResult(role="assistant", content=types.TextContent(text="sampled"), model="m")


async def told(client: Any) -> tuple[str, Any]:
    """The process's id and the client capabilities it was told."""
    pid = text_of(await client.call_tool("fake__pid", {}))
    return pid, json.loads(text_of(await client.call_tool("fake__capabilities", {})))


async def test_a_per_agent_process_is_started_again_offered_more_when_the_agent_declares_more():
    async with running_gateway({"fake": HANDSHAKE_PER_AGENT}) as gw:
        await gw.wait_ready()
        async with agent_client(gw.url, gw.tokens["agent-a"]) as plain:
            first = await told(plain)
            async with agent_client(gw.url, gw.tokens["agent-a"], sampling_callback=_sample) as sampling:
                richer = await told(sampling)
            again = await told(plain)
    assert first[1] == {}
    assert richer[1] == {"sampling": {}}
    assert richer[0] != first[0]
    assert again == richer


async def test_a_per_agent_process_reached_in_2026_is_told_each_requests_capabilities_and_never_restarted():
    async with running_gateway({"fake": PER_AGENT}) as gw:
        await gw.wait_ready()
        async with agent_client(gw.url, gw.tokens["agent-a"], mode="2026-07-28") as plain:
            first = await told(plain)
            async with agent_client(
                gw.url, gw.tokens["agent-a"], mode="2026-07-28", sampling_callback=_sample
            ) as sampling:
                richer = await told(sampling)
            again = await told(plain)
    assert (first[1], richer[1], again[1]) == ({}, {"sampling": {}}, {})
    assert first[0] == richer[0] == again[0]


async def test_a_shared_server_is_offered_everything_an_agent_might_answer():
    async with running_gateway({"fake": stdio_fake("--handshake-only")}) as gw:
        await gw.wait_ready()
        async with agent_client(gw.url, gw.tokens["agent-a"]) as client:
            offered = json.loads(text_of(await client.call_tool("fake__capabilities", {})))
    assert offered == {
        "elicitation": {"form": {}, "url": {}},
        "roots": {"listChanged": True},
        "sampling": {"context": {}, "tools": {}},
    }

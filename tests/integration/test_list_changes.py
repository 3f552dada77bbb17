"""Every connected agent hears, on its era's channel, when what it may see changes.

That is when a server comes or goes, and when the person changes the agent's policy. Handshake-era
agents get notifications/tools/list_changed on their session; 2026 agents get an event on their
subscriptions/listen stream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
import mcp_types as types
import pytest
from mcp import Client

from gateway_core.config.edit import put_server, remove_server, set_agent_rule
from gateway_core.policy import Effect
from tests.integration.harness import BOTH_ERAS, Mode, RunningGateway, agent_client, running_gateway, stdio_fake

pytestmark = pytest.mark.anyio

WAIT_S = 20.0


@asynccontextmanager
async def told_of_changes(
    gw: RunningGateway, mode: Mode
) -> AsyncIterator[tuple[Client, Callable[[], Awaitable[None]]]]:
    """A connected agent, and a function that waits for its next tools list change notice."""
    notices: list[object] = []
    arrived = anyio.Event()

    async def on_message(message: object) -> None:
        nonlocal arrived
        if isinstance(message, types.ToolListChangedNotification):
            notices.append(message)
            arrived.set()
            arrived = anyio.Event()

    async with agent_client(gw.url, gw.tokens["agent-a"], mode=mode, message_handler=on_message) as client:
        if mode == "legacy":
            consumed = 0

            async def next_notice() -> None:
                """The next notice not waited for yet (one may come while the agent is still listing)."""
                nonlocal consumed
                with anyio.fail_after(WAIT_S):
                    while len(notices) == consumed:
                        await arrived.wait()
                consumed += 1

            yield client, next_notice
        else:
            async with client.listen(tools_list_changed=True) as events:

                async def next_event() -> None:
                    with anyio.fail_after(WAIT_S):
                        event = await events.__anext__()
                    assert type(event).__name__ == "ToolsListChanged"

                yield client, next_event


async def tool_names(client: Client) -> set[str]:
    return {tool.name for tool in (await client.list_tools()).tools}


async def listed_after_notices(
    client: Client, next_notice: Callable[[], Awaitable[None]], wanted: Callable[[set[str]], bool]
) -> set[str]:
    """The tool names once a notice was followed by a listing that shows ``wanted`` (at most 5 notices)."""
    for _ in range(5):
        await next_notice()
        names = await tool_names(client)
        if wanted(names):
            return names
    raise AssertionError(f"no listing after 5 notices showed the change; last: {sorted(names)}")


@pytest.mark.parametrize("mode", BOTH_ERAS)
async def test_agents_are_told_when_a_server_comes_and_goes(mode: Mode):
    async with running_gateway({"fake": stdio_fake()}) as gw:
        await gw.wait_ready()
        async with told_of_changes(gw, mode) as (client, next_notice):
            put_server(gw.paths.config_file, "extra", stdio_fake())
            # The config change itself is announced, then the server's tools once it is ready.
            with_extra = await listed_after_notices(client, next_notice, lambda names: "extra__echo" in names)
            remove_server(gw.paths.config_file, "extra")
            without_extra = await listed_after_notices(client, next_notice, lambda names: "extra__echo" not in names)
    assert "fake__echo" in with_extra
    assert "fake__echo" in without_extra


@pytest.mark.parametrize("mode", BOTH_ERAS)
async def test_an_agent_is_told_when_the_person_changes_what_it_may_see(mode: Mode):
    async with running_gateway({"fake": stdio_fake()}) as gw:
        await gw.wait_ready()
        async with told_of_changes(gw, mode) as (client, next_notice):
            assert "fake__echo" in await tool_names(client)
            config = set_agent_rule(gw.paths.config_file, "agent-a", "fake/echo", Effect.DENY)
            gw.gateway.apply_config(config)
            await next_notice()
            hidden = await tool_names(client)
    assert "fake__echo" not in hidden
    assert "fake__add" in hidden

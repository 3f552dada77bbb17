"""Resource subscriptions, completions and log messages through the gateway, in both eras."""

from __future__ import annotations

import functools
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp.client.session import IncomingMessage
from mcp.shared.exceptions import MCPError

from tests.fakes.launch import serve_fake
from tests.integration.harness import BOTH_ERAS, Mode, agent_client, running_gateway, stdio_fake

pytestmark = pytest.mark.anyio

WAIT_S = 20.0
# The fake in each era: it takes subscriptions and log levels with resources/subscribe and
# logging/setLevel in the handshake era, on a subscriptions/listen stream and per request in 2026.
SERVER_ERAS = [
    pytest.param(("--handshake-only",), id="handshake-server"),
    pytest.param(("--modern-only",), id="2026-server"),
    pytest.param((), id="both-eras-server"),  # reached in 2026-07-28
]


async def subscribe(client: Any, uri: str) -> None:
    """resources/subscribe (the SDK's helper warns that 2026 removed it; handshake agents still use it)."""
    request = types.SubscribeRequest(params=types.SubscribeRequestParams(uri=uri))
    await client.session.send_request(request, types.EmptyResult)


async def unsubscribe(client: Any, uri: str) -> None:
    request = types.UnsubscribeRequest(params=types.UnsubscribeRequestParams(uri=uri))
    await client.session.send_request(request, types.EmptyResult)


async def set_level(client: Any, level: types.LoggingLevel) -> None:
    request = types.SetLevelRequest(params=types.SetLevelRequestParams(level=level))
    await client.session.send_request(request, types.EmptyResult)


class Inbox:
    """Every notification a client received, with a way to wait for one kind."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self._arrived = anyio.Event()

    async def handler(self, message: IncomingMessage) -> None:
        self.messages.append(message)
        self._arrived.set()
        self._arrived = anyio.Event()

    def of(self, kind: type) -> list[Any]:
        return [m for m in self.messages if isinstance(m, kind)]

    async def wait_for(self, kind: type) -> Any:
        with anyio.fail_after(WAIT_S):
            while not self.of(kind):
                await self._arrived.wait()
        return self.of(kind)[0]


@pytest.mark.parametrize("server_era", SERVER_ERAS)
async def test_a_resource_update_reaches_exactly_the_subscribed_handshake_agents(server_era: tuple[str, ...]):
    subscribed, other = Inbox(), Inbox()
    async with running_gateway({"fake": stdio_fake(*server_era)}, agents=("agent-a", "agent-b")) as gw:
        await gw.wait_ready()
        async with (
            agent_client(gw.url, gw.tokens["agent-a"], message_handler=subscribed.handler) as client_a,
            agent_client(gw.url, gw.tokens["agent-b"], message_handler=other.handler) as client_b,
        ):
            await subscribe(client_a, "fake://greeting")
            await client_b.call_tool("fake__touch", {"uri": "fake://greeting"})
            update = await subscribed.wait_for(types.ResourceUpdatedNotification)
            assert update.params.uri == "fake://greeting"
            # agent-b's own call has finished; had it been sent the update, it would be here by now.
            await client_b.call_tool("fake__echo", {"text": "sync"})
            assert other.of(types.ResourceUpdatedNotification) == []

            await unsubscribe(client_a, "fake://greeting")
            count = len(subscribed.of(types.ResourceUpdatedNotification))
            await client_b.call_tool("fake__touch", {"uri": "fake://greeting"})
            await client_a.call_tool("fake__echo", {"text": "sync"})
            assert len(subscribed.of(types.ResourceUpdatedNotification)) == count


async def test_a_subscription_to_a_resource_no_server_lists_yet_reaches_the_servers_that_take_subscriptions():
    inbox = Inbox()
    async with running_gateway({"fake": stdio_fake()}) as gw:
        await gw.wait_ready()
        async with agent_client(gw.url, gw.tokens["agent-a"], message_handler=inbox.handler) as client:
            await subscribe(client, "fake://created-later/1")
            await client.call_tool("fake__touch", {"uri": "fake://created-later/1"})
            update = await inbox.wait_for(types.ResourceUpdatedNotification)
    assert update.params.uri == "fake://created-later/1"


@pytest.mark.parametrize("server_era", SERVER_ERAS)
async def test_a_2026_agent_listening_to_a_resource_gets_its_updates(server_era: tuple[str, ...]):
    async with running_gateway({"fake": stdio_fake(*server_era)}) as gw:
        await gw.wait_ready()
        async with agent_client(gw.url, gw.tokens["agent-a"], mode="2026-07-28") as client:
            async with client.listen(resource_subscriptions=["fake://items/7"]) as events:
                await client.call_tool("fake__touch", {"uri": "fake://items/7"})
                with anyio.fail_after(WAIT_S):
                    event = await events.__anext__()
    assert getattr(event, "uri", None) == "fake://items/7"


async def test_subscribing_to_a_resource_of_a_denied_server_is_refused():
    policies = {"agent-a": {"default": "allow", "rules": [{"match": "fake/*", "effect": "deny"}]}}
    async with running_gateway({"fake": stdio_fake(), "other": stdio_fake()}, policies=policies) as gw:
        await gw.wait_ready()
        async with agent_client(gw.url, gw.tokens["agent-a"]) as client:
            with pytest.raises(MCPError, match="may not use server 'fake'"):
                await subscribe(client, "fake://items/1")


@pytest.mark.parametrize("mode", BOTH_ERAS)
async def test_completions_for_prompt_arguments_and_template_variables_come_from_the_owning_server(mode: Mode):
    async with running_gateway({"fake": stdio_fake()}) as gw:
        await gw.wait_ready()
        async with agent_client(gw.url, gw.tokens["agent-a"], mode=mode) as client:
            prompt = await client.complete(types.PromptReference(name="fake__greet"), {"name": "name", "value": "Al"})
            template = await client.complete(
                types.ResourceTemplateReference(uri="fake://items/{id}"), {"name": "id", "value": "1"}
            )
            with pytest.raises(MCPError, match="Unknown prompt: 'nope'"):
                await client.complete(types.PromptReference(name="nope"), {"name": "name", "value": ""})
    assert prompt.completion.values == ["Alice", "Alan"]
    assert template.completion.values == ["1", "12"]


@pytest.mark.parametrize("server_era", SERVER_ERAS)
async def test_log_messages_reach_handshake_agents_at_the_level_they_asked_for_tagged_with_the_server(
    server_era: tuple[str, ...],
):
    received: list[types.LoggingMessageNotificationParams] = []
    arrived = anyio.Event()

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        received.append(params)
        arrived.set()

    async with running_gateway({"fake": stdio_fake(*server_era)}) as gw:
        await gw.wait_ready()
        async with agent_client(gw.url, gw.tokens["agent-a"], logging_callback=on_log) as client:
            await set_level(client, "warning")
            await client.call_tool("fake__log", {"level": "info", "text": "too quiet"})
            await client.call_tool("fake__log", {"level": "error", "text": "loud enough"})
            with anyio.fail_after(WAIT_S):
                await arrived.wait()
    assert [(p.level, p.logger, p.data) for p in received] == [("error", "fake/fake-logger", "loud enough")]


@pytest.mark.parametrize("server_era", SERVER_ERAS)
async def test_a_2026_agent_that_opted_in_gets_the_log_messages_of_its_own_call(server_era: tuple[str, ...]):
    received: list[types.LoggingMessageNotificationParams] = []

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        received.append(params)

    async with running_gateway({"fake": stdio_fake(*server_era)}) as gw:
        await gw.wait_ready()
        async with agent_client(
            gw.url, gw.tokens["agent-a"], mode="2026-07-28", log_level="info", logging_callback=on_log
        ) as client:
            await client.call_tool("fake__log", {"level": "debug", "text": "below"})
            await client.call_tool("fake__log", {"level": "warning", "text": "during my call"})
    assert [(p.level, p.logger, p.data) for p in received] == [("warning", "fake/fake-logger", "during my call")]


async def test_a_2026_agent_gets_its_own_calls_log_messages_from_an_http_server_while_other_calls_run():
    # A Streamable HTTP server sends a call's log messages on that call's own stream: whose they are
    # is known even while another agent's call is in flight there.
    received: list[types.LoggingMessageNotificationParams] = []

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        received.append(params)

    started = anyio.Event()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        started.set()

    with serve_fake("http") as remote:
        async with running_gateway({"fake": {"url": remote.url}}, agents=("agent-a", "agent-b")) as gw:
            await gw.wait_ready()
            async with (
                agent_client(gw.url, gw.tokens["agent-a"], mode="2026-07-28", log_level="info") as busy,
                agent_client(
                    gw.url, gw.tokens["agent-b"], mode="2026-07-28", log_level="info", logging_callback=on_log
                ) as client,
                anyio.create_task_group() as tg,
            ):
                tg.start_soon(
                    functools.partial(busy.call_tool, "fake__slow", {"seconds": 120}, progress_callback=on_progress)
                )
                with anyio.fail_after(WAIT_S):
                    await started.wait()
                    await client.call_tool("fake__log", {"level": "warning", "text": "mine, with another call running"})
                tg.cancel_scope.cancel()
    assert [(p.level, p.data) for p in received] == [("warning", "mine, with another call running")]

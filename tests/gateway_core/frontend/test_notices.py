"""Resource updates and log messages from servers, delivered to exactly the agents that asked for them."""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import Client
from mcp.server.lowlevel import Server
from mcp.server.session import ServerSession

from gateway_core.downstream import DownstreamServer, ServerState
from gateway_core.frontend.callers import RoundTripCaller
from tests.gateway_core.frontend.conftest import (
    ALLOW_ALL,
    WAIT_S,
    FakeServers,
    Gateway,
    Inbox,
    agent,
    config_of,
    in_memory,
    running_gateway,
)

pytestmark = pytest.mark.anyio

GREETING = "fake://greeting"
ITEM = "fake://items/1"


@pytest.fixture
def fake_servers() -> FakeServers:
    """Handshake-era servers: these tests watch what the gateway asks them (resources/subscribe, logging/setLevel).

    How the same reaches a server in 2026-07-28 (its listen stream, a level per request) is in
    ``tests/integration/test_server_notices.py``, for servers of each era.
    """
    return FakeServers(handshake_era=True)


class Session:
    """A handshake-era agent's session as the gateway holds it, and what reached the agent."""

    def __init__(self, session: ServerSession, inbox: Inbox) -> None:
        self.session = session
        self.inbox = inbox

    def updates(self) -> list[str]:
        return [m.params.uri for m in self.inbox.of(types.ResourceUpdatedNotification)]

    def logs(self) -> list[tuple[str, str, Any]]:
        return [
            (m.params.level, m.params.logger, m.params.data) for m in self.inbox.of(types.LoggingMessageNotification)
        ]

    async def until_updates(self, count: int) -> None:
        await self.inbox.until(lambda: len(self.updates()) >= count)

    async def until_logs(self, count: int) -> None:
        await self.inbox.until(lambda: len(self.logs()) >= count)


@asynccontextmanager
async def handshake_session() -> AsyncIterator[Session]:
    """A handshake-era agent connected in memory: the gateway's session with it, and the agent's inbox."""
    sessions: list[ServerSession] = []

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        sessions.append(ctx.session)
        return types.ListToolsResult(tools=[])

    inbox = Inbox()
    gateway_end = Server("gateway-end", on_list_tools=list_tools)
    async with Client(in_memory(gateway_end), mode="legacy", message_handler=inbox.handler) as client:
        await client.list_tools()
        yield Session(sessions[0], inbox)


async def touch(server: DownstreamServer, uri: str) -> None:
    """Make the fake server announce that ``uri`` changed."""
    await server.session.call_tool("touch", {"uri": uri})


async def log(server: DownstreamServer, level: str, text: str) -> None:
    """Make the fake server send a log message."""
    await server.session.call_tool("log", {"level": level, "text": text})


async def no_record(*args: Any) -> None:
    return None


def fake_of(gw: Gateway) -> DownstreamServer:
    return gw.pool.servers["fake"]


async def test_a_resource_update_reaches_only_the_sessions_subscribed_to_that_uri(fake_servers: FakeServers):
    async with (
        running_gateway(fake_servers, {"fake": {}}, {"agent-a": ALLOW_ALL, "agent-b": ALLOW_ALL}) as gw,
        handshake_session() as a,
        handshake_session() as b,
    ):
        notices, fake = gw.front.notices, fake_of(gw)
        await notices.subscribe(notices.session("s-a", "agent-a", a.session), "fake", GREETING)
        await notices.subscribe(notices.session("s-b", "agent-b", b.session), "fake", ITEM)

        # Each wait proves that every earlier update had reached (or skipped) both agents.
        await touch(fake, GREETING)
        await a.until_updates(1)
        await touch(fake, ITEM)
        await b.until_updates(1)
        await touch(fake, GREETING)
        await a.until_updates(2)
        await touch(fake, ITEM)
        await b.until_updates(2)

    assert a.updates() == [GREETING, GREETING]
    assert b.updates() == [ITEM, ITEM]


async def test_the_server_is_subscribed_once_however_many_agents_subscribe_and_unsubscribed_after_the_last(
    fake_servers: FakeServers,
):
    async with (
        running_gateway(fake_servers, {"fake": {}}, {"agent-a": ALLOW_ALL, "agent-b": ALLOW_ALL}) as gw,
        handshake_session() as a,
        handshake_session() as b,
    ):
        notices = gw.front.notices
        receiver_a = notices.session("s-a", "agent-a", a.session)
        receiver_b = notices.session("s-b", "agent-b", b.session)
        await notices.subscribe(receiver_a, "fake", GREETING)
        await notices.subscribe(receiver_b, "fake", GREETING)
        await notices.subscribe(receiver_b, "fake", GREETING)  # again: already subscribed
        after_subscribing = list(fake_servers.asked)
        await notices.unsubscribe(receiver_a, "fake", GREETING)
        await notices.unsubscribe(receiver_a, "fake", GREETING)  # again: no longer subscribed
        after_the_first_left = list(fake_servers.asked)
        await notices.unsubscribe(receiver_b, "fake", GREETING)

    assert after_subscribing == [("fake", "resources/subscribe", GREETING)]
    assert after_the_first_left == after_subscribing
    assert fake_servers.asked == [*after_subscribing, ("fake", "resources/unsubscribe", GREETING)]


async def test_a_session_that_ends_gives_up_its_subscriptions_and_gets_no_more_updates(fake_servers: FakeServers):
    async with (
        running_gateway(fake_servers, {"fake": {}}, {"agent-a": ALLOW_ALL, "agent-b": ALLOW_ALL}) as gw,
        handshake_session() as a,
        handshake_session() as b,
    ):
        notices, fake = gw.front.notices, fake_of(gw)
        receiver_a = notices.session("s-a", "agent-a", a.session)
        await notices.subscribe(receiver_a, "fake", GREETING)
        await notices.subscribe(receiver_a, "fake", ITEM)
        await notices.subscribe(notices.session("s-b", "agent-b", b.session), "fake", GREETING)

        notices.session_ended("s-a")
        await fake_servers.until_asked(("fake", "resources/unsubscribe", ITEM))
        await touch(fake, GREETING)
        await b.until_updates(1)
        # The same agent in a new session: its first update proves the ended session got none.
        await notices.subscribe(notices.session("s-a2", "agent-a", a.session), "fake", ITEM)
        await touch(fake, ITEM)
        await a.until_updates(1)

    assert ("fake", "resources/unsubscribe", GREETING) not in fake_servers.asked  # agent-b still wants it
    assert a.updates() == [ITEM]


async def test_an_agent_whose_policy_now_denies_the_server_gets_none_of_its_updates(fake_servers: FakeServers):
    async with (
        running_gateway(fake_servers, {"fake": {}}, {"agent-a": ALLOW_ALL, "agent-b": ALLOW_ALL}) as gw,
        handshake_session() as a,
        handshake_session() as b,
    ):
        notices, fake = gw.front.notices, fake_of(gw)
        await notices.subscribe(notices.session("s-a", "agent-a", a.session), "fake", GREETING)
        await notices.subscribe(notices.session("s-b", "agent-b", b.session), "fake", GREETING)
        allowed = gw.runtime.now.config
        denied = config_of({"fake": {}}, {"agent-a": {"default": "deny"}, "agent-b": ALLOW_ALL})

        gw.runtime.swap(lambda runtime: runtime.with_config(denied))
        await touch(fake, GREETING)
        await b.until_updates(1)
        gw.runtime.swap(lambda runtime: runtime.with_config(allowed))
        await touch(fake, GREETING)
        await b.until_updates(2)
        await a.until_updates(1)

    assert a.updates() == [GREETING]  # only the update sent while it was allowed


async def test_log_messages_reach_each_session_at_its_level_and_above_named_after_the_server(
    fake_servers: FakeServers,
):
    async with (
        running_gateway(fake_servers, {"fake": {}}, {"agent-a": ALLOW_ALL, "agent-b": ALLOW_ALL}) as gw,
        handshake_session() as warnings,
        handshake_session() as everything,
        handshake_session() as silent,
    ):
        notices, fake = gw.front.notices, fake_of(gw)
        await notices.set_level(notices.session("s-a", "agent-a", warnings.session), "warning")
        await notices.set_level(notices.session("s-b", "agent-b", everything.session), "debug")
        await notices.subscribe(notices.session("s-c", "agent-b", silent.session), "fake", GREETING)

        await log(fake, "info", "starting")
        await log(fake, "error", "disk full")
        await everything.until_logs(2)
        await warnings.until_logs(1)
        await touch(fake, GREETING)  # after the messages: proves the session without a level got none
        await silent.until_updates(1)

    assert everything.logs() == [("info", "fake/fake-logger", "starting"), ("error", "fake/fake-logger", "disk full")]
    assert warnings.logs() == [("error", "fake/fake-logger", "disk full")]
    assert silent.logs() == []


async def test_servers_are_asked_once_for_the_most_verbose_level_any_agent_wants(fake_servers: FakeServers):
    fake_servers.refuse_level.add("refuses")
    async with (
        running_gateway(fake_servers, {"fake": {}, "refuses": {}}, {"agent-a": ALLOW_ALL}) as gw,
        handshake_session() as a,
    ):
        notices = gw.front.notices
        receiver = notices.session("s-a", "agent-a", a.session)
        for level in ("warning", "warning", "debug", "error"):
            await notices.set_level(receiver, level)

    asked_fake = [asked for server, method, asked in fake_servers.asked if server == "fake"]
    asked_refusing = [asked for server, method, asked in fake_servers.asked if server == "refuses"]
    assert asked_fake == ["warning", "debug"]
    assert asked_refusing == ["warning", "debug"]  # a refusal stops neither this server nor the others


async def test_a_restarted_server_is_subscribed_and_told_the_log_level_again(fake_servers: FakeServers):
    async with (
        running_gateway(fake_servers, {"fake": {}}, {"agent-a": ALLOW_ALL}) as gw,
        handshake_session() as a,
    ):
        notices = gw.front.notices
        receiver = notices.session("s-a", "agent-a", a.session)
        await notices.subscribe(receiver, "fake", GREETING)
        await notices.set_level(receiver, "info")
        before = fake_servers.latest["fake"]

        fake_servers.asked.clear()
        gw.pool.restart("fake")
        await gw.until_routed(
            lambda: fake_of(gw).status.state is ServerState.READY and fake_servers.latest["fake"] is not before
        )
        await fake_servers.until_asked(("fake", "resources/subscribe", GREETING), ("fake", "logging/setLevel", "info"))
        await touch(fake_of(gw), GREETING)
        await a.until_updates(1)

    assert a.updates() == [GREETING]


async def test_a_2026_listen_stream_subscribes_its_resources_at_the_server_while_it_lasts(fake_servers: FakeServers):
    async with running_gateway(fake_servers, {"fake": {}}, {"agent-a": ALLOW_ALL}) as gw:
        async with agent(gw.front.server, "agent-a", mode="2026-07-28") as client:
            async with client.listen(resource_subscriptions=[ITEM]) as events:
                await fake_servers.until_asked(("fake", "resources/subscribe", ITEM))
                await touch(fake_of(gw), ITEM)
                with anyio.fail_after(WAIT_S):
                    event = await events.__anext__()
            await fake_servers.until_asked(("fake", "resources/unsubscribe", ITEM))

    assert getattr(event, "uri", None) == ITEM


async def test_a_2026_call_gets_the_log_messages_sent_on_its_own_stream_even_while_other_calls_run(
    fake_servers: FakeServers,
):
    logs: list[Any] = []

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        logs.append((params.level, params.logger, params.data))

    fake_servers.handshake_era = False  # reached in 2026-07-28: each call's messages come with its own request
    async with running_gateway(fake_servers, {"fake": {}}, {"agent-a": ALLOW_ALL}) as gw:
        async with agent(gw.front.server, "agent-a", mode="2026-07-28", log_level="info", logging_callback=on_log) as c:
            fake = fake_of(gw)
            await c.call_tool("fake__log", {"level": "warning", "text": "mine"})
            mine = list(logs)
            async with another_call_in_flight(fake):
                # The in-memory transport, like Streamable HTTP, hands a call's messages over in its context.
                await c.call_tool("fake__log", {"level": "warning", "text": "mine, beside another call"})

    assert mine == [("warning", "fake/fake-logger", "mine")]  # sent before the call's result
    assert logs == [
        ("warning", "fake/fake-logger", "mine"),
        ("warning", "fake/fake-logger", "mine, beside another call"),
    ]


async def test_a_log_message_from_no_calls_stream_goes_to_a_2026_call_only_while_it_is_the_only_one_in_flight(
    fake_servers: FakeServers,
):
    # As on stdio: a message handed over outside any call's context.
    logs: list[Any] = []

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        logs.append(params.data)

    def from_nowhere(gw: Any, text: str) -> None:
        params = types.LoggingMessageNotificationParams(level="warning", logger="fake-logger", data=text)
        notification = types.LoggingMessageNotification(params=params)
        contextvars.Context().run(gw.front.notices.on_notice, "fake", notification)

    async with running_gateway(fake_servers, {"fake": {}}, {"agent-a": ALLOW_ALL}) as gw:
        async with agent(gw.front.server, "agent-a", mode="2026-07-28", log_level="info", logging_callback=on_log) as c:
            fake = fake_of(gw)
            async with another_call_in_flight(fake, client=c):
                from_nowhere(gw, "the only call")
                async with another_call_in_flight(fake):
                    from_nowhere(gw, "whose?")

    assert logs == ["the only call"]


@asynccontextmanager
async def another_call_in_flight(fake: DownstreamServer, client: Client | None = None) -> AsyncIterator[None]:
    """A slow call in flight at ``fake`` for the body: ``client``'s own, or another agent's."""
    started = anyio.Event()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        started.set()

    async def call() -> None:
        arguments = {"seconds": 3600, "steps": 1}
        if client is not None:
            await client.call_tool("fake__slow", arguments, progress_callback=on_progress)
        else:
            caller = RoundTripCaller("agent-b", None, no_record)
            await fake.session.call_tool("slow", arguments, progress=on_progress, caller=caller)

    async with anyio.create_task_group() as tg:
        tg.start_soon(call)
        with anyio.fail_after(WAIT_S):
            await started.wait()
        yield
        tg.cancel_scope.cancel()


async def test_a_2026_listener_whose_policy_now_denies_the_server_gets_none_of_its_updates(
    fake_servers: FakeServers,
):
    async with running_gateway(fake_servers, {"fake": {}}, {"agent-a": ALLOW_ALL}) as gw:
        allowed = gw.runtime.now.config
        denied = config_of({"fake": {}}, {"agent-a": {"default": "deny"}})
        async with agent(gw.front.server, "agent-a", mode="2026-07-28") as client:
            async with client.listen(resource_subscriptions=[GREETING, ITEM]) as events:
                await fake_servers.until_asked(
                    ("fake", "resources/subscribe", GREETING), ("fake", "resources/subscribe", ITEM)
                )
                gw.runtime.swap(lambda runtime: runtime.with_config(denied))
                await touch(fake_of(gw), GREETING)
                gw.runtime.swap(lambda runtime: runtime.with_config(allowed))
                await touch(fake_of(gw), ITEM)
                with anyio.fail_after(WAIT_S):
                    first = await events.__anext__()

    assert getattr(first, "uri", None) == ITEM  # the update sent while the server was denied never came


async def test_a_2026_listener_gets_updates_of_its_uri_only_from_the_server_it_subscribed_at(
    fake_servers: FakeServers,
):
    async with running_gateway(fake_servers, {"fake": {}, "other": {}}, {"agent-a": ALLOW_ALL}) as gw:
        async with agent(gw.front.server, "agent-a", mode="2026-07-28") as client:
            async with client.listen(resource_subscriptions=[GREETING, ITEM]) as events:
                # Both fakes list the same URIs; they are routed to "fake", where the agent subscribed.
                await fake_servers.until_asked(
                    ("fake", "resources/subscribe", GREETING), ("fake", "resources/subscribe", ITEM)
                )
                # "other" announces a change nobody subscribed to there (servers may broadcast them).
                unsolicited = types.ResourceUpdatedNotification(
                    params=types.ResourceUpdatedNotificationParams(uri=GREETING)
                )
                gw.front.notices.on_notice("other", unsolicited)
                await touch(gw.pool.servers["fake"], ITEM)
                with anyio.fail_after(WAIT_S):
                    first = await events.__anext__()
                subscribed_at = {server for server, method, _ in fake_servers.asked if method == "resources/subscribe"}

    assert subscribed_at == {"fake"}
    assert getattr(first, "uri", None) == ITEM  # the update from a server it never subscribed at never came

"""The hot path's raw lane over Streamable HTTP: the call POSTed from the calling task, answered as the SDK's way.

Against the SDK-built fake server served over HTTP on 127.0.0.1 (a real subprocess), in both eras:
the lane must answer, fail, time out, cancel, resume and end as the SDK's dispatcher does, and leave
the server's own questions to the SDK's way (to the calling agent).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError

from gateway_core.config import ServerConfig
from gateway_core.downstream import DownstreamPool, DownstreamServer, ServerState
from gateway_core.downstream.http_lane import HttpLane
from gateway_core.errors import DownstreamTimeoutError, ServerUnavailableError
from tests.fakes.launch import serve_fake
from tests.gateway_core.downstream.conftest import WAIT_S, Changes, running
from tests.gateway_core.downstream.test_raw_lane import Agent, as_agent_gets, text_of

pytestmark = pytest.mark.anyio

ERAS = pytest.mark.parametrize("era", [("--handshake-only",), ()], ids=["handshake era", "2026-07-28"])


@asynccontextmanager
async def ready_http(*extra: str, timeout_s: float = 60.0) -> AsyncIterator[tuple[DownstreamServer, Changes]]:
    """The fake served over Streamable HTTP, READY in a pool of its own."""
    with serve_fake("http", *extra) as fake:
        changes = Changes()
        config = ServerConfig(url=fake.url, type="http", timeout_s=timeout_s)
        pool = DownstreamPool({"remote": config}, resolve=dict, on_change=changes)
        async with running(pool):
            server = pool.servers["remote"]
            await changes.until(lambda: server.status.state is ServerState.READY)
            yield server, changes


def dispatcher_calls(server: DownstreamServer) -> list[str]:
    """The ``tools/call`` requests the session's SDK dispatcher sends from now on (the lane's never pass it)."""
    live = server.session.live
    assert live is not None
    sent: list[str] = []
    inner = live.dispatcher.send_raw_request

    async def send_raw_request(method: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        if method == "tools/call":
            sent.append(method)
        return await inner(method, *args, **kwargs)

    live.dispatcher.send_raw_request = send_raw_request  # type: ignore[method-assign]
    return sent


@ERAS
async def test_a_hot_call_to_an_http_server_goes_by_the_lane_and_answers_as_the_typed_way(era: tuple[str, ...]):
    async with ready_http(*era) as (server, _):
        live = server.session.live
        assert live is not None and isinstance(live.connection.raw, HttpLane)
        assert live.modern is (not era)
        sent = dispatcher_calls(server)
        with anyio.fail_after(WAIT_S):
            raw = await server.session.call_tool_passing_through("add", {"a": 1, "b": 2}, caller=Agent(), meta=None)
            meta = await server.session.call_tool_passing_through("meta", {}, caller=Agent(), meta={"k": [1, "ü"]})
            refused = await server.session.call_tool_passing_through("fail", None, caller=Agent(), meta=None)
            with pytest.raises(MCPError) as raised:
                await server.session.call_tool_passing_through("no_such_tool", {}, caller=Agent(), meta=None)
            lane_sent = list(sent)
            typed = await server.session.call_tool("add", {"a": 1, "b": 2}, caller=Agent())
            typed_meta = await server.session.call_tool("meta", {}, caller=Agent(), meta={"k": [1, "ü"]})

    assert lane_sent == []
    assert sent == ["tools/call", "tools/call"]
    assert raw == as_agent_gets(typed)
    assert isinstance(meta, dict) and meta["structuredContent"] == typed_meta.structured_content
    assert refused == {"content": [{"type": "text", "text": "it failed"}], "isError": True}
    assert (raised.value.code, raised.value.error.message) == (types.INVALID_PARAMS, "unknown tool: no_such_tool")


@ERAS
async def test_a_servers_questions_during_an_http_lane_call_reach_the_calling_agent(era: tuple[str, ...]):
    async with ready_http(*era) as (server, _):
        with anyio.fail_after(WAIT_S):
            sampled = await server.session.call_tool_passing_through(
                "sample", {"prompt": "p"}, caller=Agent(), meta=None
            )
            roots = await server.session.call_tool_passing_through("roots", {}, caller=Agent(), meta=None)

    assert text_of(sampled) == "sampled: a summary"
    assert "file:///work/project" in text_of(roots)


async def test_a_ping_the_server_sends_on_an_http_lane_calls_stream_is_answered():
    async with ready_http("--handshake-only") as (server, _):
        with anyio.fail_after(WAIT_S):
            answered = await server.session.call_tool_passing_through("ping_client", {}, caller=Agent(), meta=None)

    assert text_of(answered) == "the client answered"


@ERAS
async def test_an_http_lane_call_past_the_timeout_fails_as_a_timeout_and_the_next_call_is_served(
    era: tuple[str, ...],
):
    async with ready_http(*era, timeout_s=0.5) as (server, _):
        with anyio.fail_after(WAIT_S):
            with pytest.raises(DownstreamTimeoutError) as raised:
                await server.session.call_tool_passing_through("slow", {"seconds": 60}, caller=Agent(), meta=None)
            after = await server.session.call_tool_passing_through("add", {"a": 1, "b": 1}, caller=Agent(), meta=None)

    assert str(raised.value) == "server 'remote' did not answer tools/call 'slow' within 0.5 s"
    assert text_of(after) == "2"


@ERAS
async def test_a_cancelled_http_lane_call_ends_at_once_and_the_server_stays_ready(era: tuple[str, ...]):
    async with ready_http(*era) as (server, _):
        with anyio.fail_after(WAIT_S):
            with anyio.move_on_after(0.3):
                await server.session.call_tool_passing_through("slow", {"seconds": 60}, caller=Agent(), meta=None)
            after = await server.session.call_tool_passing_through("add", {"a": 2, "b": 2}, caller=Agent(), meta=None)
            status = server.status

    assert text_of(after) == "4"
    assert (status.state, status.restarts) == (ServerState.READY, 0)


async def test_an_http_server_dying_during_a_lane_call_fails_it_and_the_server_is_retried():
    async with ready_http() as (server, changes):
        with anyio.fail_after(WAIT_S), pytest.raises(ServerUnavailableError) as raised:
            await server.session.call_tool_passing_through("crash", {}, caller=Agent(), meta=None)

        assert str(raised.value).startswith("server 'remote' stopped answering during tools/call 'crash': ")
        await changes.until(lambda: server.status.restarts >= 1 and server.status.state is ServerState.FAILED)
        assert server.status.reason is not None and server.status.reason.startswith("cannot reach ")


async def test_an_http_lane_call_whose_stream_the_server_closes_mid_call_resumes():
    # SEP-1699: the SDK's own reconnection (Last-Event-ID) brings the rest of the call to the lane.
    async with ready_http("--resumable") as (server, _):
        with anyio.fail_after(WAIT_S):
            result = await server.session.call_tool_passing_through(
                "drop_stream", {"text": "still here"}, caller=Agent(), meta=None
            )
            status = server.status

    assert text_of(result) == "resumed: still here"
    assert (status.state, status.restarts) == (ServerState.READY, 0)


async def test_an_expired_http_session_fails_a_lane_call_as_it_fails_the_typed_way():
    # A handshake-era server keeps sessions (a 2026-07-28 one has none to expire).
    async with ready_http("--handshake-only") as (server, _):
        live = server.session.live
        assert live is not None and isinstance(live.connection.raw, HttpLane)
        live.connection.raw._transport.session_id = "expired"  # the server answers 404 to an unknown session
        with anyio.fail_after(WAIT_S):
            with pytest.raises(MCPError) as by_lane:
                await server.session.call_tool_passing_through("add", {"a": 1, "b": 1}, caller=Agent(), meta=None)
            with pytest.raises(MCPError) as typed:
                await server.session.call_tool("add", {"a": 1, "b": 1}, caller=Agent())

    assert by_lane.value.error == typed.value.error
    assert (by_lane.value.code, by_lane.value.error.message) == (types.INVALID_REQUEST, "Session not found")


async def test_an_http_lane_call_the_server_refuses_with_an_error_status_fails_as_the_typed_way():
    # The fake keeps the SDK's own 4 MiB limit on request bodies.
    async with ready_http() as (server, _):
        big = {"data": "y" * (5 * 1024 * 1024)}
        with anyio.fail_after(WAIT_S):
            with pytest.raises(MCPError) as by_lane:
                await server.session.call_tool_passing_through("measure", big, caller=Agent(), meta=None)
            with pytest.raises(MCPError) as typed:
                await server.session.call_tool("measure", big, caller=Agent())
            after = await server.session.call_tool_passing_through("add", {"a": 3, "b": 3}, caller=Agent(), meta=None)

    assert by_lane.value.error == typed.value.error
    assert text_of(after) == "6"

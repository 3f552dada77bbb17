"""A client whose SSE stream drops mid-call resumes it (SEP-1699), directly and through the gateway alike.

The agent side is driven by hand over HTTP, as a client does it: a handshake-era session, a call whose
POST stream the client drops after the priming event, then GETs with ``Last-Event-ID`` until the result
comes. The server side uses the SDK's own client, whose stream the server closes mid-call.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from gateway_core.audit import RecordKind
from gateway_core.downstream.base import ServerState
from gateway_core.events import CallsRecorded
from gateway_core.frontend.replay import RETRY_INTERVAL_MS
from tests.fakes.launch import serve_fake
from tests.integration.harness import agent_client, running_gateway, stdio_fake

pytestmark = pytest.mark.anyio

VERSION = "2025-11-25"
CALL_ID = 7
SLOW_CALL = {"name": "slow", "arguments": {"seconds": 0.2, "steps": 2}, "_meta": {"progressToken": "p"}}


@dataclass
class Resumed:
    """What a client saw of a call whose stream it dropped after the priming event."""

    priming: httpx2.ServerSentEvent
    messages: list[dict[str, Any]]


@dataclass
class RawSession:
    """A handshake-era session a test drives by hand."""

    http: httpx2.AsyncClient
    url: str
    session_id: str

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Mcp-Session-Id": self.session_id, "MCP-Protocol-Version": VERSION, **extra}

    async def call_and_drop(self, params: dict[str, Any]) -> httpx2.ServerSentEvent:
        """POST a tools/call and drop its stream right after the first event; that event."""
        body = {"jsonrpc": "2.0", "id": CALL_ID, "method": "tools/call", "params": params}
        headers = self.headers(Accept="application/json, text/event-stream")
        async with self.http.stream("POST", self.url, json=body, headers=headers) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            async for event in httpx2.EventSource(response):
                return event
        raise AssertionError("the call's stream ended without any event")

    async def resume(self, last_event_id: str) -> list[dict[str, Any]]:
        """GET with ``Last-Event-ID`` until the call's answer comes, as a client does; every message.

        A resumed stream ends at once, empty, while the gateway has not yet seen the old one go; the
        client then comes back, as the SDK's client does. The caller bounds the whole.
        """
        messages: list[dict[str, Any]] = []
        while True:
            headers = self.headers(Accept="text/event-stream", **{"Last-Event-ID": last_event_id})
            async with self.http.stream("GET", self.url, headers=headers) as response:
                assert response.status_code == 200, (await response.aread()).decode()
                async for event in httpx2.EventSource(response):
                    last_event_id = event.id or last_event_id
                    if not event.data:
                        continue
                    messages.append(json.loads(event.data))
                    if messages[-1].get("id") == CALL_ID:
                        return messages

    def standalone(self, last_event_id: str | None = None) -> dict[str, str]:
        resume = {"Last-Event-ID": last_event_id} if last_event_id else {}
        return self.headers(Accept="text/event-stream", **resume)

    async def call(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """A tools/call answered in full; its response."""
        body = {"jsonrpc": "2.0", "id": name, "method": "tools/call", "params": {"name": name, "arguments": arguments}}
        headers = self.headers(Accept="application/json, text/event-stream")
        async with self.http.stream("POST", self.url, json=body, headers=headers) as response:
            return await _first_message(response)

    async def next_standalone_event(self, last_event_id: str) -> httpx2.ServerSentEvent:
        """Reopen the standalone stream after ``last_event_id`` until a message comes, as ``resume`` does; it."""
        while True:
            async with self.http.stream("GET", self.url, headers=self.standalone(last_event_id)) as response:
                assert response.status_code == 200, (await response.aread()).decode()
                async for event in httpx2.EventSource(response):
                    last_event_id = event.id or last_event_id
                    if event.data:  # a resumed stream may start with a priming event
                        return event

    async def get_status(self, last_event_id: str, session_id: str | None = None) -> tuple[int, str]:
        headers = self.headers(Accept="text/event-stream", **{"Last-Event-ID": last_event_id})
        if session_id is not None:
            headers["Mcp-Session-Id"] = session_id
        response = await self.http.get(self.url, headers=headers)
        return response.status_code, response.text


async def _first_message(response: httpx2.Response) -> dict[str, Any]:
    if response.headers["content-type"].startswith("application/json"):
        return dict(json.loads(await response.aread()))
    async for event in httpx2.EventSource(response):
        if event.data:
            return dict(json.loads(event.data))
    raise AssertionError("no message in the response")


@asynccontextmanager
async def raw_session(url: str, token: str | None = None) -> AsyncIterator[RawSession]:
    """Initialize a handshake-era session at ``url`` (as the agent holding ``token``)."""
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient(headers=auth, timeout=httpx2.Timeout(10, read=30)) as http:
        hello = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {"protocolVersion": VERSION, "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}},
        }
        headers = {"Accept": "application/json, text/event-stream"}
        async with http.stream("POST", url, json=hello, headers=headers) as response:
            assert response.status_code == 200
            session = RawSession(http, url, response.headers["mcp-session-id"])
            assert (await _first_message(response))["result"]["protocolVersion"] == VERSION
        initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        accepted = await http.post(
            url, json=initialized, headers=session.headers(Accept="application/json, text/event-stream")
        )
        assert accepted.status_code == 202
        yield session


async def drop_and_resume(session: RawSession, params: dict[str, Any]) -> Resumed:
    with anyio.fail_after(20):
        priming = await session.call_and_drop(params)
        assert priming.id, "the stream's first event has no id to resume from"
        return Resumed(priming, await session.resume(priming.id))


def progress_of(resumed: Resumed) -> list[str]:
    return [m["params"]["message"] for m in resumed.messages if m.get("method") == "notifications/progress"]


async def test_a_client_that_drops_its_stream_mid_call_resumes_it_and_gets_the_result_as_directly() -> None:
    with serve_fake("http", "--resumable") as fake:
        async with raw_session(fake.url) as session:
            directly = await drop_and_resume(session, SLOW_CALL)
    async with running_gateway({"fake": stdio_fake(prefix="")}) as gw:
        await gw.wait_ready()
        async with raw_session(gw.url, gw.tokens["agent-a"]) as session:
            through = await drop_and_resume(session, SLOW_CALL)

    # A priming event (an id, no data) comes first, with how soon to reconnect.
    assert (through.priming.data, through.priming.retry) == ("", RETRY_INTERVAL_MS)
    assert through.messages[-1] == directly.messages[-1]
    assert through.messages[-1]["result"]["content"] == [{"type": "text", "text": "done"}]
    # A progress step sent just as the client reconnects can miss both the replay and the live stream (the
    # SDK registers the resumed stream a moment after replaying it), directly as through the gateway.
    assert progress_of(through) in (["step 1", "step 2"], ["step 2"], ["step 1"], [])
    assert progress_of(directly) in (["step 1", "step 2"], ["step 2"], ["step 1"], [])


async def test_one_agent_cannot_resume_another_agents_stream() -> None:
    async with running_gateway({"fake": stdio_fake(prefix="")}, agents=("agent-a", "agent-b")) as gw:
        await gw.wait_ready()
        async with (
            raw_session(gw.url, gw.tokens["agent-a"]) as a,
            raw_session(gw.url, gw.tokens["agent-b"]) as b,
        ):
            with anyio.fail_after(20):
                priming = await a.call_and_drop(SLOW_CALL)
                in_own_session = await b.get_status(priming.id)
                in_a_session = await b.get_status(priming.id, session_id=a.session_id)
                unknown_in_a_session = await b.get_status("no-such-event", session_id=a.session_id)
                own = await a.resume(priming.id)

    assert in_own_session[0] == 404
    assert "Nothing to resume" in in_own_session[1]
    # In A's session, B is told only what any stranger is, whether or not the event exists.
    not_found = (404, '{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Session not found"}}')
    assert in_a_session == unknown_in_a_session == not_found
    assert own[-1]["result"]["content"] == [{"type": "text", "text": "done"}]


async def test_resuming_after_an_event_the_session_no_longer_has_is_refused_rather_than_left_empty() -> None:
    async with running_gateway({"fake": stdio_fake(prefix="")}) as gw:
        await gw.wait_ready()
        async with raw_session(gw.url, gw.tokens["agent-a"]) as session:
            with anyio.fail_after(10):
                status, body = await session.get_status("no-such-event")

    assert status == 404
    assert json.loads(body)["error"]["message"].startswith("Nothing to resume: this session no longer has the events")


async def test_resuming_the_stream_of_a_cancelled_call_is_refused_rather_than_held_open() -> None:
    # The SDK's client reconnects to a stream that ended without a result, even for a call it cancelled.
    # Asking for progress gives the call a stream (a call that cannot stream is answered with plain JSON).
    long_call = {"name": "slow", "arguments": {"seconds": 600, "steps": 1}, "_meta": {"progressToken": "p"}}
    async with running_gateway({"fake": stdio_fake(prefix="")}) as gw:
        await gw.wait_ready()
        ended = anyio.Event()

        def on_recorded(event: CallsRecorded) -> None:
            if any(r.kind is RecordKind.OUTCOME and r.tool == "slow" for r in event.records):
                ended.set()

        gw.gateway.events.on(CallsRecorded, on_recorded)
        async with raw_session(gw.url, gw.tokens["agent-a"]) as session:
            with anyio.fail_after(20):
                priming = await session.call_and_drop(long_call)
                # A cancel that overtakes the call (not yet in flight) is ignored, as by any server: wait.
                await gw.stderr.wait_for("fake", "slow started")
                cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": CALL_ID}}
                headers = session.headers(Accept="application/json, text/event-stream")
                assert (await session.http.post(session.url, json=cancel, headers=headers)).status_code == 202
                await ended.wait()
                status, body = await session.get_status(priming.id)

    assert status == 404
    assert "ended without a result" in json.loads(body)["error"]["message"]


async def test_a_standalone_stream_that_drops_resumes_with_the_notifications_sent_meanwhile() -> None:
    async with running_gateway({"fake": stdio_fake(prefix="")}) as gw:
        await gw.wait_ready()
        async with raw_session(gw.url, gw.tokens["agent-a"]) as session:
            with anyio.fail_after(20):
                async with session.http.stream("GET", session.url, headers=session.standalone()) as stream:
                    events = httpx2.EventSource(stream).__aiter__()
                    await session.call("add_tool", {"name": "first"})
                    seen = await anext(events)
                missed = await session.call("add_tool", {"name": "second"})
                again = await session.next_standalone_event(seen.id)

    assert json.loads(seen.data)["method"] == "notifications/tools/list_changed"
    assert missed["result"]["content"] == [{"type": "text", "text": "added second"}]
    assert json.loads(again.data)["method"] == "notifications/tools/list_changed"
    assert int(again.id) > int(seen.id)


async def _drop_stream_call(client: Client) -> tuple[Any, list[str | None]]:
    progress: list[str | None] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append(message)

    with anyio.fail_after(20):
        result = await client.call_tool("drop_stream", {"text": "resumed"}, progress_callback=on_progress)
    return result.model_dump(by_alias=True, mode="json", exclude_none=True), progress


async def test_a_call_whose_server_closes_its_stream_mid_call_gets_the_same_result_through_the_gateway() -> None:
    with serve_fake("http", "--resumable") as fake:
        async with (
            httpx2.AsyncClient(timeout=httpx2.Timeout(10, read=30)) as http,
            Client(streamable_http_client(fake.url, http_client=http), mode="legacy", cache=None) as client,
        ):
            directly = await _drop_stream_call(client)
        async with running_gateway({"fake": {"url": fake.url, "type": "http", "prefix": ""}}) as gw:
            await gw.wait_ready()
            async with agent_client(gw.url, gw.tokens["agent-a"]) as client:
                through = await _drop_stream_call(client)
            status = gw.status("fake")

    assert through == directly
    assert through[0]["content"] == [types.TextContent(text="resumed: resumed").model_dump(exclude_none=True)]
    assert through[1] == ["before the stream closed", "after the stream closed"]
    assert (status.state, status.restarts) == (ServerState.READY, 0)

"""The hot lane: a plain call goes straight to its session's transport, and is answered as the long way answers it.

Driven by hand over HTTP, as a client does, so status codes, headers and bodies can be compared byte for byte.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import anyio
import httpx2
import pytest

from gateway_core.frontend.json_answers import JSON_WINDOW_S
from gateway_core.gateway import HOT_PATH_ENV
from tests.integration.harness import RunningGateway, running_gateway, stdio_fake
from tests.integration.test_json_answers import ACCEPT, ECHO, VERSION, agent

pytestmark = pytest.mark.anyio

LANE = "toolgate_hot_lane_requests_total"


@pytest.fixture(autouse=True)
def hot_path_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """The lane is part of the hot path: on here whatever the environment says (a test may turn it off)."""
    monkeypatch.setenv(HOT_PATH_ENV, "1")


def call(request_id: int, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments},
    }


async def lane_count(gw: RunningGateway) -> int:
    async with httpx2.AsyncClient(timeout=30) as http:
        metrics = (await http.get(f"{gw.base}/metrics")).text
    return next((int(line.split()[-1]) for line in metrics.splitlines() if line.startswith(LANE)), 0)


async def first_message(response: httpx2.Response) -> dict[str, Any]:
    """The first message on an SSE stream (which may stay open for more)."""
    async for event in httpx2.EventSource(response):
        if event.data:
            return dict(json.loads(event.data))
    raise AssertionError("the stream ended without a message")


def message_bytes(response: httpx2.Response) -> bytes:
    """The one JSON-RPC message a response carries, as sent: its body, or its SSE event's data."""
    if response.headers["content-type"].startswith("application/json"):
        return response.content
    [data] = [line for line in response.content.split(b"\r\n") if line.startswith(b"data: {")]
    return data.removeprefix(b"data: ")


CALLS = [("echo", {"text": 'ünï\u2028"q" \\ 1.5e300'}), ("fail", {}), ("picture", {}), ("no_such_tool", {})]


async def answers_to_calls(monkeypatch: pytest.MonkeyPatch, *, hot: bool) -> tuple[list[tuple[int, bool, bytes]], int]:
    """Each of ``CALLS``'s status, whether it named the session, and its message as sent; and the lane's count."""
    monkeypatch.setenv(HOT_PATH_ENV, "1" if hot else "0")
    answers = []
    async with running_gateway({"fake": stdio_fake("--rich", prefix="")}) as gw:
        await gw.wait_ready()
        async with agent(gw.url, gw.tokens["agent-a"], {}) as session:
            headers = {"Accept": ACCEPT, "Mcp-Session-Id": session.session_id, "MCP-Protocol-Version": VERSION}
            # The first call settles the server's era (see test_json_answers.py), so none is late.
            await session.http.post(gw.url, json=call(2, "echo", {"text": "first"}), headers=headers)
            for request_id, (name, arguments) in enumerate(CALLS, 3):
                response = await session.http.post(gw.url, json=call(request_id, name, arguments), headers=headers)
                named = response.headers["mcp-session-id"] == session.session_id
                answers.append((response.status_code, named, message_bytes(response)))
        return answers, await lane_count(gw)


async def test_a_call_on_the_hot_lane_is_answered_byte_for_byte_as_on_the_long_way(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lane_answers, lane_served = await answers_to_calls(monkeypatch, hot=True)
    long_answers, long_served = await answers_to_calls(monkeypatch, hot=False)

    assert (lane_served, long_served) == (1 + len(CALLS), 0)
    assert lane_answers == long_answers
    assert all(status == 200 and named for status, named, _ in lane_answers)


async def test_a_call_on_the_hot_lane_carries_the_headers_of_the_sdks_own_json_answers() -> None:
    async with running_gateway({"fake": stdio_fake(prefix="")}) as gw:
        await gw.wait_ready()
        async with agent(gw.url, gw.tokens["agent-a"], {}) as session:
            headers = {"Accept": ACCEPT, "Mcp-Session-Id": session.session_id, "MCP-Protocol-Version": VERSION}
            await session.http.post(gw.url, json=call(2, "echo", {"text": "first"}), headers=headers)
            served = await lane_count(gw)
            hot = await session.http.post(gw.url, json=call(3, "echo", {"text": "hi"}), headers=headers)
            # A plain request the hot path does not serve: the SDK's server answers it, its JSON body made by the SDK.
            listing = {"jsonrpc": "2.0", "id": 4, "method": "tools/list"}
            sdk = await session.http.post(gw.url, json=listing, headers=headers)
            lane_served = await lane_count(gw) - served

    def head(response: httpx2.Response) -> list[tuple[bytes, bytes]]:
        return [(name, value) for name, value in response.headers.raw if name not in (b"date", b"content-length")]

    assert lane_served == 1
    assert (hot.status_code, hot.http_version) == (sdk.status_code, sdk.http_version) == (200, "HTTP/1.1")
    assert head(hot) == head(sdk) and head(hot)[0] == (b"content-type", b"application/json")
    assert [name for name, _ in hot.headers.raw] == [name for name, _ in sdk.headers.raw]
    assert hot.headers["content-length"] == str(len(hot.content))
    assert json.loads(hot.content)["result"]["structuredContent"] == {"text": "hi"}


async def refusals(monkeypatch: pytest.MonkeyPatch, *, hot: bool) -> tuple[list[tuple[str, int, bytes]], int]:
    """What each request the guard, the size limit, the session or the era check refuses gets; and the lane's count."""
    monkeypatch.setenv(HOT_PATH_ENV, "1" if hot else "0")
    answers = []
    servers = {"fake": stdio_fake(prefix="")}
    async with running_gateway(servers, agents=("agent-a", "agent-b"), max_request_body_mb=0.01) as gw:
        await gw.wait_ready()
        async with (
            agent(gw.url, gw.tokens["agent-a"], {}) as session,
            agent(gw.url, gw.tokens["agent-b"], {}) as other,
            httpx2.AsyncClient(timeout=30) as http,
        ):
            mine = {
                "Authorization": f"Bearer {gw.tokens['agent-a']}",
                "Accept": ACCEPT,
                "Content-Type": "application/json",
                "Mcp-Session-Id": session.session_id,
                "MCP-Protocol-Version": VERSION,
            }
            echo = json.dumps(call(2, "echo", {"text": "hi"})).encode()
            large = json.dumps(call(2, "echo", {"text": "x" * 20_000})).encode()

            async def in_chunks() -> Any:
                for start in range(0, len(large), 4096):
                    yield large[start : start + 4096]

            cases: list[tuple[str, dict[str, str], Any]] = [
                ("no token", {"Authorization": ""}, echo),
                ("another agent's token", {"Authorization": f"Bearer {gw.tokens['agent-b']}"}, echo),
                ("another host", {"Host": "evil.example:80"}, echo),
                ("a foreign origin", {"Origin": "https://evil.example"}, echo),
                ("an unknown session", {"Mcp-Session-Id": "f" * 32}, echo),
                ("another agent's session", {"Mcp-Session-Id": other.session_id}, echo),
                ("no session", {"Mcp-Session-Id": ""}, echo),
                ("a protocol version never negotiated", {"MCP-Protocol-Version": "2099-01-01"}, echo),
                ("JSON not accepted", {"Accept": "text/event-stream"}, echo),
                ("not JSON", {"Content-Type": "text/plain"}, echo),
                ("JSON named after another type", {"Content-Type": "text/plain, application/json"}, echo),
                ("a broken body", {}, echo[:-2]),
                ("a body over the limit", {}, large),
                ("a body over the limit, in chunks", {}, in_chunks()),
            ]
            for name, changes, body in cases:
                headers = {key: value for key, value in {**mine, **changes}.items() if value}
                response = await http.post(gw.url, content=body, headers=headers)
                answers.append((name, response.status_code, response.content))
            await http.delete(gw.url, headers=mine)
            response = await http.post(gw.url, content=echo, headers=mine)
            answers.append(("a session ended", response.status_code, response.content))
        return answers, await lane_count(gw)


async def test_requests_refused_on_the_way_to_a_session_are_refused_alike_with_the_hot_lane_and_without(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lane_answers, lane_served = await refusals(monkeypatch, hot=True)
    long_answers, _ = await refusals(monkeypatch, hot=False)

    assert lane_answers == long_answers
    assert all(status >= 400 for _, status, _ in lane_answers), lane_answers
    assert lane_served == 0


async def test_a_late_call_on_the_hot_lane_is_streamed_and_its_stream_can_be_resumed() -> None:
    async with running_gateway({"fake": stdio_fake(prefix="")}) as gw:
        await gw.wait_ready()
        async with agent(gw.url, gw.tokens["agent-a"], {}) as session:
            await session.request("tools/call", ECHO)  # settles the server's era, so only the slow call is late
            slow = {"name": "slow", "arguments": {"seconds": JSON_WINDOW_S + 0.5, "steps": 1}}
            kind, messages, events = await session.request_events("tools/call", slow)
            headers = {
                "Accept": "text/event-stream",
                "Mcp-Session-Id": session.session_id,
                "MCP-Protocol-Version": VERSION,
                "Last-Event-ID": events[0].id,
            }
            with anyio.fail_after(20):
                async with session.http.stream("GET", gw.url, headers=headers) as resumed:
                    replayed = await first_message(resumed)
            served_by_lane = await lane_count(gw)

    assert kind == "text/event-stream"
    assert events[0].id and not events[0].data  # the priming event, to resume from
    assert messages[-1]["result"]["content"] == [{"type": "text", "text": "done"}]
    assert replayed == messages[-1]
    assert served_by_lane == 2


async def test_an_agent_that_goes_away_during_a_late_call_on_the_hot_lane_ends_the_call_at_its_server() -> None:
    async with running_gateway({"fake": stdio_fake(prefix="")}) as gw:
        await gw.wait_ready()
        async with agent(gw.url, gw.tokens["agent-a"], {}) as session:
            await session.request("tools/call", ECHO)  # settles the server's era
            headers = {"Accept": ACCEPT, "Mcp-Session-Id": session.session_id, "MCP-Protocol-Version": VERSION}
            with anyio.fail_after(20):
                body = call(9, "slow", {"seconds": 600, "steps": 1})
                async with session.http.stream("POST", gw.url, json=body, headers=headers) as response:
                    kind = response.headers["content-type"]  # sent once the window has passed
                await gw.stderr.wait_for("fake", "slow cancelled")
            served_by_lane = await lane_count(gw)
            metrics = (await session.http.get(f"{gw.base}/metrics")).text

    assert kind == "text/event-stream"
    assert 'outcome="withdrawn"} 1' in metrics
    assert served_by_lane == 2


async def test_ending_the_session_during_a_call_on_the_hot_lane_ends_the_call_at_its_server() -> None:
    async with running_gateway({"fake": stdio_fake(prefix="")}) as gw:
        await gw.wait_ready()
        async with agent(gw.url, gw.tokens["agent-a"], {}) as session:
            await session.request("tools/call", ECHO)  # settles the server's era
            headers = {"Accept": ACCEPT, "Mcp-Session-Id": session.session_id, "MCP-Protocol-Version": VERSION}
            answers: list[httpx2.Response] = []

            async def call_slowly() -> None:
                answers.append(await session.http.post(gw.url, json=call(9, "slow", {"seconds": 600}), headers=headers))

            with anyio.fail_after(20):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(call_slowly)
                    await gw.stderr.wait_for("fake", "slow started")
                    ended = await session.http.delete(gw.url, headers=headers)
                await gw.stderr.wait_for("fake", "slow cancelled")
            after = await session.http.post(gw.url, json=call(10, "echo", {"text": "hi"}), headers=headers)
            served_by_lane = await lane_count(gw)

    assert ended.status_code == 200
    # Ended within the window: the call's answer says so (ended later, its stream ends without a result).
    assert answers[0].status_code in (200, 500)
    assert after.status_code == 404
    assert served_by_lane == 2


async def test_a_call_on_the_hot_lane_keeps_its_session_from_expiring_while_it_runs() -> None:
    async with running_gateway({"fake": stdio_fake(prefix="")}, session_idle_timeout_s=1.5) as gw:
        await gw.wait_ready()
        async with agent(gw.url, gw.tokens["agent-a"], {}) as session:
            await session.request("tools/call", ECHO)  # settles the server's era
            slow = {"name": "slow", "arguments": {"seconds": 3, "steps": 1}}
            _, messages = await session.request("tools/call", slow)
            served_by_lane = await lane_count(gw)

    assert messages[-1]["result"]["content"] == [{"type": "text", "text": "done"}]
    assert served_by_lane == 2


async def test_a_call_whose_body_comes_in_chunks_takes_the_lane_within_the_size_limit() -> None:
    async with running_gateway({"fake": stdio_fake(prefix="")}, max_request_body_mb=1) as gw:
        await gw.wait_ready()
        async with agent(gw.url, gw.tokens["agent-a"], {}) as session:
            await session.request("tools/call", ECHO)  # settles the server's era
            headers = {
                "Accept": ACCEPT,
                "Content-Type": "application/json",
                "Mcp-Session-Id": session.session_id,
                "MCP-Protocol-Version": VERSION,
            }
            body = json.dumps(call(9, "echo", {"text": "x" * 50_000})).encode()

            async def in_chunks() -> Any:
                for start in range(0, len(body), 4096):
                    yield body[start : start + 4096]

            response = await session.http.post(gw.url, content=in_chunks(), headers=headers)
            served_by_lane = await lane_count(gw)

    assert response.headers["content-type"] == "application/json"
    assert response.json()["result"]["structuredContent"] == {"text": "x" * 50_000}
    assert served_by_lane == 2


async def test_a_gateway_that_stops_during_a_late_call_on_the_hot_lane_stops_at_once() -> None:
    with anyio.fail_after(30):
        async with running_gateway({"fake": stdio_fake(prefix="")}) as gw:
            await gw.wait_ready()
            async with agent(gw.url, gw.tokens["agent-a"], {}) as session:
                await session.request("tools/call", ECHO)  # settles the server's era
                headers = {"Accept": ACCEPT, "Mcp-Session-Id": session.session_id, "MCP-Protocol-Version": VERSION}
                body = call(9, "slow", {"seconds": 600, "steps": 1})
                async with session.http.stream("POST", gw.url, json=body, headers=headers) as response:
                    kind = response.headers["content-type"]  # sent once the window has passed
                    served_by_lane = await lane_count(gw)
                    gw.gateway.stop()
                    with contextlib.suppress(httpx2.HTTPError):  # the stream ends with the gateway
                        await response.aread()

    assert kind == "text/event-stream"
    assert served_by_lane == 2

"""The modern lane: a 2026-07-28 agent's plain call, read or prompt, answered as that era's SDK entry answers it.

Driven by hand over HTTP, as a client of that era does (no session, the envelope in ``_meta``), so status
codes, headers and bodies can be compared byte for byte with the lane on and off.
"""

from __future__ import annotations

import contextlib
from typing import Any

import anyio
import httpx2
import pytest
from mcp.server import _streamable_http_modern

from gateway_core.frontend import modern_lane
from gateway_core.frontend.json_answers import JSON_WINDOW_S
from gateway_core.gateway import HOT_PATH_ENV
from tests.integration.harness import running_gateway, stdio_fake
from tests.integration.test_hot_lane import lane_count, message_bytes
from tests.integration.test_json_answers import ACCEPT

pytestmark = pytest.mark.anyio

ERA = "2026-07-28"
ENVELOPE = {
    "io.modelcontextprotocol/protocolVersion": ERA,
    "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
    "io.modelcontextprotocol/clientCapabilities": {},
}


def call(request_id: int, name: str, arguments: Any, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    params = {"name": name, "arguments": arguments, "_meta": ENVELOPE if meta is None else meta}
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}


def read(request_id: int, uri: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": "resources/read", "params": {"uri": uri, "_meta": ENVELOPE}}


def prompt(request_id: int, name: str, arguments: Any) -> dict[str, Any]:
    params = {"name": name, "arguments": arguments, "_meta": ENVELOPE}
    return {"jsonrpc": "2.0", "id": request_id, "method": "prompts/get", "params": params}


def headers_for(name: str, method: str = "tools/call", **more: str) -> dict[str, str]:
    return {"Accept": ACCEPT, "MCP-Protocol-Version": ERA, "Mcp-Method": method, "Mcp-Name": name, **more}


def headers_of(body: dict[str, Any]) -> dict[str, str]:
    """The routing headers a client of the era sends with ``body``."""
    params = body["params"]
    return headers_for(str(params["uri"] if body["method"] == "resources/read" else params["name"]), body["method"])


def seen(response: httpx2.Response) -> tuple[int, str, bytes]:
    """What an agent sees of an answer: its status, its content type and its message as sent."""
    kind = response.headers.get("content-type", "")
    body = message_bytes(response) if response.status_code == 200 else response.content
    return response.status_code, kind, body


@contextlib.asynccontextmanager
async def gateway(monkeypatch: pytest.MonkeyPatch, *, lane: bool) -> Any:
    monkeypatch.setenv(HOT_PATH_ENV, "1" if lane else "0")
    async with running_gateway({"fake": stdio_fake("--rich", prefix="")}) as gw:
        await gw.wait_ready()
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {gw.tokens['agent-a']}"}, timeout=30) as http:
            yield gw, http


REQUESTS = [
    call(1, "echo", {"text": 'ünï\u2028"q" \\ 1.5e300'}),
    call(2, "fail", {}),
    call(3, "picture", {}),
    # Answered after the lane's window: the agent is watched meanwhile, the answer is still one JSON body.
    call(4, "slow", {"seconds": JSON_WINDOW_S + 0.5, "steps": 1}),
    read(5, "fake://greeting"),
    read(6, "fake://items/7"),
    read(7, "fake://items/blob"),
    read(8, "fake://items/error"),  # the server answers an error
    prompt(9, "greet", {"name": "Ada"}),
    prompt(10, "picture", None),
    prompt(11, "greet", None),  # its argument left out: the server's default
]
# Requests naming what no server has: the long way answers them.
UNKNOWN = [call(12, "no_such_tool", {}), read(13, "nowhere://at-all"), prompt(14, "no_such_prompt", None)]


async def answers_to(
    monkeypatch: pytest.MonkeyPatch, requests: list[dict[str, Any]], *, lane: bool
) -> tuple[list[tuple[int, str, bytes]], int]:
    async with gateway(monkeypatch, lane=lane) as (gw, http):
        answers = [seen(await http.post(gw.url, json=body, headers=headers_of(body))) for body in requests]
        return answers, await lane_count(gw)


async def test_2026_calls_reads_and_prompts_on_the_modern_lane_are_answered_byte_for_byte_as_on_the_long_way(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    on_lane, served_by_lane = await answers_to(monkeypatch, REQUESTS + UNKNOWN, lane=True)
    long_way, served_without = await answers_to(monkeypatch, REQUESTS + UNKNOWN, lane=False)

    assert on_lane == long_way
    assert [kind for _, kind, _ in on_lane] == ["application/json"] * len(REQUESTS + UNKNOWN)
    assert b'"resultType":"complete"' in on_lane[0][2]
    assert b"Hello, Ada!" in on_lane[8][2] and b"Hello, world!" in on_lane[10][2]
    assert b'"error":{"code":-32603,"message":"item error is broken"' in on_lane[7][2]
    assert served_by_lane == len(REQUESTS)  # what no server has went the long way
    assert served_without == 0


def refusals() -> list[tuple[dict[str, Any], dict[str, str]]]:
    """Requests the SDK's entry for the era refuses, each as a body and its headers."""
    echo = call(1, "echo", {"text": "hi"})
    return [
        (echo, headers_for("other")),  # Mcp-Name is not the tool called
        (echo, headers_for("echo", **{"Mcp-Method": "tools/list"})),  # nor Mcp-Method the method
        (call(1, "echo", {"text": "hi"}, {**ENVELOPE, "io.modelcontextprotocol/protocolVersion": "2099-01-01"}), {}),
        (call(1, "echo", {"text": "hi"}, {"io.modelcontextprotocol/protocolVersion": ERA}), {}),  # no capabilities
        (call(1, "echo", "not an object"), {}),  # arguments must be an object
        (call(1, "echo", {"text": 5}), {}),  # the tool's schema refuses them (the server does)
        ({**echo, "jsonrpc": "1.0"}, {}),
        (echo, headers_for("echo", Accept="application/json")),  # no SSE accepted: 406
        (echo, headers_for("echo", **{"Content-Type": "text/plain"})),
        (read(1, "fake://greeting"), headers_for("fake://items/1", "resources/read")),  # Mcp-Name is not the URI
        (read(1, 5), {}),  # a URI must be a string
        (prompt(1, "greet", {"name": 5}), {}),  # a prompt's arguments are strings
        (prompt(1, "greet", {"name": "Ada"}), headers_for("other", "prompts/get")),
    ]


async def test_requests_the_sdks_2026_entry_refuses_are_refused_alike_with_the_modern_lane_and_without(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    got: dict[bool, list[tuple[int, str, bytes]]] = {}
    for lane in (True, False):
        async with gateway(monkeypatch, lane=lane) as (gw, http):
            answers = []
            for body, headers in refusals():
                sent = {**headers_of(body), **headers}
                content = httpx2.Request("POST", gw.url, json=body).content
                answers.append(seen(await http.post(gw.url, content=content, headers=sent)))
            got[lane] = answers

    assert got[True] == got[False]
    assert all(status != 200 or b'"error"' in body or b'"isError":true' in body for status, _, body in got[True])


async def test_mcp_param_headers_are_checked_alike_with_the_modern_lane_and_without(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    region, echo = call(1, "region", {"region": "eu"}), call(2, "echo", {"text": "hi"})
    cases = [
        (region, headers_for("region", **{"Mcp-Param-Region": "eu"})),  # as a client of the era mirrors it
        (echo, headers_for("echo", **{"Mcp-Param-Region": "eu"})),  # a tool that declares no header ignores it
        (region, headers_for("region")),  # the header left out
        (region, headers_for("region", **{"Mcp-Param-Region": "us"})),  # the header not the argument
    ]
    got: dict[bool, tuple[list[tuple[int, str, bytes]], int]] = {}
    for lane in (True, False):
        async with gateway(monkeypatch, lane=lane) as (gw, http):
            answers = [seen(await http.post(gw.url, json=body, headers=headers)) for body, headers in cases]
            got[lane] = answers, await lane_count(gw)

    assert got[True][0] == got[False][0]
    answers, served_by_lane = got[True]
    assert b'"text":"eu"' in answers[0][2] and b'"text":"hi"' in answers[1][2]
    assert [status for status, _, _ in answers[2:]] == [400, 400]
    assert b"Mcp-Param-Region header is missing" in answers[2][2]
    assert b"Mcp-Param-Region header does not match" in answers[3][2]
    assert served_by_lane == 2  # the refused went the long way, which refused them


async def test_a_2026_call_still_running_when_the_sdk_would_stream_gets_the_same_kept_alive_stream(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The SDK's entry streams a request still running after 15 s, pinging every 15 s; shortened here on both ways.
    monkeypatch.setattr(_streamable_http_modern, "_SSE_PING_INTERVAL", JSON_WINDOW_S + 0.5)
    monkeypatch.setattr(modern_lane, "SSE_AFTER_S", JSON_WINDOW_S + 0.5)
    monkeypatch.setattr(modern_lane, "PING_INTERVAL_S", JSON_WINDOW_S + 0.5)
    slow = call(7, "slow", {"seconds": 2 * JSON_WINDOW_S + 1.5, "steps": 1})
    got = {}
    for lane in (True, False):
        async with gateway(monkeypatch, lane=lane) as (gw, http):
            with anyio.fail_after(30):
                response = await http.post(gw.url, json=slow, headers=headers_for("slow"))
            got[lane] = (response.status_code, response.headers["content-type"], response.content)

    # The same stream: pings while it runs (as many as the timing allows), then the result as its last event.
    (status, kind, body), (long_status, long_kind, long_body) = got[True], got[False]
    assert (status, kind) == (long_status, long_kind) == (200, "text/event-stream")
    assert body.startswith(b": ping\r\n\r\n") and long_body.startswith(b": ping\r\n\r\n")
    last = body[body.index(b"event: message") :]
    assert last == long_body[long_body.index(b"event: message") :]
    assert last.endswith(b"\r\n\r\n") and b'"text":"done"' in last


async def test_an_agent_that_goes_away_during_a_late_2026_call_ends_the_call_at_its_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with gateway(monkeypatch, lane=True) as (gw, http):
        with anyio.fail_after(20):
            async with anyio.create_task_group() as tg:

                async def call_slowly() -> None:
                    with contextlib.suppress(httpx2.HTTPError):
                        await http.post(gw.url, json=call(9, "slow", {"seconds": 600}), headers=headers_for("slow"))

                tg.start_soon(call_slowly)
                await gw.stderr.wait_for("fake", "slow started")
                tg.cancel_scope.cancel()  # the agent goes away: noticed once the call's window has passed
            await gw.stderr.wait_for("fake", "slow cancelled")
        served_by_lane = await lane_count(gw)
        metrics = (await http.get(f"{gw.base}/metrics")).text

    assert 'outcome="withdrawn"} 1' in metrics
    assert served_by_lane == 1


async def test_a_gateway_that_stops_during_a_late_2026_call_on_the_modern_lane_stops_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with anyio.fail_after(30):
        async with gateway(monkeypatch, lane=True) as (gw, http):

            async def call_slowly() -> None:
                with contextlib.suppress(httpx2.HTTPError):
                    await http.post(gw.url, json=call(9, "slow", {"seconds": 600}), headers=headers_for("slow"))

            async with anyio.create_task_group() as tg:
                tg.start_soon(call_slowly)
                await gw.stderr.wait_for("fake", "slow started")
                served_by_lane = await lane_count(gw)
                gw.gateway.stop()

    assert served_by_lane == 1

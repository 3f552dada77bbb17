"""Which handshake-era requests can be answered with one JSON body: those whose answer can only be their result."""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import pytest
from mcp.server.streamable_http import check_accept_headers

from gateway_core.frontend import json_answers
from gateway_core.frontend.hot_lane import LaneRequest
from gateway_core.frontend.json_answers import AnsweringTransport, Windows, is_plain, may_be_asked

WAIT_S = 10


def call(**params: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "echo", **params}}


@pytest.mark.parametrize(
    "message",
    [
        call(),
        call(_meta={"com.example/trace": "t"}),
        {"jsonrpc": "2.0", "id": 4, "method": "tools/list"},
        {"jsonrpc": "2.0", "id": "r", "method": "resources/read", "params": {"uri": "file:///a"}},
        {"jsonrpc": "2.0", "id": 5, "method": "ping"},
    ],
)
def test_a_request_that_can_only_be_answered_with_its_result_is_plain(message: dict[str, Any]):
    assert is_plain(message, agent_may_be_asked=False)


@pytest.mark.parametrize(
    "message",
    [
        call(_meta={"progressToken": "p"}),
        call(task={"ttl": 1000}),
        {"jsonrpc": "2.0", "id": 6, "method": "initialize", "params": {}},
        {"jsonrpc": "2.0", "id": 7, "method": "tasks/result", "params": {"taskId": "t"}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 8, "method": "tools/call", "params": "not an object"},
        [call()],
    ],
)
def test_a_request_that_may_carry_more_than_its_result_is_not_plain(message: Any):
    assert not is_plain(message, agent_may_be_asked=False)


def test_no_request_is_plain_from_an_agent_that_can_be_asked_questions():
    assert not is_plain(call(), agent_may_be_asked=True)


@pytest.mark.parametrize(
    ("capabilities", "asked"),
    [
        ({}, False),
        ({"experimental": {}}, False),
        ({"roots": None}, False),
        ({"sampling": {}}, True),
        ({"elicitation": {"form": {}}}, True),
        ({"roots": {"listChanged": True}}, True),
    ],
)
def test_an_agent_can_be_asked_questions_when_it_declared_sampling_elicitation_or_roots(
    capabilities: dict[str, Any], asked: bool
):
    hello = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": capabilities}}

    assert may_be_asked(hello) is asked


@pytest.mark.anyio
async def test_only_calls_still_running_when_their_window_ends_are_late_each_no_sooner(monkeypatch):
    monkeypatch.setattr(json_answers, "JSON_WINDOW_S", 0.05)
    loop = asyncio.get_running_loop()
    windows = Windows()
    late: dict[str, float] = {}
    last = anyio.Event()

    def on_late(name: str) -> Any:
        return lambda: late.setdefault(name, loop.time())

    answered = windows.open(loop, on_late("answered"))  # the one the timer is first set for
    answered.close()
    first = windows.open(loop, on_late("first"))
    quick = windows.open(loop, on_late("quick"))
    quick.close()
    final = windows.open(loop, lambda: (late.setdefault("final", loop.time()), last.set()))
    with anyio.fail_after(WAIT_S):
        await last.wait()

    assert list(late) == ["first", "final"]
    assert late["first"] >= first.deadline - 0.001 and late["final"] >= final.deadline - 0.001


ACCEPTS = [
    "application/json, text/event-stream",
    "text/event-stream, application/json;q=0.9",
    "*/*",
    "application/*, text/*",
    "application/json",
    "text/event-stream",
    "",
    None,
]
CONTENT_TYPES = ["application/json", "application/json; charset=utf-8", "text/plain", "application/json-seq", "", None]


def lane_request(accept: str | None, content_type: str | None) -> LaneRequest:
    headers = [(b"content-type", content_type.encode()) if content_type is not None else (b"x-none", b"")]
    if accept is not None:
        headers.append((b"accept", accept.encode()))
    return LaneRequest({"type": "http", "method": "POST", "path": "/mcp", "headers": headers}, _no_body)


async def _no_body() -> Any:
    raise AssertionError("the body is not read")


@pytest.mark.parametrize("accept", ACCEPTS)
@pytest.mark.parametrize("content_type", CONTENT_TYPES)
def test_a_post_is_answered_plainly_exactly_when_the_sdks_checks_of_its_headers_allow_it_every_time(
    accept: str | None, content_type: str | None
):
    transport = AnsweringTransport(mcp_session_id="s", json_answers=True)
    request = lane_request(accept, content_type)
    has_json, has_sse = check_accept_headers(request)
    expected = has_json and has_sse and transport._check_content_type(request)

    assert [transport.answers_plainly(lane_request(accept, content_type)) for _ in range(3)] == [expected] * 3
    assert AnsweringTransport(mcp_session_id="t", json_answers=False).answers_plainly(request) is False


def test_posts_with_ever_new_header_values_are_still_decided_by_the_sdks_checks(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(json_answers, "_PLAIN_HEADERS", {})
    transport = AnsweringTransport(mcp_session_id="s", json_answers=True)
    verdicts = [
        transport.answers_plainly(lane_request(f"application/json, text/event-stream, x/{n}", content_type))
        for n in range(json_answers.MAX_PLAIN_HEADERS * 2)
        for content_type in ("application/json", "text/plain")
    ]

    assert verdicts == [True, False] * json_answers.MAX_PLAIN_HEADERS * 2
    assert len(json_answers._PLAIN_HEADERS) == json_answers.MAX_PLAIN_HEADERS


IDLE_S = 0.2


def idle_transport(idle_s: float) -> AnsweringTransport:
    """A session's transport with an idle timeout, its idle scope made as the SDK's ``connect`` makes it."""
    transport = AnsweringTransport(mcp_session_id="s", idle_timeout=idle_s)
    transport.idle_scope = anyio.CancelScope()
    return transport


@pytest.mark.anyio
async def test_a_session_ends_once_idle_for_its_timeout_after_its_last_request_and_not_while_one_is_served():
    transport = idle_transport(IDLE_S)
    loop = asyncio.get_running_loop()
    ends: list[float] = []
    long_one = anyio.Event()

    async def serve(scope: Any, receive: Any, send: Any) -> None:
        if scope.get("long"):  # served for longer than the idle timeout: the session is not idle meanwhile
            await anyio.sleep(IDLE_S * 2)
            long_one.set()
        ends.append(loop.time())

    transport._handle_request = serve  # type: ignore[method-assign]
    assert transport.idle_scope is not None
    with anyio.fail_after(WAIT_S):
        with transport.idle_scope:
            await transport.handle_request({}, _no_body, _no_body)
            await transport.handle_request({"long": True}, _no_body, _no_body)
            await transport.handle_request({}, _no_body, _no_body)
            await anyio.sleep_forever()
    ended = loop.time()

    assert long_one.is_set() and transport.idle_scope.cancelled_caught
    assert ended - ends[-1] >= IDLE_S - 0.01


@pytest.mark.anyio
async def test_a_request_that_outlives_its_session_leaves_no_idle_countdown_behind():
    transport = idle_transport(60)

    async def serve(scope: Any, receive: Any, send: Any) -> None:
        await transport.terminate()

    transport._handle_request = serve  # type: ignore[method-assign]
    assert transport.idle_scope is not None
    with transport.idle_scope:
        await transport.handle_request({}, _no_body, _no_body)

    assert transport.is_terminated and transport._idle_timer is None

"""A request that nothing could stream on is answered with one JSON body; anything else keeps its SSE stream.

Driven by hand over HTTP, as a client does, so the response's content type can be seen.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx2
import pytest

from gateway_core.frontend.json_answers import JSON_WINDOW_S
from gateway_core.gateway import HOT_PATH_ENV
from gateway_core.paths import Paths
from tests.integration.harness import running_gateway, stdio_fake

pytestmark = pytest.mark.anyio

VERSION = "2025-11-25"
ACCEPT = "application/json, text/event-stream"
ECHO = {"name": "echo", "arguments": {"text": "hi"}}


class Agent:
    """A handshake-era session driven by hand; each answer comes with its content type."""

    def __init__(self, http: httpx2.AsyncClient, url: str, session_id: str) -> None:
        self.http, self.url, self.session_id = http, url, session_id
        self._ids = 1

    async def request(self, method: str, params: dict[str, Any] | None = None) -> tuple[str, list[dict[str, Any]]]:
        """Send one request; the answer's content type and every message it carried."""
        kind, messages, _ = await self.request_events(method, params)
        return kind, messages

    async def request_events(
        self, method: str, params: dict[str, Any] | None = None
    ) -> tuple[str, list[dict[str, Any]], list[httpx2.ServerSentEvent]]:
        """Send one request; the answer's content type, every message it carried, and its SSE events if any."""
        self._ids += 1
        body: dict[str, Any] = {"jsonrpc": "2.0", "id": self._ids, "method": method}
        if params is not None:
            body["params"] = params
        headers = {"Accept": ACCEPT, "Mcp-Session-Id": self.session_id, "MCP-Protocol-Version": VERSION}
        async with self.http.stream("POST", self.url, json=body, headers=headers) as response:
            assert response.status_code == 200, (await response.aread()).decode()
            kind = response.headers["content-type"].split(";")[0]
            if kind == "application/json":
                return kind, [json.loads(await response.aread())], []
            messages, events = [], []
            async for event in httpx2.EventSource(response):
                events.append(event)
                if event.data:
                    messages.append(json.loads(event.data))
                    if messages[-1].get("id") == self._ids:
                        break
            return kind, messages, events


@asynccontextmanager
async def agent(url: str, token: str, capabilities: dict[str, Any]) -> AsyncIterator[Agent]:
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
        hello = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": VERSION,
                "capabilities": capabilities,
                "clientInfo": {"name": "t", "version": "1"},
            },
        }
        opened = await http.post(url, json=hello, headers={"Accept": ACCEPT})
        assert opened.status_code == 200, opened.text
        session = Agent(http, url, opened.headers["mcp-session-id"])
        initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        headers = {"Accept": ACCEPT, "Mcp-Session-Id": session.session_id, "MCP-Protocol-Version": VERSION}
        assert (await http.post(url, json=initialized, headers=headers)).status_code == 202
        yield session


async def test_a_plain_call_is_answered_with_one_json_body_and_a_call_asking_for_progress_with_a_stream() -> None:
    async with running_gateway({"fake": stdio_fake(prefix="")}) as gw:
        await gw.wait_ready()
        async with agent(gw.url, gw.tokens["agent-a"], {}) as session:
            # A handshake-era agent's first call waits until it is known whether the server needs an era
            # twin (downstream/era_twin.py), which can take longer than JSON_WINDOW_S: it is then streamed.
            await session.request("tools/call", ECHO)
            plain = await session.request("tools/call", ECHO)
            listed = await session.request("tools/list")
            slow = {"name": "slow", "arguments": {"seconds": 0.1, "steps": 2}, "_meta": {"progressToken": "p"}}
            with_progress = await session.request("tools/call", slow)

    assert plain[0] == "application/json"
    assert plain[1][0]["result"]["structuredContent"] == {"text": "hi"}
    assert listed[0] == "application/json"
    assert "echo" in {tool["name"] for tool in listed[1][0]["result"]["tools"]}
    assert with_progress[0] == "text/event-stream"
    assert [m["params"]["progress"] for m in with_progress[1] if m.get("method") == "notifications/progress"]
    assert with_progress[1][-1]["result"]["content"] == [{"type": "text", "text": "done"}]


async def test_a_plain_call_not_answered_within_the_window_gets_a_resumable_stream_as_the_long_way_gives() -> None:
    async with running_gateway({"fake": stdio_fake(prefix="")}) as gw:
        await gw.wait_ready()
        async with agent(gw.url, gw.tokens["agent-a"], {}) as session:
            slow = {"name": "slow", "arguments": {"seconds": JSON_WINDOW_S + 0.5, "steps": 1}}
            kind, messages, events = await session.request_events("tools/call", slow)

    assert kind == "text/event-stream"
    assert events[0].id and not events[0].data  # the priming event, to resume from
    assert messages[-1]["result"]["content"] == [{"type": "text", "text": "done"}]


async def test_an_agent_that_can_be_asked_questions_keeps_a_stream_for_every_call() -> None:
    async with running_gateway({"fake": stdio_fake(prefix="")}) as gw:
        await gw.wait_ready()
        async with agent(gw.url, gw.tokens["agent-a"], {"elicitation": {}}) as session:
            kind, messages = await session.request("tools/call", ECHO)

    assert kind == "text/event-stream"
    assert messages[-1]["result"]["structuredContent"] == {"text": "hi"}


async def test_with_the_hot_path_turned_off_every_call_gets_a_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(HOT_PATH_ENV, "0")
    async with running_gateway({"fake": stdio_fake(prefix="")}) as gw:
        await gw.wait_ready()
        async with agent(gw.url, gw.tokens["agent-a"], {}) as session:
            kind, messages = await session.request("tools/call", ECHO)

    assert kind == "text/event-stream"
    assert messages[-1]["result"]["structuredContent"] == {"text": "hi"}


async def call_2026(http: httpx2.AsyncClient, url: str, request_id: int, name: str, arguments: Any) -> httpx2.Response:
    """One 2026-07-28 ``tools/call``, as a client of that era sends it (its envelope in ``_meta``)."""
    return await request_2026(http, url, request_id, "tools/call", {"name": name, "arguments": arguments})


async def request_2026(
    http: httpx2.AsyncClient, url: str, request_id: int, method: str, params: dict[str, Any]
) -> httpx2.Response:
    """One 2026-07-28 request naming a tool or prompt (``name``) or a resource (``uri``), as that era sends it."""
    meta = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    body = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": {**params, "_meta": meta}}
    named = params["uri"] if method == "resources/read" else params["name"]
    headers = {"Accept": ACCEPT, "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": method, "Mcp-Name": named}
    return await http.post(url, json=body, headers=headers)


async def test_a_2026_call_is_answered_with_one_json_body() -> None:
    async with running_gateway({"fake": stdio_fake(prefix="")}) as gw:
        await gw.wait_ready()
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {gw.tokens['agent-a']}"}, timeout=30) as http:
            response = await call_2026(http, gw.url, 1, ECHO["name"], ECHO["arguments"])

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["result"]["structuredContent"] == {"text": "hi"}


DENY_ADD = {"default": "allow", "rules": [{"match": "fake/add", "effect": "deny"}]}
# Passed through as sent (echo twice, fail), rebuilt the typed way (picture: an image and annotations;
# add: refused by the policy), and the long way all along (an unknown tool).
SCENARIO = [
    ("echo", {"text": "hi"}),
    ("fail", {}),
    ("picture", {}),
    ("add", {"a": 1, "b": 2}),
    ("no_such_tool", {}),
    ("echo", {"text": 'ünï\u2028"quoted" \\ 1.5e300'}),
]


async def _run_scenario(monkeypatch: pytest.MonkeyPatch, *, hot: bool) -> tuple[list[dict[str, Any]], list[str]]:
    """Each call's answer (without its id) and the /metrics lines about calls, with the hot path on or off."""
    monkeypatch.setenv(HOT_PATH_ENV, "1" if hot else "0")
    answers = []
    async with running_gateway({"fake": stdio_fake("--rich", prefix="")}, policies={"agent-a": DENY_ADD}) as gw:
        await gw.wait_ready()
        async with agent(gw.url, gw.tokens["agent-a"], {}) as session:
            for name, arguments in SCENARIO:
                _, messages = await session.request("tools/call", {"name": name, "arguments": arguments})
                answers.append({key: value for key, value in messages[-1].items() if key != "id"})
            metrics = (await session.http.get(f"{gw.base}/metrics")).text
    counted = [line for line in metrics.splitlines() if line.startswith(("toolgate_tool_calls_total", "toolgate_hot"))]
    return answers, counted


# A 2026-07-28 agent's reads and prompts, after ``SCENARIO``'s calls: read as sent, refused by the server.
READS_AND_PROMPTS = [
    ("resources/read", {"uri": "fake://greeting"}),
    ("resources/read", {"uri": "fake://items/error"}),
    ("prompts/get", {"name": "greet", "arguments": {"name": "Ada"}}),
]


async def _run_2026_scenario(monkeypatch: pytest.MonkeyPatch, *, hot: bool) -> tuple[list[bytes], list[str]]:
    """``SCENARIO``'s calls, then ``READS_AND_PROMPTS``, by a 2026-07-28 agent: each answer's bytes, and the
    /metrics lines about calls."""
    monkeypatch.setenv(HOT_PATH_ENV, "1" if hot else "0")
    answers = []
    async with running_gateway({"fake": stdio_fake("--rich", prefix="")}, policies={"agent-a": DENY_ADD}) as gw:
        await gw.wait_ready()
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {gw.tokens['agent-a']}"}, timeout=30) as http:
            requests = [("tools/call", {"name": name, "arguments": arguments}) for name, arguments in SCENARIO]
            for request_id, (method, params) in enumerate(requests + READS_AND_PROMPTS, start=1):
                response = await request_2026(http, gw.url, request_id, method, params)
                answers.append(response.content)
            metrics = (await http.get(f"{gw.base}/metrics")).text
    counted = [line for line in metrics.splitlines() if line.startswith(("toolgate_tool_calls_total", "toolgate_hot"))]
    return answers, counted


async def test_a_2026_agent_gets_the_same_answers_audit_and_metrics_with_the_hot_path_on_and_off(
    monkeypatch: pytest.MonkeyPatch,
):
    # With the hot path on, a 2026 agent's plain call to a tool the gateway routes takes the modern lane
    # (modern_lane.py), and its server's result comes as it came where the typed way would not change it;
    # so do its reads and prompts.
    (hot_answers, hot_counted), (long_answers, long_counted) = await _both_ways(monkeypatch, _run_2026_scenario)

    assert hot_answers == long_answers
    echoed = json.loads(hot_answers[0])["result"]
    assert echoed["resultType"] == "complete"
    assert echoed["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "toolgate"
    assert [line for line in hot_counted if not line.startswith("toolgate_hot")] == long_counted
    assert [line for line in hot_counted if line.startswith("toolgate_hot")] == [
        'toolgate_hot_path_calls_total{method="prompts/get",result="passed_through"} 1',
        'toolgate_hot_path_calls_total{method="resources/read",result="passed_through"} 1',
        'toolgate_hot_path_calls_total{method="tools/call",result="passed_through"} 3',
        'toolgate_hot_path_calls_total{method="tools/call",result="rebuilt"} 2',
        # The unknown tool goes the long way from the start: the SDK's server answers it. The read the
        # server refuses took the lane, and is answered with its error.
        "toolgate_hot_lane_requests_total 8",
    ]
    assert not [line for line in long_counted if line.startswith("toolgate_hot")]


Scenario = Callable[..., Awaitable[tuple[Any, list[str]]]]


async def _both_ways(
    monkeypatch: pytest.MonkeyPatch, run: Scenario
) -> tuple[tuple[Any, list[str]], tuple[Any, list[str]]]:
    """``run``'s answers and counted metrics with the hot path on, then off; both record the same audit rows."""
    audit_db = Paths.from_env(os.environ).audit_db
    hot = await run(monkeypatch, hot=True)
    hot_rows = _audit_rows(audit_db)
    long = await run(monkeypatch, hot=False)
    long_rows = _audit_rows(audit_db)[len(hot_rows) :]
    assert [_comparable(row) for row in hot_rows] == [_comparable(row) for row in long_rows]
    assert {row["outcome"] for row in hot_rows} >= {"ok", "tool_error", "denied"}
    answered_calls = [row for row in hot_rows if row["outcome"] in {"ok", "tool_error"}]
    # A read's or prompt's record has no result size, either way.
    assert all(row["result_size"] for row in answered_calls if row["tool"] in {name for name, _ in SCENARIO})
    return hot, long


def _audit_rows(gw_db: Any) -> list[dict[str, Any]]:
    with sqlite3.connect(gw_db) as db:
        db.row_factory = sqlite3.Row
        return [dict(row) for row in db.execute("SELECT * FROM records ORDER BY id")]


def _comparable(row: dict[str, Any]) -> dict[str, Any]:
    """An audit row without what differs from run to run (ids, times)."""
    return {key: value for key, value in row.items() if key not in {"id", "time", "call_id", "latency_s", "hash"}}


@pytest.mark.parametrize("hot", [True, False], ids=["hot path", "long way"])
async def test_plain_calls_are_answered_by_the_hot_path_only_when_it_is_on(monkeypatch: pytest.MonkeyPatch, hot: bool):
    _, counted = await _run_scenario(monkeypatch, hot=hot)

    hot_lines = [line for line in counted if line.startswith("toolgate_hot")]
    if hot:
        assert hot_lines == [
            'toolgate_hot_path_calls_total{method="tools/call",result="passed_through"} 3',
            'toolgate_hot_path_calls_total{method="tools/call",result="rebuilt"} 2',
            # Every call took the lane, the unknown tool's too: it is the SDK's server that answers that one.
            "toolgate_hot_lane_requests_total 6",
        ]
    else:
        assert hot_lines == []


async def test_the_hot_path_and_the_long_way_give_agents_the_audit_and_the_metrics_the_same(
    monkeypatch: pytest.MonkeyPatch,
):
    (hot_answers, hot_counted), (long_answers, long_counted) = await _both_ways(monkeypatch, _run_scenario)

    assert hot_answers == long_answers
    assert hot_answers[0]["result"] == {
        "content": [{"type": "text", "text": "hi"}],
        "structuredContent": {"text": "hi"},
        "isError": False,
        "_meta": {"fake/server": "fake"},
    }
    assert hot_answers[2]["result"]["content"][1]["annotations"] == {"audience": ["user"], "priority": 0.5}
    assert [line for line in hot_counted if not line.startswith("toolgate_hot")] == long_counted


@pytest.mark.parametrize("hot", [True, False], ids=["hot path", "long way"])
async def test_a_plain_call_the_agent_cancels_ends_with_request_cancelled_and_is_recorded_withdrawn(
    monkeypatch: pytest.MonkeyPatch, hot: bool
):
    monkeypatch.setenv(HOT_PATH_ENV, "1" if hot else "0")
    async with running_gateway({"fake": stdio_fake(prefix="")}) as gw:
        await gw.wait_ready()
        async with agent(gw.url, gw.tokens["agent-a"], {}) as session:
            await session.request("tools/call", ECHO)  # settles the server's era (see the first test)
            answers: list[dict[str, Any]] = []

            async def call_slowly() -> None:
                _, messages = await session.request("tools/call", {"name": "slow", "arguments": {"seconds": 60}})
                answers.append(messages[-1])

            with anyio.fail_after(20):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(call_slowly)
                    await gw.stderr.wait_for("fake", "slow started")
                    cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 3}}
                    headers = {"Accept": ACCEPT, "Mcp-Session-Id": session.session_id, "MCP-Protocol-Version": VERSION}
                    assert (await session.http.post(session.url, json=cancel, headers=headers)).status_code == 202
            metrics = (await session.http.get(f"{gw.base}/metrics")).text

    assert answers[0]["error"]["code"] == -32800
    assert 'outcome="withdrawn"} 1' in metrics
    assert ('toolgate_hot_path_calls_total{method="tools/call",result="passed_through"} 1' in metrics) is hot
    outcomes = [row["outcome"] for row in _audit_rows(gw.paths.audit_db) if row["tool"] == "slow"]
    assert outcomes == [None, "withdrawn"]

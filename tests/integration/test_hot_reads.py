"""Plain reads and prompts take the hot path, and agents, the audit and /metrics see the same as the long way.

Driven by hand over HTTP, as a client does, so each answer can be compared byte for byte with the hot
path on and off: reads and prompts passed through, rebuilt, renamed by a prefix, denied, unknown, failing
at the server, and a server that dies during a read.
"""

from __future__ import annotations

import json
import os
import sqlite3
from typing import Any

import httpx2
import pytest

from gateway_core.gateway import HOT_PATH_ENV
from gateway_core.paths import Paths
from tests.fakes.launch import serve_fake
from tests.integration.harness import running_gateway, stdio_fake
from tests.integration.test_json_answers import ACCEPT, ECHO, VERSION, agent

pytestmark = pytest.mark.anyio

SERVERS = {
    "fake": stdio_fake("--rich", prefix=""),
    # Its prompt reaches agents as pre_greet; its resources keep their URIs (pre://…).
    "pre": stdio_fake("--name", "pre", "--scheme", "pre", prefix="pre_"),
    # A server that speaks only the handshake era (the others answer Toolgate in 2026-07-28).
    "old": stdio_fake("--name", "old", "--scheme", "old", "--handshake-only", prefix="old_"),
    # Denied to the agent by its policy, prompts and resources alike.
    "walled": stdio_fake("--name", "walled", "--scheme", "walled", prefix="w_"),
}
POLICY = {"default": "allow", "rules": [{"match": "walled/*", "effect": "deny"}]}
REQUESTS: list[tuple[str, dict[str, Any]]] = [
    ("resources/read", {"uri": "fake://greeting"}),
    ("resources/read", {"uri": "fake://items/3"}),
    ("resources/read", {"uri": "fake://items/blob"}),
    ("resources/read", {"uri": "pre://greeting"}),
    ("prompts/get", {"name": "greet", "arguments": {"name": "Grace"}}),
    ("prompts/get", {"name": "pre_greet", "arguments": {"name": 'ünï\u2028"q" \\'}}),
    ("prompts/get", {"name": "picture"}),
    ("resources/read", {"uri": "old://items/blob"}),
    ("prompts/get", {"name": "old_greet", "arguments": {"name": "Ada"}}),
    ("resources/read", {"uri": "walled://greeting"}),
    ("prompts/get", {"name": "w_greet", "arguments": {"name": "x"}}),
    ("resources/read", {"uri": "nowhere://x"}),
    ("prompts/get", {"name": "no_such_prompt"}),
    ("resources/read", {"uri": "fake://items/error"}),
    ("resources/read", {"uri": "fake://items/crash"}),  # the server dies during the read: the last request
]


def message_bytes(response: httpx2.Response) -> bytes:
    """The one JSON-RPC message a response carries, as sent: its body, or its SSE event's data."""
    if response.headers["content-type"].startswith("application/json"):
        return response.content
    [data] = [line for line in response.content.split(b"\r\n") if line.startswith(b"data: {")]
    return data.removeprefix(b"data: ")


async def run(
    monkeypatch: pytest.MonkeyPatch,
    *,
    hot: bool,
    servers: dict[str, Any] = SERVERS,
    requests: list[tuple[str, dict[str, Any]]] = REQUESTS,
) -> tuple[list[tuple[int, bytes]], list[str], list[Any]]:
    """Each request's status and message as sent, the /metrics lines about calls, and the audit rows written."""
    monkeypatch.setenv(HOT_PATH_ENV, "1" if hot else "0")
    audit_db = Paths.from_env(os.environ).audit_db
    before = len(_audit_rows(audit_db)) if audit_db.exists() else 0
    answers = []
    async with running_gateway(servers, policies={"agent-a": POLICY}) as gw:
        await gw.wait_ready()
        async with agent(gw.url, gw.tokens["agent-a"], {}) as session:
            headers = {"Accept": ACCEPT, "Mcp-Session-Id": session.session_id, "MCP-Protocol-Version": VERSION}
            # The first request settles the servers' eras (see test_json_answers.py), so none is late.
            await session.http.post(gw.url, json=_request(2, "tools/call", ECHO), headers=headers)
            for request_id, (method, params) in enumerate(requests, 3):
                response = await session.http.post(gw.url, json=_request(request_id, method, params), headers=headers)
                answers.append((response.status_code, message_bytes(response)))
            metrics = (await session.http.get(f"{gw.base}/metrics")).text
    # Latencies differ (the hot path's are shorter); how many and how they ended may not.
    counted = [
        line
        for line in metrics.splitlines()
        if line.startswith(("toolgate_tool_calls_total", "toolgate_tool_call_seconds_count", "toolgate_hot"))
    ]
    return answers, counted, [_comparable(row) for row in _audit_rows(audit_db)[before:]]


def _request(request_id: int, method: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}


def _audit_rows(audit_db: Any) -> list[dict[str, Any]]:
    with sqlite3.connect(audit_db) as db:
        db.row_factory = sqlite3.Row
        return [dict(row) for row in db.execute("SELECT * FROM records ORDER BY id")]


def _comparable(row: dict[str, Any]) -> dict[str, Any]:
    """An audit row without what differs from run to run (ids, times)."""
    return {key: value for key, value in row.items() if key not in {"id", "time", "call_id", "latency_s", "hash"}}


async def test_reads_and_prompts_give_agents_the_audit_and_the_metrics_the_same_on_the_hot_path_and_the_long_way(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hot_answers, hot_counted, hot_rows = await run(monkeypatch, hot=True)
    long_answers, long_counted, long_rows = await run(monkeypatch, hot=False)

    assert hot_answers == long_answers
    assert [line for line in hot_counted if not line.startswith("toolgate_hot")] == long_counted
    assert hot_rows == long_rows
    hot_lines = [line for line in hot_counted if line.startswith("toolgate_hot")]
    assert hot_lines == [
        'toolgate_hot_path_calls_total{method="prompts/get",result="passed_through"} 3',
        'toolgate_hot_path_calls_total{method="prompts/get",result="rebuilt"} 1',
        'toolgate_hot_path_calls_total{method="resources/read",result="passed_through"} 5',
        'toolgate_hot_path_calls_total{method="tools/call",result="passed_through"} 1',
        # Every request took the lane, the unknown ones too: the SDK's server answers those.
        f"toolgate_hot_lane_requests_total {1 + len(REQUESTS)}",
    ]
    assert not [line for line in long_counted if line.startswith("toolgate_hot")]
    # What each answer says, so the comparison above compares what it should.
    results = [json.loads(body) for _, body in hot_answers]
    assert results[0]["result"] == {"contents": [{"text": "hello from fake", "uri": "fake://greeting"}]}
    assert results[2]["result"]["contents"][0]["blob"] == "iVBORw0KGgo="
    assert results[3]["result"]["contents"][0]["text"] == "hello from pre"
    assert results[5]["result"]["messages"][0]["content"]["text"] == 'Hello, ünï\u2028"q" \\!'
    assert results[6]["result"]["messages"][0]["content"]["type"] == "image"
    assert results[8]["result"]["messages"][0]["content"]["text"] == "Hello, Ada!"
    assert [results[i]["error"]["code"] for i in (9, 10, 11, 12)] == [-32000, -32000, -32602, -32602]
    assert results[13]["error"]["message"] == "item error is broken"
    assert "stopped answering during resources/read 'fake://items/crash'" in results[14]["error"]["message"]
    outcomes = [(row["tool"], row["outcome"]) for row in hot_rows if row["outcome"] is not None]
    assert ("walled://greeting", "denied") in outcomes
    assert ("fake://items/error", "protocol_error") in outcomes
    assert ("fake://items/crash", "unavailable") in outcomes


REMOTE_REQUESTS: list[tuple[str, dict[str, Any]]] = [
    ("resources/read", {"uri": "fake://greeting"}),
    ("resources/read", {"uri": "fake://items/blob"}),
    ("prompts/get", {"name": "r_greet", "arguments": {"name": "Grace"}}),
    ("prompts/get", {"name": "r_picture"}),
    ("resources/read", {"uri": "fake://items/error"}),
    ("resources/read", {"uri": "fake://items/crash"}),
]


async def test_reads_and_prompts_of_a_streamable_http_server_are_the_same_on_the_hot_path_and_the_long_way(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers, counted, rows = {}, {}, {}
    for hot in (True, False):
        with serve_fake("http", "--rich") as fake:  # a fresh server each way: the last read ends it
            servers = {"remote": {"url": fake.url, "prefix": "r_"}}
            answers[hot], counted[hot], rows[hot] = await run(
                monkeypatch, hot=hot, servers=servers, requests=REMOTE_REQUESTS
            )

    assert answers[True] == answers[False]
    assert [line for line in counted[True] if not line.startswith("toolgate_hot")] == counted[False]
    assert rows[True] == rows[False]
    assert [line for line in counted[True] if line.startswith("toolgate_hot_path")] == [
        'toolgate_hot_path_calls_total{method="prompts/get",result="passed_through"} 1',
        'toolgate_hot_path_calls_total{method="prompts/get",result="rebuilt"} 1',
        'toolgate_hot_path_calls_total{method="resources/read",result="passed_through"} 2',
    ]  # (echo, which settles the eras, is r_echo here: an unknown tool, answered the long way)
    results = [json.loads(body) for _, body in answers[True]]
    assert results[2]["result"]["messages"][0]["content"]["text"] == "Hello, Grace!"
    assert results[4]["error"]["message"] == "item error is broken"
    assert "stopped answering during resources/read 'fake://items/crash'" in results[5]["error"]["message"]

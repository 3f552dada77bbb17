"""A request that nothing could stream on is answered with one JSON body; anything else keeps its SSE stream.

Driven by hand over HTTP, as a client does, so the response's content type can be seen.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
import pytest

from gateway_core.frontend.json_answers import JSON_WINDOW_S
from gateway_core.gateway import HOT_PATH_ENV
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


async def test_a_2026_call_is_answered_with_one_json_body() -> None:
    async with running_gateway({"fake": stdio_fake(prefix="")}) as gw:
        await gw.wait_ready()
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {gw.tokens['agent-a']}"}, timeout=30) as http:
            meta = {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
                "io.modelcontextprotocol/clientCapabilities": {},
            }
            body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {**ECHO, "_meta": meta}}
            headers = {
                "Accept": ACCEPT,
                "MCP-Protocol-Version": "2026-07-28",
                "Mcp-Method": "tools/call",
                "Mcp-Name": "echo",
            }
            response = await http.post(gw.url, json=body, headers=headers)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["result"]["structuredContent"] == {"text": "hi"}

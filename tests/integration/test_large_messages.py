"""Messages of any size pass through Toolgate as they do directly: a 20 MiB result and a 20 MiB argument.

Each case runs the fake's ``blob`` (a result of N bytes) and ``measure`` (the length of an argument)
straight to the server and through the gateway, and compares the results whole. Downstream: stdio,
Streamable HTTP (handshake era, whose responses are SSE events; and a 2026-07-28-only server, whose
responses are JSON, or SSE once the call reports progress) and legacy SSE. Agents: Streamable HTTP
in both eras, with the gateway answering as an SSE event or as a JSON body (the response's
Content-Type is checked), and ``toolgate-shim``.

The agents' own SDK clients are built without the SDK's 1 MiB SSE event cap: that cap is the
agent's choice, the same directly and through Toolgate.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, Literal

import anyio
import httpx2
import mcp_types as types
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from gateway_core.downstream.legacy_sse import legacy_sse_client
from tests.fakes.launch import fake_command, serve_fake
from tests.integration.harness import Mode, running_gateway
from tests.integration.test_parity import wire

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
SIZE = 20 * 1024 * 1024
# The fake's own request body limit over HTTP, raised so that the direct path takes 20 MiB too.
FAKE_MAX_BODY = 64 * 1024 * 1024
# Each case moves 20 MiB through several hops (JSON, pydantic, SSE framing) on a loaded 2-core machine.
CASE_TIMEOUT_S = 60.0

Downstream = Literal["stdio", "http", "http-2026", "sse"]
# How the agent reaches Toolgate, and so how the gateway frames its answer to the call.
Agent = Literal[
    "http-legacy",
    "http-legacy-sse",
    "http-2026-json",
    "http-2026-sse",
    "shim-legacy",
    "shim-2026-json",
    "shim-2026-sse",
]


@contextmanager
def downstream_entry(kind: Downstream) -> Iterator[dict[str, Any]]:
    """The server's config entry (empty prefix, so names match directly), running while the block lasts."""
    if kind == "stdio":
        command, args = fake_command()
        yield {"command": command, "args": args, "prefix": ""}
        return
    extra = ("--modern-only",) if kind == "http-2026" else ()
    transport: Literal["http", "sse"] = "sse" if kind == "sse" else "http"
    with serve_fake(transport, "--max-body", str(FAKE_MAX_BODY), *extra) as fake:
        yield {"url": fake.url, "type": transport, "prefix": ""}


def era_of(agent: Agent, kind: Downstream) -> Mode:
    return "legacy" if "legacy" in agent and kind != "http-2026" else "2026-07-28"


def http_client(content_types: list[str], **options: Any) -> httpx2.AsyncClient:
    """An HTTP client that records the Content-Type of each response to a ``tools/call``."""

    async def record(response: httpx2.Response) -> None:
        if response.request.method == "POST" and json.loads(response.request.content).get("method") == "tools/call":
            content_types.append(response.headers.get("content-type", "").partition(";")[0])

    return httpx2.AsyncClient(timeout=httpx2.Timeout(30, read=60), event_hooks={"response": [record]}, **options)


@asynccontextmanager
async def direct_client(entry: dict[str, Any], mode: Mode) -> AsyncIterator[Client]:
    if "command" in entry:
        params = StdioServerParameters(command=entry["command"], args=entry["args"])
        async with Client(params, mode=mode, cache=None) as client:
            yield client
    elif entry["type"] == "sse":
        async with Client(legacy_sse_client(entry["url"], {}), mode=mode, cache=None) as client:
            yield client
    else:
        async with http_client([]) as http:
            transport = streamable_http_client(entry["url"], http_client=http, max_sse_event_size=None)
            async with Client(transport, mode=mode, cache=None) as client:
                yield client


@asynccontextmanager
async def agent_through(url: str, token: str, agent: Agent, mode: Mode, seen: list[str]) -> AsyncIterator[Client]:
    """The agent's client connected to the gateway at ``url``; Content-Types of its HTTP responses go to ``seen``."""
    if agent.startswith("shim"):
        params = StdioServerParameters(
            command=sys.executable,
            args=["-m", "gateway_core.shim", "--agent", "agent-a", "--url", url.removesuffix("/mcp")],
            env={"TOOLGATE_TOKEN": token},
            cwd=str(ROOT),
        )
        async with Client(params, mode=mode, cache=None) as client:
            yield client
        return
    async with http_client(seen, headers={"Authorization": f"Bearer {token}"}) as http:
        transport = streamable_http_client(url, http_client=http, max_sse_event_size=None)
        async with Client(transport, mode=mode, cache=None) as client:
            yield client


async def large_calls(client: Client, agent: Agent, seen: list[str]) -> tuple[list[Any], list[str]]:
    """A 20 MiB result and a 20 MiB argument, as on the wire; and the Content-Type each call was answered with."""

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        pass

    progress = on_progress if agent.endswith("sse") else None
    results: list[Any] = []
    framing: list[str] = []
    for name, arguments in (("blob", {"size": SIZE}), ("measure", {"data": "y" * SIZE})):
        before = len(seen)
        results.append(wire(await client.call_tool(name, arguments, progress_callback=progress)))
        framing += seen[before:]
    return results, framing


def case_id(value: Any) -> str:
    return str(value)


def expected_results() -> list[Any]:
    """What the fake answers, on the wire: ``SIZE`` bytes of text, and the length of a ``SIZE``-byte argument."""
    return [wire(types.CallToolResult(content=[types.TextContent(text=text)])) for text in ("x" * SIZE, str(SIZE))]


# Every downstream transport in both eras, each agent era answered the way a plain call is answered
# (a JSON body; in the handshake era a stream once it takes over a second), and a 2026-only server's SSE answer.
PARITY_CASES: list[tuple[Downstream, Agent]] = [
    *((kind, agent) for kind in ("stdio", "http", "sse") for agent in ("http-legacy", "http-2026-json")),
    ("http-2026", "http-2026-json"),
    ("http-2026", "http-2026-sse"),
]


@pytest.mark.parametrize(("kind", "agent"), PARITY_CASES, ids=case_id)
async def test_a_20_mib_result_and_a_20_mib_argument_pass_through_as_they_do_directly(
    kind: Downstream, agent: Agent
) -> None:
    with downstream_entry(kind) as entry, anyio.fail_after(CASE_TIMEOUT_S):
        mode = era_of(agent, kind)
        async with direct_client(entry, mode) as client:
            straight, _ = await large_calls(client, agent, [])
        async with running_gateway({"srv": entry}) as gw:
            await gw.wait_ready()
            seen: list[str] = []
            async with agent_through(gw.url, gw.tokens["agent-a"], agent, mode, seen) as client:
                through, framing = await large_calls(client, agent, seen)
            restarts = gw.status("srv").restarts

    assert through == straight == expected_results()
    if agent == "http-legacy":
        # A plain handshake-era call is answered with JSON if its result comes within JSON_WINDOW_S (1 s),
        # else with the long way's stream: 20 MiB on a loaded machine can take either.
        assert set(framing) <= {"application/json", "text/event-stream"} and len(framing) == 2
    else:
        assert framing == 2 * ["application/json" if agent == "http-2026-json" else "text/event-stream"]
    assert restarts == 0


# The other ways an agent is answered, from a stdio server: a call that reports progress, in either era
# (an SSE stream), and toolgate-shim in both eras, reading the gateway's SSE events and JSON bodies
# (the shim's requests are answered as the HTTP agents' are, whose Content-Types are checked above).
AGENT_CASES: list[Agent] = ["http-legacy-sse", "http-2026-sse", "shim-legacy", "shim-2026-json", "shim-2026-sse"]


@pytest.mark.parametrize("agent", AGENT_CASES)
async def test_a_20_mib_result_and_a_20_mib_argument_reach_every_kind_of_agent_whole(agent: Agent) -> None:
    with downstream_entry("stdio") as entry, anyio.fail_after(CASE_TIMEOUT_S):
        async with running_gateway({"srv": entry}) as gw:
            await gw.wait_ready()
            seen: list[str] = []
            async with agent_through(gw.url, gw.tokens["agent-a"], agent, era_of(agent, "stdio"), seen) as client:
                through, framing = await large_calls(client, agent, seen)

    assert through == expected_results()
    if agent.startswith("http") and agent.endswith("sse"):
        assert framing == 2 * ["text/event-stream"]

"""One agent cannot starve the others: its sessions, its requests in flight, slow connections."""

from __future__ import annotations

import functools
import json
import socket
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest

from gateway_core.errors import ErrorCode
from gateway_core.frontend import listen as listen_module
from gateway_core.frontend.slow_clients import GuardedHttpProtocol
from tests.integration.harness import RunningGateway, agent_client, running_gateway, stdio_fake
from tests.security.test_http_front import INITIALIZE, MCP_HEADERS

pytestmark = pytest.mark.anyio

WAIT_S = 20.0


def headers(token: str, **extra: str) -> dict[str, str]:
    return {**MCP_HEADERS, "Authorization": f"Bearer {token}", **extra}


async def open_sessions(gw: RunningGateway, agent: str, count: int) -> list[str]:
    """Initialize ``count`` sessions as ``agent`` and never end them, as a runaway agent does."""
    opened = []
    async with httpx2.AsyncClient(timeout=WAIT_S) as http:
        for _ in range(count):
            response = await http.post(gw.url, content=json.dumps(INITIALIZE), headers=headers(gw.tokens[agent]))
            assert response.status_code == 200, response.text
            opened.append(response.headers["mcp-session-id"])
    return opened


async def test_an_agent_opening_endless_sessions_loses_only_its_own_oldest_and_others_never_notice():
    async with running_gateway({"fake": stdio_fake()}, agents=("agent-a", "agent-b"), max_sessions_per_agent=5) as gw:
        await gw.wait_ready()
        async with agent_client(gw.url, gw.tokens["agent-b"]) as good:
            before = await good.call_tool("fake__echo", {"text": "before"})
            opened = await open_sessions(gw, "agent-a", 40)
            after = await good.call_tool("fake__echo", {"text": "after"})
            kept = gw.gateway.sessions_of("agent-a")
            async with httpx2.AsyncClient(timeout=WAIT_S) as http:
                ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
                oldest = await http.post(
                    gw.url, json=ping, headers=headers(gw.tokens["agent-a"], **{"Mcp-Session-Id": opened[0]})
                )
                newest = await http.post(
                    gw.url, json=ping, headers=headers(gw.tokens["agent-a"], **{"Mcp-Session-Id": opened[-1]})
                )

    assert before.structured_content == {"text": "before"} and after.structured_content == {"text": "after"}
    assert kept == opened[-5:]
    assert oldest.status_code == 404 and newest.status_code == 200


async def test_the_oldest_idle_session_goes_first_not_one_with_a_stream_open():
    async with running_gateway({"fake": stdio_fake()}, max_sessions_per_agent=2) as gw:
        await gw.wait_ready()
        async with agent_client(gw.url, gw.tokens["agent-a"]) as streaming:  # the SDK keeps its GET stream open
            await streaming.call_tool("fake__echo", {"text": "first"})
            idle = await open_sessions(gw, "agent-a", 2)
            still_there = await streaming.call_tool("fake__echo", {"text": "still here"})
            kept = gw.gateway.sessions_of("agent-a")

    assert still_there.structured_content == {"text": "still here"}
    assert idle[0] not in kept and idle[1] in kept and len(kept) == 2


async def test_an_agent_with_too_many_requests_in_flight_is_refused_with_429_and_others_keep_working():
    async with running_gateway({"fake": stdio_fake()}, agents=("agent-a", "agent-b"), max_requests_per_agent=2) as gw:
        await gw.wait_ready()
        async with (
            agent_client(gw.url, gw.tokens["agent-a"]) as busy,
            agent_client(gw.url, gw.tokens["agent-b"]) as good,
            anyio.create_task_group() as tg,
        ):
            running = 0
            both_running = anyio.Event()

            async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                nonlocal running
                running += 1  # the slow tool reports its first step as it starts
                if running == 2:
                    both_running.set()

            for _ in range(2):
                tg.start_soon(
                    functools.partial(busy.call_tool, "fake__slow", {"seconds": 120}, progress_callback=on_progress)
                )
            with anyio.fail_after(WAIT_S):
                await both_running.wait()
            in_flight = gw.gateway.requests_in_flight("agent-a")
            async with httpx2.AsyncClient(timeout=WAIT_S) as http:
                refused = await http.post(gw.url, content=json.dumps(INITIALIZE), headers=headers(gw.tokens["agent-a"]))
            served = await good.call_tool("fake__echo", {"text": "not starved"})
            tg.cancel_scope.cancel()

    assert in_flight == 2
    assert refused.status_code == 429
    error: dict[str, Any] = refused.json()["error"]
    assert error["code"] == ErrorCode.TOO_MANY_REQUESTS
    assert "agent 'agent-a'" in error["message"] and "gateway.max_requests_per_agent" in error["message"]
    assert served.structured_content == {"text": "not starved"}


def raw_connection(gw: RunningGateway) -> socket.socket:
    host, port = gw.base.removeprefix("http://").rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=WAIT_S)
    return sock


async def closed_by_gateway(sock: socket.socket) -> bool:
    """Whether the gateway closes ``sock`` (reads until EOF, bounded)."""

    def read_to_end() -> bool:
        try:
            while sock.recv(4096):
                pass
        except TimeoutError:
            return False
        except OSError:
            return True
        return True

    return await anyio.to_thread.run_sync(read_to_end)


async def test_connections_that_never_finish_their_headers_or_body_are_closed_and_others_are_served(monkeypatch):
    monkeypatch.setattr(GuardedHttpProtocol, "head_timeout_s", 0.5)
    monkeypatch.setattr(GuardedHttpProtocol, "body_idle_timeout_s", 0.5)
    async with running_gateway({"fake": stdio_fake()}) as gw:
        await gw.wait_ready()
        host = gw.base.removeprefix("http://")
        silent = [raw_connection(gw) for _ in range(20)]
        partial_head = [raw_connection(gw) for _ in range(20)]
        for sock in partial_head:
            sock.sendall(f"POST /mcp HTTP/1.1\r\nHost: {host}\r\nContent-Type: application".encode())
        stalled_body = raw_connection(gw)
        stalled_body.sendall(f"POST /mcp HTTP/1.1\r\nHost: {host}\r\nContent-Length: 1000\r\n\r\n{{".encode())
        async with agent_client(gw.url, gw.tokens["agent-a"]) as good:
            served = await good.call_tool("fake__echo", {"text": "served"})
        try:
            with anyio.fail_after(WAIT_S):
                closed = [await closed_by_gateway(sock) for sock in [*silent, *partial_head, stalled_body]]
        finally:
            for sock in [*silent, *partial_head, stalled_body]:
                sock.close()

    assert served.structured_content == {"text": "served"}
    assert all(closed)


async def test_beyond_the_connection_cap_the_gateway_answers_503_and_keeps_running(monkeypatch):
    monkeypatch.setattr(listen_module, "MAX_CONNECTIONS", 5)
    async with running_gateway({"fake": stdio_fake()}) as gw:
        await gw.wait_ready()
        held = [raw_connection(gw) for _ in range(5)]
        try:
            async with httpx2.AsyncClient(timeout=WAIT_S) as http:
                over = await http.get(gw.base + "/health")
        finally:
            for sock in held:
                sock.close()
        async with agent_client(gw.url, gw.tokens["agent-a"]) as good:
            served = await good.call_tool("fake__echo", {"text": "after"})

    assert over.status_code == 503
    assert served.structured_content == {"text": "after"}


async def _never_answer(context: Any, params: Any) -> Any:
    raise AssertionError("not asked: the agent drives its rounds itself and never comes back")


async def test_an_agent_that_never_answers_a_2026_servers_question_holds_up_no_other_agents_call():
    async with running_gateway(
        {"fake": stdio_fake("--modern-only", timeout_s=WAIT_S * 3)}, agents=("agent-a", "agent-b")
    ) as gw:
        await gw.wait_ready()
        async with (
            agent_client(gw.url, gw.tokens["agent-a"], mode="2026-07-28", elicitation_callback=_never_answer) as stuck,
            agent_client(gw.url, gw.tokens["agent-b"], elicitation_callback=_never_answer) as other,
        ):
            # agent-a gets the server's question as a round and never sends its retry.
            asked = await stuck.session.call_tool("fake__ask", {"who": "a"}, allow_input_required=True)
            with anyio.fail_after(WAIT_S):
                echoed = await other.call_tool("fake__echo", {"text": "not held up"})

    assert asked.input_requests
    assert echoed.structured_content == {"text": "not held up"}


@pytest.mark.parametrize("b_can_answer", [False, True])
async def test_a_call_whose_agent_is_slow_to_answer_a_question_holds_up_no_other_agents_call(b_can_answer: bool):
    asked, answer = anyio.Event(), anyio.Event()

    async def slow_person(context: Any, params: Any) -> Any:
        asked.set()
        with anyio.fail_after(WAIT_S):
            await answer.wait()
        return types.ElicitResult(action="accept", content={"name": "Ada"})

    b_options = {"elicitation_callback": _never_answer} if b_can_answer else {}
    async with running_gateway({"fake": stdio_fake()}, agents=("agent-a", "agent-b")) as gw:
        await gw.wait_ready()
        async with (
            agent_client(gw.url, gw.tokens["agent-a"], elicitation_callback=slow_person) as slow,
            agent_client(gw.url, gw.tokens["agent-b"], **b_options) as other,
            anyio.create_task_group() as tg,
        ):
            results: dict[str, Any] = {}

            async def ask() -> None:
                results["asked"] = await slow.call_tool("fake__ask", {"who": "a"})

            tg.start_soon(ask)
            with anyio.fail_after(WAIT_S):
                await asked.wait()
                echoed = await other.call_tool("fake__echo", {"text": "not held up"})
            answer.set()

    assert echoed.structured_content == {"text": "not held up"}
    assert results["asked"].content[0].text == "a got: Ada"

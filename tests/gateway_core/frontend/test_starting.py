"""The agent port before the gateway is built: `/health` at once, every other request held for the gateway.

A real HTTP server (the gateway's own uvicorn) on 127.0.0.1:0 serves a ``StartingApp``; a stand-in for the
gateway's app takes over, or never does.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import anyio
import httpx2
import pytest
from starlette.types import Receive, Scope, Send

from gateway_core.frontend.listen import EmbeddedUvicorn, bind
from gateway_core.frontend.starting import StartingApp

pytestmark = pytest.mark.anyio

WAIT_S = 10


class GatewayApp:
    """Stands in for the gateway's app: answers 299 with the path, so its answers are told apart."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.paths.append(scope["path"])
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": scope["path"].encode()})


@contextlib.asynccontextmanager
async def starting_port() -> AsyncIterator[tuple[StartingApp, EmbeddedUvicorn, str]]:
    """A port serving a ``StartingApp``; yields it, its server and its base URL."""
    sock = bind("127.0.0.1", 0)
    host, port = sock.getsockname()[:2]
    app = StartingApp(host, port, version="1.2.3")
    server = EmbeddedUvicorn.agent_port(app)
    with sock:
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.serve_until_exit, sock)
            await server.listening.wait()
            try:
                yield app, server, f"http://{host}:{port}"
            finally:
                app.close()
                server.should_exit = True


async def test_health_is_answered_before_the_gateway_takes_over_and_other_requests_wait_for_it():
    gateway = GatewayApp()
    async with starting_port() as (app, _, base), httpx2.AsyncClient(timeout=WAIT_S) as http:
        health = await http.get(f"{base}/health")
        held: dict[str, httpx2.Response] = {}

        async def call_mcp() -> None:
            held["mcp"] = await http.post(f"{base}/mcp", content=b"{}")

        async with anyio.create_task_group() as tg:
            tg.start_soon(call_mcp)
            with anyio.fail_after(WAIT_S):
                await app.wait_held(1)  # the request has reached the port and waits there
            assert "mcp" not in held and gateway.paths == []
            app.open(gateway)
        after = await http.get(f"{base}/health")

    assert health.status_code == 200
    assert health.json() == {"status": "ok", "version": "1.2.3"}
    assert held["mcp"].status_code == 299 and held["mcp"].text == "/mcp"
    assert after.status_code == 299  # once open, the gateway answers everything, /health too


@pytest.mark.parametrize(
    "headers",
    [{"Host": "evil.example"}, {"Origin": "http://evil.example"}],
    ids=["another Host", "an Origin"],
)
async def test_a_health_request_the_gateway_might_refuse_is_left_to_the_gateway(headers: dict[str, str]):
    gateway = GatewayApp()
    async with starting_port() as (app, _, base), httpx2.AsyncClient(timeout=WAIT_S) as http:
        async with anyio.create_task_group() as tg:
            answers: list[httpx2.Response] = []

            async def ask() -> None:
                answers.append(await http.get(f"{base}/health", headers=headers))

            tg.start_soon(ask)
            with anyio.fail_after(WAIT_S):
                await app.wait_held(1)
            app.open(gateway)

    assert answers[0].status_code == 299 and gateway.paths == ["/health"]


async def test_requests_held_when_the_gateway_never_takes_over_are_answered_503():
    async with starting_port() as (app, _, base), httpx2.AsyncClient(timeout=WAIT_S) as http:
        async with anyio.create_task_group() as tg:
            answers: list[httpx2.Response] = []

            async def call_mcp() -> None:
                answers.append(await http.post(f"{base}/mcp", content=b"{}"))

            tg.start_soon(call_mcp)
            with anyio.fail_after(WAIT_S):
                await app.wait_held(1)
            app.close()

    assert answers[0].status_code == 503
    assert "stopping" in answers[0].json()["error"]["message"]


class ScopeApp:
    """Answers with the client address and scheme the request's scope says it has."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = f"{scope['client'][0]} {scope['scheme']}".encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})


async def test_a_local_client_cannot_claim_another_address_or_scheme_with_forwarded_headers():
    async with starting_port() as (app, _, base), httpx2.AsyncClient(timeout=WAIT_S) as http:
        app.open(ScopeApp())
        forged = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
        answer = await http.get(f"{base}/mcp", headers=forged)

    assert answer.text == "127.0.0.1 http"

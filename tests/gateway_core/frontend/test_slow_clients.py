"""The agent port's HTTP protocol: a response's head leaves with its body, and a stream's head at once.

A real HTTP server (the gateway's own uvicorn and protocol) on 127.0.0.1:0 serves small ASGI apps; the
socket writes are observed where asyncio makes them.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from asyncio import selector_events
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx2
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway_core.frontend.listen import EmbeddedUvicorn, bind
from gateway_core.frontend.slow_clients import GuardedHttpProtocol

pytestmark = pytest.mark.anyio

WAIT_S = 10
BODY = b'{"jsonrpc":"2.0","id":1,"result":{}}'


async def answer(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers every request with ``BODY``, its length given, as the gateway answers a call with JSON."""
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": BODY})


@contextlib.asynccontextmanager
async def serving(app: ASGIApp, *, keep_alive_s: float | None = None) -> AsyncIterator[tuple[str, int]]:
    """The agent port's HTTP server serving ``app``; yields its host and port."""
    sock = bind("127.0.0.1", 0)
    host, port = sock.getsockname()[:2]
    server = EmbeddedUvicorn.agent_port(app)
    if keep_alive_s is not None:
        server.config.timeout_keep_alive = keep_alive_s  # type: ignore[assignment]
    with sock:
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.serve_until_exit, sock)
            await server.listening.wait()
            try:
                yield host, port
            finally:
                server.should_exit = True


@pytest.fixture
def socket_writes(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every write asyncio makes to a TCP socket from now on (the test client uses plain sockets or threads)."""
    writes: list[bytes] = []
    write = selector_events._SelectorSocketTransport.write

    def recording(self: Any, data: Any) -> None:
        writes.append(bytes(data))
        write(self, data)

    monkeypatch.setattr(selector_events._SelectorSocketTransport, "write", recording)
    return writes


def exchange(host: str, port: int, request: bytes, responses: int) -> bytes:
    """Send ``request`` on one connection and read until ``responses`` answers with ``BODY`` have come (bounded)."""
    with socket.create_connection((host, port), timeout=WAIT_S) as sock:
        sock.sendall(request)
        received = b""
        while received.count(BODY) < responses:
            part = sock.recv(65536)
            if not part:
                break
            received += part
        return received


async def test_an_answer_with_a_length_leaves_in_one_socket_write_head_and_body_together(socket_writes):
    async with serving(answer) as (host, port):
        request = f"POST /mcp HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: 0\r\n\r\n".encode()
        received = await anyio.to_thread.run_sync(exchange, host, port, request, 1)

    assert received.startswith(b"HTTP/1.1 200 OK\r\n") and received.endswith(b"\r\n\r\n" + BODY)
    assert socket_writes == [received]


async def test_pipelined_requests_are_answered_in_order_each_in_one_write(socket_writes):
    async with serving(answer) as (host, port):
        one = f"GET /a HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
        received = await anyio.to_thread.run_sync(exchange, host, port, one * 3, 3)

    assert received.count(b"HTTP/1.1 200 OK\r\n") == 3 and received.count(BODY) == 3
    assert len(socket_writes) == 3 and b"".join(socket_writes) == received


async def test_a_streams_head_reaches_the_client_before_its_first_event():
    first_event = anyio.Event()

    async def stream(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await first_event.wait()
        await send({"type": "http.response.body", "body": b"data: 1\r\n\r\n", "more_body": False})

    async with serving(stream) as (host, port), httpx2.AsyncClient(timeout=WAIT_S) as http:
        with anyio.fail_after(WAIT_S):
            async with http.stream("GET", f"http://{host}:{port}/") as response:
                status = response.status_code  # the head has come, the event not yet
                first_event.set()
                body = await response.aread()

    assert status == 200 and body == b"data: 1\r\n\r\n"


async def test_an_answer_without_a_body_to_write_still_reaches_the_client():
    async with serving(answer) as (host, port), httpx2.AsyncClient(timeout=WAIT_S) as http:
        with anyio.fail_after(WAIT_S):
            head = await http.head(f"http://{host}:{port}/")
            after = await http.get(f"http://{host}:{port}/")

    assert head.status_code == 200 and head.headers["content-length"] == str(len(BODY)) and head.content == b""
    assert after.content == BODY


def served_then_closed(host: str, port: int, request: bytes) -> tuple[bytes, bool]:
    """One request's answer on a new connection, then whether the gateway closes it while it sits idle (bounded)."""
    with socket.create_connection((host, port), timeout=WAIT_S) as sock:
        sock.sendall(request)
        received = b""
        while BODY not in received:
            received += sock.recv(65536)
        try:
            return received, sock.recv(65536) == b""
        except TimeoutError:
            return received, False


async def test_a_kept_alive_connection_left_idle_is_closed_after_the_keep_alive_time_without_a_word(caplog):
    caplog.set_level(logging.INFO, logger="gateway_core.frontend.slow_clients")
    async with serving(answer, keep_alive_s=0.2) as (host, port):
        request = f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
        received, closed = await anyio.to_thread.run_sync(served_then_closed, host, port, request)

    assert received.endswith(BODY) and closed
    assert not [record for record in caplog.records if "closed a connection" in record.getMessage()]


def served_then_blank_line(host: str, port: int, request: bytes) -> tuple[bytes, bool]:
    """One request's answer, then a blank line sent and nothing more: whether the gateway closes the connection."""
    with socket.create_connection((host, port), timeout=WAIT_S) as sock:
        sock.sendall(request)
        received = b""
        while BODY not in received:
            received += sock.recv(65536)
        sock.sendall(b"\r\n")
        try:
            return received, sock.recv(65536) == b""
        except TimeoutError:
            return received, False


async def test_a_kept_alive_connection_that_sends_a_blank_line_and_nothing_more_is_closed_in_the_head_time(
    monkeypatch, caplog
):
    caplog.set_level(logging.INFO, logger="gateway_core.frontend.slow_clients")
    monkeypatch.setattr(GuardedHttpProtocol, "head_timeout_s", 0.3)
    async with serving(answer, keep_alive_s=60) as (host, port):
        request = f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
        received, closed = await anyio.to_thread.run_sync(served_then_blank_line, host, port, request)

    assert received.endswith(BODY) and closed
    assert [record for record in caplog.records if "did not send its request headers" in record.getMessage()]

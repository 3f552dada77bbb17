"""The shim's bridge on its own, against a small real HTTP server on 127.0.0.1:0 (standard library)."""

from __future__ import annotations

import io
import json
import select
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from gateway_core.shim.bridge import Bridge, Output
from gateway_core.shim.wire import GatewayAddress, identity_proof

WAIT_S = 10.0
TOKEN = "tg_the-agents-token"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
}


class Gateway:
    """What the server saw, and how it answers: ``status`` for /mcp, ``key`` for the identity proof.

    ``keep_alive`` False answers like an HTTP/1.0 server: it closes each connection after one response.
    ``script`` says what to do with a request of an id the n-th time it comes (once used up: answer it):
    "hold" waits until the shim closes the connection (nothing is answered) or cancels the request on
    its session (answered -32800, as the SDK does); "drop" closes the connection without answering;
    "answer-then-close" answers as if keeping the connection alive, then closes it.
    Notifications are answered 202.
    """

    def __init__(
        self,
        status: int = 200,
        key: str | None = None,
        *,
        keep_alive: bool = True,
        script: dict[Any, list[str]] | None = None,
    ) -> None:
        self.status = status
        self.key = key
        self.keep_alive = keep_alive
        self.script = {request_id: list(steps) for request_id, steps in (script or {}).items()}
        self.seen: list[tuple[str, dict[str, str], bytes]] = []
        self.holding = threading.Event()
        self.closed = threading.Event()
        self.cancel_bell, self._cancel_ringer = socket.socketpair()

    def posts(self, **fields: Any) -> list[tuple[dict[str, str], dict[str, Any]]]:
        """The headers and JSON-RPC message of each POST to /mcp whose message has these fields."""
        posted = [(headers, json.loads(body)) for path, headers, body in self.seen if path == "/mcp"]
        return [(h, m) for h, m in posted if all(m.get(name) == value for name, value in fields.items())]

    def next_step(self, request_id: Any) -> str:
        steps = self.script.get(request_id)
        return steps.pop(0) if steps else "answer"

    def ring_cancel(self) -> None:
        self._cancel_ringer.send(b"!")

    def close(self) -> None:
        self.cancel_bell.close()
        self._cancel_ringer.close()


@contextmanager
def serving(gateway: Gateway) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            gateway.seen.append((self.path, dict(self.headers), body))
            if self.path == "/control/identity":
                nonce = json.loads(body)["nonce"]
                proof = identity_proof(gateway.key, nonce) if gateway.key else "0" * 64
                self._json(200, {"proof": proof})
            elif gateway.status != 200:
                self._json(gateway.status, {"jsonrpc": "2.0", "id": None, "error": {"code": -32003, "message": "no"}})
            elif "id" not in (message := json.loads(body)):
                if message.get("method") == "notifications/cancelled":
                    gateway.ring_cancel()
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()
            else:
                self._answer(message["id"], gateway.next_step(message["id"]))

        def _answer(self, request_id: Any, step: str) -> None:
            if step == "hold":
                gateway.holding.set()
                ready, _, _ = select.select([self.connection, gateway.cancel_bell], [], [], WAIT_S)
                if gateway.cancel_bell in ready:
                    gateway.cancel_bell.recv(1)
                    self._json(200, {"jsonrpc": "2.0", "id": request_id, "error": {"code": -32800, "message": "x"}})
                    return
                self.close_connection = True
            elif step == "drop":
                self.close_connection = True
            else:
                reply = {"jsonrpc": "2.0", "id": request_id, "result": {"protocolVersion": "2025-11-25"}}
                self._json(200, reply, {"Mcp-Session-Id": "s1"})
                if step == "answer-then-close":
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    gateway.closed.set()

        def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    Handler.protocol_version = "HTTP/1.1" if gateway.keep_alive else "HTTP/1.0"
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    # A short poll: shutdown() waits up to one poll interval.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(WAIT_S)
        gateway.close()


def run(endpoint: GatewayAddress, *lines: bytes) -> tuple[list[dict[str, Any]], list[str], Bridge]:
    """Feed ``lines`` to a bridge, wait (bounded) for the answers; the agent's messages, the log, the bridge."""
    out, log = io.BytesIO(), []
    bridge = Bridge(lambda: endpoint, TOKEN, "agent-a", Output(out), log.append)
    try:
        for line in lines:
            bridge.handle_line(line)
        bridge.finish(WAIT_S)
    finally:
        bridge.close()
    return [json.loads(line) for line in out.getvalue().splitlines()], log, bridge


def test_a_request_reaches_the_gateway_with_the_token_and_its_answer_reaches_the_agent():
    gateway = Gateway()
    with serving(gateway) as url:
        messages, _, _ = run(GatewayAddress.parse(url), json.dumps(INITIALIZE).encode())

    assert messages == [{"jsonrpc": "2.0", "id": 1, "result": {"protocolVersion": "2025-11-25"}}]
    path, headers, _ = gateway.seen[0]
    assert path == "/mcp" and headers["Authorization"] == f"Bearer {TOKEN}"


def test_a_refused_token_is_an_invalid_agent_error_and_a_hint_on_stderr():
    with serving(Gateway(status=401)) as url:
        messages, log, bridge = run(GatewayAddress.parse(url), json.dumps(INITIALIZE).encode())

    assert messages[0]["id"] == 1 and messages[0]["error"]["code"] == -32003
    assert bridge.rejected and "toolgate agents rotate agent-a" in log[0]


def test_lines_that_are_not_json_rpc_are_answered_by_the_shim_itself():
    with serving(Gateway()) as url:
        messages, _, _ = run(GatewayAddress.parse(url), b"{not json\n", b"[1, 2]\n", b'{"jsonrpc": "2.0"}\n')

    assert [m["error"]["code"] for m in messages] == [-32700, -32600, -32600]


def test_a_published_address_that_cannot_prove_it_is_toolgate_gets_no_token():
    impostor = Gateway(key=None)
    with serving(impostor) as url:
        messages, log, _ = run(GatewayAddress.parse(url, identity_key="the-real-key"), json.dumps(INITIALIZE).encode())

    assert messages[0]["error"]["code"] == -32001 and "is not the Toolgate" in messages[0]["error"]["message"]
    assert [path for path, _, _ in impostor.seen] == ["/control/identity"]
    assert all(TOKEN not in json.dumps(headers) + body.decode() for _, headers, body in impostor.seen)
    assert "token was not sent" in log[0]


def test_a_published_address_that_proves_it_is_toolgate_is_used():
    real = Gateway(key="the-real-key")
    with serving(real) as url:
        messages, _, _ = run(GatewayAddress.parse(url, identity_key="the-real-key"), json.dumps(INITIALIZE).encode())

    paths = [path for path, _, _ in real.seen]
    assert messages[0]["result"] == {"protocolVersion": "2025-11-25"}
    # Each connection the shim opens proves the gateway first (the bridge keeps more than one).
    assert paths[0] == "/control/identity" and paths.count("/mcp") == 1


def test_the_token_travels_only_on_the_connection_that_was_proven():
    closes_after_each_answer = Gateway(key="the-real-key", keep_alive=False)
    with serving(closes_after_each_answer) as url:
        messages, _, _ = run(GatewayAddress.parse(url, identity_key="the-real-key"), json.dumps(INITIALIZE).encode())

    assert messages[0]["error"]["code"] == -32001 and "closed the connection" in messages[0]["error"]["message"]
    assert [path for path, _, _ in closes_after_each_answer.seen] == ["/control/identity"]


MODERN_META = {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}


def call(request_id: int, *, modern: bool) -> bytes:
    params: dict[str, Any] = {"name": "fake__slow", "arguments": {}}
    if modern:
        params["_meta"] = MODERN_META
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}).encode()


def cancel(request_id: int) -> bytes:
    # As the SDK's client writes it in both eras: no `_meta`, so only the request it names tells the era.
    params = {"requestId": request_id, "reason": "the agent gave up"}
    return json.dumps({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": params}).encode()


@contextmanager
def bridge_to(url: str) -> Iterator[tuple[Bridge, io.BytesIO]]:
    out = io.BytesIO()
    bridge = Bridge(lambda: GatewayAddress.parse(url), TOKEN, "agent-a", Output(out), lambda line: None)
    try:
        yield bridge, out
    finally:
        bridge.close()


def received(out: io.BytesIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_cancelled_2026_request_is_sent_once_and_nothing_of_it_reaches_the_agent():
    gateway = Gateway(script={2: ["hold"]})
    with serving(gateway) as url, bridge_to(url) as (bridge, out):
        bridge.handle_line(call(1, modern=True))
        bridge.finish(WAIT_S)  # the worker keeps its connection alive for the next request
        bridge.handle_line(call(2, modern=True))
        assert gateway.holding.wait(WAIT_S)
        bridge.handle_line(cancel(2))
        bridge.finish(WAIT_S)

    assert [message["id"] for message in received(out)] == [1]
    assert len(gateway.posts(id=2)) == 1
    assert gateway.posts(method="notifications/cancelled") == []  # the 2026 HTTP wire has no notifications


def test_a_handshake_era_cancellation_goes_to_the_gateway_on_the_session_and_its_answer_to_the_agent():
    gateway = Gateway(script={2: ["hold"]})
    with serving(gateway) as url, bridge_to(url) as (bridge, out):
        bridge.handle_line(json.dumps(INITIALIZE).encode())
        bridge.finish(WAIT_S)
        bridge.handle_line(call(2, modern=False))
        assert gateway.holding.wait(WAIT_S)
        bridge.handle_line(cancel(2))
        bridge.finish(WAIT_S)

    messages = received(out)
    assert [message["id"] for message in messages] == [1, 2] and messages[1]["error"]["code"] == -32800
    [(headers, _)] = gateway.posts(method="notifications/cancelled")
    assert headers["Mcp-Session-Id"] == "s1"
    assert len(gateway.posts(method="initialize")) == 1  # the session goes on: no new one


def test_a_request_whose_connection_breaks_after_it_was_sent_is_not_sent_again():
    gateway = Gateway(script={2: ["drop"]})
    with serving(gateway) as url, bridge_to(url) as (bridge, out):
        bridge.handle_line(call(1, modern=True))
        bridge.finish(WAIT_S)  # so the next request goes out on a kept-alive connection
        bridge.handle_line(call(2, modern=True))
        bridge.finish(WAIT_S)

    reply = received(out)[1]
    assert reply["id"] == 2 and reply["error"]["code"] == -32001
    assert len(gateway.posts(id=2)) == 1


def test_a_kept_alive_connection_the_gateway_closed_is_replaced_before_the_next_request_is_sent():
    gateway = Gateway(script={1: ["answer-then-close"]})
    with serving(gateway) as url, bridge_to(url) as (bridge, out):
        bridge.handle_line(call(1, modern=True))
        bridge.finish(WAIT_S)
        assert gateway.closed.wait(WAIT_S)
        bridge.handle_line(call(2, modern=True))
        bridge.finish(WAIT_S)

    assert [(message["id"], "result" in message) for message in received(out)] == [(1, True), (2, True)]
    assert len(gateway.posts(id=2)) == 1


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("modern", [True, False], ids=["2026", "handshake-era"])
def test_a_request_cancelled_before_it_went_out_is_never_sent(modern: bool):
    gateway = Gateway()
    with serving(gateway) as url:
        where = [GatewayAddress.parse(f"http://127.0.0.1:{closed_port()}")]
        starting, cancelled = threading.Event(), threading.Event()

        def start_gateway() -> bool:
            # The worker is here with the request not sent yet: hold it until the agent has cancelled.
            starting.set()
            cancelled.wait(WAIT_S)
            where[0] = GatewayAddress.parse(url)
            return True

        out = io.BytesIO()
        bridge = Bridge(lambda: where[0], TOKEN, "agent-a", Output(out), lambda line: None, start_gateway)
        try:
            bridge.handle_line(call(2, modern=modern))
            assert starting.wait(WAIT_S)
            bridge.handle_line(cancel(2))
            cancelled.set()
            bridge.finish(WAIT_S)
        finally:
            bridge.close()

    assert received(out) == []
    assert gateway.posts(id=2) == []

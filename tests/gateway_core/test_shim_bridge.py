"""The shim's bridge on its own, against a small real HTTP server on 127.0.0.1:0 (standard library)."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

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
    """

    def __init__(self, status: int = 200, key: str | None = None, *, keep_alive: bool = True) -> None:
        self.status = status
        self.key = key
        self.keep_alive = keep_alive
        self.seen: list[tuple[str, dict[str, str], bytes]] = []


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
            else:
                request = json.loads(body)
                reply = {"jsonrpc": "2.0", "id": request["id"], "result": {"protocolVersion": "2025-11-25"}}
                self._json(200, reply, {"Mcp-Session-Id": "s1"})

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
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(WAIT_S)


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

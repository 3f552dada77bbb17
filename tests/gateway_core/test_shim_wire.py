from __future__ import annotations

import http.client
import io
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import cast

import pytest

from gateway_core.frontend import control
from gateway_core.paths import Paths
from gateway_core.shim import locate, wire
from gateway_core.shim.wire import GatewayAddress, encode_header_value, iter_sse, modern_headers
from gateway_core.token_files import TokenFiles


def test_the_shim_finds_the_same_state_folder_as_toolgate_under_toolgate_home(tmp_path: Path) -> None:
    environ = {"TOOLGATE_HOME": str(tmp_path)}

    assert locate.state_dir(environ) == Paths.from_env(environ).state_dir


@pytest.mark.skipif(sys.platform != "linux", reason="the XDG variables apply on Linux")
def test_the_shim_finds_the_same_state_folder_as_toolgate_without_toolgate_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TOOLGATE_HOME")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))

    assert locate.state_dir({"XDG_STATE_HOME": str(tmp_path / "state")}) == Paths.from_env().state_dir
    monkeypatch.delenv("XDG_STATE_HOME")
    assert locate.state_dir({}) == Paths.from_env().state_dir


def test_only_the_address_and_key_toolgate_published_are_used_never_a_default_port(tmp_path: Path) -> None:
    environ = {"TOOLGATE_HOME": str(tmp_path)}
    assert locate.published(environ) is None

    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "control.json").write_text('{"url": "http://127.0.0.1:5000", "token": "t", "pid": 1}')

    assert locate.published(environ) == ("http://127.0.0.1:5000", "t")


@pytest.mark.skipif(os.name == "nt", reason="symbolic links")
def test_a_control_file_that_is_a_link_is_not_trusted(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text('{"url": "http://127.0.0.1:5000", "token": "t", "pid": 1}')
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "control.json").symlink_to(elsewhere)

    assert locate.published({"TOOLGATE_HOME": str(tmp_path)}) is None


def test_the_shim_finds_the_token_file_toolgate_writes_for_an_agent(tmp_path: Path) -> None:
    paths = Paths.under(tmp_path)

    assert locate.token_file({"TOOLGATE_HOME": str(tmp_path)}, "cursor") == TokenFiles.of(paths).path("cursor")


def test_the_shims_identity_proof_is_the_gateways() -> None:
    assert wire.identity_proof("key", "nonce") == control.identity_proof(b"key", "nonce")
    assert wire.IDENTITY_PATH == control.IDENTITY_PATH and wire.IDENTITY_CONTEXT == control.IDENTITY_CONTEXT


@pytest.mark.parametrize("url", ["http://127.0.0.1:5000", "http://127.0.0.1:5000/", "http://127.0.0.1:5000/mcp"])
def test_a_gateway_url_is_accepted_with_or_without_the_mcp_path(url: str) -> None:
    endpoint = GatewayAddress.parse(url)

    assert (endpoint.base, endpoint.host, endpoint.port, endpoint.path) == (
        "http://127.0.0.1:5000",
        "127.0.0.1",
        5000,
        "/mcp",
    )


def test_a_2026_message_gets_the_routing_headers_the_gateway_checks() -> None:
    message = {
        "jsonrpc": "2.0",
        "id": 3,
        "method": "tools/call",
        "params": {"name": "fs__read", "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}},
    }

    assert modern_headers(message) == {
        "MCP-Protocol-Version": "2026-07-28",
        "Mcp-Method": "tools/call",
        "Mcp-Name": "fs__read",
    }


def test_a_handshake_era_message_gets_no_routing_headers() -> None:
    assert modern_headers({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": {}}}) is None


def test_a_name_that_cannot_travel_in_a_header_is_base64_wrapped_like_the_sdk_does() -> None:
    from mcp.shared.inbound import encode_header_value as sdk_encode

    for name in ("plain", "ünïcode", " padded ", "=?base64?x?="):
        assert encode_header_value(name) == sdk_encode(name)


def test_the_shim_imports_only_the_standard_library() -> None:
    import subprocess

    code = (
        "import sys; import gateway_core.shim; "
        "bad = [m for m in ('pydantic', 'mcp', 'platformdirs', 'gateway_core.paths', 'anyio') if m in sys.modules]; "
        "print(bad)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)

    assert done.stdout.strip() == "[]"


def test_a_priming_event_and_its_retry_field_are_skipped_and_the_messages_after_it_come_through() -> None:
    stream = (
        b"id: 1\r\nretry: 500\r\ndata: \r\n\r\n"  # SEP-1699 priming: an id to resume from, no message
        b": ping\r\n\r\n"
        b'event: message\r\nid: 2\r\ndata: {"jsonrpc":"2.0","method":"notifications/progress"}\r\n\r\n'
        b'id: 3\r\ndata: {"jsonrpc":"2.0",\r\ndata: "id":1,"result":{}}\r\n\r\n'
    )

    events = list(iter_sse(cast(http.client.HTTPResponse, io.BytesIO(stream))))

    assert events == [
        '{"jsonrpc":"2.0","method":"notifications/progress"}',
        '{"jsonrpc":"2.0",\n"id":1,"result":{}}',
    ]


class _OneEventAnswers(BaseHTTPRequestHandler):
    """Answers every POST with one SSE event in a body of known length (no chunks), keeping the connection."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        body = b'event: message\r\ndata: {"jsonrpc":"2.0","id":1,"error":{"code":-32800,"message":"c"}}\r\n\r\n'
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_after_an_event_stream_of_known_length_is_read_the_same_connection_carries_the_next_request() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _OneEventAnswers)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        endpoint = GatewayAddress(base=f"http://127.0.0.1:{port}", host="127.0.0.1", port=port, path="/mcp", tls=False)
        conn = wire.GatewayConnection(endpoint)
        answers = []
        for _ in range(2):
            conn.open(endpoint)
            answers.append(list(iter_sse(conn.send("POST", {"Content-Type": "application/json"}, b"{}"))))
        conn.abort()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)

    assert answers[0] == answers[1] == ['{"jsonrpc":"2.0","id":1,"error":{"code":-32800,"message":"c"}}']

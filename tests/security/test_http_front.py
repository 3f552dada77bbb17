"""The endpoint turns away bad Hosts, foreign Origins, unknown agents and bad bodies, and keeps serving good clients."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx2
import pytest
from mcp.shared.exceptions import MCPError

from gateway_core.downstream.base import ServerState
from gateway_core.errors import ErrorCode
from tests.fakes.launch import serve_fake
from tests.integration.harness import agent_client, running_gateway, stdio_fake, text_of

pytestmark = pytest.mark.anyio

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
}
MCP_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


async def post(
    url: str, *, token: str | None, body: bytes | AsyncIterator[bytes] | None = None, **headers: str
) -> httpx2.Response:
    sent = dict(MCP_HEADERS)
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    sent.update(headers)
    async with httpx2.AsyncClient(timeout=10) as http:
        return await http.post(url, content=body if body is not None else json.dumps(INITIALIZE).encode(), headers=sent)


async def test_bad_requests_are_refused_while_a_good_client_keeps_working():
    async with running_gateway({"fake": stdio_fake()}) as gw:
        await gw.wait_ready()
        token = gw.tokens["agent-a"]
        async with agent_client(gw.url, token) as good:
            assert (await good.call_tool("fake__echo", {"text": "before"})).structured_content == {"text": "before"}

            evil_host = await post(gw.url, token=token, Host="evil.example:80")
            wrong_port = await post(gw.url, token=token, Host="127.0.0.1:1")
            foreign_origin = await post(gw.url, token=token, Origin="http://localhost:5173")
            no_token = await post(gw.url, token=None)
            wrong_token = await post(gw.url, token="tg_not-a-real-token")
            garbage = await post(gw.url, token=token, body=b"{this is not json")

            assert (await good.call_tool("fake__echo", {"text": "after"})).structured_content == {"text": "after"}

    assert evil_host.status_code == 421
    assert wrong_port.status_code == 421
    assert foreign_origin.status_code == 403
    assert no_token.status_code == 401
    assert "toolgate agents add" in no_token.json()["error"]["message"]
    assert no_token.json()["error"]["code"] == ErrorCode.INVALID_AGENT
    assert wrong_token.status_code == 401
    assert garbage.status_code == 400
    for response in (evil_host, foreign_origin, no_token, garbage):
        assert "Traceback" not in response.text


async def test_a_body_over_the_configured_limit_is_refused_naming_the_setting_and_the_agent_keeps_working():
    async with running_gateway({"fake": stdio_fake()}, max_request_body_mb=1) as gw:
        await gw.wait_ready()
        token = gw.tokens["agent-a"]
        async with agent_client(gw.url, token) as agent:
            within = await agent.call_tool("fake__measure", {"data": "y" * (1024 * 1024 - 1024)})
            with pytest.raises(MCPError) as declared:
                await agent.call_tool("fake__measure", {"data": "y" * (1024 * 1024)})

            async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the body is counted as it comes
                yield b'{"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"pad": "'
                for _ in range(32):
                    yield b"y" * 64 * 1024
                yield b'"}}'

            streamed = await post(gw.url, token=token, body=chunks())
            after = await agent.call_tool("fake__measure", {"data": "after"})

    assert text_of(within) == str(1024 * 1024 - 1024)
    assert "gateway.max_request_body_mb" in declared.value.error.message
    assert streamed.status_code == 413
    assert streamed.json()["error"]["code"] == -32600
    assert "larger than the 1 MB" in streamed.json()["error"]["message"]
    assert text_of(after) == "5"


async def test_the_body_of_a_request_without_a_known_token_is_never_read():
    # Without a token nothing is buffered, whatever size a request announces: the answer comes at once.
    async with running_gateway({}) as gw:
        address = httpx2.URL(gw.url)
        head = (
            f"POST /mcp HTTP/1.1\r\nHost: {address.netloc.decode()}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {10**12}\r\n\r\n"
        )
        with anyio.fail_after(10):
            async with await anyio.connect_tcp(address.host, address.port) as stream:
                await stream.send(head.encode() + b"{")
                received = b""
                while b"\r\n\r\n" not in received:
                    received += await stream.receive()

    assert received.startswith(b"HTTP/1.1 401 ")


async def test_an_origin_listed_in_allowed_origins_is_accepted():
    async with running_gateway({}, allowed_origins=["http://localhost:5173"]) as gw:
        accepted = await post(gw.url, token=gw.tokens["agent-a"], Origin="http://localhost:5173")
        other = await post(gw.url, token=gw.tokens["agent-a"], Origin="http://localhost:5174")

    assert accepted.status_code == 200
    assert other.status_code == 403


async def test_the_gateways_own_loopback_origin_is_accepted_and_other_ports_are_not():
    async with running_gateway({}) as gw:
        port = gw.url.split(":")[2].split("/")[0]
        own = await post(gw.url, token=gw.tokens["agent-a"], Origin=f"http://127.0.0.1:{port}")
        own_by_name = await post(gw.url, token=gw.tokens["agent-a"], Origin=f"http://localhost:{port}")
        next_port = await post(gw.url, token=gw.tokens["agent-a"], Origin=f"http://127.0.0.1:{int(port) + 1}")
        https = await post(gw.url, token=gw.tokens["agent-a"], Origin=f"https://127.0.0.1:{port}")

    assert own.status_code == 200
    assert own_by_name.status_code == 200
    assert next_port.status_code == 403
    assert https.status_code == 403


async def test_an_agent_cannot_use_another_agents_session():
    async with running_gateway({}, agents=("agent-a", "agent-b")) as gw:
        opened = await post(gw.url, token=gw.tokens["agent-a"])
        session = opened.headers["mcp-session-id"]
        ping = json.dumps({"jsonrpc": "2.0", "id": 2, "method": "ping"}).encode()
        hijack = await post(
            gw.url,
            token=gw.tokens["agent-b"],
            body=ping,
            **{"Mcp-Session-Id": session, "Mcp-Protocol-Version": "2025-11-25"},
        )

    assert opened.status_code == 200
    assert hijack.status_code == 404


async def test_health_ready_and_metrics_need_no_token_and_reveal_no_arguments():
    async with running_gateway({"fake": stdio_fake()}) as gw:
        await gw.wait_ready()
        async with agent_client(gw.url, gw.tokens["agent-a"]) as client:
            await client.call_tool("fake__echo", {"text": "secret-looking-argument"})
        async with httpx2.AsyncClient(timeout=10) as http:
            health = await http.get(f"{gw.base}/health")
            ready = await http.get(f"{gw.base}/ready")
            metrics = await http.get(f"{gw.base}/metrics")
            evil = await http.get(f"{gw.base}/health", headers={"Host": "evil.example"})

    assert health.status_code == 200 and health.json()["status"] == "ok" and health.json()["version"]
    assert ready.status_code == 200 and ready.json()["servers"] == {"fake": "ready"}
    assert 'toolgate_tool_calls_total{agent="agent-a",server="fake",outcome="ok"} 1' in metrics.text
    assert 'toolgate_server_state{server="fake",state="ready"} 1' in metrics.text
    assert "toolgate_audit_healthy 1" in metrics.text
    assert "secret-looking-argument" not in metrics.text
    assert gw.tokens["agent-a"] not in metrics.text
    assert evil.status_code == 421


async def test_ready_answers_503_until_every_enabled_server_was_tried():
    silent = {"command": sys.executable, "args": ["-c", "import sys; sys.stdin.read()"], "timeout_s": 1}
    async with running_gateway({"silent": silent}) as gw:
        async with httpx2.AsyncClient(timeout=10) as http:
            early = await http.get(f"{gw.base}/ready")
            await gw.wait_state("silent", ServerState.FAILED)
            later = await http.get(f"{gw.base}/ready")

    assert early.status_code == 503
    assert later.status_code == 200


async def send_raw(url: str, headers: list[tuple[str, str]], body: bytes) -> tuple[int, dict[str, Any]]:
    """Send one HTTP/1.1 POST exactly as given (repeated headers included); its status and JSON body."""
    address = httpx2.URL(url)
    lines = [f"POST {address.path} HTTP/1.1", *(f"{name}: {value}" for name, value in headers)]
    lines += [f"Content-Length: {len(body)}", "Connection: close", "", ""]
    with anyio.fail_after(10):
        async with await anyio.connect_tcp(address.host, address.port) as stream:
            await stream.send("\r\n".join(lines).encode() + body)
            received = b""
            with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError):
                while True:
                    received += await stream.receive()
    head, _, payload = received.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(payload)


async def test_a_request_with_two_host_origin_or_authorization_headers_is_refused():
    async with running_gateway({"fake": stdio_fake()}, agents=("agent-a", "agent-b")) as gw:
        await gw.wait_ready()
        host = httpx2.URL(gw.url).netloc.decode()
        token_a, token_b = gw.tokens["agent-a"], gw.tokens["agent-b"]
        usual = [("Content-Type", "application/json"), ("Accept", "application/json, text/event-stream")]
        doubled = {
            "Host": [("Host", "evil.example:80"), ("Host", host), ("Authorization", f"Bearer {token_a}")],
            "Origin": [
                ("Host", host),
                ("Origin", "http://evil.example"),
                ("Origin", f"http://{host}"),
                ("Authorization", f"Bearer {token_a}"),
            ],
            "Authorization": [
                ("Host", host),
                ("Authorization", f"Bearer {token_a}"),
                ("Authorization", f"Bearer {token_b}"),
            ],
        }
        async with agent_client(gw.url, token_a) as good:
            answers = {
                name: await send_raw(gw.url, [*usual, *headers], json.dumps(INITIALIZE).encode())
                for name, headers in doubled.items()
            }
            assert (await good.call_tool("fake__echo", {"text": "still"})).structured_content == {"text": "still"}

    for name, (status, body) in answers.items():
        assert status == 400, name
        assert f"more than one {name} header" in body["error"]["message"]


ECHO_2026 = json.dumps(
    {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "tools/call",
        "params": {
            "name": "echo",
            "arguments": {"text": "padded"},
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {},
                "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "0"},
            },
        },
    }
).encode()


def routing_headers(url: str, mcp_name: str, *extra: tuple[str, str]) -> list[tuple[str, str]]:
    """A 2026-07-28 tools/call's headers, with ``Mcp-Name`` sent exactly as given."""
    return [
        ("Host", httpx2.URL(url).netloc.decode()),
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
        ("MCP-Protocol-Version", "2026-07-28"),
        ("Mcp-Method", "tools/call"),
        ("Mcp-Name", mcp_name),
        *extra,
    ]


def without_server_info(answer: tuple[int, dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    status, body = answer
    body.get("result", {}).get("_meta", {}).pop("io.modelcontextprotocol/serverInfo", None)
    return status, body


async def test_whitespace_around_a_header_value_is_not_part_of_it_so_a_padded_mcp_name_is_accepted():
    # RFC 9110 §5.5 (the conformance suite's sep-2243-server-accepts-whitespace-header-value). The
    # SDK's own server, behind uvicorn's httptools parser, refuses these with -32020; it is compared
    # here with the unpadded header, which it accepts.
    with serve_fake("http") as fake:
        direct = without_server_info(await send_raw(fake.url, routing_headers(fake.url, "echo"), ECHO_2026))
    async with running_gateway({"srv": {**stdio_fake(), "prefix": ""}}) as gw:
        await gw.wait_ready()
        auth = ("Authorization", f"Bearer {gw.tokens['agent-a']}")
        through = {
            padded: without_server_info(await send_raw(gw.url, routing_headers(gw.url, padded, auth), ECHO_2026))
            for padded in ("  echo  ", "echo ", "\techo\t ")
        }
        wrong = await send_raw(gw.url, routing_headers(gw.url, "ec ho", auth), ECHO_2026)

    assert direct[0] == 200 and direct[1]["result"]["structuredContent"] == {"text": "padded"}
    assert through == dict.fromkeys(through, direct)
    assert wrong[0] == 400 and wrong[1]["error"]["code"] == -32020


async def asgi_get(app: Any, path: str, headers: list[tuple[bytes, bytes]]) -> tuple[int, bytes]:
    """``app``'s answer to a GET handed to it as an ASGI server would, outside the agent port's protocol."""
    scope = {"type": "http", "method": "GET", "path": path, "headers": headers, "query_string": b""}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent[0]["status"], b"".join(message.get("body", b"") for message in sent[1:])


async def test_a_request_served_outside_the_agent_ports_protocol_has_its_header_values_read_without_padding():
    async with running_gateway({"fake": stdio_fake()}) as gw:
        await gw.wait_ready()
        app = gw.gateway._http_app
        host = gw.base.removeprefix("http://").encode()
        padded = await asgi_get(app, "/health", [(b"host", b" \t" + host + b"\t ")])
        plain = await asgi_get(app, "/health", [(b"host", host)])
        wrong = await asgi_get(app, "/health", [(b"host", b" evil.example:80 ")])

    assert padded[0] == plain[0] == 200 and json.loads(padded[1])["status"] == "ok"
    assert wrong[0] == 421

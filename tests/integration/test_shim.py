"""toolgate-shim end to end: a real gateway, the real shim subprocess, and an SDK client on its stdio."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError
from mcp.types import TextContent, ToolListChangedNotification

from gateway_core.agents import AgentDirectory
from gateway_core.config import load_config
from gateway_core.frontend.listen import bind
from gateway_core.gateway import Gateway
from gateway_core.paths import Paths
from gateway_core.secrets import open_secret_store, resolve
from tests.fakes.launch import serve_fake
from tests.integration.harness import BOTH_ERAS, Mode, RunningGateway, StderrLog, running_gateway, stdio_fake

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
WAIT_S = 30.0


def shim_params(base: str, token: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "gateway_core.shim", "--agent", "agent-a", "--url", base],
        env={"TOOLGATE_TOKEN": token},
        cwd=str(ROOT),
    )


def shim_client(base: str, token: str, mode: Mode = "legacy", **options: Any) -> Client:
    return Client(shim_params(base, token), mode=mode, cache=None, **options)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def only_mcp_error(exc: BaseException) -> MCPError:
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    assert isinstance(exc, MCPError), exc
    return exc


def echo_text(result: Any) -> str:
    content = result.content[0]
    assert isinstance(content, TextContent)
    return content.text


@asynccontextmanager
async def raw_shim(base: str, token: str) -> AsyncIterator[anyio.abc.Process]:
    process = await anyio.open_process(
        [sys.executable, "-m", "gateway_core.shim", "--agent", "agent-a", "--url", base],
        env={**os.environ, "TOOLGATE_TOKEN": token},
        cwd=str(ROOT),
    )
    async with process:
        try:
            yield process
        finally:
            if process.returncode is None:
                process.kill()


async def read_message(process: anyio.abc.Process, buffer: bytearray) -> dict[str, Any]:
    assert process.stdout is not None
    with anyio.fail_after(WAIT_S):
        while b"\n" not in buffer:
            buffer.extend(await process.stdout.receive())
    line, _, rest = bytes(buffer).partition(b"\n")
    buffer[:] = rest
    message: dict[str, Any] = json.loads(line)
    return message


INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}},
}


@pytest.mark.parametrize("mode", BOTH_ERAS)
async def test_an_agent_lists_and_calls_tools_through_the_shim(mode: Mode) -> None:
    async with running_gateway({"fake": stdio_fake()}) as gw:
        await gw.wait_ready()
        async with shim_client(gw.base, gw.tokens["agent-a"], mode) as client:
            tools = await client.list_tools()
            result = await client.call_tool("fake__echo", {"text": "hi"})
            version = client.protocol_version

        assert version == ("2025-11-25" if mode == "legacy" else "2026-07-28")
        assert "fake__echo" in {tool.name for tool in tools.tools}
        assert echo_text(result) == "hi"


@pytest.mark.parametrize("mode", BOTH_ERAS)
async def test_progress_notifications_reach_the_agent(mode: Mode) -> None:
    seen: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    async with running_gateway({"fake": stdio_fake()}) as gw:
        await gw.wait_ready()
        async with shim_client(gw.base, gw.tokens["agent-a"], mode) as client:
            with anyio.fail_after(WAIT_S):
                await client.call_tool("fake__slow", {"seconds": 0.1, "steps": 3}, progress_callback=on_progress)

    assert seen == [1, 2, 3]


async def test_a_tool_list_change_reaches_a_legacy_agent() -> None:
    changed = anyio.Event()

    async def on_message(message: Any) -> None:
        if isinstance(message, ToolListChangedNotification):
            changed.set()

    async with running_gateway({"fake": stdio_fake()}) as gw:
        await gw.wait_ready()
        async with shim_client(gw.base, gw.tokens["agent-a"], message_handler=on_message) as client:
            await client.call_tool("fake__add_tool", {"name": "extra"})
            with anyio.fail_after(WAIT_S):
                await changed.wait()
            tools = await client.list_tools()

    assert "fake__extra" in {tool.name for tool in tools.tools}


@pytest.mark.parametrize("mode", BOTH_ERAS)
async def test_a_bad_token_gives_the_agent_an_invalid_agent_error(mode: Mode) -> None:
    async with running_gateway({"fake": stdio_fake()}) as gw:
        with pytest.raises(BaseException) as raised:  # noqa: PT011 - the SDK wraps it in exception groups
            async with shim_client(gw.base, "not-a-token", mode) as client:
                await client.list_tools()

    error = only_mcp_error(raised.value)
    assert error.error.code == -32003
    assert "toolgate agents add agent-a" in error.error.message


async def test_a_bad_token_is_explained_on_stderr_and_the_exit_code_is_non_zero() -> None:
    async with running_gateway({}) as gw:
        done = await anyio.to_thread.run_sync(
            lambda: subprocess.run(
                [sys.executable, "-m", "gateway_core.shim", "--agent", "agent-a", "--url", gw.base],
                input=json.dumps(INITIALIZE) + "\n",
                capture_output=True,
                text=True,
                env={**os.environ, "TOOLGATE_TOKEN": "wrong"},
                cwd=str(ROOT),
                timeout=WAIT_S,
            )
        )

    assert done.returncode != 0
    assert json.loads(done.stdout)["error"]["code"] == -32003
    assert "toolgate agents rotate agent-a" in done.stderr
    assert "TOOLGATE_TOKEN" in done.stderr


async def test_when_toolgate_is_not_running_the_first_request_gets_server_unavailable() -> None:
    port = closed_port()
    async with raw_shim(f"http://127.0.0.1:{port}", "token") as process:
        assert process.stdin is not None and process.stderr is not None
        await process.stdin.send(json.dumps(INITIALIZE).encode() + b"\n")
        reply = await read_message(process, bytearray())
        await process.stdin.aclose()
        with anyio.fail_after(WAIT_S):
            await process.wait()
            stderr = (await process.stderr.receive()).decode()

    assert reply["id"] == 1
    assert reply["error"]["code"] == -32001
    assert f"Toolgate is not running at http://127.0.0.1:{port}" in stderr


async def test_a_malformed_line_gets_a_parse_error_and_the_shim_keeps_serving() -> None:
    async with running_gateway({}) as gw, raw_shim(gw.base, gw.tokens["agent-a"]) as process:
        assert process.stdin is not None
        buffer = bytearray()
        await process.stdin.send(b"this is not json\n")
        parse_error = await read_message(process, buffer)
        await process.stdin.send(json.dumps(INITIALIZE).encode() + b"\n")
        initialized = await read_message(process, buffer)

    assert parse_error == {"jsonrpc": "2.0", "id": None, "error": parse_error["error"]}
    assert parse_error["error"]["code"] == -32700
    assert initialized["id"] == 1
    assert initialized["result"]["protocolVersion"] == "2025-11-25"


async def test_the_shim_exits_promptly_when_stdin_closes() -> None:
    async with running_gateway({}) as gw, raw_shim(gw.base, gw.tokens["agent-a"]) as process:
        assert process.stdin is not None
        await process.stdin.send(json.dumps(INITIALIZE).encode() + b"\n")
        await read_message(process, bytearray())
        await process.stdin.send(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
        await process.stdin.aclose()
        with anyio.fail_after(10):
            code = await process.wait()

    assert code == 0


@asynccontextmanager
async def gateway_on_port(paths: Paths, port: int) -> AsyncIterator[RunningGateway]:
    """A gateway from the config and tokens an earlier ``running_gateway`` left in ``paths``."""
    store = open_secret_store(paths)
    directory = AgentDirectory(paths.config_file, store)
    gateway = Gateway(
        load_config(paths.config_file),
        resolve=lambda values: resolve(values, store),
        read_tokens=directory.read_tokens,
        paths=paths,
        config_path=paths.config_file,
    )
    with bind("127.0.0.1", port) as sock:
        async with anyio.create_task_group() as tg:
            endpoint = await tg.start(gateway.run, sock)
            try:
                yield RunningGateway(gateway, endpoint, {}, paths, StderrLog())
            finally:
                gateway.stop()


async def hold(
    open_gateway: Callable[[], AbstractAsyncContextManager[RunningGateway]],
    stop: anyio.Event,
    *,
    task_status: anyio.abc.TaskStatus[RunningGateway],
) -> None:
    async with open_gateway() as gw:
        await gw.wait_ready()
        task_status.started(gw)
        await stop.wait()


@pytest.mark.parametrize("mode", BOTH_ERAS)
async def test_after_toolgate_restarts_the_agents_next_call_works(mode: Mode) -> None:
    async with anyio.create_task_group() as tg:
        first_stop, first_done = anyio.Event(), anyio.Event()

        async def first(*, task_status: anyio.abc.TaskStatus[RunningGateway]) -> None:
            await hold(lambda: running_gateway({"fake": stdio_fake()}), first_stop, task_status=task_status)
            first_done.set()

        gw: RunningGateway = await tg.start(first)
        port = int(gw.base.rsplit(":", 1)[1])
        async with shim_client(gw.base, gw.tokens["agent-a"], mode) as client:
            before = await client.call_tool("fake__echo", {"text": "before"})
            first_stop.set()
            with anyio.fail_after(WAIT_S):
                await first_done.wait()
            second_stop = anyio.Event()
            await tg.start(hold, lambda: gateway_on_port(gw.paths, port), second_stop)
            with anyio.fail_after(WAIT_S):
                after = await client.call_tool("fake__echo", {"text": "after"})
            second_stop.set()

    assert echo_text(before) == "before"
    assert echo_text(after) == "after"


async def test_a_server_to_client_ping_reaches_the_agent_and_its_answer_goes_back():
    # The shim is generic: in front of an SDK server over HTTP it must carry the server's request to
    # the agent and the agent's answer back (the gateway forwards such requests with issue 6).
    with serve_fake("http") as server:
        base = server.url.removesuffix("/mcp")
        async with shim_client(base, "unused-by-the-fake") as client:
            with anyio.fail_after(WAIT_S):
                result = await client.call_tool("ping_client", {})

    assert echo_text(result) == "the client answered"


@pytest.mark.parametrize("mode", BOTH_ERAS)
async def test_a_servers_elicitation_and_sampling_reach_the_agent_through_the_shim(mode: Mode) -> None:
    questions: list[str] = []

    async def elicit(context: Any, params: Any) -> types.ElicitResult:
        questions.append(params.message)
        return types.ElicitResult(action="accept", content={"name": "Shimmy"})

    async def sample(context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        return types.CreateMessageResult(role="assistant", content=TextContent(text="sampled via shim"), model="m")

    async with running_gateway({"fake": stdio_fake()}) as gw:
        await gw.wait_ready()
        async with shim_client(
            gw.base, gw.tokens["agent-a"], mode, elicitation_callback=elicit, sampling_callback=sample
        ) as client:
            with anyio.fail_after(WAIT_S):
                asked = await client.call_tool("fake__ask", {"who": "shim"})
                sampled = await client.call_tool("fake__sample", {"prompt": "p"})

    assert echo_text(asked) == "shim got: Shimmy"
    assert echo_text(sampled) == "sampled: sampled via shim"
    assert questions == ["Question for shim: your name?"]


def a_home_with_agent_a(toolgate_home: Path) -> tuple[Paths, str]:
    """A Toolgate home (port 0, the fake server) with agent-a allowed everything; and agent-a's token."""
    paths = Paths.from_env(os.environ)
    (toolgate_home / "config.json").write_text(json.dumps({"gateway": {"port": 0}, "servers": {"fake": stdio_fake()}}))
    token = AgentDirectory(paths.config_file, open_secret_store(paths)).add("agent-a")
    config = json.loads(paths.config_file.read_text())
    config["agents"]["agent-a"]["default"] = "allow"
    paths.config_file.write_text(json.dumps(config))
    return paths, token


def shim_finding_its_gateway(toolgate_home: Path, token: str) -> StdioServerParameters:
    """The shim as an IDE starts it: no --url, so it uses what the Toolgate of ``toolgate_home`` published."""
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "gateway_core.shim", "--agent", "agent-a"],
        env={
            "TOOLGATE_TOKEN": token,
            "TOOLGATE_HOME": str(toolgate_home),
            "PYTHON_KEYRING_BACKEND": os.environ["PYTHON_KEYRING_BACKEND"],
        },
        cwd=str(ROOT),
    )


@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="waits for the detached gateway with a Linux pidfd")
async def test_a_shim_started_while_toolgate_is_down_starts_toolgate_and_proceeds(toolgate_home: Path):
    paths, token = a_home_with_agent_a(toolgate_home)
    control = paths.state_dir / "control.json"
    try:
        with anyio.fail_after(WAIT_S):
            async with Client(shim_finding_its_gateway(toolgate_home, token), mode="legacy", cache=None) as client:
                server_name = client.server_info.name
                await client.list_tools()
        started_gateway = json.loads(control.read_text())["pid"]
    finally:
        if control.exists():
            await stop_process(json.loads(control.read_text())["pid"])

    assert server_name == "toolgate"
    assert started_gateway != os.getpid()
    assert not control.exists()


@asynccontextmanager
async def squatter() -> AsyncIterator[tuple[str, list[bytes]]]:
    """An HTTP server on 127.0.0.1:0 that records each request's head and body and answers 200 to all."""
    received: list[bytes] = []

    async def serve(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            data = b""
            with anyio.move_on_after(WAIT_S):
                while b"\r\n\r\n" not in data:
                    data += await stream.receive()
                head, _, body = data.partition(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                while len(body) < length:
                    body += await stream.receive()
                received.append(head + b"\r\n\r\n" + body)
                answer = b'{"proof": "' + b"0" * 64 + b'", "result": {}}'
                await stream.send(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                    + f"Content-Length: {len(answer)}\r\n\r\n".encode()
                    + answer
                )

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, serve)
        try:
            yield f"http://127.0.0.1:{port}", received
        finally:
            tg.cancel_scope.cancel()


async def stop_process(pid: int) -> None:
    """SIGTERM a process that is not our child and wait, bounded, until it has exited."""
    pidfd = os.pidfd_open(pid)
    try:
        os.kill(pid, signal.SIGTERM)
        with anyio.fail_after(WAIT_S):
            await anyio.wait_readable(pidfd)
    finally:
        os.close(pidfd)

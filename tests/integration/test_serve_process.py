"""`toolgate serve` as a person runs it: a real process, real signals, real ports."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import anyio
import httpx2
import mcp_types as types
import pytest
from mcp import Client

from tests.fakes.launch import LineReader, fake_command, read_first_line, wait_until_gone
from tests.integration.harness import agent_client

pytestmark = pytest.mark.anyio

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0


def toolgate(*args: str) -> list[str]:
    return [sys.executable, "-m", "gateway_core.cli", *args]


def write_config(home: Path, servers: dict[str, object], port: int = 0) -> None:
    (home / "config.json").write_text(json.dumps({"gateway": {"port": port}, "servers": servers}))


def add_agent(agent_id: str, home: Path, default: str = "allow") -> str:
    done = subprocess.run(toolgate("agents", "add", agent_id), capture_output=True, text=True, timeout=60, check=True)
    config = json.loads((home / "config.json").read_text())
    config["agents"][agent_id]["default"] = default
    (home / "config.json").write_text(json.dumps(config))
    return done.stdout.strip()


@contextmanager
def serving(*args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Start `toolgate serve` and yield it with the endpoint URL it printed."""
    process = subprocess.Popen(toolgate("serve", *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = read_first_line(process, START_TIMEOUT_S)
        assert line.startswith("Toolgate is serving MCP at "), (line, process.poll())
        yield process, line.split()[-1]
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=STOP_TIMEOUT_S)


@asynccontextmanager
async def client_seeing(url: str, token: str, tool: str) -> AsyncIterator[Client]:
    """A client connected once the gateway lists ``tool`` (its server may still be starting)."""
    changed = anyio.Event()

    async def on_message(message: object) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            changed.set()

    async with agent_client(url, token, message_handler=on_message) as client:
        with anyio.fail_after(START_TIMEOUT_S):
            while tool not in {t.name for t in (await client.list_tools()).tools}:
                await changed.wait()
                changed = anyio.Event()
        yield client


def parent_of(pid: int) -> int:
    if not Path("/proc/self/stat").exists():  # macOS
        return int(subprocess.run(["ps", "-o", "ppid=", "-p", str(pid)], capture_output=True, text=True).stdout)
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def is_gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"  # a zombie has ended; only its exit status is left


# Logged once the port is taken, before the gateway listens on it.
PORT_TAKEN_LINE = "stdio servers get the PATH of"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def starting(port: int) -> Iterator[tuple[subprocess.Popen[str], str, LineReader]]:
    """`toolgate serve` on ``port``, yielded as soon as the port is taken (before it prints its endpoint)."""
    process = subprocess.Popen(toolgate("serve"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    log = LineReader(process.stderr)
    try:
        log.wait_for(PORT_TAKEN_LINE, START_TIMEOUT_S)
        yield process, f"http://127.0.0.1:{port}", log
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(STOP_TIMEOUT_S)
        log.wait_closed(STOP_TIMEOUT_S)


async def test_an_agent_that_connects_as_soon_as_health_answers_is_served(toolgate_home: Path):
    command, args = fake_command()
    port = free_port()
    write_config(toolgate_home, {"fake": {"command": command, "args": args}}, port)
    token = add_agent("early", toolgate_home)
    with starting(port) as (process, base, _):
        async with httpx2.AsyncClient(timeout=START_TIMEOUT_S) as http:
            health = await http.get(f"{base}/health")
        async with client_seeing(f"{base}/mcp", token, "fake__echo") as client:
            echoed = await client.call_tool("fake__echo", {"text": "early"})
        process.send_signal(signal.SIGTERM)
        code = process.wait(STOP_TIMEOUT_S)

    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert echoed.structured_content == {"text": "early"}
    assert code == 0


@pytest.mark.skipif(sys.platform == "win32", reason="uses POSIX signals")
async def test_a_sigterm_as_soon_as_health_answers_stops_serve_cleanly(toolgate_home: Path):
    port = free_port()
    write_config(toolgate_home, {}, port)
    with starting(port) as (process, base, log):
        async with httpx2.AsyncClient(timeout=START_TIMEOUT_S) as http:
            health = await http.get(f"{base}/health")
        process.send_signal(signal.SIGTERM)  # most likely while the gateway is still being built
        code = process.wait(STOP_TIMEOUT_S)

    assert health.status_code == 200
    assert code == 0
    assert "Toolgate stopped." in log.wait_closed(STOP_TIMEOUT_S)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", int(base.rsplit(":", 1)[1])))  # the port was released


@pytest.mark.skipif(sys.platform == "win32", reason="uses POSIX signals and /proc")
async def test_serve_prints_its_endpoint_serves_agents_and_stops_cleanly_on_sigterm_leaving_no_processes(
    toolgate_home: Path,
):
    command, args = fake_command()
    write_config(toolgate_home, {"fake": {"command": command, "args": args}})
    token = add_agent("cli-agent", toolgate_home)

    with serving() as (process, url):
        async with client_seeing(url, token, "fake__spawn_child") as client:
            child = await client.call_tool("fake__spawn_child", {})
        grandchild = int(child.content[0].text)  # type: ignore[union-attr]
        server = parent_of(grandchild)
        process.send_signal(signal.SIGTERM)
        code = process.wait(STOP_TIMEOUT_S)

    assert code == 0
    assert is_gone(server), "the stdio server outlived the gateway"
    assert is_gone(grandchild), "a process started by the stdio server outlived the gateway"
    host, port = url.removeprefix("http://").removesuffix("/mcp").rsplit(":", 1)
    with socket.socket() as probe:
        probe.bind((host, int(port)))  # the port was released


async def test_a_sigkilled_gateway_leaves_neither_its_stdio_server_nor_the_servers_child_running(
    toolgate_home: Path,
):
    command, args = fake_command()
    write_config(toolgate_home, {"fake": {"command": command, "args": args}})
    token = add_agent("cli-agent", toolgate_home)

    with serving() as (process, url):
        async with client_seeing(url, token, "fake__spawn_child") as client:
            child = await client.call_tool("fake__spawn_child", {})
        assert child.structured_content is not None
        grandchild, server = child.structured_content["pid"], child.structured_content["server"]
        try:
            process.kill()  # SIGKILL; TerminateProcess on Windows, where the Job Object must do the work
            process.wait(STOP_TIMEOUT_S)

            assert wait_until_gone(server, STOP_TIMEOUT_S), "the stdio server outlived a SIGKILLed gateway"
            assert wait_until_gone(grandchild, STOP_TIMEOUT_S), "the server's child outlived a SIGKILLed gateway"
        finally:
            if sys.platform != "win32":
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(server, signal.SIGKILL)  # what a failure left behind: the group holds both


def test_a_second_instance_on_the_same_home_refuses_to_start(toolgate_home: Path):
    write_config(toolgate_home, {})

    with serving():
        second = subprocess.run(toolgate("serve", "--port", "0"), capture_output=True, text=True, timeout=60)

    assert second.returncode == 1
    assert "already running" in second.stderr
    assert "Traceback" not in second.stderr


def test_a_taken_port_is_refused_with_a_clear_message(toolgate_home: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        write_config(toolgate_home, {}, port=port)
        done = subprocess.run(toolgate("serve"), capture_output=True, text=True, timeout=60)

    assert done.returncode == 1
    assert f"port {port}" in done.stderr and "already in use" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_invalid_config_stops_serve_from_starting_and_says_why(toolgate_home: Path):
    (toolgate_home / "config.json").write_text('{"servers": {"x": {"command": "a", "colour": "red"}}}')

    done = subprocess.run(toolgate("serve"), capture_output=True, text=True, timeout=60)

    assert done.returncode == 1
    assert "servers.x.colour" in done.stderr
    assert "Traceback" not in done.stderr


def test_first_run_creates_a_default_config_and_says_where(toolgate_home: Path):
    with serving("--port", "0") as (process, _url):
        process.send_signal(signal.SIGINT)
        code = process.wait(STOP_TIMEOUT_S)
        stderr = process.stderr.read()  # type: ignore[union-attr]

    assert code == 0
    assert (toolgate_home / "config.json").exists()
    assert str(toolgate_home / "config.json") in stderr
    assert os.stat(toolgate_home / "config.json").st_size > 0


@pytest.mark.skipif(sys.platform == "win32", reason="uses SIGKILL")
async def test_killing_the_gateway_during_a_call_leaves_the_decision_on_record_after_the_next_start(
    toolgate_home: Path,
):
    command, args = fake_command()
    write_config(toolgate_home, {"fake": {"command": command, "args": args}})
    token = add_agent("cli-agent", toolgate_home)
    progressed = anyio.Event()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        progressed.set()

    with serving() as (process, url):
        async with anyio.create_task_group() as tg:
            async with client_seeing(url, token, "fake__slow") as client:

                async def slow_call() -> None:
                    with contextlib.suppress(Exception):
                        await client.call_tool("fake__slow", {"seconds": 60, "steps": 2}, progress_callback=on_progress)

                tg.start_soon(slow_call)
                with anyio.fail_after(START_TIMEOUT_S):
                    await progressed.wait()
                process.kill()
                process.wait(STOP_TIMEOUT_S)
                tg.cancel_scope.cancel()
    # The decision may still be only in the journal; the next start folds it in before serving.
    with serving() as (process, _url):
        process.send_signal(signal.SIGINT)
        process.wait(STOP_TIMEOUT_S)

    with sqlite3.connect(toolgate_home / "audit.sqlite3") as db:
        decisions = db.execute("SELECT agent, server, tool, effect FROM records WHERE kind = 'decision'").fetchall()
    assert ("cli-agent", "fake", "slow", "allow") in decisions

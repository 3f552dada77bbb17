"""What the gateway costs, against every other way to reach the same echo server, in one run.

Paths, all to the SDK-built fake server's `echo` tool (the same server program on every path):
  stdio       the client starts the server and talks to it over stdio (no HTTP at all)
  direct      the same server served by the SDK over Streamable HTTP
  toolgate    `toolgate serve` (100-rule policy, audit log on) -> the server over stdio
  mcp-proxy   the PyPI package `mcp-proxy` (HTTP -> stdio), from the bench's own environment
              (.cache/bench/mcp-proxy, made by `bench/install-peers`; left out with a note if missing)
  relay       a bare asyncio relay written for the bench (bench/bare_relay.py): HTTP in, one JSON line
              to stdio, JSON out, no SDK: the floor for any HTTP -> stdio gateway (2026-07-28
              requests go as they are to a second process of the server, reached in that era)
each with a minimal client (raw HTTP/1.1 over one keep-alive connection, or JSON lines over stdio)
and with the MCP SDK's client (handshake era), sequentially (one client per path, the paths taking
turns every 25 calls; with each hop's process CPU time per call, and the server's for direct) and with
32 concurrent clients (HTTP paths, in rounds), so drift in the machine's load hits the paths alike;
and with the SDK's client in the 2026-07-28 era (its default mode's choice with these servers) on the
paths that speak it: stdio, direct, toolgate and the relay.
Prints medians, p95 and throughput (and, sequentially with the minimal client, the echo server's own CPU
per call on each path), then the ratios issue 23's targets are about, each beside the bare relay's own:
  toolgate <= 1.0x direct (minimal and SDK client in either era, sequential and at 32 clients);
  toolgate <= 0.5x mcp-proxy with the minimal client, <= 0.65x with the SDK client;
  toolgate <= 1.5x relay; toolgate - stdio <= 0.5 ms (minimal client, sequential);
  toolgate's throughput at 32 clients >= 2x mcp-proxy's.
With --listing (implied by --long) also `tools/list` through the gateway, 20 servers x 50 tools
(target: median <= 5 ms).

    bench/install-peers    # once: mcp-proxy into .cache/bench/mcp-proxy
    .venv/bin/python bench/gateway_overhead.py [--long] [--calls N] [--listing]

The default run is short (about a minute on a quiet machine, a few on a loaded one); --long measures
four times as many calls, in four rounds instead of two, and the tools/list run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import anyio
import httpx2
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakes.launch import fake_command, read_first_line, serve_fake  # noqa: E402

WARMUP_CALLS = 30
# Starting a gateway with many servers on a loaded machine takes a while.
START_TIMEOUT_S = 120.0
# Each scenario's calls are split over this many rounds, alternating between the paths (what the other
# benches that use interleaved() get; this one's own run uses 2, with --long 4).
ROUNDS = 4
# Sequential calls alternate between the paths every BATCH calls.
BATCH = 25
MCP_PROXY = ROOT / ".cache" / "bench" / "mcp-proxy" / "bin" / "mcp-proxy"
PROTOCOL = "2025-11-25"
# The SDK's client pinned to the newest era (what its default mode, "auto", speaks with these servers).
MODERN = "2026-07-28"

ClientFactory = Callable[[], AbstractAsyncContextManager[Client]]


def stdio_factory(mode: str) -> ClientFactory:
    command, args = fake_command()
    return lambda: Client(StdioServerParameters(command=command, args=args), mode=mode, cache=None)  # type: ignore[arg-type]


def http_factory(url: str, mode: str, token: str | None = None) -> ClientFactory:
    @asynccontextmanager
    async def connect() -> AsyncIterator[Client]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with httpx2.AsyncClient(headers=headers, timeout=60) as http:
            async with Client(streamable_http_client(url, http_client=http), mode=mode, cache=None) as client:  # type: ignore[arg-type]
                yield client

    return connect


async def measure(factory: ClientFactory, tool: str, clients: int, calls: int) -> tuple[list[float], float]:
    """Open ``clients`` sessions, warm them up, then time ``calls`` echo calls spread over them."""
    latencies: list[float] = []
    per_client = max(1, calls // clients)
    async with anyio.create_task_group() as tg:
        ready = anyio.Event()
        connected = 0
        start_gate = anyio.Event()
        finished = [0.0]

        async def one_client() -> None:
            nonlocal connected
            async with factory() as client:
                for _ in range(WARMUP_CALLS // clients + 1):
                    await client.call_tool(tool, {"text": "warm"})
                connected += 1
                if connected == clients:
                    ready.set()
                await start_gate.wait()
                for i in range(per_client):
                    started = time.perf_counter()
                    await client.call_tool(tool, {"text": f"m{i}"})
                    latencies.append(time.perf_counter() - started)
                finished[0] = time.perf_counter()

        for _ in range(clients):
            tg.start_soon(one_client)
        await ready.wait()
        began = time.perf_counter()
        start_gate.set()
    return latencies, finished[0] - began


def summarize(latencies: list[float], wall: float) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "median_ms": statistics.median(ordered) * 1000,
        "p95_ms": ordered[int(len(ordered) * 0.95) - 1] * 1000,
        "throughput": len(ordered) / wall,
    }


async def interleaved(
    paths: dict[str, tuple[str, ClientFactory]], clients: int, calls: int
) -> dict[str, dict[str, float]]:
    """Measure every path in ROUNDS alternating rounds, so drift in machine load hits all paths alike."""
    latencies: dict[str, list[float]] = {key: [] for key in paths}
    walls = dict.fromkeys(paths, 0.0)
    for _ in range(ROUNDS):
        for key, (_name, factory) in paths.items():
            got, wall = await measure(factory, "echo", clients, calls // ROUNDS)
            latencies[key] += got
            walls[key] += wall
    return {key: summarize(latencies[key], walls[key]) for key in paths}


class MinimalClient(Protocol):
    async def call(self, text: str) -> None: ...


MinimalFactory = Callable[[], AbstractAsyncContextManager[MinimalClient]]


def _check(body: bytes) -> None:
    if b'"result"' not in body or b'"isError":true' in body.replace(b" ", b""):
        raise RuntimeError(f"the echo call failed: {body[:300]!r}")


class RawHttp:
    """An agent in a few lines: one keep-alive connection, each request one write, the answer read whole.

    No JSON parsing on the way back beyond finding the result (an SSE answer is read to its end).
    """

    def __init__(self, url: str, token: str | None) -> None:
        target = urlsplit(url)
        self._host, self._port, self._path = target.hostname or "127.0.0.1", target.port or 80, target.path
        self._headers = {
            "Host": f"{self._host}:{self._port}",
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
        }
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._next = 0

    async def open(self) -> None:
        status, headers, body = await self._post(
            {
                "jsonrpc": "2.0",
                "id": 0,
                "method": "initialize",
                "params": {
                    "protocolVersion": PROTOCOL,
                    "capabilities": {},
                    "clientInfo": {"name": "b", "version": "0"},
                },
            }
        )
        if status != 200:
            raise RuntimeError(f"initialize: HTTP {status}: {body[:200]!r}")
        if session := headers.get("mcp-session-id"):
            self._headers["Mcp-Session-Id"] = session
        start = body.find(b'"protocolVersion"')
        version = body[start:].split(b'"')[3].decode() if start >= 0 else PROTOCOL
        self._headers["Mcp-Protocol-Version"] = version
        await self._post({"jsonrpc": "2.0", "method": "notifications/initialized"})

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    async def call(self, text: str) -> None:
        self._next += 1
        message = {"jsonrpc": "2.0", "id": self._next, "method": "tools/call"}
        message["params"] = {"name": "echo", "arguments": {"text": text}}
        status, _headers, body = await self._post(message)
        if status != 200:
            raise RuntimeError(f"HTTP {status}: {body[:200]!r}")
        _check(body)

    async def _post(self, message: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        assert self._reader is not None
        body = json.dumps(message).encode()
        head = "".join(f"{k}: {v}\r\n" for k, v in self._headers.items())
        self._writer.write(f"POST {self._path} HTTP/1.1\r\n{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
        status = int((await self._reader.readline()).split()[1])
        headers: dict[str, str] = {}
        while (line := await self._reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            answer = await self._reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            parts = []
            while size := int((await self._reader.readline()).split(b";")[0], 16):
                parts.append(await self._reader.readexactly(size + 2))
            await self._reader.readline()
            answer = b"".join(part[:-2] for part in parts)
        else:
            answer = b""
        if headers.get("connection") == "close":
            await self.close()
        return status, headers, answer


def raw_http_factory(url: str, token: str | None = None) -> MinimalFactory:
    @asynccontextmanager
    async def connect() -> AsyncIterator[MinimalClient]:
        client = RawHttp(url, token)
        try:
            await client.open()
            yield client
        finally:
            await client.close()

    return connect


class RawStdio:
    """A client that starts the server and writes JSON lines to it: no HTTP, no SDK."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process
        self._next = 0

    @property
    def server_pid(self) -> int:
        return self._process.pid

    async def request(self, message: dict[str, Any]) -> bytes:
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(json.dumps(message).encode() + b"\n")
        while True:
            line = await self._process.stdout.readline()
            if not line:
                raise RuntimeError("the server closed its stdout")
            if b'"method"' not in line:  # an answer, not a notification or request of the server's
                return line

    async def call(self, text: str) -> None:
        self._next += 1
        message = {"jsonrpc": "2.0", "id": self._next, "method": "tools/call"}
        message["params"] = {"name": "echo", "arguments": {"text": text}}
        _check(await self.request(message))


def raw_stdio_factory(command: str, args: list[str]) -> MinimalFactory:
    @asynccontextmanager
    async def connect() -> AsyncIterator[MinimalClient]:
        process = await asyncio.create_subprocess_exec(
            command, *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=1 << 24
        )
        try:
            client = RawStdio(process)
            params = {"protocolVersion": PROTOCOL, "capabilities": {}, "clientInfo": {"name": "b", "version": "0"}}
            await client.request({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": params})
            assert process.stdin is not None
            process.stdin.write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
            yield client
        finally:
            if process.returncode is None:
                process.kill()
            await process.wait()

    return connect


async def measure_minimal(factory: MinimalFactory, clients: int, calls: int) -> tuple[list[float], float]:
    """As measure(), with minimal clients."""
    latencies: list[float] = []
    per_client = max(1, calls // clients)
    async with anyio.create_task_group() as tg:
        ready = anyio.Event()
        start_gate = anyio.Event()
        connected = 0
        finished = [0.0]

        async def one_client() -> None:
            nonlocal connected
            async with factory() as client:
                for _ in range(WARMUP_CALLS // clients + 1):
                    await client.call("warm")
                connected += 1
                if connected == clients:
                    ready.set()
                await start_gate.wait()
                for i in range(per_client):
                    started = time.perf_counter()
                    await client.call(f"m{i}")
                    latencies.append(time.perf_counter() - started)
                finished[0] = max(finished[0], time.perf_counter())

        for _ in range(clients):
            tg.start_soon(one_client)
        await ready.wait()
        began = time.perf_counter()
        start_gate.set()
    return latencies, finished[0] - began


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def mcp_proxy(command: str, args: list[str]) -> Iterator[tuple[str, int] | None]:
    """Run `mcp-proxy` (HTTP -> stdio) in front of the echo server; yield its URL and pid, or None if not installed."""
    if not MCP_PROXY.exists():
        print(f"mcp-proxy is not installed in {MCP_PROXY.parents[1]}: run bench/install-peers to measure it")
        yield None
        return
    port = free_port()
    process = subprocess.Popen(
        [str(MCP_PROXY), "--port", str(port), "--log-level", "WARNING", "--pass-environment", command, *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("mcp-proxy did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp", process.pid
    finally:
        process.terminate()
        process.wait(30)


@contextmanager
def bare_relay(command: str, args: list[str]) -> Iterator[tuple[str, int]]:
    """Run bench/bare_relay.py in front of the echo server; yield its URL and pid."""
    script = Path(__file__).with_name("bare_relay.py")
    process = subprocess.Popen([sys.executable, str(script), command, *args], stdout=subprocess.PIPE, text=True)
    try:
        line = read_first_line(process, START_TIMEOUT_S)
        if not line.startswith("READY "):
            raise RuntimeError(f"the bare relay did not start: {line!r}")
        yield line.split()[1], process.pid
    finally:
        process.terminate()
        process.wait(30)


@contextmanager
def toolgate_serve(
    home: Path,
    servers: dict[str, Any],
    *,
    policy: dict[str, Any] | None = None,
    audit: bool = True,
    source: Path | None = None,
    started: Callable[[subprocess.Popen[str]], None] | None = None,
) -> Iterator[tuple[str, str]]:
    """Run `toolgate serve` on a free port with ``servers``; yield (url, token).

    The agent "bench" gets ``policy`` (default: allow everything); ``audit`` turns the audit log on or off;
    ``source`` is a checkout of Toolgate to run instead of this one (for before/after comparisons);
    ``started`` is given the process once it serves.
    """
    env = {**os.environ, "TOOLGATE_HOME": str(home), "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    (home / "config.json").write_text(json.dumps({"gateway": {"port": 0}, "servers": servers}))
    cli = [sys.executable, "-m", "gateway_core.cli"]
    cwd = source or ROOT  # `python -m` imports gateway_core from the working directory
    token = subprocess.run(
        [*cli, "agents", "add", "bench"], env=env, cwd=cwd, capture_output=True, text=True, check=True
    ).stdout.strip()
    config = json.loads((home / "config.json").read_text())
    config["agents"]["bench"].update(policy or {"default": "allow"})
    config["audit"] = {"enabled": audit}
    (home / "config.json").write_text(json.dumps(config))
    process = subprocess.Popen(
        [*cli, "serve"], env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        line = read_first_line(process, START_TIMEOUT_S)
        if not line.startswith("Toolgate is serving MCP at "):
            raise RuntimeError(f"toolgate serve did not start: {line!r}")
        if started is not None:
            started(process)
        yield line.split()[-1], token
    finally:
        process.terminate()
        process.wait(30)


async def wait_for_tools(factory: ClientFactory, expected: int) -> None:
    with anyio.fail_after(120):
        while True:
            async with factory() as client:
                if len((await client.list_tools()).tools) >= expected:
                    return
            await anyio.sleep(0.2)


def list_latency(url: str, token: str, n: int) -> dict[str, float]:
    """How long the gateway takes to answer tools/list, read whole, without client-side parsing.

    Plain http.client, one request per write: httpx2 splits requests into two writes, and loopback's
    delayed ACK then adds ~40 ms to every request, which would measure the client, not the gateway.
    """
    target = urlsplit(url)
    conn = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
    }

    def post(message: dict[str, Any]) -> http.client.HTTPResponse:
        conn.request("POST", target.path, body=json.dumps(message).encode(), headers=headers)
        response = conn.getresponse()
        response.read()
        return response

    opened = post(
        {
            "jsonrpc": "2.0",
            "id": 0,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "bench", "version": "0"},
            },
        }
    )
    headers |= {"Mcp-Session-Id": opened.headers["mcp-session-id"], "Mcp-Protocol-Version": "2025-11-25"}
    post({"jsonrpc": "2.0", "method": "notifications/initialized"})
    samples = []
    body = b""
    for i in range(n + 10):
        started = time.perf_counter()
        conn.request(
            "POST",
            target.path,
            body=json.dumps({"jsonrpc": "2.0", "id": i + 1, "method": "tools/list"}).encode(),
            headers=headers,
        )
        body = conn.getresponse().read()
        if i >= 10:
            samples.append(time.perf_counter() - started)
    conn.close()
    samples.sort()
    tools = body.count(b'"inputSchema"')
    return {"tools": tools, "median_ms": statistics.median(samples) * 1000, "p95_ms": samples[int(n * 0.95) - 1] * 1000}


def row(name: str, r: dict[str, float]) -> str:
    parts = [f"process CPU {r['cpu_ms']:.3f} ms/call"] if "cpu_ms" in r else []
    if "server_cpu_ms" in r:
        parts.append(f"server CPU {r['server_cpu_ms']:.3f} ms/call")
    cpu = "   " + ", ".join(parts) if parts else ""
    timing = f"median {r['median_ms']:7.2f} ms   p95 {r['p95_ms']:7.2f} ms"
    return f"  {name:<44} {timing}   {r['throughput']:8.0f} calls/s{cpu}"


@dataclass
class Path_:
    name: str
    minimal: MinimalFactory
    sdk: ClientFactory
    concurrent: bool = True  # measured with 32 clients too (stdio is not: each client would be a server)
    sdk_2026: ClientFactory | None = None  # the SDK's client in the 2026-07-28 era, where the path speaks it

    def client(self, kind: str) -> ClientFactory:
        """The SDK client factory of ``kind`` ("sdk": handshake era, "sdk-2026": 2026-07-28)."""
        factory = self.sdk_2026 if kind == "sdk-2026" else self.sdk
        assert factory is not None
        return factory


# The clients each path is measured with, and how the report names them.
CLIENTS = {"minimal": "minimal client", "sdk": "SDK client", "sdk-2026": "SDK client in 2026-07-28"}


def cpu_seconds(pid: int) -> float:
    """The CPU time (user + system) process ``pid`` has used, its threads included (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def descendants(pid: int) -> list[int]:
    """The processes ``pid`` started, and theirs (Linux /proc; a process that just ended is left out)."""
    found: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                found += [int(child), *descendants(int(child))]
    except OSError:
        pass
    return found


def servers_cpu_seconds(pids: list[int]) -> dict[int, float]:
    """Each of ``pids``'s CPU time, for those still running."""
    seconds = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            seconds[pid] = cpu_seconds(pid)
    return seconds


async def sequential_batches(
    paths: dict[str, Path_], client: str, calls: int, pids: dict[str, int]
) -> dict[str, dict[str, float]]:
    """``calls`` sequential calls per path on one open client each, the paths taking turns every BATCH calls.

    Finer turns than rounds, so a burst of load from elsewhere hits every path alike. For the paths
    with a process of their own in ``pids`` (the hop: gateway, proxy, relay; for direct the server),
    also that process's CPU time per call, which a busy machine disturbs far less than wall time; and
    with the minimal client, the echo server's CPU time per call behind each hop and on stdio (what a
    path makes the server itself do: Toolgate reaches it in its newest era, the others in the handshake era).
    """
    async with contextlib.AsyncExitStack() as stack:
        opened: dict[str, Callable[[str], Awaitable[Any]]] = {}
        server_pids: dict[str, list[int]] = {}
        for key, path in paths.items():
            if client == "minimal":
                minimal = await stack.enter_async_context(path.minimal())
                opened[key] = minimal.call
                if isinstance(minimal, RawStdio):
                    server_pids[key] = [minimal.server_pid]
                elif key in pids and key != "direct":
                    server_pids[key] = descendants(pids[key])
            else:
                sdk = await stack.enter_async_context(path.client(client)())
                opened[key] = _sdk_echo(sdk)
        for call in opened.values():
            for _ in range(WARMUP_CALLS):
                await call("warm")
        samples: dict[str, list[float]] = {key: [] for key in paths}
        cpu = dict.fromkeys(paths, 0.0)
        server_cpu = dict.fromkeys(server_pids, 0.0)
        while len(samples[next(iter(paths))]) < calls:
            for key, call in opened.items():
                before = cpu_seconds(pids[key]) if key in pids else 0.0
                servers_before = servers_cpu_seconds(server_pids.get(key, []))
                for i in range(BATCH):
                    started = time.perf_counter()
                    await call(f"m{i}")
                    samples[key].append(time.perf_counter() - started)
                if key in pids:
                    cpu[key] += cpu_seconds(pids[key]) - before
                if key in server_pids:
                    after = servers_cpu_seconds(server_pids[key])
                    server_cpu[key] += sum(after[pid] - servers_before[pid] for pid in after if pid in servers_before)
    results = {}
    for key, got in samples.items():
        results[key] = summarize(got, sum(got))
        if key in pids:
            results[key]["cpu_ms"] = cpu[key] / len(got) * 1000
        if key in server_pids:
            results[key]["server_cpu_ms"] = server_cpu[key] / len(got) * 1000
    return results


def _sdk_echo(client: Client) -> Callable[[str], Awaitable[Any]]:
    async def call(text: str) -> Any:
        return await client.call_tool("echo", {"text": text})

    return call


async def interleaved_minimal(paths: dict[str, Path_], clients: int, calls: int) -> dict[str, dict[str, float]]:
    latencies: dict[str, list[float]] = {key: [] for key in paths}
    walls = dict.fromkeys(paths, 0.0)
    for _ in range(ROUNDS):
        for key, path in paths.items():
            got, wall = await measure_minimal(path.minimal, clients, calls // ROUNDS)
            latencies[key] += got
            walls[key] += wall
    return {key: summarize(latencies[key], walls[key]) for key in paths}


def verdict(ok: bool) -> str:
    return "OK" if ok else "MISSED"


def report_targets(results: dict[tuple[str, str, int], dict[str, float]], concurrency: int) -> None:
    """Print each of issue 23's targets with the ratio measured and whether it is met.

    Beside each, what the bare relay (the floor for any HTTP -> stdio gateway) measures against the same
    path: a target the relay itself misses in a run is out of reach of a gateway doing more than it does.
    """

    def get(key: str, client: str, clients: int) -> dict[str, float] | None:
        return results.get((key, client, clients))

    def floor(text: str, ok: bool) -> str:
        return f"; the relay itself {text} {verdict(ok)}"

    print("targets (toolgate against each path, this run; beside each, the bare relay against the same path):")
    for client in CLIENTS:
        for clients in (1, concurrency):
            label = f"{CLIENTS[client]}, {'sequential' if clients == 1 else f'{clients} clients'}"
            tg = get("toolgate", client, clients)
            if tg is None:
                continue
            relay = get("relay", client, clients)
            bounds = {"direct": 1.0, "mcp-proxy": 0.5 if client == "minimal" else 0.65, "relay": 1.5}
            if client == "sdk-2026":
                bounds = {"direct": 1.0, "relay": 1.5}  # mcp-proxy speaks the handshake era only
            for peer, bound in bounds.items():
                other = get(peer, client, clients)
                if other is None:
                    print(f"  {label}: toolgate / {peer} median: not measured")
                    continue
                ratio = tg["median_ms"] / other["median_ms"]
                met = verdict(ratio <= bound)
                line = f"  {label}: toolgate / {peer} median {ratio:.3f}x (target <= {bound}x) {met}"
                if relay is not None and peer != "relay":
                    own = relay["median_ms"] / other["median_ms"]
                    line += floor(f"{own:.3f}x", own <= bound)
                print(line)
    tg, stdio, relay = get("toolgate", "minimal", 1), get("stdio", "minimal", 1), get("relay", "minimal", 1)
    if tg is not None and stdio is not None:
        added = tg["median_ms"] - stdio["median_ms"]
        line = (
            f"  minimal client, sequential: toolgate - stdio median {added:+.2f} ms"
            f" (target <= 0.5 ms) {verdict(added <= 0.5)}"
        )
        if relay is not None:
            own = relay["median_ms"] - stdio["median_ms"]
            line += floor(f"{own:+.2f} ms", own <= 0.5)
        print(line)
    tg = get("toolgate", "minimal", 1)
    for peer in ("mcp-proxy", "relay"):
        other = get(peer, "minimal", 1)
        if tg is not None and other is not None and "cpu_ms" in tg and "cpu_ms" in other:
            print(
                f"  (no target) minimal client, sequential: toolgate / {peer} process CPU per call"
                f" {tg['cpu_ms'] / other['cpu_ms']:.3f}x ({tg['cpu_ms']:.3f} / {other['cpu_ms']:.3f} ms)"
            )
    if tg is not None and relay is not None and "server_cpu_ms" in tg and "server_cpu_ms" in relay:
        print(
            f"  (no target) minimal client, sequential: the echo server's CPU per call behind toolgate"
            f" {tg['server_cpu_ms']:.3f} ms (reached in 2026-07-28, its newest era), behind the relay"
            f" {relay['server_cpu_ms']:.3f} ms (handshake era): {tg['server_cpu_ms'] - relay['server_cpu_ms']:+.3f} ms"
        )
    for client in ("minimal", "sdk"):
        tg, proxy = get("toolgate", client, concurrency), get("mcp-proxy", client, concurrency)
        relay = get("relay", client, concurrency)
        if tg is not None and proxy is not None:
            share = tg["throughput"] / proxy["throughput"]
            line = (
                f"  {CLIENTS[client]}, {concurrency} clients: toolgate / mcp-proxy throughput {share:.3f}x"
                f" (target >= 2x) {verdict(share >= 2)}"
            )
            if relay is not None:
                own = relay["throughput"] / proxy["throughput"]
                line += floor(f"{own:.3f}x", own >= 2)
            print(line)


async def main() -> None:
    global ROUNDS
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--long", action="store_true", help="4x the calls, in 4 rounds instead of 2, and the tools/list run"
    )
    parser.add_argument(
        "--calls",
        type=int,
        help="timed calls per path and scenario, minimal client; half for the SDK client (default 1000)",
    )
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent clients (default 32)")
    parser.add_argument("--listing", action="store_true", help="also tools/list with 20 servers x 50 tools")
    options = parser.parse_args()
    ROUNDS = 4 if options.long else 2
    calls = (options.calls or 1000) * (4 if options.long else 1)
    concurrency = options.concurrency
    from policy_overhead import hundred_rules  # it imports this module: not at the top

    command, args = fake_command()
    results: dict[tuple[str, str, int], dict[str, float]] = {}
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"gateway overhead: {calls} echo calls per path and scenario, {ROUNDS} rounds,"
        f" {os.cpu_count()} CPUs, load average {load}"
    )
    with contextlib.ExitStack() as stack:
        home = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        direct = stack.enter_context(serve_fake("http"))
        servers = {"echo": {"command": command, "args": args, "prefix": ""}}
        pids = {"direct": direct.process.pid}
        serving = toolgate_serve(
            home, servers, policy=hundred_rules(), started=lambda process: pids.__setitem__("toolgate", process.pid)
        )
        url, token = stack.enter_context(serving)
        proxy = stack.enter_context(mcp_proxy(command, args))
        relay_url, pids["relay"] = stack.enter_context(bare_relay(command, args))
        paths = {
            "stdio": Path_(
                "stdio: client -> server",
                raw_stdio_factory(command, args),
                stdio_factory("legacy"),
                False,
                stdio_factory(MODERN),
            ),
            "direct": Path_(
                "direct: Streamable HTTP, SDK server",
                raw_http_factory(direct.url),
                http_factory(direct.url, "legacy"),
                sdk_2026=http_factory(direct.url, MODERN),
            ),
            "toolgate": Path_(
                "toolgate serve -> stdio (policy, audit)",
                raw_http_factory(url, token),
                http_factory(url, "legacy", token),
                sdk_2026=http_factory(url, MODERN, token),
            ),
        }
        if proxy is not None:
            proxy_url, pids["mcp-proxy"] = proxy
            paths["mcp-proxy"] = Path_(
                "mcp-proxy (PyPI) -> stdio", raw_http_factory(proxy_url), http_factory(proxy_url, "legacy")
            )
        paths["relay"] = Path_(
            "bare asyncio relay -> stdio",
            raw_http_factory(relay_url),
            http_factory(relay_url, "legacy"),
            sdk_2026=http_factory(relay_url, MODERN),
        )
        await wait_for_tools(paths["toolgate"].sdk, 1)
        for client in CLIENTS:
            for clients in (1, concurrency):
                # The SDK's client costs several times a minimal one; at least 20 calls per client at once.
                count = max(calls if client == "minimal" else calls // 2, 20 * clients)
                chosen = {
                    key: path
                    for key, path in paths.items()
                    if (clients == 1 or path.concurrent) and (client != "sdk-2026" or path.sdk_2026 is not None)
                }
                what = f"sequential, turns of {BATCH} calls" if clients == 1 else f"{clients} concurrent clients"
                print(f"{CLIENTS[client][0].upper()}{CLIENTS[client][1:]}, {what}, {count} calls:", flush=True)
                if clients == 1:
                    measured = await sequential_batches(chosen, client, count, pids)
                elif client == "minimal":
                    measured = await interleaved_minimal(chosen, clients, count)
                else:
                    sdk = {k: (p.name, p.client(client)) for k, p in chosen.items()}
                    measured = await interleaved(sdk, clients, count)
                for key, path in chosen.items():
                    results[(key, client, clients)] = measured[key]
                    print(row(path.name, measured[key]), flush=True)
    report_targets(results, concurrency)

    if not (options.listing or options.long):
        return
    with tempfile.TemporaryDirectory() as home_dir:
        many = {f"s{i:02d}": {"command": command, "args": [*args, "--tools", "50"]} for i in range(20)}
        with toolgate_serve(Path(home_dir), many) as (url, token):
            factory = http_factory(url, "legacy", token)
            await wait_for_tools(factory, 20 * 50)
            listing = list_latency(url, token, 200)
    print(
        f"tools/list through the gateway, 20 servers, {listing['tools']:.0f} tools:"
        f" median {listing['median_ms']:.2f} ms, p95 {listing['p95_ms']:.2f} ms (target <= 5 ms)"
        f" {verdict(listing['median_ms'] <= 5)}"
    )


if __name__ == "__main__":
    anyio.run(main)

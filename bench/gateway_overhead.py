"""What the gateway costs, measured against the same echo server in one run.

Paths, all to the SDK-built fake server's `echo` tool:
  (a) client -> server over stdio                        (direct)
  (b) client -> the same server over Streamable HTTP      (direct)
  (c) client -> `toolgate serve` over HTTP -> server over stdio
  (d) client -> a bare SDK proxy (bench/minimal_proxy.py) over HTTP -> server over stdio, for reference
each sequentially and with 1, 8 and 32 concurrent clients; then `tools/list` through the gateway
with 20 servers x 50 tools. Prints medians, p95, throughput and the ratios the targets are about:
  (c) median - (b) median <= 1.5 ms;  (c) >= 50 % of (b)'s throughput at 32 clients;
  tools/list (20 x 50 tools) median <= 5 ms.

    .venv/bin/python bench/gateway_overhead.py [--calls 400] [--mode legacy|2026-07-28]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any
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
# Each scenario's calls are split over this many rounds, alternating between the paths.
ROUNDS = 4
CONCURRENCY = (1, 8, 32)

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


@contextmanager
def minimal_proxy(command: str, args: list[str]) -> Iterator[str]:
    """Run bench/minimal_proxy.py in front of the echo server; yield its URL."""
    script = Path(__file__).with_name("minimal_proxy.py")
    process = subprocess.Popen([sys.executable, str(script), command, *args], stdout=subprocess.PIPE, text=True)
    try:
        line = read_first_line(process, START_TIMEOUT_S)
        if not line.startswith("READY "):
            raise RuntimeError(f"minimal proxy did not start: {line!r}")
        yield line.split()[1]
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
    return f"  {name:<44} median {r['median_ms']:7.2f} ms   p95 {r['p95_ms']:7.2f} ms   {r['throughput']:8.0f} calls/s"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=800, help="timed calls per scenario")
    parser.add_argument("--mode", default="legacy", choices=["legacy", "2026-07-28"], help="the agents' protocol era")
    options = parser.parse_args()
    mode, calls = options.mode, options.calls
    command, args = fake_command()
    results: dict[tuple[str, int], dict[str, float]] = {}
    print(f"gateway overhead, {calls} echo calls per scenario, agents in {mode} mode, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as home, serve_fake("http") as direct_http:
        servers = {"echo": {"command": command, "args": args, "prefix": ""}}
        with toolgate_serve(Path(home), servers) as (url, token), minimal_proxy(command, args) as bare_url:
            paths = {
                "a": ("(a) client -> server, stdio", stdio_factory(mode)),
                "b": ("(b) client -> server, Streamable HTTP", http_factory(direct_http.url, mode)),
                "c": ("(c) client -> gateway (HTTP) -> server (stdio)", http_factory(url, mode, token)),
                "d": ("(d) client -> bare SDK proxy (HTTP) -> server", http_factory(bare_url, mode)),
            }
            await wait_for_tools(paths["c"][1], 1)
            for clients in CONCURRENCY:
                print(f"{clients} concurrent client(s):" if clients > 1 else "sequential, 1 client:")
                measured = await interleaved(paths, clients, calls)
                for key, (name, _factory) in paths.items():
                    results[(key, clients)] = measured[key]
                    print(row(name, measured[key]))
    b1, c1 = results[("b", 1)], results[("c", 1)]
    b32, c32 = results[("b", 32)], results[("c", 32)]
    added = c1["median_ms"] - b1["median_ms"]
    share = c32["throughput"] / b32["throughput"]
    print("targets:")
    print(f"  (c) - (b) median, sequential: {added:+.2f} ms (target <= 1.5 ms) {'OK' if added <= 1.5 else 'MISSED'}")
    print(f"  (c) / (b) throughput at 32 clients: {share:.0%} (target >= 50 %) {'OK' if share >= 0.5 else 'MISSED'}")
    d1 = results[("d", 1)]
    floor, own = d1["median_ms"] - b1["median_ms"], c1["median_ms"] - d1["median_ms"]
    print(f"  (d) - (b) median, sequential (the floor for any SDK-based proxy): {floor:+.2f} ms")
    print(f"  (c) - (d) median, sequential (Toolgate's own routing, auth, bookkeeping): {own:+.2f} ms")

    with tempfile.TemporaryDirectory() as home:
        servers = {f"s{i:02d}": {"command": command, "args": [*args, "--tools", "50"]} for i in range(20)}
        with toolgate_serve(Path(home), servers) as (url, token):
            factory = http_factory(url, mode, token)
            await wait_for_tools(factory, 20 * 50)
            listing = list_latency(url, token, 200)
    verdict = "OK" if listing["median_ms"] <= 5 else "MISSED"
    print(
        f"tools/list through the gateway, 20 servers, {listing['tools']:.0f} tools:"
        f" median {listing['median_ms']:.2f} ms, p95 {listing['p95_ms']:.2f} ms (target <= 5 ms) {verdict}"
    )


if __name__ == "__main__":
    anyio.run(main)

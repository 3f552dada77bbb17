"""How long `toolgate serve` takes to exit after SIGTERM, and whether it leaves any process behind.

A real `toolgate serve` with three stdio fake servers, in three situations:
  idle       nothing connected;
  stream     a handshake-era agent connected, its standalone GET stream open;
  call       that agent, plus a tool call in flight (`slow`, 60 s).
Each is run --runs times: SIGTERM, then the time until the process has exited (median, max), and a
check that none of its children (the servers) is still alive. Target: exit within 1 s.

    .venv/bin/python bench/serve_exit.py [--runs 5]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakes.launch import fake_command, read_first_line  # noqa: E402

SERVERS = 3
START_TIMEOUT_S = 60.0
EXIT_TIMEOUT_S = 30.0
TARGET_S = 1.0
HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


def start_serve(home: Path, source: Path | None = None) -> tuple[subprocess.Popen[str], str, str]:
    """`toolgate serve` on a free port with the fake servers; returns the process, its URL and a token.

    ``source`` is a checkout of Toolgate to run instead of this one (for before/after comparisons).
    """
    env = {**os.environ, "TOOLGATE_HOME": str(home), "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    command, args = fake_command()
    servers = {f"fake{i}": {"command": command, "args": args} for i in range(SERVERS)}
    (home / "config.json").write_text(json.dumps({"gateway": {"port": 0}, "servers": servers}))
    cli = [sys.executable, "-m", "gateway_core.cli"]
    cwd = source or ROOT  # `python -m` imports gateway_core from the working directory
    token = subprocess.run(
        [*cli, "agents", "add", "bench"], env=env, cwd=cwd, capture_output=True, text=True, check=True
    ).stdout.strip()
    config = json.loads((home / "config.json").read_text())
    config["agents"]["bench"]["default"] = "allow"
    (home / "config.json").write_text(json.dumps(config))
    process = subprocess.Popen(
        [*cli, "serve"], env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    line = read_first_line(process, START_TIMEOUT_S)
    if not line.startswith("Toolgate is serving MCP at "):
        process.kill()
        raise RuntimeError(f"toolgate serve did not start: {line!r}")
    return process, line.split()[-1], token


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (Linux /proc)."""
    found: set[int] = set()
    todo = [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                if child not in found:
                    found.add(child)
                    todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@contextlib.asynccontextmanager
async def agent(url: str, token: str, *, call: bool) -> AsyncIterator[None]:
    """A handshake-era agent with its GET stream open (and a slow call in flight when ``call``)."""
    headers = {**HEADERS, "Authorization": f"Bearer {token}"}
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "b", "version": "0"}},
    }
    async with httpx2.AsyncClient(timeout=httpx2.Timeout(10, read=None)) as http, anyio.create_task_group() as tg:
        response = await http.post(url, json=initialize, headers=headers)
        session_id = response.headers["mcp-session-id"]
        session = {**headers, "Mcp-Session-Id": session_id, "Mcp-Protocol-Version": "2025-11-25"}
        await http.post(url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=session)
        streaming = anyio.Event()

        async def stream(method: str, body: dict[str, object] | None) -> None:
            with contextlib.suppress(httpx2.HTTPError):
                async with http.stream(method, url, json=body, headers=session) as open_stream:
                    streaming.set()
                    async for _ in open_stream.aiter_bytes():
                        pass

        tg.start_soon(stream, "GET", None)
        await streaming.wait()
        if call:
            streaming = anyio.Event()
            slow = {"name": "fake0__slow", "arguments": {"seconds": 60}}
            tg.start_soon(stream, "POST", {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": slow})
            await streaming.wait()
        try:
            yield
        finally:
            tg.cancel_scope.cancel()


def exit_time(situation: str, source: Path | None = None) -> tuple[float, int]:
    """Seconds from SIGTERM to exit, and how many of its processes were left alive."""
    with tempfile.TemporaryDirectory() as folder:
        process, url, token = start_serve(Path(folder), source)
        try:
            children = descendants(process.pid)

            async def measure() -> float:
                async with contextlib.AsyncExitStack() as stack:
                    if situation != "idle":
                        await stack.enter_async_context(agent(url, token, call=situation == "call"))
                    started = time.perf_counter()
                    process.send_signal(signal.SIGTERM)
                    await anyio.to_thread.run_sync(process.wait, EXIT_TIMEOUT_S)
                    return time.perf_counter() - started

            seconds = anyio.run(measure)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        left = [pid for pid in children if alive(pid)]
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return seconds, len(left)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    worst = 0.0
    for situation in ("idle", "stream", "call"):
        results = [exit_time(situation) for _ in range(args.runs)]
        times = [seconds for seconds, _ in results]
        left = sum(count for _, count in results)
        worst = max(worst, statistics.median(times))
        print(
            f"{situation:<7} exit after SIGTERM, {args.runs} runs: median {statistics.median(times):.2f} s, "
            f"max {max(times):.2f} s; processes left behind: {left}"
        )
    print(f"slowest median {worst:.2f} s (target <= {TARGET_S:g} s)")


if __name__ == "__main__":
    main()

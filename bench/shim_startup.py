"""What toolgate-shim costs an agent: its start-up, and its per-call overhead over talking HTTP directly.

Against a real `toolgate serve` (with the SDK-built fake server behind it):
  (1) start-up: spawn the shim, write `initialize`, read its reply (raw pipes, no SDK), median of 20 runs;
      target <= 150 ms. Also without --url, as IDEs start it: the shim reads the published address and
      has the gateway prove it is this Toolgate before sending the token (the difference is that proof).
  (2) per call: sequential `tools/call("echo")` from an SDK Client over the shim (stdio) vs the same Client
      over Streamable HTTP directly; medians and their difference; target <= 1 ms.

    .venv/bin/python bench/shim_startup.py [--runs 20] [--calls 400] [--mode legacy|2026-07-28]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from gateway_overhead import http_factory, toolgate_serve, wait_for_tools  # noqa: E402

from tests.fakes.launch import fake_command  # noqa: E402

WARMUP_CALLS = 30
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}},
}


def shim_command(url: str | None) -> list[str]:
    """The shim given ``url``; with None, it finds the gateway's published address and has it prove who it is."""
    return [sys.executable, "-m", "gateway_core.shim", "--agent", "bench", *(["--url", url] if url else [])]


def startup_ms(url: str, token: str, home: Path, runs: int) -> tuple[list[float], list[float]]:
    """Spawn -> initialize -> reply, per run: with --url, and finding the published (verified) address; alternated."""
    env = {**os.environ, "TOOLGATE_TOKEN": token, "TOOLGATE_HOME": str(home)}
    line = (json.dumps(INITIALIZE) + "\n").encode()
    given: list[float] = []
    found: list[float] = []
    for _ in range(runs):
        for target, times in ((url, given), (None, found)):
            start = time.perf_counter()
            process = subprocess.Popen(
                shim_command(target), stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, cwd=ROOT
            )
            assert process.stdin is not None and process.stdout is not None
            process.stdin.write(line)
            process.stdin.flush()
            reply = json.loads(process.stdout.readline())
            times.append((time.perf_counter() - start) * 1000)
            assert "result" in reply, reply
            process.stdin.close()
            process.wait(10)
            process.stdout.close()
    return given, found


async def call_ms(client: Client, calls: int) -> list[float]:
    for _ in range(WARMUP_CALLS):
        await client.call_tool("fake__echo", {"text": "x"})
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        await client.call_tool("fake__echo", {"text": "x"})
        times.append((time.perf_counter() - start) * 1000)
    return times


async def per_call(url: str, token: str, calls: int, mode: str) -> tuple[list[float], list[float]]:
    """Alternate rounds between the shim and direct HTTP, so load drift hits both."""
    shim_times: list[float] = []
    http_times: list[float] = []
    params = StdioServerParameters(
        command=sys.executable, args=shim_command(url)[1:], env={"TOOLGATE_TOKEN": token}, cwd=str(ROOT)
    )
    async with (
        Client(params, mode=mode, cache=None) as via_shim,  # type: ignore[arg-type]
        http_factory(url + "/mcp", mode, token)() as direct,
    ):
        for _ in range(4):
            shim_times += await call_ms(via_shim, calls // 4)
            http_times += await call_ms(direct, calls // 4)
    return shim_times, http_times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--mode", default="legacy", choices=["legacy", "2026-07-28"])
    args = parser.parse_args()
    command, fake_args = fake_command()
    with tempfile.TemporaryDirectory() as home:
        with toolgate_serve(Path(home), {"fake": {"command": command, "args": fake_args}}) as (mcp_url, token):
            url = mcp_url.removesuffix("/mcp")
            anyio.run(wait_for_tools, http_factory(mcp_url, args.mode, token), 1)
            starts, verified_starts = startup_ms(url, token, Path(home), args.runs)
            shim_times, http_times = anyio.run(per_call, url, token, args.calls, args.mode)
    start_median, verified_median = statistics.median(starts), statistics.median(verified_starts)
    shim_median, http_median = statistics.median(shim_times), statistics.median(http_times)
    print(
        f"start-up (spawn -> initialize reply), {args.runs} runs: median {start_median:.1f} ms, "
        f"min {min(starts):.1f}, max {max(starts):.1f}  (target <= 150 ms)"
    )
    print(
        f"start-up finding the published address (the gateway proves its identity first): median "
        f"{verified_median:.1f} ms, {verified_median - start_median:+.1f} ms against --url"
    )
    print(f"echo via shim ({args.mode}): median {shim_median:.2f} ms  p95 {_p95(shim_times):.2f}")
    print(f"echo via HTTP ({args.mode}): median {http_median:.2f} ms  p95 {_p95(http_times):.2f}")
    print(f"shim overhead per call: {shim_median - http_median:+.2f} ms  (target <= 1 ms)")


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


if __name__ == "__main__":
    main()

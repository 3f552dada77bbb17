"""The downstream half of a hot call on its own: what Toolgate spends sending one ``tools/call`` to a server.

One ``DownstreamPool`` with the SDK-built fake server (``tests/fakes/fake_server.py``), over stdio and
over Streamable HTTP (the fake served on 127.0.0.1:0), and sequential calls of its ``echo`` tool by
three ways, taking turns every ``--batch`` calls so drift in machine load hits them alike:
  typed        ``ServerSession.call_tool``: the SDK's ClientSession, dispatcher and memory streams
  sdk          ``call_tool_passing_through`` with the connection's raw lane switched off (the
               dispatcher's ``send_raw_request``: what the hot path did before a lane existed)
  raw lane     ``call_tool_passing_through`` as the hot path sends it (the connection's raw lane)
Prints the median and p95 latency and this process's CPU per call (the server runs in its own
process, so this is the gateway's side alone), and the raw lane against the other two; then, over
``--counted`` more calls of each way, the function calls per call (Python and built-in, as cProfile
counts them) and the loop's turns per call: steadier figures than time on a busy machine.

    .venv/bin/python bench/downstream_call.py [--transports stdio,http] [--calls 2000] [--batch 100]
                                              [--text hello] [--counted 500]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway_core.config import ServerConfig
from gateway_core.downstream import DownstreamPool, DownstreamServer, ServerState
from tests.fakes.launch import fake_command, serve_fake

WAIT_S = 30.0


@dataclass(frozen=True)
class Agent:
    """A calling agent that answers no questions (the echo tool asks none)."""

    agent: str = "bench"
    owner: Hashable = "bench"
    interactive: bool = False
    capabilities: types.ClientCapabilities | None = None

    async def ask(self, server: str, request: types.InputRequest) -> types.InputResponse | types.ErrorData:
        return types.ErrorData(code=types.INVALID_REQUEST, message="not answered here")

    async def ask_round(
        self, server: str, questions: Mapping[str, types.InputRequest]
    ) -> dict[str, types.InputResponse | types.ErrorData]:
        return {key: await self.ask(server, question) for key, question in questions.items()}


@asynccontextmanager
async def ready(config: ServerConfig) -> AsyncIterator[DownstreamServer]:
    """The pool's one server, READY."""
    changed = anyio.Event()
    pool = DownstreamPool({"fake": config}, resolve=dict, on_change=lambda _: changed.set())
    async with anyio.create_task_group() as tg:
        await tg.start(pool.run)
        server = pool.servers["fake"]
        with anyio.fail_after(WAIT_S):
            while server.status.state is not ServerState.READY:
                await changed.wait()
                changed = anyio.Event()
        yield server
        tg.cancel_scope.cancel()


def ways(server: DownstreamServer, text: str = "hello") -> dict[str, Callable[[], Awaitable[Any]]]:
    session, caller = server.session, Agent()
    arguments = {"text": text}

    async def typed() -> Any:
        return await session.call_tool("echo", arguments, caller=caller)

    async def passing_through() -> Any:
        return await session.call_tool_passing_through("echo", arguments, caller=caller, meta=None)

    async def sdk() -> Any:
        live = session.live
        assert live is not None
        lane, live.connection.raw = live.connection.raw, None
        try:
            return await passing_through()
        finally:
            live.connection.raw = lane

    return {"typed": typed, "sdk": sdk, "raw lane": passing_through}


async def measure(server: DownstreamServer, calls: int, batch: int, text: str) -> dict[str, dict[str, float]]:
    paths = ways(server, text)
    latencies: dict[str, list[float]] = {name: [] for name in paths}
    cpu = dict.fromkeys(paths, 0.0)
    for call in paths.values():  # warm up every way
        for _ in range(50):
            await call()
    for _ in range(max(1, calls // batch)):
        for name, call in paths.items():
            got = latencies[name]
            cpu_start = time.process_time()
            for _ in range(batch):
                start = time.perf_counter()
                await call()
                got.append(time.perf_counter() - start)
            cpu[name] += time.process_time() - cpu_start
    results = {}
    for name, got in latencies.items():
        got.sort()
        results[name] = {
            "median_ms": statistics.median(got) * 1000,
            "p95_ms": got[int(len(got) * 0.95)] * 1000,
            "cpu_ms": cpu[name] / len(got) * 1000,
        }
    return results


async def count(server: DownstreamServer, calls: int, text: str) -> dict[str, dict[str, float]]:
    """Each way's function calls (cProfile's count) and loop turns (the selector's polls) per call."""
    selector = asyncio.get_running_loop()._selector  # type: ignore[attr-defined]  # the loop's own poll
    polls = 0
    select = selector.select

    def counting_select(timeout: float | None = None) -> Any:
        nonlocal polls
        polls += 1
        return select(timeout)

    counted = {}
    selector.select = counting_select
    try:
        for name, call in ways(server, text).items():
            profile = cProfile.Profile()
            polls = 0
            profile.enable()
            for _ in range(calls):
                await call()
            profile.disable()
            turns = polls
            functions = sum(row[1] for row in pstats.Stats(profile).stats.values())  # type: ignore[attr-defined]
            counted[name] = {"functions": functions / calls, "turns": turns / calls}
    finally:
        selector.select = select
    return counted


def report(transport: str, results: dict[str, dict[str, float]]) -> None:
    counted = all("turns" in r for r in results.values())
    header = f"{'median ms':>10} {'p95 ms':>8} {'CPU ms/call':>12}" + (
        f" {'calls/call':>11} {'turns/call':>11}" if counted else ""
    )
    print(f"\n{transport}: {'way':<10} {header}")
    for name, r in results.items():
        line = f"{'':<{len(transport) + 1}} {name:<10} {r['median_ms']:10.3f} {r['p95_ms']:8.3f} {r['cpu_ms']:12.3f}"
        print(line + (f" {r['functions']:11.1f} {r['turns']:11.2f}" if counted else ""))
    lane = results["raw lane"]
    for other in ("sdk", "typed"):
        print(
            f"  raw lane / {other}: latency {lane['median_ms'] / results[other]['median_ms']:.2f}x, "
            f"CPU {lane['cpu_ms'] / results[other]['cpu_ms']:.2f}x"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--transports", default="stdio,http")
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--text", default="hello", help="what echo is sent (and answers); 'ü*N': N of ü")
    parser.add_argument("--counted", type=int, default=500, help="calls of each way counted (0: none)")
    options = parser.parse_args()
    text = options.text
    if "*" in text:
        piece, times = text.rsplit("*", 1)
        text = piece * int(times)
    for transport in options.transports.split(","):
        async with AsyncExitStack() as stack:
            if transport == "stdio":
                command, args = fake_command()
                config = ServerConfig(command=command, args=args)
            else:
                fake = stack.enter_context(serve_fake("http" if transport == "http" else "sse"))
                config = ServerConfig(url=fake.url, type=transport)
            server = await stack.enter_async_context(ready(config))
            results = await measure(server, options.calls, options.batch, text)
            if options.counted:
                for name, counted in (await count(server, options.counted, text)).items():
                    results[name].update(counted)
            report(transport, results)


if __name__ == "__main__":
    anyio.run(main)

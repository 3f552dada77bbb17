"""What an await costs on the tray app's loops against `toolgate serve`'s (asyncio).

The loops in one process, taking turns run by run so drift in machine load hits them alike:
  asyncio   the loop `toolgate serve` runs on (asyncio's default);
  qasync    qasync's QEventLoop as it comes (what the app ran before);
  app-qt    the app's loop on macOS and Windows (`app.loop.QtEventLoop`: Qt's, running asyncio's);
  app       the app's loop on Linux (`app.selector_loop.SelectorQtLoop`: asyncio's, running Qt's);
  before    with --before REF, `app.loop.QtEventLoop` as of commit REF (its app/loop.py, imported on its own).
Each runs, --awaits times:
  yield     `await asyncio.sleep(0)` in one task (one callback scheduled and run per await);
  handoff   two tasks passing a token through futures (a future resolved, the waiter woken);
  socket    a ping-pong over a local socket pair with asyncio streams (an I/O wake-up per round).
Prints the median CPU microseconds per await (per round for socket; the loop thread's CPU time, which
a shared machine's load disturbs far less than wall time) and each Qt loop's ratio to asyncio, then
the same in wall time. Offscreen Qt; nothing else runs on the loops, so what differs is the loops' own work.

    .venv/bin/python bench/loop_cost.py [--awaits 20000] [--runs 7] [--before REF]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PySide6.QtWidgets import QApplication

from app.loop import QtEventLoop, qasync
from app.selector_loop import SelectorQtLoop


async def yields(count: int) -> None:
    for _ in range(count):
        await asyncio.sleep(0)


async def handoff(count: int) -> None:
    loop = asyncio.get_running_loop()
    box: list[asyncio.Future[None]] = [loop.create_future()]
    back: list[asyncio.Future[None]] = [loop.create_future()]

    async def other() -> None:
        for _ in range(count):
            await box[0]
            box[0] = loop.create_future()
            back[0].set_result(None)

    task = asyncio.ensure_future(other())
    for _ in range(count):
        waiting = back[0]
        box[0].set_result(None)
        await waiting
        back[0] = loop.create_future()
    await task


async def socket_rounds(count: int) -> None:
    left, right = socket.socketpair()
    reader_a, writer_a = await asyncio.open_connection(sock=left)
    reader_b, writer_b = await asyncio.open_connection(sock=right)

    async def echo() -> None:
        for _ in range(count):
            writer_b.write(await reader_b.readexactly(1))

    task = asyncio.ensure_future(echo())
    for _ in range(count):
        writer_a.write(b"x")
        await reader_a.readexactly(1)
    await task
    for writer in (writer_a, writer_b):
        writer.close()
        await writer.wait_closed()


WORKLOADS: dict[str, Callable[[int], Coroutine[Any, Any, None]]] = {
    "yield": yields,
    "handoff": handoff,
    "socket": socket_rounds,
}


def timed(
    loop: asyncio.AbstractEventLoop, work: Callable[[int], Coroutine[Any, Any, None]], count: int
) -> tuple[float, float]:
    """Microseconds per await of ``work(count)`` run on ``loop``: (CPU time of this thread, wall time)."""
    asyncio.set_event_loop(loop)
    started, cpu_started = time.perf_counter(), time.thread_time()
    loop.run_until_complete(work(count))
    cpu, wall = time.thread_time() - cpu_started, time.perf_counter() - started
    return cpu / count * 1e6, wall / count * 1e6


def loop_before(ref: str, qt_app: QApplication) -> asyncio.AbstractEventLoop:
    """The app's loop as of commit ``ref``: its app/loop.py imported under another name."""
    root = Path(__file__).resolve().parents[1]
    source = subprocess.run(["git", "show", f"{ref}:app/loop.py"], cwd=root, capture_output=True, check=True).stdout
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "loop_before.py"
        path.write_bytes(source)
        spec = importlib.util.spec_from_file_location("loop_before", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    loop: asyncio.AbstractEventLoop = module.QtEventLoop(qt_app)
    return loop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--awaits", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--before", default=None, help="also the app's loop of this commit (default: none)")
    args = parser.parse_args()
    qt_app = QApplication.instance() or QApplication([])
    loops: dict[str, asyncio.AbstractEventLoop] = {
        "asyncio": asyncio.new_event_loop(),
        "qasync": qasync.QEventLoop(qt_app),
        "app-qt": QtEventLoop(qt_app),
        "app": SelectorQtLoop(),
    }
    if args.before:
        loops["before"] = loop_before(args.before, qt_app)
    print(f"load average {os.getloadavg()[0]:.1f}; {args.awaits} awaits per run, {args.runs} runs")
    for name, work in WORKLOADS.items():
        results: dict[str, list[tuple[float, float]]] = {loop_name: [] for loop_name in loops}
        for _ in range(args.runs):
            for loop_name, loop in loops.items():
                results[loop_name].append(timed(loop, work, args.awaits))
        for measure, index in (("CPU", 0), ("wall", 1)):
            base = statistics.median(values[index] for values in results["asyncio"])
            cells = []
            for loop_name, values in results.items():
                median = statistics.median(value[index] for value in values)
                ratio = "" if loop_name == "asyncio" else f" ({median / base:.2f}x)"
                cells.append(f"{loop_name} {median:.2f} us{ratio}")
            print(f"{name:<8} {measure:<4} " + ", ".join(cells))
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    for loop in loops.values():
        loop.close()


if __name__ == "__main__":
    main()

"""How fast `toolgate serve` starts and stops: this checkout against an earlier commit, in one run.

  health  from spawning `toolgate serve` (as `python -m app serve`, the `toolgate` command's path) with
          no servers until `/health` answers 200, and the CPU seconds the process had used by then
          (a busy machine stretches wall time, hardly CPU time); then until the gateway itself
          answers on `/mcp` (401 to a request without a token: the MCP SDK imported, the gateway built);
  exit    from SIGTERM until the process has exited, with three stdio servers, in three situations
          (idle; an agent's GET stream open; a 60 s call in flight), and whether any server was left
          behind (see bench/serve_exit.py);
  quit    the tray app (offscreen, one stdio server): from SIGTERM (what Quit does) until it has exited.
The two checkouts take turns run by run so drift in machine load hits both alike. Targets: `/health`
within 1 s of the start, exit within 1 s of SIGTERM.

    .venv/bin/python bench/start_stop.py [--before REF] [--runs 5] [--only health,exit,quit]
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from before_after import export
from serve_exit import alive, descendants, exit_time

from tests.fakes.launch import LineReader, fake_command

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 1.0
HEALTH_TIMEOUT_S = 60.0


@dataclass
class Start:
    """One `toolgate serve` start: seconds from spawn to `/health` answering 200 and to the gateway itself
    answering on `/mcp` (401 to a request without a token), and the CPU seconds the process had used
    when `/health` answered."""

    health: float
    mcp: float
    cpu: float


def health_time(source: Path) -> Start:
    """Spawn `toolgate serve` (no servers, a fixed free port) and time its first answers."""
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        port = _free_port()
        (home / "config.json").write_text(json.dumps({"gateway": {"port": port}, "servers": {}}))
        env = {**os.environ, "TOOLGATE_HOME": str(home), "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
        env.pop("DISPLAY", None)
        env.pop("WAYLAND_DISPLAY", None)
        env.pop("QT_QPA_PLATFORM", None)
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "app", "serve"],
            cwd=source,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            health = _first_answer(process, port, "GET", "/health", 200, started)
            cpu = _cpu_seconds(process.pid)
            mcp = _first_answer(process, port, "POST", "/mcp", 401, started)
            return Start(health, mcp, cpu)
        finally:
            process.terminate()
            process.wait(30)


def _first_answer(process: subprocess.Popen[bytes], port: int, method: str, path: str, status: int, t0: float) -> float:
    """Seconds from ``t0`` until ``method path`` is answered with ``status`` (polled; connection refused retried)."""
    while time.perf_counter() - t0 < HEALTH_TIMEOUT_S:
        if process.poll() is not None:
            raise RuntimeError(f"toolgate serve exited with {process.returncode} before {path} answered")
        with contextlib.suppress(OSError):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HEALTH_TIMEOUT_S)
            try:
                conn.request(method, path, body=b"{}" if method == "POST" else None)
                if conn.getresponse().status == status:
                    return time.perf_counter() - t0
            finally:
                conn.close()
        time.sleep(0.005)
    raise RuntimeError(f"{path} did not answer {status}")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds process ``pid`` has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def quit_time(source: Path) -> tuple[float, int]:
    """Seconds from SIGTERM to the tray app (offscreen, one stdio server, ready) having exited, and how many
    of its processes were left alive."""
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        command, args = fake_command()
        config = {"gateway": {"port": 0}, "servers": {"fake": {"command": command, "args": args}}}
        (home / "config.json").write_text(json.dumps(config))
        env = {**os.environ, "TOOLGATE_HOME": str(home), "QT_QPA_PLATFORM": "offscreen"}
        env.setdefault("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
        process = subprocess.Popen(
            [sys.executable, "-m", "app"],
            cwd=source,
            env=env,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        assert process.stderr is not None
        log = LineReader(process.stderr)
        try:
            log.wait_for("Toolgate is ready at", HEALTH_TIMEOUT_S)
            children = descendants(process.pid)
            started = time.perf_counter()
            process.send_signal(signal.SIGTERM)
            process.wait(HEALTH_TIMEOUT_S)
            seconds = time.perf_counter() - started
            left = [pid for pid in children if alive(pid)]
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            return seconds, len(left)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            log.wait_closed(10)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def compile_sources(source: Path) -> None:
    """Byte-compile a checkout's own modules, as an installed Toolgate is, so neither side of a comparison
    pays for compiling them on every start (PYTHONDONTWRITEBYTECODE would otherwise make it so)."""
    for package in ("gateway_core", "app"):
        compileall.compile_dir(source / package, quiet=1)


def summary(times: list[float]) -> str:
    return f"median {statistics.median(times):.2f} s, max {max(times):.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", default=None, help="a commit to compare against (default: none)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", default="health,exit,quit", help="which measures, comma-separated")
    options = parser.parse_args()
    only = set(options.only.split(","))
    with contextlib.ExitStack() as stack:
        sources = {"after": ROOT}
        if options.before:
            before = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            print(f"before: {export(options.before, before)}")
            sources = {"before": before, **sources}
        print(f"after:  this working tree ({ROOT}); load average {os.getloadavg()[0]:.1f}")
        for source in sources.values():
            compile_sources(source)
        starts: dict[str, list[Start]] = {key: [] for key in sources}
        quits: dict[str, list[float]] = {key: [] for key in sources}
        quit_left: dict[str, int] = dict.fromkeys(sources, 0)
        exits: dict[tuple[str, str], list[float]] = {}
        left: dict[str, int] = dict.fromkeys(sources, 0)
        for _ in range(options.runs):
            for key, source in sources.items():
                if "health" in only:
                    starts[key].append(health_time(source))
                if "quit" in only:
                    seconds, alive_after_quit = quit_time(source)
                    quits[key].append(seconds)
                    quit_left[key] += alive_after_quit
                if "exit" in only:
                    for situation in ("idle", "stream", "call"):
                        seconds, alive = exit_time(situation, source)
                        exits.setdefault((key, situation), []).append(seconds)
                        left[key] += alive
        print(f"load average at the end {os.getloadavg()[0]:.1f}")
        for key in sources:
            if "health" in only:
                health = [start.health for start in starts[key]]
                print(f"({key}) /health after start, no servers, {options.runs} runs: {summary(health)}")
                print(f"({key}) CPU used by then: {summary([start.cpu for start in starts[key]])}")
                print(f"({key}) /mcp answered by the gateway: {summary([start.mcp for start in starts[key]])}")
            if "exit" in only:
                for situation in ("idle", "stream", "call"):
                    print(f"({key}) exit after SIGTERM, 3 servers, {situation:<6}: {summary(exits[(key, situation)])}")
                print(f"({key}) servers left behind: {left[key]}")
            if "quit" in only:
                print(
                    f"({key}) tray app quit after SIGTERM, 1 server: {summary(quits[key])}; "
                    f"processes left behind: {quit_left[key]}"
                )
        targets = []
        if "health" in only:
            health_median = statistics.median(start.health for start in starts["after"])
            verdict = "OK" if health_median <= TARGET_S else "MISSED"
            targets.append(f"/health {health_median:.2f} s (<= {TARGET_S:g} s) {verdict}")
        if "exit" in only:
            worst_exit = max(statistics.median(exits[("after", s)]) for s in ("idle", "stream", "call"))
            verdict = "OK" if worst_exit <= TARGET_S else "MISSED"
            targets.append(f"slowest exit median {worst_exit:.2f} s (<= {TARGET_S:g} s) {verdict}")
        if "quit" in only:
            quit_median = statistics.median(quits["after"])
            verdict = "OK" if quit_median <= TARGET_S else "MISSED"
            targets.append(f"app quit {quit_median:.2f} s (<= {TARGET_S:g} s) {verdict}")
        print("targets (after): " + "; ".join(targets))
        if "before" in sources:
            ratios = []
            if "health" in only:
                for name in ("health", "cpu", "mcp"):
                    after = statistics.median(getattr(start, name) for start in starts["after"])
                    before = statistics.median(getattr(start, name) for start in starts["before"])
                    ratios.append(f"{'/' + name if name != 'cpu' else 'CPU at /health'} {after / before:.2f}x")
            if "quit" in only:
                ratios.append(f"app quit {statistics.median(quits['after']) / statistics.median(quits['before']):.2f}x")
            if "exit" in only:
                for situation in ("idle", "stream", "call"):
                    after = statistics.median(exits[("after", situation)])
                    ratios.append(f"exit {situation} {after / statistics.median(exits[('before', situation)]):.2f}x")
            print("after/before: " + ", ".join(ratios))


if __name__ == "__main__":
    main()

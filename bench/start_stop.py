"""How fast `toolgate serve` starts and stops: this checkout against an earlier commit, in one run.

  health  from spawning `toolgate serve` (as `python -m app serve`, the `toolgate` command's path) with
          no servers until `/health` answers 200;
  exit    from SIGTERM until the process has exited, with three stdio servers, in three situations
          (idle; an agent's GET stream open; a 60 s call in flight), and whether any server was left
          behind (see bench/serve_exit.py);
  quit    the tray app (offscreen, one stdio server): from SIGTERM (what Quit does) until it has exited.
The two checkouts take turns run by run so drift in machine load hits both alike. Targets: `/health`
within 1 s of the start, exit within 1 s of SIGTERM.

    .venv/bin/python bench/start_stop.py [--before REF] [--runs 5]
"""

from __future__ import annotations

import argparse
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from before_after import export
from serve_exit import exit_time

from tests.fakes.launch import LineReader, fake_command

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 1.0
HEALTH_TIMEOUT_S = 60.0


def health_time(source: Path) -> float:
    """Seconds from spawning `toolgate serve` (no servers, a fixed free port) to `/health` answering 200."""
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
            while time.perf_counter() - started < HEALTH_TIMEOUT_S:
                if process.poll() is not None:
                    raise RuntimeError(f"toolgate serve exited with {process.returncode} before /health answered")
                with contextlib.suppress(OSError):
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                    try:
                        conn.request("GET", "/health")
                        if conn.getresponse().status == 200:
                            return time.perf_counter() - started
                    finally:
                        conn.close()
                time.sleep(0.005)
            raise RuntimeError("/health did not answer")
        finally:
            process.terminate()
            process.wait(30)


def quit_time(source: Path) -> float:
    """Seconds from SIGTERM to the tray app (offscreen, one stdio server, ready) having exited."""
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
            started = time.perf_counter()
            process.send_signal(signal.SIGTERM)
            process.wait(HEALTH_TIMEOUT_S)
            return time.perf_counter() - started
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


def summary(times: list[float]) -> str:
    return f"median {statistics.median(times):.2f} s, max {max(times):.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", default=None, help="a commit to compare against (default: none)")
    parser.add_argument("--runs", type=int, default=5)
    options = parser.parse_args()
    with contextlib.ExitStack() as stack:
        sources = {"after": ROOT}
        if options.before:
            before = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            print(f"before: {export(options.before, before)}")
            sources = {"before": before, **sources}
        print(f"after:  this working tree ({ROOT})")
        health: dict[str, list[float]] = {key: [] for key in sources}
        quits: dict[str, list[float]] = {key: [] for key in sources}
        exits: dict[tuple[str, str], list[float]] = {}
        left: dict[str, int] = dict.fromkeys(sources, 0)
        for _ in range(options.runs):
            for key, source in sources.items():
                health[key].append(health_time(source))
                quits[key].append(quit_time(source))
                for situation in ("idle", "stream", "call"):
                    seconds, alive = exit_time(situation, source)
                    exits.setdefault((key, situation), []).append(seconds)
                    left[key] += alive
        for key in sources:
            print(f"({key}) /health after start, no servers, {options.runs} runs: {summary(health[key])}")
            for situation in ("idle", "stream", "call"):
                print(f"({key}) exit after SIGTERM, 3 servers, {situation:<6}: {summary(exits[(key, situation)])}")
            print(f"({key}) servers left behind: {left[key]}")
            print(f"({key}) tray app quit after SIGTERM, 1 server: {summary(quits[key])}")
        worst_exit = max(statistics.median(exits[("after", s)]) for s in ("idle", "stream", "call"))
        health_median = statistics.median(health["after"])
        print(
            f"targets (after): /health {health_median:.2f} s (<= {TARGET_S:g} s) "
            f"{'OK' if health_median <= TARGET_S else 'MISSED'}; slowest exit median {worst_exit:.2f} s "
            f"(<= {TARGET_S:g} s) {'OK' if worst_exit <= TARGET_S else 'MISSED'}"
        )
        if "before" in sources:
            before_health = statistics.median(health["before"])
            quit_ratio = statistics.median(quits["after"]) / statistics.median(quits["before"])
            print(f"after/before: /health {health_median / before_health:.2f}x, app quit {quit_ratio:.2f}x", end="")
            for situation in ("idle", "stream", "call"):
                ratio = statistics.median(exits[("after", situation)]) / statistics.median(exits[("before", situation)])
                print(f", exit {situation} {ratio:.2f}x", end="")
            print()


if __name__ == "__main__":
    main()

"""Does the tray app survive a person's day? Many tool calls, then a long idle, then Quit.

Starts the real tray app (`python -m app`, offscreen by default) with one stdio fake server and an
agent allowed everything, then:
  (1) --calls sequential `tools/call` of the fake's echo through the SDK client; reports calls/s;
  (2) idles for --idle seconds (default one hour), checking every second that the process is alive;
  (3) quits it with SIGTERM and checks the quit was clean: exit code 0, and nothing on stderr like
      "Fatal Python error" or "Task was destroyed but it is pending".
Any step that finds the process dead says when, and the run exits 1.

    .venv/bin/python bench/app_soak.py [--calls 20000] [--idle 3600] [--platform offscreen|xcb]

Issue 22: with PySide6 6.12.0 on Python 3.11 the app died after ~2,000 calls, or ~33 minutes idle.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakes.launch import LineReader, fake_command  # noqa: E402
from tests.integration.harness import agent_client, text_of  # noqa: E402

READY_LINE = "Toolgate is ready at"
QUIT_TIMEOUT_S = 30.0
# Lines on stderr that make a quit unclean, whatever the exit code says.
UNCLEAN = ("Fatal Python error", "Task was destroyed but it is pending", "Traceback (most recent call last)")


def start_app(home: Path, platform: str) -> tuple[subprocess.Popen[str], LineReader, str, str]:
    """The running app, its stderr reader, its endpoint URL and the bench agent's token."""
    command, args = fake_command()
    config = {
        "gateway": {"port": 0},
        "servers": {"fake": {"command": command, "args": args}},
        "agents": {"bench": {"name": "Bench", "default": "allow"}},
    }
    (home / "config.json").write_text(json.dumps(config))
    env = {**os.environ, "TOOLGATE_HOME": str(home), "QT_QPA_PLATFORM": platform}
    env.setdefault("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    rotate = [sys.executable, "-m", "app", "agents", "rotate", "bench"]
    token = subprocess.run(rotate, env=env, cwd=ROOT, capture_output=True, text=True, check=True, timeout=60)
    process = subprocess.Popen(
        [sys.executable, "-m", "app"], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env, cwd=ROOT
    )
    assert process.stderr is not None
    log = LineReader(process.stderr)
    url = log.wait_for(READY_LINE, 60).split(" at ")[1].split()[0]
    return process, log, url, token.stdout.strip()


async def call_many(url: str, token: str, calls: int, process: subprocess.Popen[str]) -> tuple[int, float]:
    """(calls that succeeded before the app died or all were made, seconds taken)."""
    done = 0
    start = time.perf_counter()
    try:
        async with agent_client(url, token) as client:
            for i in range(calls):
                result = await client.call_tool("fake__echo", {"text": f"call {i}"})
                if text_of(result) != f"call {i}":
                    raise AssertionError(f"call {i} returned {text_of(result)!r}")
                done += 1
                if i % 1000 == 999:
                    print(f"  {i + 1} calls, {done / (time.perf_counter() - start):.0f} calls/s", flush=True)
    except Exception as exc:  # the app died mid-run: report how far it got
        if process.poll() is None:
            raise
        print(f"  the app died after {done} calls ({type(exc).__name__})")
    return done, time.perf_counter() - start


def idle(process: subprocess.Popen[str], seconds: float) -> float:
    """Seconds the app stayed alive while idle, up to ``seconds``."""
    start = time.monotonic()
    while (elapsed := time.monotonic() - start) < seconds:
        if process.poll() is not None:
            return elapsed
        time.sleep(min(1.0, seconds - elapsed))
    return seconds


def quit_app(process: subprocess.Popen[str], log: LineReader) -> tuple[int | None, list[str]]:
    """(exit code, unclean stderr lines) after SIGTERM; None when it had to be killed."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        code: int | None = process.wait(QUIT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)
        code = None
    lines = log.wait_closed(10)
    return code, [line for line in lines if any(text in line for text in UNCLEAN)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--idle", type=float, default=3600.0, help="seconds to stay idle after the calls")
    parser.add_argument("--platform", default="offscreen")
    args = parser.parse_args()
    from PySide6 import __version__ as pyside_version

    print(f"Python {sys.version.split()[0]}, PySide6 {pyside_version}, platform {args.platform}")
    with tempfile.TemporaryDirectory() as home:
        process, log, url, token = start_app(Path(home), args.platform)
        try:
            done, seconds = asyncio.run(call_many(url, token, args.calls, process))
            print(f"calls: {done}/{args.calls} in {seconds:.1f} s, {done / seconds:.0f} calls/s")
            alive_s = idle(process, args.idle) if process.poll() is None else 0.0
            print(f"idle: alive for {alive_s:.0f}/{args.idle:.0f} s")
        finally:
            code, unclean = quit_app(process, log)
    print(f"quit: exit code {code}" + ("" if not unclean else "; unclean:\n  " + "\n  ".join(unclean)))
    survived = done == args.calls and alive_s >= args.idle and code == 0 and not unclean
    print("the app survived" if survived else "THE APP DID NOT SURVIVE")
    return 0 if survived else 1


if __name__ == "__main__":
    sys.exit(main())

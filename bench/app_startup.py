"""What the tray app costs a person: cold start, idle memory, and how fast an approval prompt appears.

  (1) cold start: spawn the app with a fresh TOOLGATE_HOME until its window is shown (painted once;
      bench/app_window_probe.py says so) and until it logs "Toolgate is ready" (window and tray built,
      gateway listening, every server tried); median of --runs; target for the window <= 1.5 s.
      Measured with no servers (the app's own cost) and with one stdio fake server (includes that
      server's start, which is the server's cost, not ours). With --before REF the same commit's
      app, unpacked with `git archive`, is started in turns with this checkout (both byte-compiled
      first, as an installed app is).
  (2) idle memory: RSS of the app process (children excluded) with 5 stdio servers connected, after
      they are ready and the app has idled for --idle seconds; target <= 150 MB.
  (3) prompt latency, in process: a real MCP client calls a tool the agent must ask about; time from
      the call being sent, and from the gateway's approval request, to the prompt window being visible
      (its `shown` signal); median of --prompts; target <= 100 ms.

    .venv/bin/python bench/app_startup.py [--runs 5] [--prompts 20] [--idle 5] [--platform offscreen|xcb]
                                          [--before REF] [--only start,memory,prompt]

With `--platform xcb` run it inside ../shared/tools/desktop-session (DISPLAY=:99) so a real tray exists.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(Path(__file__).resolve().parent))

from before_after import export  # noqa: E402
from start_stop import compile_sources  # noqa: E402

from tests.fakes.launch import LineReader, fake_command  # noqa: E402

READY_LINE = "Toolgate is ready at"


def fake_servers(count: int) -> dict[str, dict[str, object]]:
    command, args = fake_command()
    return {f"fake{i}": {"command": command, "args": args} for i in range(count)}


WINDOW_LINE = "PROBE window shown"
PROBE = Path(__file__).with_name("app_window_probe.py")


def start_app(
    home: Path, servers: dict[str, dict[str, object]], platform: str, source: Path = ROOT
) -> tuple[subprocess.Popen[str], float, float]:
    """Start ``source``'s app on a fresh home; returns the process, seconds to its window and to ready."""
    (home / "config.json").write_text(json.dumps({"gateway": {"port": 0}, "servers": servers}))
    env = {**os.environ, "TOOLGATE_HOME": str(home), "QT_QPA_PLATFORM": platform}
    env.setdefault("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, str(PROBE)], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env, cwd=source
    )
    assert process.stderr is not None
    lines = LineReader(process.stderr)
    lines.wait_for(WINDOW_LINE, 60)
    window = time.perf_counter() - start
    lines.wait_for(READY_LINE, 60)
    return process, window, time.perf_counter() - start


def stop_app(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def cold_start(
    runs: int, servers: int, platform: str, sources: dict[str, Path]
) -> dict[str, list[tuple[float, float]]]:
    """(window, ready) seconds per run for each source, the sources taking turns."""
    times: dict[str, list[tuple[float, float]]] = {key: [] for key in sources}
    for _ in range(runs):
        for key, source in sources.items():
            with tempfile.TemporaryDirectory() as home:
                process, window, ready = start_app(Path(home), fake_servers(servers), platform, source)
                stop_app(process)
                times[key].append((window, ready))
    return times


def report_starts(label: str, times: dict[str, list[tuple[float, float]]], target: str) -> None:
    for key, got in times.items():
        name = f"{label} ({key})" if len(times) > 1 else label
        describe(f"{name}: window shown", [w * 1000 for w, _ in got], "ms", target)
        describe(f"{name}: ready", [r * 1000 for _, r in got], "ms", "")
    if "before" in times and "after" in times:
        for index, what in enumerate(("window shown", "ready")):
            before = statistics.median(t[index] for t in times["before"])
            after = statistics.median(t[index] for t in times["after"])
            print(f"  {what}: after/before {after / before:.2f}x ({(after - before) * 1000:+.0f} ms)")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def idle_memory(platform: str, idle_s: float) -> float:
    with tempfile.TemporaryDirectory() as home:
        process, _, _ = start_app(Path(home), fake_servers(5), platform)
        try:
            time.sleep(idle_s)
            return rss_mb(process.pid)
        finally:
            stop_app(process)


def prompt_latency(prompts: int) -> tuple[list[float], list[float]]:
    """(from the call being sent, from the approval request) to the prompt being shown, in ms."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    from PySide6.QtWidgets import QApplication

    from app.loop import new_app_loop
    from app.prompt import ApprovalPrompt
    from gateway_core import Answer
    from tests.app.harness import eventually, running_bridge
    from tests.integration.harness import agent_client, stdio_fake

    qt_app = QApplication.instance() or QApplication([])
    loop = new_app_loop(qt_app)
    asyncio.set_event_loop(loop)
    from_call: list[float] = []
    from_request: list[float] = []

    async def scenario() -> None:
        async with running_bridge({"fake": stdio_fake()}, agents={"bench": {"default": "ask"}}) as bridge:
            requested_at: dict[str, float] = {}
            bridge.approval_requested.connect(lambda request: requested_at.setdefault(request.id, time.perf_counter()))
            prompt = ApprovalPrompt(bridge)
            shown = asyncio.Queue[tuple[str, float]]()
            prompt.shown.connect(lambda request_id: shown.put_nowait((request_id, time.perf_counter())))
            async with agent_client(bridge.endpoint_url, bridge.api.agent_token("bench")) as client:
                for _ in range(prompts):
                    sent = time.perf_counter()
                    call = asyncio.ensure_future(client.call_tool("fake__echo", {"text": "x"}))
                    request_id, at = await asyncio.wait_for(shown.get(), 30)
                    from_call.append((at - sent) * 1000)
                    from_request.append((at - requested_at[request_id]) * 1000)
                    bridge.api.answer_approval(request_id, Answer.DENY)
                    await asyncio.wait_for(call, 30)
                    # The prompt says "Denied elsewhere" for a moment, then hides: the next call finds it closed.
                    await eventually(lambda: not prompt.isVisible(), "the prompt to close")
            prompt.close()

    with tempfile.TemporaryDirectory() as home:
        os.environ["TOOLGATE_HOME"] = home
        loop.run_until_complete(scenario())
    return from_call, from_request


def describe(name: str, values: list[float], unit: str, target: str) -> None:
    spread = f"min {min(values):.1f}, max {max(values):.1f}"
    print(f"{name}: median {statistics.median(values):.1f} {unit} ({spread}); {target}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--prompts", type=int, default=20)
    parser.add_argument("--idle", type=float, default=5.0)
    parser.add_argument("--platform", default="offscreen")
    parser.add_argument("--before", default=None, help="a commit whose app start to compare against (default: none)")
    parser.add_argument("--only", default="start,memory,prompt", help="what to measure, comma-separated")
    args = parser.parse_args()
    only = set(args.only.split(","))
    print(f"{os.cpu_count()} CPUs, load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    with contextlib.ExitStack() as stack:
        sources = {"after": ROOT}
        if args.before is not None:
            before = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            print(f"before: {export(args.before, before)}")
            sources = {"before": before, **sources}
        for source in sources.values():
            compile_sources(source)
        if "start" in only:
            report_starts(
                "cold start, no servers", cold_start(args.runs, 0, args.platform, sources), "target <= 1500 ms"
            )
            report_starts(
                "cold start, 1 stdio server",
                cold_start(args.runs, 1, args.platform, sources),
                "(includes the server's own start)",
            )
    if "memory" in only:
        print(f"idle RSS with 5 servers: {idle_memory(args.platform, args.idle):.0f} MB; target <= 150 MB")
    if "prompt" in only:
        from_call, from_request = prompt_latency(args.prompts)
        describe("prompt visible after the call was sent", from_call, "ms", "target <= 100 ms")
        describe("prompt visible after the approval request", from_request, "ms", "")


if __name__ == "__main__":
    main()

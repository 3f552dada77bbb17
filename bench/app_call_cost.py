"""A tool call through the tray app's gateway against the same call through `toolgate serve`, in one run.

Issue 23's target: the tray app (offscreen) <= 1.1x `toolgate serve`. Both run this checkout in front
of the same echo server (the SDK-built fake, over stdio) with the agent's 100-rule policy
(bench/policy_overhead.py) and the audit log on, each with its own TOOLGATE_HOME and a free port:
  serve       `python -m gateway_core.cli serve` (asyncio's loop)
  app         the tray app, `python -m app` with QT_QPA_PLATFORM=offscreen (the gateway on the app's
              loop: on Linux asyncio's running Qt's, app/selector_loop.py), ready once it logs
              "Toolgate is ready at URL"
  app-qt      with --qt-loop, also the tray app on Qt's loop running asyncio's (TOOLGATE_APP_LOOP=qt,
              app/loop.py: the app's loop on macOS and Windows)
  app-before  with --before REF, also the tray app of commit REF (unpacked with `git archive`)
Measured with the minimal client (raw HTTP/1.1 over one keep-alive connection) and the MCP SDK's
client, sequentially (the paths taking turns every 25 calls, with each gateway process's CPU time
per call) and with --concurrency clients at once (the paths taking turns round by round), as
bench/gateway_overhead.py measures. Prints medians, p95, throughput, CPU per call, the app/serve
ratios and the verdict on <= 1.1x (of the median, sequential and concurrent; CPU per call is shown
beside it, without a target).

    .venv/bin/python bench/app_call_cost.py [--calls 2000] [--concurrency 32] [--rounds 4] [--qt-loop] [--before REF]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import gateway_overhead
from app_startup import stop_app
from before_after import export
from gateway_overhead import (
    START_TIMEOUT_S,
    Path_,
    http_factory,
    interleaved,
    interleaved_minimal,
    raw_http_factory,
    row,
    sequential_batches,
    toolgate_serve,
    wait_for_tools,
)
from policy_overhead import hundred_rules
from start_stop import compile_sources

from tests.fakes.launch import LineReader, fake_command

ROOT = Path(__file__).resolve().parents[1]
TARGET = 1.1
READY_LINE = "Toolgate is ready at "


@contextmanager
def tray_app(
    home: Path,
    servers: dict[str, Any],
    policy: dict[str, Any],
    source: Path = ROOT,
    started: Any = None,
    settings: dict[str, str] | None = None,
) -> Iterator[tuple[str, str]]:
    """Run the tray app (offscreen) of ``source`` on a free port with ``servers``, audit on; yield (url, token).

    ``settings`` are more environment variables for the app (``TOOLGATE_APP_LOOP``).
    """
    env = {
        **os.environ,
        **(settings or {}),
        "TOOLGATE_HOME": str(home),
        "QT_QPA_PLATFORM": "offscreen",
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
    }
    (home / "config.json").write_text(json.dumps({"gateway": {"port": 0}, "servers": servers}))
    token = subprocess.run(
        [sys.executable, "-m", "gateway_core.cli", "agents", "add", "bench"],
        env=env,
        cwd=source,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    config = json.loads((home / "config.json").read_text())
    config["agents"]["bench"].update(policy)
    config["audit"] = {"enabled": True}
    (home / "config.json").write_text(json.dumps(config))
    process = subprocess.Popen(
        [sys.executable, "-m", "app"], env=env, cwd=source, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    assert process.stderr is not None
    log = LineReader(process.stderr)
    try:
        line = log.wait_for(READY_LINE, START_TIMEOUT_S)
        url = line.split(READY_LINE, 1)[1].split()[0]
        if started is not None:
            started(process)
        yield url, token
    finally:
        stop_app(process)
        log.wait_closed(10)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000, help="timed calls per path, minimal client (SDK: half)")
    parser.add_argument("--concurrency", type=int, default=32, help="clients at once (default 32)")
    parser.add_argument("--rounds", type=int, default=4, help="turns per concurrent scenario (default 4)")
    parser.add_argument("--before", default=None, help="also the tray app of this commit (default: none)")
    parser.add_argument("--qt-loop", action="store_true", help="also the tray app on Qt's loop (TOOLGATE_APP_LOOP=qt)")
    options = parser.parse_args()
    gateway_overhead.ROUNDS = options.rounds
    command, args = fake_command()
    servers = {"echo": {"command": command, "args": args, "prefix": ""}}
    policy = hundred_rules()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"app against serve: {options.calls} echo calls per path (minimal client), {os.cpu_count()} CPUs, load {load}"
    )
    with contextlib.ExitStack() as stack:
        sources = {"app": ROOT}
        settings: dict[str, dict[str, str]] = {}
        if options.qt_loop:
            sources["app-qt"] = ROOT
            settings["app-qt"] = {"TOOLGATE_APP_LOOP": "qt"}
        if options.before:
            before = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            print(f"app-before: {export(options.before, before)}")
            sources["app-before"] = before
        for source in set(sources.values()):
            compile_sources(source)
        pids: dict[str, int] = {}
        urls: dict[str, tuple[str, str]] = {}
        home = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        urls["serve"] = stack.enter_context(
            toolgate_serve(home, servers, policy=policy, started=lambda p: pids.__setitem__("serve", p.pid))
        )
        for key, source in sources.items():
            home = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            urls[key] = stack.enter_context(
                tray_app(
                    home,
                    servers,
                    policy,
                    source,
                    started=lambda p, key=key: pids.__setitem__(key, p.pid),
                    settings=settings.get(key),
                )
            )
        names = {
            "serve": "toolgate serve",
            "app": "tray app (offscreen)",
            "app-qt": "tray app, Qt's loop",
            "app-before": "tray app, --before",
        }
        paths = {
            key: Path_(names[key], raw_http_factory(url, token), http_factory(url, "legacy", token))
            for key, (url, token) in urls.items()
        }
        for path in paths.values():
            await wait_for_tools(path.sdk, 1)
        results: dict[tuple[str, int], dict[str, dict[str, float]]] = {}
        for client in ("minimal", "sdk"):
            for clients in (1, options.concurrency):
                count = max(options.calls if client == "minimal" else options.calls // 2, 20 * clients)
                what = "sequential, turns of 25 calls" if clients == 1 else f"{clients} concurrent clients"
                print(f"{'minimal' if client == 'minimal' else 'SDK'} client, {what}, {count} calls:", flush=True)
                if clients == 1:
                    measured = await sequential_batches(paths, client, count, pids)
                elif client == "minimal":
                    measured = await interleaved_minimal(paths, clients, count)
                else:
                    measured = await interleaved({k: (p.name, p.sdk) for k, p in paths.items()}, clients, count)
                results[(client, clients)] = measured
                for key, path in paths.items():
                    print(row(path.name, measured[key]), flush=True)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    print(f"app / serve (target <= {TARGET}x):")
    for (client, clients), measured in results.items():
        label = f"{client} client, {'sequential' if clients == 1 else f'{clients} clients'}"
        for key in sources:
            app, serve = measured[key], measured["serve"]
            ratios = [f"median {app['median_ms'] / serve['median_ms']:.3f}x"]
            ratios.append(f"p95 {app['p95_ms'] / serve['p95_ms']:.3f}x")
            ratios.append(f"throughput {app['throughput'] / serve['throughput']:.3f}x")
            if "cpu_ms" in app:
                ratios.append(f"CPU per call {app['cpu_ms'] / serve['cpu_ms']:.3f}x")
            ok = app["median_ms"] / serve["median_ms"] <= TARGET  # the target is about a call's time
            verdict = ("OK" if ok else "MISSED") if key == "app" else f"({key})"
            print(f"  {label}, {names[key]}: {', '.join(ratios)} {verdict}")


if __name__ == "__main__":
    anyio.run(main)

"""Would uvloop make `toolgate serve` faster? The same checkout on asyncio's loop and on uvloop, in one run.

Two `toolgate serve` processes in front of the same echo server (over stdio), both with a 100-rule
policy and the audit log on; one runs as it ships (asyncio), the other with `uvloop.install()` first.
  (1) sequential echo calls with a minimal HTTP client, the two taking turns every --batch calls:
      median, p95 and each gateway process's CPU time per call;
  (2) the SDK's client at --clients concurrent clients (in rounds): median, p95, calls/s.
uvloop is not a dependency of Toolgate: give where it is importable with --uvloop-path (for example
after `pip install --target /tmp/uvl uvloop`), or install it into the environment.

    .venv/bin/python bench/uvloop_serve.py [--uvloop-path DIR] [--calls 3000] [--clients 1,32] [--sdk-calls 800]
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
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from before_after import MinimalClient, minimal_sequential
from gateway_overhead import ROOT, START_TIMEOUT_S, http_factory, interleaved, row, wait_for_tools
from policy_overhead import hundred_rules

from tests.fakes.launch import fake_command, read_first_line

# `toolgate serve` with uvloop's event loop policy installed first (what adopting uvloop would do).
ON_UVLOOP = "import sys, uvloop; uvloop.install(); from gateway_core.cli import main; sys.exit(main(['serve']))"


@contextlib.contextmanager
def serve(home: Path, servers: dict[str, Any], *, uvloop_path: str | None) -> Iterator[tuple[str, str, int]]:
    """`toolgate serve` on a free port, on uvloop when ``uvloop_path`` is given; yields (url, token, pid)."""
    env = {**os.environ, "TOOLGATE_HOME": str(home), "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    (home / "config.json").write_text(json.dumps({"gateway": {"port": 0}, "servers": servers}))
    cli = [sys.executable, "-m", "gateway_core.cli"]
    token = subprocess.run(
        [*cli, "agents", "add", "bench"], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    config = json.loads((home / "config.json").read_text())
    config["agents"]["bench"].update(hundred_rules())
    (home / "config.json").write_text(json.dumps(config))
    command = [*cli, "serve"]
    if uvloop_path is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), uvloop_path, env.get("PYTHONPATH")]))
        command = [sys.executable, "-c", ON_UVLOOP]
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = read_first_line(process, START_TIMEOUT_S)
        if not line.startswith("Toolgate is serving MCP at "):
            raise RuntimeError(f"toolgate serve did not start: {line!r}")
        yield line.split()[-1], token, process.pid
    finally:
        process.terminate()
        process.wait(30)


def ratio_line(measured: dict[str, dict[str, float]]) -> str:
    a, u = measured["asyncio"], measured["uvloop"]
    parts = [f"median {u['median_ms'] / a['median_ms']:.2f}x", f"throughput {u['throughput'] / a['throughput']:.2f}x"]
    if "cpu_ms" in a:
        parts.append(f"gateway CPU per call {u['cpu_ms'] / a['cpu_ms']:.2f}x")
    return "  uvloop/asyncio: " + ", ".join(parts)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--uvloop-path", default="", help="a folder uvloop can be imported from (default: the env)")
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--sdk-calls", type=int, default=800)
    parser.add_argument("--clients", default="1,32")
    options = parser.parse_args()
    command, args = fake_command()
    servers = {"echo": {"command": command, "args": args, "prefix": ""}}
    print(f"load average {os.getloadavg()[0]:.1f}")
    with contextlib.ExitStack() as stack:
        urls, tokens, pids, paths = {}, {}, {}, {}
        for key, uvloop_path in (("asyncio", None), ("uvloop", options.uvloop_path)):
            home = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            url, token, pid = stack.enter_context(serve(home, servers, uvloop_path=uvloop_path))
            urls[key], tokens[key], pids[key] = url, token, pid
            paths[key] = (f"toolgate serve on {key}", http_factory(url, "legacy", token))
        for _name, factory in paths.values():
            await wait_for_tools(factory, 1)
        minimal = {key: MinimalClient(urls[key], tokens[key]) for key in paths}
        measured = await anyio.to_thread.run_sync(minimal_sequential, minimal, pids, options.calls, options.batch)
        print(f"{options.calls} sequential echo calls, minimal HTTP client:")
        for key, (name, _factory) in paths.items():
            print(row(name, measured[key]) + f"   gateway CPU {measured[key]['cpu_ms']:.3f} ms/call")
        print(ratio_line(measured))
        for clients in (int(n) for n in options.clients.split(",") if n):
            measured = await interleaved(paths, clients, options.sdk_calls)
            print(f"{options.sdk_calls} echo calls, SDK client, {clients} client(s):")
            for key, (name, _factory) in paths.items():
                print(row(name, measured[key]))
            print(ratio_line(measured))
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    anyio.run(main)

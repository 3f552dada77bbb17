"""A change's effect on a call through `toolgate serve`: this checkout against an earlier commit, in one run.

Gateways in front of the same echo server (over stdio), all with a 100-rule policy:
  (before)      the commit given by --before (default: the parent of HEAD), audit log on
  (after)       this working tree, audit log on
  (after, off)  this working tree, audit log off (what auditing still costs)
  (hot off)     with --hot-off: this working tree, audit log on, hot path off (``TOOLGATE_HOT_PATH=0``)
first with a minimal HTTP client (http.client, one keep-alive connection, sequential calls, the
gateways taking turns every --batch calls so drift in machine load hits them alike), then with the
SDK's client over Streamable HTTP, sequentially and with 32 concurrent clients (in rounds). Prints
medians, p95, throughput and the ratios after/before; with the minimal client also each gateway
process's CPU time per call, which a busy machine disturbs far less than wall-clock time. With
``--method resources/read`` (or ``prompts/get``) the minimal client reads ``fake://items/N`` (or gets
the prompt ``greet``) instead of calling echo, and the SDK client's scenarios are left out. With
``--era 2026-07-28`` both clients speak that era (no session; the envelope in each request's ``_meta``).

    .venv/bin/python bench/before_after.py [--before REF] [--calls 2000] [--clients 1,32] [--sdk-calls 800]
                                           [--method tools/call|resources/read|prompts/get] [--hot-off]
                                           [--era 2025-11-25|2026-07-28]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gateway_overhead import ROOT, http_factory, interleaved, row, toolgate_serve, wait_for_tools
from policy_overhead import hundred_rules

from gateway_core.gateway import HOT_PATH_ENV
from tests.fakes.launch import fake_command

METHODS = ("tools/call", "resources/read", "prompts/get")
ERAS = ("2025-11-25", "2026-07-28")


def export(ref: str, into: Path) -> str:
    """Unpack Toolgate as of ``ref`` into ``into``; returns the commit's short hash and subject."""
    archive = subprocess.run(["git", "archive", ref], cwd=ROOT, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return subprocess.run(
        ["git", "log", "-1", "--format=%h %s", ref], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()[:100]


# What a 2026-07-28 agent puts in every request's ``_meta`` (there is no handshake in that era).
ENVELOPE_2026 = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientInfo": {"name": "b", "version": "0"},
    "io.modelcontextprotocol/clientCapabilities": {},
}


class MinimalClient:
    """An agent in a few lines: one keep-alive connection, each request one write.

    Of the handshake era (a session opened with ``initialize``), or with ``era="2026-07-28"`` of that
    era: no session, the envelope in each request's ``_meta`` and its routing headers.
    """

    def __init__(self, url: str, token: str, method: str = "tools/call", era: str = "2025-11-25") -> None:
        self._method = method
        self._modern = era == "2026-07-28"
        target = urlsplit(url)
        self._path = target.path
        self._conn = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
        self._headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
        }
        self.connections = 0
        self._next = 1
        if self._modern:
            self._headers["Mcp-Protocol-Version"] = era
            return
        opened = self._post(
            {
                "jsonrpc": "2.0",
                "id": 0,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-11-25",
                    "capabilities": {},
                    "clientInfo": {"name": "b", "version": "0"},
                },
            }
        )
        self._headers |= {
            "Mcp-Session-Id": opened.getheader("mcp-session-id") or "",
            "Mcp-Protocol-Version": "2025-11-25",
        }
        self._post({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def _post(self, message: dict[str, Any]) -> http.client.HTTPResponse:
        if self._conn.sock is None:
            self.connections += 1
        headers = self._headers
        if self._modern and "id" in message:  # a 2026-07-28 request names its method and target in headers too
            params = message["params"]
            headers = {**headers, "Mcp-Method": message["method"], "Mcp-Name": params.get("name", params.get("uri"))}
            message = {**message, "params": {**params, "_meta": ENVELOPE_2026}}
        self._conn.request("POST", self._path, body=json.dumps(message).encode(), headers=headers)
        response = self._conn.getresponse()
        body = response.read()
        if response.status >= 400 or b',"error":{"code":' in body:  # a refusal would measure the wrong thing
            raise RuntimeError(f"HTTP {response.status}: {body[:200]!r}")
        if response.will_close:
            self._conn.close()
        return response

    def call(self) -> float:
        """One echo call (or read, or prompt: the client's method), read whole; its seconds."""
        self._next += 1
        params: dict[str, Any] = {
            "tools/call": {"name": "echo", "arguments": {"text": f"m{self._next}"}},
            "resources/read": {"uri": f"fake://items/{self._next}"},
            "prompts/get": {"name": "greet", "arguments": {"name": f"m{self._next}"}},
        }[self._method]
        message = {"jsonrpc": "2.0", "id": self._next, "method": self._method, "params": params}
        started = time.perf_counter()
        self._post(message)
        return time.perf_counter() - started


def cpu_seconds(pid: int) -> float:
    """The CPU time (user + system) process ``pid`` has used, its threads included (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def minimal_sequential(
    clients: dict[str, MinimalClient], pids: dict[str, int], calls: int, batch: int
) -> dict[str, dict[str, float]]:
    """``calls`` sequential echo calls per gateway, the gateways taking turns every ``batch`` calls.

    Besides latency, the gateway process's own CPU time per call: far less sensitive to what else
    the machine runs than wall-clock time is.
    """
    for client in clients.values():
        for _ in range(30):
            client.call()
    samples: dict[str, list[float]] = {key: [] for key in clients}
    cpu = dict.fromkeys(clients, 0.0)
    while len(samples[next(iter(clients))]) < calls:
        for key, client in clients.items():
            before = cpu_seconds(pids[key])
            samples[key] += [client.call() for _ in range(batch)]
            cpu[key] += cpu_seconds(pids[key]) - before
    results = {}
    for key, got in samples.items():
        got.sort()
        results[key] = {
            "median_ms": statistics.median(got) * 1000,
            "p95_ms": got[int(len(got) * 0.95) - 1] * 1000,
            "throughput": len(got) / sum(got),
            "cpu_ms": cpu[key] / len(got) * 1000,
        }
    return results


def compare(label: str, measured: dict[str, dict[str, float]], paths: dict[str, str]) -> None:
    print(label)
    for key, name in paths.items():
        cpu = measured[key].get("cpu_ms")
        print(row(name, measured[key]) + ("" if cpu is None else f"   gateway CPU {cpu:.3f} ms/call"))
    b, a = measured["before"], measured["after"]
    if "cpu_ms" in a:
        print(
            f"  gateway CPU per call after/before: {a['cpu_ms'] / b['cpu_ms']:.2f}x "
            f"({a['cpu_ms'] - b['cpu_ms']:+.3f} ms); auditing costs {a['cpu_ms'] - measured['off']['cpu_ms']:+.3f} ms"
        )
    if (hot_off := measured.get("hot_off")) is not None:
        ratios = (
            f"median {a['median_ms'] / hot_off['median_ms']:.2f}x ({a['median_ms'] - hot_off['median_ms']:+.3f} ms)"
        )
        if "cpu_ms" in a:
            ratios += (
                f", gateway CPU {a['cpu_ms'] / hot_off['cpu_ms']:.2f}x ({a['cpu_ms'] - hot_off['cpu_ms']:+.3f} ms)"
            )
        print(f"  after (hot path on) / hot path off: {ratios}")
    print(
        f"  after/before: median {a['median_ms'] / b['median_ms']:.2f}x "
        f"({a['median_ms'] - b['median_ms']:+.3f} ms), throughput {a['throughput'] / b['throughput']:.2f}x; "
        f"auditing costs {a['median_ms'] - measured['off']['median_ms']:+.3f} ms over (after) audit off"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", default="HEAD~1", help="the commit to compare against (default: HEAD~1)")
    parser.add_argument("--calls", type=int, default=3000, help="timed calls per gateway, minimal client")
    parser.add_argument("--batch", type=int, default=50, help="calls per turn, minimal client")
    parser.add_argument("--sdk-calls", type=int, default=800, help="timed calls per gateway and scenario, SDK client")
    parser.add_argument("--clients", default="1,32", help="SDK clients at once, comma-separated ('' for none)")
    parser.add_argument("--method", choices=METHODS, default="tools/call", help="what the minimal client sends")
    parser.add_argument("--hot-off", action="store_true", help="add this working tree with the hot path off")
    parser.add_argument(
        "--era",
        choices=ERAS,
        default="2025-11-25",
        help="the agents' protocol era: the handshake era's newest version (default), or 2026-07-28",
    )
    options = parser.parse_args()
    command, args = fake_command()
    servers = {"echo": {"command": command, "args": args, "prefix": ""}}
    policy = hundred_rules()
    if options.method != "tools/call":  # the echo server's resources and prompts, decided for the server as a whole
        policy["rules"].append({"match": "echo/*", "effect": "allow"})  # type: ignore[attr-defined]
    with contextlib.ExitStack() as stack:
        before = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        described = export(options.before, before)
        print(f"before: {described}")
        print(f"after:  this working tree ({ROOT})")
        variants = {
            "before": ("(before) audit on", True, before),
            "after": ("(after) audit on", True, None),
            "off": ("(after) audit off", False, None),
        }
        if options.hot_off:
            variants["hot_off"] = ("(after) hot path off", True, None)
        paths = {}
        urls: dict[str, str] = {}
        tokens: dict[str, str] = {}
        pids: dict[str, int] = {}
        for key, (name, audit, source) in variants.items():
            home = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            serving = toolgate_serve(
                home,
                servers,
                policy=policy,
                audit=audit,
                source=source,
                started=lambda process, key=key: pids.__setitem__(key, process.pid),
            )
            with _hot_path(on=key != "hot_off"):  # read as the process starts
                url, token = stack.enter_context(serving)
            paths[key] = (name, http_factory(url, "legacy" if options.era == "2025-11-25" else options.era, token))
            urls[key], tokens[key] = url, token
        for _name, factory in paths.values():
            await wait_for_tools(factory, 1)
        names = {key: name for key, (name, _factory) in paths.items()}
        minimal = {key: MinimalClient(urls[key], tokens[key], options.method, options.era) for key in paths}
        measured = await anyio.to_thread.run_sync(minimal_sequential, minimal, pids, options.calls, options.batch)
        compare(f"{options.calls} sequential {options.method} requests, minimal HTTP client:", measured, names)
        for clients in (int(n) for n in options.clients.split(",") if n and options.method == "tools/call"):
            measured = await interleaved(paths, clients, options.sdk_calls)
            compare(f"{options.sdk_calls} echo calls, SDK client, {clients} client(s):", measured, names)


@contextlib.contextmanager
def _hot_path(*, on: bool) -> Iterator[None]:
    """``TOOLGATE_HOT_PATH`` for the processes started meanwhile (on: as the environment had it)."""
    saved = os.environ.get(HOT_PATH_ENV)
    if not on:
        os.environ[HOT_PATH_ENV] = "0"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(HOT_PATH_ENV, None)
        else:
            os.environ[HOT_PATH_ENV] = saved


if __name__ == "__main__":
    anyio.run(main)

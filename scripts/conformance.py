"""Run the official MCP conformance suite against a server, directly and through Toolgate, in both eras.

Two servers (``--server`` picks one; the default is both, one after the other):

* ``conformance``: ``tests/fakes/conformance_server.py``, built on the Python SDK, which serves both
  protocol eras and has everything the suite's server scenarios ask for;
* ``everything``: npm ``@modelcontextprotocol/server-everything`` (TypeScript SDK 1.x, handshake era
  only). It lacks most of the suite's test tools, resources and prompts, so many scenarios fail even
  directly and say nothing about Toolgate.

Each server is tested in two eras (``--era`` picks one), each with the suite's ``--requirements``
set for that specification revision, run at that revision's wire: ``2025-11-25`` (the handshake
era: ``initialize``, sessions) and ``2026-07-28`` (stateless: a ``_meta`` envelope on every request,
``server/discover``, ``subscriptions/listen``, input rounds). The sets also run, unscored, the
scenarios the suite marks as extensions or pending. In each era the suite runs twice:

* direct: the server's own Streamable HTTP transport;
* through Toolgate: the server over stdio behind ``toolgate serve`` (a throwaway TOOLGATE_HOME, one
  agent that allows everything), reached through a small local reverse proxy that adds the agent's
  ``Authorization`` header, because the suite cannot send one.

For each server and era it prints a table (scenario | direct | through Toolgate), the scenarios that
fail directly (known failures of the server), and every difference: a check that fails through
Toolgate but not directly, with the suite's detail. ``scripts/conformance-expected.toml`` lists the
differences known today, each with the item of issue 15 it belongs to. Exit status: 0 when every
difference is listed there and every listed one still happens; 1 otherwise (a new difference, or a
listed one that has gone: the list only ever shrinks honestly); 2 when a run could not be set up (its
temporary folder is then kept); 130 when interrupted. Every process it starts is stopped on the way
out, on Ctrl+C and SIGTERM too.

Use ``scripts/conformance``: it installs Node 22 and the suite (pinned) under ``.cache`` first.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx2
import uvicorn
from conformance_results import (
    ExpectedListError,
    ScenarioResult,
    compare,
    load_expected,
    read_results,
    render_report,
    render_summary_line,
    render_table,
)
from starlette.types import Message, Receive, Scope, Send

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / ".cache"
NODE = CACHE / "node22" / "node_modules" / "node" / "bin" / "node"
SUITE_CLI = CACHE / "conformance" / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
EVERYTHING = CACHE / "npm" / "node_modules" / ".bin" / "mcp-server-everything"
PYTHON = REPO / ".venv" / "bin" / "python"
CONFORMANCE_SERVER = REPO / "tests" / "fakes" / "conformance_server.py"
EXPECTED_FILE = REPO / "scripts" / "conformance-expected.toml"

LOOPBACK = "127.0.0.1"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
AGENT_ID = "conformance"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
REAP_POLL_S = 0.1
SUITE_TIMEOUT_S = 600.0
LIST_TIMEOUT_S = 60.0
# The suite's limit for one scenario (its own default is 30 s). Directly, the slowest one
# (server-stateless) takes about 7 s; one that waits on something that never comes fails after this.
SCENARIO_TIMEOUT_MS = 15_000
# A scenario in `conformance list --requirements`: "  - name", or "    - name [server]" when unscored.
LISTED_SCENARIO = re.compile(r"^ +- (?P<name>[\w./-]+)(?: (?P<role>\[\w+\]))?$")
# How a result that asks the agent questions first (2026-07-28) is told apart in a response body.
INPUT_REQUIRED = re.compile(rb'"resultType"\s*:\s*"input_required"')
INPUT_REQUIRED_TAIL = 64

# Headers that belong to one connection, not to the message, and so are never forwarded.
HOP_BY_HOP = frozenset(
    "connection keep-alive proxy-authenticate proxy-authorization te trailer transfer-encoding upgrade".split()
)
# Request headers the proxy sets itself: the body's length, and the agent's token.
NOT_FORWARDED = frozenset({"content-length", "authorization"})
# Headers httpx adds to every request unless told otherwise.
CLIENT_DEFAULT_HEADERS = frozenset({"accept", "accept-encoding", "user-agent"})


T = TypeVar("T")


@dataclass(frozen=True)
class Target:
    """A server to run the suite against.

    Attributes:
        name: its ``--server`` value, also its name in Toolgate's config.
        title: how the report names it.
        http_argv: the command serving it over Streamable HTTP at ``/mcp``; ``{port}`` is replaced by the port.
        http_env: environment added for that command, with the same replacement.
        stdio_argv: the command serving it over stdio, for Toolgate to start.
    """

    name: str
    title: str
    http_argv: tuple[str | Path, ...]
    http_env: dict[str, str]
    stdio_argv: tuple[str | Path, ...]

    def direct_command(self, port: int) -> tuple[list[str | Path], dict[str, str]]:
        """The argv and extra environment that serve it on 127.0.0.1:``port``."""
        argv = [arg.format(port=port) if isinstance(arg, str) else arg for arg in self.http_argv]
        return argv, {key: value.format(port=port) for key, value in self.http_env.items()}

    def files(self) -> list[Path]:
        """The files its commands need."""
        return [arg for arg in (*self.http_argv, *self.stdio_argv) if isinstance(arg, Path)]


TARGETS = {
    "conformance": Target(
        name="conformance",
        title="conformance_server.py (tests/fakes)",
        http_argv=(PYTHON, CONFORMANCE_SERVER, "--http", "--port", "{port}"),
        http_env={},
        stdio_argv=(Path(sys.executable), CONFORMANCE_SERVER),
    ),
    "everything": Target(
        name="everything",
        title="server-everything (npm @modelcontextprotocol/server-everything)",
        http_argv=(EVERYTHING, "streamableHttp"),
        http_env={"PORT": "{port}"},
        stdio_argv=(EVERYTHING, "stdio"),
    ),
}


ERAS = {
    "2025-11-25": "the handshake era (initialize, sessions)",
    "2026-07-28": "stateless (a _meta envelope on every request, no initialize)",
}
# Eras whose servers ask their questions in an input_required result, answered by a retry.
ERAS_WITH_INPUT_ROUNDS = frozenset({"2026-07-28"})


class SetupError(Exception):
    """Something the runs need could not be started; the message says what and where to look."""


# ---------------------------------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------------------------------


@dataclass
class Child:
    """A process this script started, in its own session, with its output in a log file."""

    name: str
    process: asyncio.subprocess.Process
    log_path: Path

    def output(self) -> str:
        """Everything it has written so far (stdout and stderr)."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of its output, for an error message."""
        return "\n".join(self.output().splitlines()[-lines:])


async def start_child(
    name: str, argv: Sequence[str | Path], log_path: Path, env: dict[str, str] | None = None
) -> Child:
    """Start ``argv`` in a new session (so Ctrl+C reaches only this script), logging to ``log_path``."""
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            *map(str, argv),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=REPO,
            start_new_session=True,
        )
    return Child(name, process, log_path)


async def stop_child(child: Child) -> None:
    """Stop a child and everything it started.

    The child gets SIGTERM (Toolgate then stops its own servers), and SIGKILL for it and its process
    group if it lingers. Its descendants, noted just before, get a moment to exit on their own and are
    then killed too: Toolgate starts each stdio server in a session of its own, out of the group's reach.
    """
    process = child.process
    descendants = process_tree(process.pid)
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)  # its session's id, and so its group's, is its pid
    if process.returncode is None:
        await process.wait()
    await reap(descendants)


def process_tree(root: int) -> dict[int, str]:
    """Every live descendant of ``root``, as pid -> start time (Linux ``/proc``; empty elsewhere)."""
    parents: dict[int, int] = {}
    started: dict[int, str] = {}
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        fields = _proc_stat(stat_file)
        if fields:
            pid = int(stat_file.parent.name)
            parents[pid], started[pid] = int(fields[1]), fields[19]
    tree: dict[int, str] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in tree]
        tree.update((pid, started[pid]) for pid in children)
        frontier += children
    return tree


def _proc_stat(stat_file: Path) -> list[str]:
    """The fields of a ``/proc/PID/stat`` after the command name (state, ppid, ...); empty if it is gone."""
    try:
        text = stat_file.read_text()
    except OSError:
        return []
    return text[text.rfind(")") + 2 :].split()


def _alive(pid: int, start_time: str) -> bool:
    """Whether ``pid`` is still the process noted (same start time), and not yet a zombie."""
    fields = _proc_stat(Path(f"/proc/{pid}/stat"))
    return bool(fields) and fields[19] == start_time and fields[0] != "Z"


async def reap(processes: dict[int, str]) -> None:
    """Give noted processes a moment to exit, then SIGKILL the ones still there (same pid and start time)."""
    for _ in range(int(STOP_TIMEOUT_S / 2 / REAP_POLL_S)):
        if not any(_alive(pid, start) for pid, start in processes.items()):
            return
        await asyncio.sleep(REAP_POLL_S)
    for pid, start in processes.items():
        if _alive(pid, start):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


@contextlib.asynccontextmanager
async def running_child(
    name: str, argv: Sequence[str | Path], log_path: Path, env: dict[str, str] | None = None
) -> AsyncIterator[Child]:
    """A child process for the duration of the block, stopped on the way out whatever happens."""
    child = await start_child(name, argv, log_path, env)
    try:
        yield child
    finally:
        await asyncio.shield(stop_child(child))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


async def wait_until(child: Child, what: str, probe: Callable[[], Awaitable[T | None]]) -> T:
    """Poll ``probe()`` (async) until it returns something truthy; fail if ``child`` exits or time runs out."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if child.process.returncode is not None:
            raise SetupError(f"{child.name} exited ({child.process.returncode}) before {what}:\n{child.log_tail()}")
        result = await probe()
        if result:
            return result
        await asyncio.sleep(0.2)
    raise SetupError(f"{child.name}: no {what} after {START_TIMEOUT_S:.0f} s:\n{child.log_tail()}")


async def port_open(port: int) -> bool | None:
    """Whether something accepts connections on 127.0.0.1:``port``."""
    try:
        _, writer = await asyncio.open_connection(LOOPBACK, port)
    except OSError:
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


# ---------------------------------------------------------------------------------------------------
# The suite
# ---------------------------------------------------------------------------------------------------


def era_scenarios(era: str) -> list[str]:
    """The server scenarios the suite runs for ``era``'s requirements, in its order (scored, then unscored)."""
    argv = [str(NODE), str(SUITE_CLI), "list", "--server", "--requirements", era]
    try:
        listed = subprocess.run(argv, capture_output=True, text=True, timeout=LIST_TIMEOUT_S, check=True).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise SetupError(f"the suite could not list the scenarios of {era}: {exc}") from exc
    # "Server scenarios ..." lists the scored ones as "  - name"; the unscored sections list
    # "    - name [server]" beside client scenarios, which are not for a server.
    scenarios: list[str] = []
    section = ""
    for line in listed.splitlines():
        if line and not line.startswith(" "):
            section = line
        elif match := LISTED_SCENARIO.match(line):
            if match["role"] == "[server]" or (match["role"] is None and section.startswith("Server scenarios")):
                scenarios.append(match["name"])
    if not scenarios:
        raise SetupError(f"the suite listed no server scenario for {era}:\n{listed}")
    return scenarios


async def run_suite(
    url: str, era: str, scenario: str | None, output_dir: Path, log_path: Path
) -> dict[str, ScenarioResult]:
    """Run the conformance suite in ``era`` against ``url``: one scenario, or (None) all of the era's.

    All of them: ``--requirements``, exactly what the revision requires and, unscored, its extensions
    and pending scenarios, each at the revision's wire. One: ``--scenario`` at the same wire
    (``--spec-version``), with ``--force`` because extension scenarios belong to no dated revision.
    """
    argv: list[str | Path] = [NODE, SUITE_CLI, "server", "--url", url, "-o", output_dir]
    argv += ["--timeout", str(SCENARIO_TIMEOUT_MS)]
    argv += ["--scenario", scenario, "--spec-version", era, "--force"] if scenario else ["--requirements", era]
    async with running_child("the conformance suite", argv, log_path) as suite:
        try:
            await asyncio.wait_for(suite.process.wait(), SUITE_TIMEOUT_S)
        except TimeoutError as exc:
            raise SetupError(f"the conformance suite ran for over {SUITE_TIMEOUT_S:.0f} s against {url}") from exc
    results = read_results(output_dir, suite.output())
    if scenario and scenario not in results:
        raise SetupError(f"the suite ran no scenario {scenario!r}: {_complaint(suite)}")
    if not results:
        raise SetupError(f"the suite produced no results against {url}: {_complaint(suite)}")
    return results


def _complaint(suite: Child) -> str:
    """What the suite said went wrong: its error lines, or else the end of its output."""
    lines = [line.strip() for line in suite.output().splitlines() if not line.lstrip().startswith("- ")]
    errors = [line for line in lines if re.search(r"error|unknown", line, re.I)]
    return "\n".join(errors[:5]) if errors else f"\n{suite.log_tail()}"


# ---------------------------------------------------------------------------------------------------
# Run 1: the server directly
# ---------------------------------------------------------------------------------------------------


async def run_direct(target: Target, era: str, scenario: str | None, work: Path) -> dict[str, ScenarioResult]:
    """The suite in ``era`` (all of it, or one scenario) against the server's own Streamable HTTP transport."""
    port = free_port()
    argv, env = target.direct_command(port)
    async with running_child(target.name, argv, work / f"{target.name}-http.log", env) as server:
        await wait_until(server, f"listener on port {port}", lambda: port_open(port))
        say(f"direct: {target.name} on port {port}; running the suite")
        url = f"http://{LOOPBACK}:{port}/mcp"
        return await run_suite(url, era, scenario, work / "results-direct", work / "suite-direct.log")


# ---------------------------------------------------------------------------------------------------
# Run 2: the server behind Toolgate
# ---------------------------------------------------------------------------------------------------


def toolgate_env(home: Path) -> dict[str, str]:
    """The environment of every Toolgate command here: a private home and the file secret store."""
    return {"TOOLGATE_HOME": str(home), "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}


def toolgate_command(home: Path, log_path: Path, *args: str) -> str:
    """Run ``toolgate ARGS`` against ``home`` and return its stdout; its stderr goes to ``log_path``."""
    with log_path.open("ab") as log:
        completed = subprocess.run(
            [str(PYTHON), "-m", "gateway_core.cli", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            env={**os.environ, **toolgate_env(home)},
            cwd=REPO,
            check=False,
            start_new_session=True,  # Ctrl+C is this script's to handle
        )
    if completed.returncode != 0:
        raise SetupError(f"`toolgate {' '.join(args)}` failed; see {log_path}")
    return completed.stdout.decode().strip()


def prepare_toolgate_home(target: Target, home: Path, log_path: Path) -> str:
    """Write a config with the server (stdio, no name prefix) and one allow-all agent; return its token."""
    home.mkdir(mode=0o700, parents=True)
    config_file = home / "config.json"
    command, *args = map(str, target.stdio_argv)
    config: dict[str, Any] = {
        "gateway": {"host": LOOPBACK, "port": 0},
        "servers": {target.name: {"command": command, "args": args, "prefix": ""}},
        "agents": {},
    }
    config_file.write_text(json.dumps(config, indent=2), encoding="utf-8")
    token = toolgate_command(home, log_path, "agents", "add", AGENT_ID, "--name", "Conformance suite")
    config = json.loads(config_file.read_text(encoding="utf-8"))
    config["agents"][AGENT_ID]["default"] = "allow"
    config_file.write_text(json.dumps(config, indent=2), encoding="utf-8")
    toolgate_command(home, log_path, "config", "check")
    return token


async def gateway_url(gateway: Child) -> str | None:
    """The MCP URL ``toolgate serve`` printed, once it has."""
    match = re.search(r"Toolgate is serving MCP at (\S+)", gateway.output())
    return match[1] if match else None


async def gateway_ready(http: httpx2.AsyncClient, base: str, server: str) -> bool | None:
    """Whether ``/ready`` says every server was tried and ``server`` is ready."""
    try:
        response = await http.get(f"{base}/ready")
    except httpx2.TransportError:
        return False
    if response.status_code != 200:
        return False
    return bool(response.json().get("servers", {}).get(server) == "ready")


@contextlib.asynccontextmanager
async def serving_toolgate(target: Target, home: Path, token: str, log_path: Path) -> AsyncIterator[AuthorizingProxy]:
    """Run ``toolgate serve`` on ``home`` until ``target`` is ready, and the authorizing proxy in front of it."""
    argv: list[str | Path] = [PYTHON, "-m", "gateway_core.cli", "serve"]
    async with running_child("toolgate serve", argv, log_path, toolgate_env(home)) as gateway:
        url = await wait_until(gateway, "MCP URL on its output", lambda: gateway_url(gateway))
        base = url.removesuffix("/mcp")
        async with httpx2.AsyncClient(timeout=5) as http:
            await wait_until(
                gateway, f"ready server {target.name!r} at {base}/ready", lambda: gateway_ready(http, base, target.name)
            )
        async with authorizing_proxy(url, token) as proxy:
            say(f"gateway: Toolgate at {url}, proxy at {proxy.url}")
            yield proxy


@dataclass
class ToolgateLife:
    """One ``toolgate serve`` (with its proxy), living in a task of its own until ``stop`` is set."""

    task: asyncio.Task[None]
    ready: asyncio.Future[AuthorizingProxy]
    stop: asyncio.Event


class ToolgatePool:
    """Toolgate instances, each on its own copy of a prepared home, the next one started ahead of need.

    Starting one takes about two seconds; ``take`` hands out the one started ahead and starts the
    following one, setting a life's ``stop`` ends it in the background, and ``close`` (on the way
    out, whatever happens) stops them all. Toolgate runs once per home, hence the copies.
    """

    def __init__(self, target: Target, home: Path, token: str, work: Path) -> None:
        self._target, self._home, self._token, self._work = target, home, token, work
        self.lives: list[ToolgateLife] = []
        self._next: ToolgateLife | None = None

    def _start(self) -> ToolgateLife:
        number = len(self.lives) + 1
        home = self._work / f"toolgate-home-{number}"
        shutil.copytree(self._home, home)
        ready: asyncio.Future[AuthorizingProxy] = asyncio.get_running_loop().create_future()
        stop = asyncio.Event()
        log = self._work / f"toolgate-serve-{number}.log"
        life = ToolgateLife(asyncio.ensure_future(self._live(home, ready, stop, log)), ready, stop)
        self.lives.append(life)
        return life

    async def _live(self, home: Path, ready: asyncio.Future[AuthorizingProxy], stop: asyncio.Event, log: Path) -> None:
        try:
            async with serving_toolgate(self._target, home, self._token, log) as proxy:
                ready.set_result(proxy)
                await stop.wait()
        except asyncio.CancelledError:
            ready.cancel()
            raise
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
            raise

    async def take(self, *, start_next: bool) -> tuple[ToolgateLife, AuthorizingProxy]:
        """A ready Toolgate and its proxy; with ``start_next``, the following one starts now."""
        life = self._next or self._start()
        self._next = self._start() if start_next else None
        return life, await life.ready

    async def close(self) -> None:
        """Stop every instance and wait until they have (each stop is bounded)."""
        for life in self.lives:
            life.stop.set()
        await asyncio.shield(asyncio.gather(*(life.task for life in self.lives), return_exceptions=True))
        for life in self.lives:  # a spare that failed to start was never taken: its error is in the task's
            if life.ready.done() and not life.ready.cancelled():
                life.ready.exception()


async def run_gateway(
    target: Target, era: str, scenario: str | None, work: Path, listed: Sequence[str]
) -> dict[str, ScenarioResult]:
    """The suite in ``era`` (all of it, or one scenario) against the server behind ``toolgate serve``.

    In an era with input rounds the era's scenarios (``listed``) run one at a time, and a scenario
    after one in which Toolgate answered ``input_required`` gets a Toolgate of its own. Such a
    Toolgate may still hold that call open, waiting for a retry the suite never sends. Later calls
    no longer wait behind it, but Toolgate reaches this server over stdio, where a question cannot
    be told apart from the open call's: a later scenario's question would be refused as ambiguous
    (issue 15 §6: reached in its own era, the server would ask inside each call's result).
    """
    home = work / "toolgate-home"
    token = prepare_toolgate_home(target, home, work / "toolgate-cli.log")
    if scenario is not None or era not in ERAS_WITH_INPUT_ROUNDS:
        async with serving_toolgate(target, home, token, work / "toolgate-serve.log") as proxy:
            return await run_suite(proxy.url, era, scenario, work / "results-gateway", work / "suite-gateway.log")
    results: dict[str, ScenarioResult] = {}
    pool = ToolgatePool(target, home, token, work)
    try:
        life, proxy = await pool.take(start_next=True)
        for number, name in enumerate(listed, 1):
            if proxy.input_required_seen:
                life.stop.set()
                life, proxy = await pool.take(start_next=number < len(listed))
            output, log = work / "results-gateway" / name, work / "suite-gateway" / f"{name}.log"
            log.parent.mkdir(exist_ok=True)
            results |= await run_suite(proxy.url, era, name, output, log)
    finally:
        await pool.close()
    say(f"gateway: {len(results)} scenarios, one at a time, on {len(pool.lives)} Toolgate instance(s)")
    return results


# ---------------------------------------------------------------------------------------------------
# The authorizing reverse proxy
# ---------------------------------------------------------------------------------------------------


class AuthorizingProxy:
    """An ASGI app that forwards every request to the gateway with the agent's bearer token.

    Everything else passes through as the client sent it: method, path, query, body and headers one
    way (``Mcp-Session-Id``, ``MCP-Protocol-Version``, ``Last-Event-ID``, ``Accept``, ...), status, headers
    and body the other way, streamed chunk by chunk so SSE events arrive as they are sent. Host and
    Origin naming the proxy's own loopback address are rewritten to the gateway's, so the gateway sees
    what a client talking to it directly would send; any other Host or Origin passes unchanged and meets
    the gateway's own checks. It notes, without changing anything, whether the gateway has answered
    any request with an ``input_required`` result.

    Args:
        upstream: the gateway's MCP URL, ``http://127.0.0.1:PORT/mcp``.
        token: the agent token to send.
        http: the client used to reach the gateway.
    """

    def __init__(self, upstream: str, token: str, http: httpx2.AsyncClient) -> None:
        self._upstream = httpx2.URL(upstream)
        self._token = token
        self._http = http
        self.own_port = 0
        self.input_required_seen = False

    @property
    def url(self) -> str:
        """The proxy's own MCP URL."""
        return f"http://{LOOPBACK}:{self.own_port}{self._upstream.path}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Forward one HTTP request; stop forwarding when the client goes away."""
        if scope["type"] != "http":
            return
        body = await _read_body(receive)
        if body is None:
            return
        forward = asyncio.ensure_future(self._forward(scope, body, send))
        disconnect = asyncio.ensure_future(_wait_disconnect(receive))
        try:
            await asyncio.wait({forward, disconnect}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (forward, disconnect):
                task.cancel()
            await asyncio.gather(forward, disconnect, return_exceptions=True)
        if forward.done() and not forward.cancelled():
            forward.result()  # re-raise what went wrong, for uvicorn to log

    async def _forward(self, scope: Scope, body: bytes, send: Send) -> None:
        try:
            upstream = await self._http.send(self._upstream_request(scope, body), stream=True)
        except httpx2.TransportError as exc:
            await _send_bad_gateway(send, f"the proxy could not reach Toolgate: {exc!r}")
            return
        try:
            headers = [(k, v) for k, v in upstream.headers.raw if k.decode("latin-1").lower() not in HOP_BY_HOP]
            await send({"type": "http.response.start", "status": upstream.status_code, "headers": headers})
            seen = b""
            async for chunk in upstream.aiter_raw():
                seen = seen[-INPUT_REQUIRED_TAIL:] + chunk  # a match may straddle two chunks
                self.input_required_seen = self.input_required_seen or INPUT_REQUIRED.search(seen) is not None
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await upstream.aclose()

    def _upstream_request(self, scope: Scope, body: bytes) -> httpx2.Request:
        """The request to send to the gateway: the client's, re-addressed, with the token added."""
        url = self._upstream.copy_with(path=scope["path"], query=scope.get("query_string") or None)
        headers: list[tuple[str, str]] = []
        for raw_name, raw_value in scope["headers"]:
            name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
            if name == "host":
                headers.append((name, self._to_upstream_authority(value)))
            elif name == "origin":
                headers.append((name, self._to_upstream_origin(value)))
            elif name not in HOP_BY_HOP and name not in NOT_FORWARDED:
                # Whitespace around a value is not part of it (RFC 9110 §5.5), and httpx refuses to send
                # it; what the gateway does with it is tested in tests/security/test_http_front.py.
                headers.append((name, value.strip(" \t")))
        headers.append(("authorization", f"Bearer {self._token}"))
        request = self._http.build_request(scope["method"], url, headers=headers, content=body)
        # httpx adds defaults (Accept, User-Agent, ...) the client did not send: the gateway must not see them.
        sent = {name for name, _ in headers}
        for name in CLIENT_DEFAULT_HEADERS - sent:
            del request.headers[name]
        return request

    def _to_upstream_authority(self, authority: str) -> str:
        for name in LOOPBACK_NAMES:
            if authority == f"{name}:{self.own_port}":
                return f"{name}:{self._upstream.port}"
        return authority

    def _to_upstream_origin(self, origin: str) -> str:
        scheme, sep, authority = origin.partition("://")
        return f"{scheme}{sep}{self._to_upstream_authority(authority)}" if sep else origin


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body; ``None`` if the client went away first."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _wait_disconnect(receive: Receive) -> None:
    message: Message = {"type": ""}
    while message["type"] != "http.disconnect":
        message = await receive()


async def _send_bad_gateway(send: Send, message: str) -> None:
    body = json.dumps({"jsonrpc": "2.0", "id": None, "error": {"code": -32603, "message": message}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 502, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _QuietServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to this script."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def authorizing_proxy(upstream: str, token: str) -> AsyncIterator[AuthorizingProxy]:
    """Serve an ``AuthorizingProxy`` to ``upstream`` on 127.0.0.1 for the block; yields it."""
    timeout = httpx2.Timeout(30, read=None)  # SSE streams may stay quiet for long
    async with httpx2.AsyncClient(timeout=timeout, limits=httpx2.Limits(max_connections=None)) as http:
        app = AuthorizingProxy(upstream, token, http)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((LOOPBACK, 0))
        app.own_port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            app,
            log_level="warning",
            lifespan="off",
            server_header=False,
            date_header=False,
            timeout_graceful_shutdown=1,
        )
        server = _QuietServer(config)
        task = asyncio.ensure_future(server.serve(sockets=[sock]))
        try:
            while not server.started:
                if task.done():
                    task.result()
                    raise SetupError("the proxy stopped before it started")
                await asyncio.sleep(0.02)
            yield app
        finally:
            server.should_exit = True
            await asyncio.shield(asyncio.wait({task}, timeout=5))
            if not task.done():
                task.cancel()
            sock.close()


# ---------------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------------


def say(message: str) -> None:
    """Progress for the person running this, on stderr."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def check_installed(targets: Sequence[Target]) -> None:
    """Fail early, saying what to run, when something the runs need is missing."""
    needed = [NODE, SUITE_CLI, PYTHON, *(path for target in targets for path in target.files())]
    missing = [path for path in dict.fromkeys(needed) if not path.exists()]
    if missing:
        names = ", ".join(str(path.relative_to(REPO)) for path in missing)
        raise SetupError(f"missing {names}; run scripts/conformance (it installs them) rather than this file")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command-line options."""
    parser = argparse.ArgumentParser(
        prog="scripts/conformance",
        description="Run the MCP conformance suite against a server, directly and through Toolgate.",
    )
    parser.add_argument(
        "--server",
        choices=tuple(TARGETS),
        help="run against only this server: conformance (tests/fakes/conformance_server.py) or everything "
        "(npm server-everything); default: both, one after the other",
    )
    parser.add_argument(
        "--era",
        choices=tuple(ERAS),
        help="test only this era: 2025-11-25 (handshake) or 2026-07-28 (stateless); default: both",
    )
    parser.add_argument("--only", choices=("direct", "gateway"), help="do only one of the two runs")
    parser.add_argument(
        "--scenario",
        metavar="NAME",
        help="run one scenario (see the suite's `list --server`), in each selected era it belongs to",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, results, Toolgate home)")
    return parser.parse_args(argv)


def selected_targets(options: argparse.Namespace) -> list[Target]:
    """The servers to run against, in order."""
    return [TARGETS[options.server]] if options.server else list(TARGETS.values())


def selected_eras(options: argparse.Namespace) -> list[str]:
    """The eras to test, in order."""
    return [options.era] if options.era else list(ERAS)


async def run(options: argparse.Namespace, work: Path) -> int:
    """Both runs (or the one asked for) per server and era, each report as it is done; the exit status."""
    started = time.monotonic()
    try:
        expected = load_expected(EXPECTED_FILE)
    except ExpectedListError as exc:
        raise SetupError(str(exc)) from exc
    expected_name = str(EXPECTED_FILE.relative_to(REPO))
    unknown = [f'[{server}."{era}"]' for server, era in expected if server not in TARGETS or era not in ERAS]
    if unknown:
        raise SetupError(f"{expected_name} names no server and era this runs: {', '.join(unknown)}")
    summary: list[str] = []
    failed = False
    scenarios = {era: era_scenarios(era) for era in selected_eras(options)}
    for target in selected_targets(options):
        for era, era_list in scenarios.items():
            if options.scenario and options.scenario not in era_list:
                say(f"\n{options.scenario} is not one of the scenarios of {era}")
                continue
            run_started, run_work = time.monotonic(), work / f"{target.name}-{era}"
            run_work.mkdir()
            say(f"\n{target.title}, {era}:")
            direct, gateway = {}, {}
            if options.only in (None, "direct"):
                direct = await run_direct(target, era, options.scenario, run_work)
            if options.only in (None, "gateway"):
                gateway = await run_gateway(target, era, options.scenario, run_work, era_list)
            complete = options.scenario is None and options.only is None
            comparison = compare(direct, gateway, expected.get((target.name, era), {}), complete=complete)
            heading = f"== {target.title}, {era}: {ERAS[era]} ({time.monotonic() - run_started:.1f} s)"
            report = render_report(comparison, expected_name)
            separator = "\n" if summary else ""
            sys.stdout.write(f"{separator}{heading}\n\n{render_table(comparison)}\n\n{report}\n")
            sys.stdout.flush()
            summary.append(render_summary_line(target.name, era, comparison))
            failed = failed or comparison.failed()
    sys.stdout.write("\nSummary:\n" + "".join(f"  {line}\n" for line in summary))
    say(f"\ndone in {time.monotonic() - started:.1f} s")
    return 1 if failed else 0


async def run_cancellable(options: argparse.Namespace, work: Path) -> int:
    """``run``, with SIGTERM cancelling it the way Ctrl+C does, so every child is stopped either way."""
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    if task is not None:
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
    return await run(options, work)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    options = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="toolgate-conformance-"))
    status = 2
    try:
        check_installed(selected_targets(options))
        status = asyncio.run(run_cancellable(options, work))
    except SetupError as exc:
        say(f"error: {exc}")
    except (KeyboardInterrupt, asyncio.CancelledError):
        say("interrupted; every process this started has been stopped")
        status = 130
    finally:
        _tidy(work, keep=options.keep or status == 2)
    return status


def _tidy(work: Path, *, keep: bool) -> None:
    if keep:
        say(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())

"""Run the official MCP conformance suite against a server, directly and through Toolgate.

Two servers, each run both ways (``--server`` picks one; the default is both, one after the other):

* ``everything``: npm ``@modelcontextprotocol/server-everything``. It lacks most of the suite's test
  tools, resources and prompts, so many scenarios fail even directly and say nothing about Toolgate;
* ``conformance``: ``tests/fakes/conformance_server.py``, which has everything the suite's server
  scenarios ask for and passes all of them directly.

For each server the two runs are:

* direct: the server's own Streamable HTTP transport;
* through Toolgate: the server over stdio behind ``toolgate serve`` (a throwaway TOOLGATE_HOME, one
  agent that allows everything), reached through a small local reverse proxy that adds the agent's
  ``Authorization`` header, because the suite cannot send one.

It prints one table per server (scenario | direct | through Toolgate), each followed by every scenario
that passes directly but fails through Toolgate, with the suite's failure detail. Exit status: 0 when
there is no such scenario, 1 when there is one, 2 when a run could not be set up (its temporary folder is
then kept), 130 when interrupted. Every process it starts is stopped on the way out, on Ctrl+C and SIGTERM too.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx2
import uvicorn
from starlette.types import Message, Receive, Scope, Send

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / ".cache"
NODE = CACHE / "node22" / "node_modules" / "node" / "bin" / "node"
SUITE_CLI = CACHE / "conformance" / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
EVERYTHING = CACHE / "npm" / "node_modules" / ".bin" / "mcp-server-everything"
PYTHON = REPO / ".venv" / "bin" / "python"
CONFORMANCE_SERVER = REPO / "tests" / "fakes" / "conformance_server.py"

LOOPBACK = "127.0.0.1"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
AGENT_ID = "conformance"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
REAP_POLL_S = 0.1
SUITE_TIMEOUT_S = 600.0

PASS, WARN, FAIL, ERROR, NOT_RUN = "pass", "warn", "FAIL", "ERROR", "-"
OK_STATUSES = (PASS, WARN)
BAD_STATUSES = (FAIL, ERROR)
# A result folder is "server-<scenario>-<ISO timestamp with : and . replaced by ->".
RESULT_DIR = re.compile(r"^server-(?P<scenario>.+)-\d{4}-\d{2}-\d{2}T[\d-]+Z$")
SCENARIO_START = re.compile(r"^=== Running scenario: (?P<scenario>\S+) ===$", re.MULTILINE)
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
    "everything": Target(
        name="everything",
        title="server-everything (npm @modelcontextprotocol/server-everything)",
        http_argv=(EVERYTHING, "streamableHttp"),
        http_env={"PORT": "{port}"},
        stdio_argv=(EVERYTHING, "stdio"),
    ),
    "conformance": Target(
        name="conformance",
        title="conformance_server.py (tests/fakes)",
        http_argv=(PYTHON, CONFORMANCE_SERVER, "--http", "--port", "{port}"),
        http_env={},
        stdio_argv=(Path(sys.executable), CONFORMANCE_SERVER),
    ),
}


class SetupError(Exception):
    """Something the runs need could not be started; the message says what and where to look."""


# ---------------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------------


@dataclass
class ScenarioResult:
    """One scenario's outcome in one run.

    Attributes:
        status: PASS, WARN (no failed check, some warnings), FAIL, or ERROR (the suite wrote no result).
        checks: the suite's checks, as in its ``checks.json``.
        error: why there is no result, for ERROR.
    """

    status: str
    checks: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""

    def failure_lines(self) -> list[str]:
        """One line per failed check (or the run error): ``check-id: message | details``."""
        if self.status == ERROR:
            return [self.error]
        return [_describe_check(check) for check in self.checks if check.get("status") == "FAILURE"]

    def success_lines(self) -> list[str]:
        """One line per passed check, with what the suite saw (it sometimes passes on an error result)."""
        return [_describe_check(check) for check in self.checks if check.get("status") == "SUCCESS"]


def _describe_check(check: dict[str, Any]) -> str:
    message = check.get("errorMessage") or check.get("description") or ""
    details = check.get("details")
    text = f"{check.get('id', '?')}: {message}"
    if details:
        text += f" | details: {json.dumps(details, separators=(',', ':'))[:400]}"
    return text


def scenario_status(checks: list[dict[str, Any]]) -> str:
    """The status of a scenario from its checks, the way the suite's summary counts them."""
    statuses = {check.get("status") for check in checks}
    if "FAILURE" in statuses:
        return FAIL
    if "WARNING" in statuses:
        return WARN
    return PASS


def read_results(output_dir: Path, suite_output: str) -> dict[str, ScenarioResult]:
    """Every scenario the suite ran, from its ``checks.json`` files.

    A scenario the suite announced on stdout but wrote no ``checks.json`` for threw inside the suite;
    it is an ERROR with the suite's own message.

    Args:
        output_dir: the folder given to the suite as ``-o``.
        suite_output: the suite's stdout and stderr, for the scenarios it ran and their errors.
    """
    written: dict[str, ScenarioResult] = {}
    for checks_file in sorted(output_dir.glob("*/checks.json")):
        match = RESULT_DIR.match(checks_file.parent.name)
        if match is None:
            continue
        checks = json.loads(checks_file.read_text(encoding="utf-8"))
        if checks:
            written[match["scenario"]] = ScenarioResult(scenario_status(checks), checks)
        else:
            written[match["scenario"]] = ScenarioResult(ERROR, error="the suite recorded no checks for it")
    # In the order the suite ran them; a single --scenario run announces nothing.
    results: dict[str, ScenarioResult] = {}
    for scenario in SCENARIO_START.findall(suite_output):
        missing = ScenarioResult(ERROR, error=_suite_error(scenario, suite_output))
        results[scenario] = written.pop(scenario, missing)
    return {**results, **written}


def _suite_error(scenario: str, suite_output: str) -> str:
    marker = f"Failed to run scenario {scenario}:"
    for line in suite_output.splitlines():
        if line.startswith(marker):
            return line.removeprefix(marker).strip() or "the suite failed to run it"
    return "the suite wrote no result for it (see its output with --keep)"


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


async def run_suite(
    url: str, output_dir: Path, log_path: Path, options: argparse.Namespace
) -> dict[str, ScenarioResult]:
    """Run the conformance suite against ``url`` and read what it wrote to ``output_dir``."""
    argv: list[str | Path] = [NODE, SUITE_CLI, "server", "--url", url, "-o", output_dir]
    argv += ["--scenario", options.scenario] if options.scenario else ["--suite", options.suite]
    async with running_child("the conformance suite", argv, log_path) as suite:
        try:
            await asyncio.wait_for(suite.process.wait(), SUITE_TIMEOUT_S)
        except TimeoutError as exc:
            raise SetupError(f"the conformance suite ran for over {SUITE_TIMEOUT_S:.0f} s against {url}") from exc
    results = read_results(output_dir, suite.output())
    if options.scenario and options.scenario not in results:
        raise SetupError(f"the suite ran no scenario {options.scenario!r}: {_complaint(suite)}")
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


async def run_direct(target: Target, work: Path, options: argparse.Namespace) -> dict[str, ScenarioResult]:
    """The suite against the server's own Streamable HTTP transport."""
    port = free_port()
    argv, env = target.direct_command(port)
    async with running_child(target.name, argv, work / f"{target.name}-http.log", env) as server:
        await wait_until(server, f"listener on port {port}", lambda: port_open(port))
        say(f"direct: {target.name} on port {port}; running the suite")
        return await run_suite(
            f"http://{LOOPBACK}:{port}/mcp", work / "results-direct", work / "suite-direct.log", options
        )


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


async def run_gateway(target: Target, work: Path, options: argparse.Namespace) -> dict[str, ScenarioResult]:
    """The suite against the server behind ``toolgate serve``, through the authorizing proxy."""
    home = work / "toolgate-home"
    token = prepare_toolgate_home(target, home, work / "toolgate-cli.log")
    argv: list[str | Path] = [PYTHON, "-m", "gateway_core.cli", "serve"]
    async with running_child("toolgate serve", argv, work / "toolgate-serve.log", toolgate_env(home)) as gateway:
        url = await wait_until(gateway, "MCP URL on its output", lambda: gateway_url(gateway))
        base = url.removesuffix("/mcp")
        async with httpx2.AsyncClient(timeout=5) as http:
            await wait_until(
                gateway, f"ready server {target.name!r} at {base}/ready", lambda: gateway_ready(http, base, target.name)
            )
        async with authorizing_proxy(url, token) as proxy_url:
            say(f"gateway: Toolgate at {url}, proxy at {proxy_url}; running the suite")
            return await run_suite(proxy_url, work / "results-gateway", work / "suite-gateway.log", options)


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
    the gateway's own checks.

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
            async for chunk in upstream.aiter_raw():
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
                headers.append((name, value))
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
async def authorizing_proxy(upstream: str, token: str) -> AsyncIterator[str]:
    """Serve an ``AuthorizingProxy`` to ``upstream`` on 127.0.0.1 for the block; yields its MCP URL."""
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
            yield f"http://{LOOPBACK}:{app.own_port}/mcp"
        finally:
            server.should_exit = True
            await asyncio.shield(asyncio.wait({task}, timeout=5))
            if not task.done():
                task.cancel()
            sock.close()


# ---------------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------------


def regressions(direct: dict[str, ScenarioResult], gateway: dict[str, ScenarioResult]) -> list[str]:
    """Scenarios that pass directly but fail (or error) through Toolgate, in suite order."""
    return [
        name
        for name, result in direct.items()
        if result.status in OK_STATUSES and name in gateway and gateway[name].status in BAD_STATUSES
    ]


def check_regressions(direct: dict[str, ScenarioResult], gateway: dict[str, ScenarioResult]) -> list[tuple[str, str]]:
    """Checks that pass directly but fail through Toolgate inside scenarios that fail both ways."""
    found: list[tuple[str, str]] = []
    for name, result in direct.items():
        if result.status not in BAD_STATUSES or name not in gateway:
            continue
        passed_directly = {check.get("id") for check in result.checks if check.get("status") == "SUCCESS"}
        for check in gateway[name].checks:
            if check.get("status") == "FAILURE" and check.get("id") in passed_directly:
                found.append((name, _describe_check(check)))
    return found


def scenario_order(direct: dict[str, ScenarioResult], gateway: dict[str, ScenarioResult]) -> list[str]:
    """Every scenario either run saw, in the order the suite ran them."""
    return list(dict.fromkeys([*direct, *gateway]))


def render_table(direct: dict[str, ScenarioResult], gateway: dict[str, ScenarioResult]) -> str:
    """The scenario | direct | through Toolgate table, as plain text."""
    rows = [("scenario", "direct", "through Toolgate")]
    for name in scenario_order(direct, gateway):
        rows.append((name, _cell(direct.get(name)), _cell(gateway.get(name))))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [" | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(lines)


def _cell(result: ScenarioResult | None) -> str:
    return NOT_RUN if result is None else result.status


def render_summary(direct: dict[str, ScenarioResult], gateway: dict[str, ScenarioResult]) -> str:
    """Counts per run, then the scenarios that pass directly but fail through Toolgate, with details."""
    lines = [
        f"direct: {_counts(direct)}",
        f"through Toolgate: {_counts(gateway)}",
        "",
    ]
    different = regressions(direct, gateway)
    if different:
        lines.append(f"Pass directly but fail through Toolgate ({len(different)}):")
        for name in different:
            lines.append(f"  {name}")
            lines += [f"    through Toolgate: {line}" for line in gateway[name].failure_lines()]
            lines += [f"    direct (passed):  {line}" for line in direct[name].success_lines()]
    else:
        lines.append("No scenario passes directly but fails through Toolgate.")
    checks = check_regressions(direct, gateway)
    if checks:
        lines += ["", "Also (scenarios that fail both ways, with a check that passes only directly):"]
        lines += [f"  {name}\n    - {line}" for name, line in checks]
    return "\n".join(lines)


def _counts(results: dict[str, ScenarioResult]) -> str:
    if not results:
        return "not run"
    tally = {status: sum(r.status == status for r in results.values()) for status in (PASS, WARN, FAIL, ERROR)}
    return ", ".join(f"{count} {status.lower()}" for status, count in tally.items() if count)


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
        help="run against only this server: everything (npm server-everything) or conformance "
        "(tests/fakes/conformance_server.py); default: both, one table each",
    )
    parser.add_argument("--only", choices=("direct", "gateway"), help="do only one of the two runs")
    parser.add_argument("--scenario", metavar="NAME", help="run one scenario (see the suite's `list --server`)")
    parser.add_argument("--suite", default="active", help='the suite\'s --suite: "active" (default), "all", "pending"')
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, results, Toolgate home)")
    return parser.parse_args(argv)


def selected_targets(options: argparse.Namespace) -> list[Target]:
    """The servers to run against, in order."""
    return [TARGETS[options.server]] if options.server else list(TARGETS.values())


async def run(options: argparse.Namespace, work: Path) -> int:
    """Both runs (or the one asked for) for each server, each server's report as it is done; the exit status."""
    started = time.monotonic()
    status = 0
    for number, target in enumerate(selected_targets(options)):
        target_started, target_work = time.monotonic(), work / target.name
        target_work.mkdir()
        say(f"\n{target.title}:")
        direct = await run_direct(target, target_work, options) if options.only in (None, "direct") else {}
        gateway = await run_gateway(target, target_work, options) if options.only in (None, "gateway") else {}
        heading = f"{target.title}: {time.monotonic() - target_started:.1f} s"
        report = f"{heading}\n\n{render_table(direct, gateway)}\n\n{render_summary(direct, gateway)}\n"
        sys.stdout.write(f"\n{report}" if number else report)
        sys.stdout.flush()
        status = max(status, 1 if regressions(direct, gateway) else 0)
    say(f"\ndone in {time.monotonic() - started:.1f} s")
    return status


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

"""The stdio transport: run a server as a subprocess and speak newline-delimited JSON-RPC over its pipes.

Modelled on the SDK's ``mcp/client/stdio.py``, with three differences a gateway needs: stderr is captured
line by line into a ``StderrBuffer``; the connection reports the server's death even while idle (stdout
EOF or process exit, whichever comes first); and on close the *whole process group* is ended every time,
also when the server exits cleanly and leaves children behind (the SDK leaves those running). On macOS
and Linux a guard (``gateway_core.launch.guard``) ends the group if Toolgate itself is killed; on Windows
the SDK's Job Object (kill on close) does the same.
The command is found as the person's shell would (``gateway_core.launch``), with the launch environment.
Lifecycle: ``open_stdio`` spawns, yields a ``Connection``, and on exit stops the tree within bounded waits.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any, cast

import anyio
import anyio.abc
import mcp_types as types
from mcp.client.stdio import get_default_environment
from mcp.os.posix.utilities import terminate_posix_process_tree
from mcp.os.win32 import utilities as win32_utilities
from mcp.os.win32.utilities import close_process_job, create_windows_process, terminate_windows_process_tree
from mcp.shared.message import SessionMessage

from gateway_core.downstream.base import ConnectError, Connection
from gateway_core.downstream.pipes import StdinPipe, StdoutLines
from gateway_core.downstream.raw_lane import RawLane
from gateway_core.downstream.stderr import StderrBuffer
from gateway_core.launch.batch import UnsafeBatchArgumentError
from gateway_core.launch.commands import Launch, MissingCommand, Platform, plan_launch
from gateway_core.launch.environment import carried
from gateway_core.launch.guard import Guard
from gateway_core.launch.missing import describe_missing

logger = logging.getLogger(__name__)

# Grace period for the server to exit on its own after its stdin closes (the SDK's value).
PROCESS_TERMINATION_TIMEOUT = 2.0
# Time between SIGTERM to the group and SIGKILL (the SDK's value).
FORCE_KILL_TIMEOUT = 2.0
# When the whole gateway stops, it exits within a second: the servers get this long after their stdin
# closes, and this long after SIGTERM (a restart or a disabled server gets the values above).
QUICK_TERMINATION_TIMEOUT = 0.2
QUICK_FORCE_KILL_TIMEOUT = 0.3
# Time for the loop to observe a kill; only an unkillable process runs this out.
KILL_REAP_TIMEOUT = 2.0
# Bound for the whole close, shielded from cancellation: the three waits above plus a margin.
CLOSE_TIMEOUT_S = PROCESS_TERMINATION_TIMEOUT + FORCE_KILL_TIMEOUT + KILL_REAP_TIMEOUT + 1.0
# How often to look at the exit status while the server runs: a server whose stdout is held open by
# a child of its own sends no EOF when it dies, so EOF alone cannot be trusted to notice.
EXIT_POLL_INTERVAL = 0.1
# How long a lost connection waits for the exit status, so the reason can name the exit code.
EXIT_CODE_WAIT = 0.5


@dataclass(frozen=True)
class StopTimes:
    """How long a stopping server gets: after its stdin closes, and after SIGTERM."""

    grace_s: float = PROCESS_TERMINATION_TIMEOUT
    kill_s: float = FORCE_KILL_TIMEOUT


NORMAL_STOP = StopTimes()
QUICK_STOP = StopTimes(QUICK_TERMINATION_TIMEOUT, QUICK_FORCE_KILL_TIMEOUT)


@dataclass(frozen=True)
class StdioCommand:
    """What to run.

    The server's environment is, each layer over the one before: the SDK's safe defaults,
    ``launch_env`` (the launch environment's ``PATH`` and version-manager variables; Toolgate's own
    when None), then ``env`` (the entry's resolved values). The command is found with that ``PATH``.
    """

    command: str
    args: tuple[str, ...] = ()
    env: Mapping[str, str] | None = None
    cwd: str | None = None
    launch_env: Mapping[str, str] | None = None

    def environment(self) -> dict[str, str]:
        """The environment the server is started with."""
        launch = self.launch_env if self.launch_env is not None else carried(os.environ)
        return get_default_environment() | dict(launch) | dict(self.env or {})


def plan_spawn(spec: StdioCommand) -> Launch:
    """Find ``spec``'s command with the environment it will get (blocking: it looks at files).

    Raises:
        ConnectError: the working directory or the command is missing; the message says what to do.
    """
    env = spec.environment()
    if spec.cwd is not None and not os.path.isdir(spec.cwd):
        raise ConnectError(f"working directory {spec.cwd!r} does not exist")
    try:
        plan = plan_launch(spec.command, spec.args, Platform.here(env, spec.cwd))
    except UnsafeBatchArgumentError as exc:
        raise ConnectError(f"command {spec.command!r} cannot be started safely: {exc}") from exc
    if isinstance(plan, MissingCommand):
        raise ConnectError(describe_missing(plan))
    return plan


async def _spawn(spec: StdioCommand, stdout: int) -> anyio.abc.Process:
    """Start the server; its stdout goes to ``stdout`` (a file descriptor; ``subprocess.PIPE`` on Windows)."""
    env = spec.environment()
    plan = await anyio.to_thread.run_sync(plan_spawn, spec)
    try:
        if sys.platform == "win32":  # pragma: no cover - not exercised here: runs on Windows only
            return await _spawn_windows(plan, env, spec.cwd)
        return await anyio.open_process(
            plan.argv,
            stdin=subprocess.PIPE,
            stdout=stdout,
            stderr=subprocess.PIPE,
            env=env,
            cwd=spec.cwd,
            start_new_session=True,
        )
    except FileNotFoundError as exc:
        # The file was found a moment ago: what is missing is the interpreter its `#!` line names.
        raise ConnectError(
            f"command {spec.command!r} ({plan.found.path}) could not be started: the interpreter on its "
            "first line (#!) was not found; install it or put its folder on the server's PATH"
        ) from exc
    except PermissionError as exc:
        raise ConnectError(f"command {spec.command!r} cannot be run: permission denied") from exc
    except OSError as exc:
        raise ConnectError(f"command {spec.command!r} could not be started: {exc.strerror or exc}") from exc


async def _spawn_windows(
    plan: Launch, env: dict[str, str], cwd: str | None
) -> anyio.abc.Process:  # pragma: no cover - Windows only
    """Start ``plan`` in a Job Object (the SDK's), a batch file through ``cmd.exe /c "<line>"`` verbatim."""
    if plan.shell_line is None:
        process = await create_windows_process(plan.argv[0], list(plan.argv[1:]), env, cast(Any, subprocess.PIPE), cwd)
        return cast(anyio.abc.Process, process)
    # A string is run by subprocess as `%ComSpec% /c "<line>"`, unchanged: the quoting batch.py chose holds.
    process = await anyio.open_process(
        plan.shell_line,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=cwd,
        creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
    )
    # The SDK's own steps of create_windows_process, which only takes a list of arguments.
    win32_utilities._maybe_assign_process_to_job(process, win32_utilities._create_job_object())
    return process


def _parse_line(line: str) -> SessionMessage | Exception:
    try:
        return SessionMessage(types.jsonrpc_message_adapter.validate_json(line, by_name=False))
    except ValueError as exc:
        # Not logged with the line itself: a server may print anything, including what it was given.
        logger.warning("an MCP server wrote a line to stdout that is not JSON-RPC")
        return exc


async def _wait_exit(process: anyio.abc.Process, limit: float, interval: float = 0.01) -> bool:
    """Whether the process exited within ``limit`` seconds.

    Polls: ``Process.wait()`` also waits for pipe EOF, which a child holding the pipes never sends.
    """
    with anyio.move_on_after(limit):
        while process.returncode is None:  # noqa: ASYNC110 - nothing signals an exit without wait()
            await anyio.sleep(interval)
    return process.returncode is not None


async def _kill_tree(process: anyio.abc.Process, kill_s: float) -> None:
    if sys.platform == "win32":  # pragma: no cover
        await terminate_windows_process_tree(process)
        close_process_job(process)
        return
    # Always, even after a clean exit: the group may still hold the server's children.
    await terminate_posix_process_tree(process, kill_s)
    if process.returncode is None:
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)


async def _stop(process: anyio.abc.Process, times: StopTimes, guard: Guard | None) -> None:
    """Close stdin, give the server its grace period, then end the whole process group, then its guard."""
    assert process.stdin is not None
    with suppress(OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
        await process.stdin.aclose()
    await _wait_exit(process, times.grace_s)
    await _kill_tree(process, times.kill_s)
    if not await _wait_exit(process, KILL_REAP_TIMEOUT):
        logger.warning("MCP server process %d is still alive after SIGKILL; abandoning it", process.pid)
    if guard is not None:
        await anyio.to_thread.run_sync(guard.end)
    for pipe in (process.stdout, process.stderr):
        if pipe is not None:
            with suppress(OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
                await pipe.aclose()
    # The asyncio transport otherwise stays open (and warns at GC) while anything holds a pipe end.
    close = getattr(getattr(getattr(process, "_process", None), "_transport", None), "close", None)
    if callable(close):
        with suppress(PermissionError):
            close()


@asynccontextmanager
async def open_stdio(
    spec: StdioCommand, *, stderr: StderrBuffer, stop_times: Callable[[], StopTimes] = lambda: NORMAL_STOP
) -> AsyncIterator[Connection]:
    """Spawn ``spec`` and yield a ``Connection`` over its stdin/stdout.

    ``stop_times`` is read when the connection closes: how long the server gets to exit.

    Raises:
        ConnectError: the process could not be started (command not found, permission, bad cwd).
    """
    # Stdout is a pipe of our own that asyncio reads straight into ``StdoutLines`` (see pipes.py);
    # on Windows (no such reading of an anonymous pipe) the process's own, read by a task.
    ours = sys.platform != "win32"
    stdout_read, stdout_write = os.pipe() if ours else (-1, subprocess.PIPE)
    try:
        process = await _spawn(spec, stdout_write)
    except BaseException:
        if ours:
            os.close(stdout_read)
        raise
    finally:
        if ours:
            os.close(stdout_write)
    # The group's id is the server's pid (start_new_session); Windows has the Job Object instead.
    guard = Guard.start(process.pid) if sys.platform != "win32" else None
    assert process.stdin is not None
    stdin = process.stdin
    lost = anyio.Event()
    # The hot path's calls: written from the calling task, their answers taken off stdout (raw_lane.py).
    pipe = StdinPipe(stdin, process)
    raw = RawLane(pipe, lost.set)
    lines = StdoutLines(raw)
    stdout_transport: asyncio.BaseTransport | None = None
    if ours:
        stdout_file = os.fdopen(stdout_read, "rb", buffering=0)
        try:
            stdout_transport, _ = await asyncio.get_running_loop().connect_read_pipe(lambda: lines, stdout_file)
        except BaseException:
            stdout_file.close()
            with anyio.move_on_after(CLOSE_TIMEOUT_S, shield=True):
                await _stop(process, stop_times(), guard)
            raise

    # Made once nothing can fail before the tasks that close them run (a cancelled start left them unclosed).
    read_writer, read_stream = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    write_stream, write_reader = anyio.create_memory_object_stream[SessionMessage](0)

    async def send_line(line: str) -> None:
        await read_writer.send(_parse_line(line))

    async def read_stdout() -> None:
        async with read_writer:
            with suppress(anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
                await lines.pump(send_line)
        raw.close()
        lost.set()

    async def feed_stdout() -> None:  # pragma: no cover - Windows only: elsewhere asyncio feeds the lines
        if process.stdout is not None:
            with suppress(anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
                async for chunk in process.stdout:
                    lines.feed(chunk)
                    await lines.room()
        lines.end()

    async def write_stdin() -> None:
        try:
            async with write_reader:
                async for message in write_reader:
                    data = message.message.model_dump_json(by_alias=True, exclude_unset=True) + "\n"
                    if not pipe.write(data.encode()):
                        await pipe.drained()
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
            lost.set()

    async def watch_exit() -> None:
        await _wait_exit(process, math.inf, EXIT_POLL_INTERVAL)
        lost.set()

    async def read_stderr() -> None:
        if process.stderr is not None:
            await stderr.pump(process.stderr)

    def loss_reason() -> str:
        code = process.returncode
        if code is None:
            return "the server closed its stdout"
        if code < 0 and sys.platform != "win32":
            with suppress(ValueError):
                return f"the server process was killed by {signal.Signals(-code).name}"
        return f"the server process exited with code {code}"

    async def lost_with_exit_code() -> None:
        # Give the loop a moment to reap the process so the reason can carry the exit code.
        await lost.wait()
        await _wait_exit(process, EXIT_CODE_WAIT)
        reason_ready.set()

    reason_ready = anyio.Event()
    async with anyio.create_task_group() as tg:
        for task in (read_stdout, write_stdin, watch_exit, read_stderr, lost_with_exit_code):
            tg.start_soon(task)
        if not ours:  # pragma: no cover - Windows only
            tg.start_soon(feed_stdout)
        try:
            yield Connection(streams=(read_stream, write_stream), lost=reason_ready, loss_reason=loss_reason, raw=raw)
        finally:
            raw.close()
            with anyio.move_on_after(CLOSE_TIMEOUT_S, shield=True):
                write_stream.close()
                read_stream.close()
                await _stop(process, stop_times(), guard)
            if stdout_transport is not None:
                stdout_transport.close()  # a child of the server's may still hold its end open
            tg.cancel_scope.cancel()

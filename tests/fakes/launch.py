"""Start the fake MCP server as a subprocess for tests: the stdio command line, or a running HTTP/SSE server.

    with serve_fake("http") as url:      # "http" (Streamable HTTP) or "sse"
        ...                              # url is e.g. http://127.0.0.1:40123/mcp

Every wait is bounded; leaving the block kills the server.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Literal

FAKE_SERVER = Path(__file__).with_name("fake_server.py")
OAUTH_SERVER = Path(__file__).with_name("oauth_server.py")
# Interpreter start plus `import mcp` takes ~0.7 s idle; leave room for a loaded CI machine.
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 5.0


# How many tools the fake lists without ``--tools N`` (its own plus the interactive ones).
FAKE_TOOL_COUNT = 24


def fake_command(*extra: str) -> tuple[str, list[str]]:
    """The command and args that run the fake over stdio, e.g. for a ServerConfig."""
    return sys.executable, [str(FAKE_SERVER), *extra]


def read_first_line(process: subprocess.Popen[str], timeout_s: float) -> str:
    """The first line ``process`` writes to stdout, or "" if none comes within ``timeout_s``.

    A thread reads it so the wait is bounded even when the process hangs without writing.
    """
    lines: list[str] = []
    assert process.stdout is not None
    stdout = process.stdout
    reader = threading.Thread(target=lambda: lines.append(stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout_s)
    return lines[0] if lines else ""


class FakeProcess:
    """A running HTTP/SSE fake: its URL and its process (to kill it from a test)."""

    def __init__(self, url: str, process: subprocess.Popen[str]) -> None:
        self.url = url
        self.process = process

    def kill(self) -> None:
        """SIGKILL the server (simulates a crash)."""
        self.process.kill()
        self.process.wait(STOP_TIMEOUT_S)


@contextmanager
def serve_fake(kind: Literal["http", "sse"], *extra: str) -> Iterator[FakeProcess]:
    """Run the fake over ``kind`` and yield it once it printed its URL."""
    with _serve_script(FAKE_SERVER, f"--{kind}", *extra) as fake:
        yield fake


@contextmanager
def serve_oauth(*extra: str) -> Iterator[FakeProcess]:
    """Run the OAuth-protected MCP server (``oauth_server.py``) and yield it once it printed its URL."""
    with _serve_script(OAUTH_SERVER, *extra) as server:
        yield server


@contextmanager
def _serve_script(script: Path, *args: str) -> Iterator[FakeProcess]:
    process = subprocess.Popen(
        [sys.executable, str(script), *args],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        line = read_first_line(process, READY_TIMEOUT_S)
        if not line.startswith("READY "):
            raise RuntimeError(f"fake server did not start: {line!r}")
        yield FakeProcess(line.split()[1], process)
    finally:
        if process.poll() is None:
            if sys.platform == "win32":
                process.kill()
            else:
                os.killpg(process.pid, signal.SIGKILL)
        process.wait(STOP_TIMEOUT_S)
        if process.stdout is not None:
            process.stdout.close()


class LineReader:
    """Reads a process's stream on a thread, keeping every line, so a test can wait (bounded) for one."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._closed = False
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        with stream:  # closed at end of file, so a finished process leaves no open pipe
            for line in stream:
                with self._changed:
                    self.lines.append(line.rstrip("\n"))
                    self._changed.notify_all()
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def wait_closed(self, timeout_s: float = READY_TIMEOUT_S) -> list[str]:
        """Every line, once the stream has ended; raises AssertionError if it is still open after ``timeout_s``."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._closed, timeout=timeout_s):
                raise AssertionError(f"the stream stayed open for {timeout_s} s; read:\n" + "\n".join(self.lines))
            return list(self.lines)

    def wait_for(self, text: str, timeout_s: float = READY_TIMEOUT_S) -> str:
        """The first line containing ``text``; raises AssertionError with what was read if none comes in time."""
        with self._changed:
            found = self._changed.wait_for(
                lambda: self._closed or any(text in line for line in self.lines), timeout=timeout_s
            )
            match = next((line for line in self.lines if text in line), None)
        if not found or match is None:
            raise AssertionError(f"no line with {text!r} within {timeout_s} s; read:\n" + "\n".join(self.lines))
        return match


def wait_until_gone(pid: int, timeout_s: float) -> bool:
    """Whether process ``pid`` (any process, not only a child) has ended within ``timeout_s``.

    Waits on the kernel's exit notification (a pidfd on Linux, kqueue on macOS, the process handle on
    Windows), never by polling.
    """
    if sys.platform == "win32":
        return _wait_until_gone_windows(pid, timeout_s)
    if hasattr(os, "pidfd_open"):
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            return True
        try:
            return bool(select.select([fd], [], [], timeout_s)[0])
        finally:
            os.close(fd)
    queue = select.kqueue()  # type: ignore[attr-defined, unused-ignore]  # macOS and the BSDs
    try:
        event = select.kevent(  # type: ignore[attr-defined, unused-ignore]
            pid,
            filter=select.KQ_FILTER_PROC,  # type: ignore[attr-defined, unused-ignore]
            flags=select.KQ_EV_ADD | select.KQ_EV_ONESHOT,  # type: ignore[attr-defined, unused-ignore]
            fflags=select.KQ_NOTE_EXIT,  # type: ignore[attr-defined, unused-ignore]
        )
        try:
            return bool(queue.control([event], 1, timeout_s))
        except ProcessLookupError:
            return True
    finally:
        queue.close()


def _wait_until_gone_windows(pid: int, timeout_s: float) -> bool:
    import ctypes

    synchronize, wait_object_0 = 0x00100000, 0
    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined, unused-ignore]
    handle = kernel32.OpenProcess(synchronize, False, pid)
    if not handle:
        return True  # no such process any more
    try:
        return bool(kernel32.WaitForSingleObject(handle, int(timeout_s * 1000)) == wait_object_0)
    finally:
        kernel32.CloseHandle(handle)

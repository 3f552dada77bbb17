"""Start the fake MCP server as a subprocess for tests: the stdio command line, or a running HTTP/SSE server.

    with serve_fake("http") as url:      # "http" (Streamable HTTP) or "sse"
        ...                              # url is e.g. http://127.0.0.1:40123/mcp

Every wait is bounded; leaving the block kills the server.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

FAKE_SERVER = Path(__file__).with_name("fake_server.py")
# Interpreter start plus `import mcp` takes ~0.7 s idle; leave room for a loaded CI machine.
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 5.0


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
    process = subprocess.Popen(
        [sys.executable, str(FAKE_SERVER), f"--{kind}", *extra],
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

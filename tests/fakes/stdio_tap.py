"""Run a stdio MCP server unchanged and say on stderr when its client answered one of its questions.

``python -m tests.fakes.stdio_tap [--log-client] COMMAND [ARGS...]`` relays stdin and stdout line by line, byte for
byte, and writes ``tap: answered METHOD`` to stderr once the client's answer to a request the server
sent (``roots/list``, ``sampling/createMessage``, ...) has been passed to the server. A test waits on
that line (``StderrLog.wait_for``) to know a question the server asks on its own, on a timer, has been
settled before it goes on. With ``--log-client`` (before COMMAND) it also writes ``tap: client METHOD ID``
for each request and notification the client sends (ID: the request's id, or the ``requestId`` a
``notifications/cancelled`` names, as JSON). The server's own stderr is inherited. The server ends when
the tap's stdin closes, when the tap is terminated, and (Linux) when the tap dies.
"""

from __future__ import annotations

import ctypes
import json
import signal
import subprocess
import sys
import threading
from typing import IO, Any

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _message(line: bytes) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


class Tap:
    def __init__(self, *, log_client: bool = False) -> None:
        self._asked: dict[Any, str] = {}  # the server's request ids, with their methods
        self._lock = threading.Lock()
        self._log_client = log_client

    def server_to_client(self, source: IO[bytes], sink: IO[bytes]) -> None:
        for line in source:
            message = _message(line)
            if "method" in message and "id" in message:
                with self._lock:
                    self._asked[message["id"]] = message["method"]
            sink.write(line)
            sink.flush()

    def client_to_server(self, source: IO[bytes], sink: IO[bytes]) -> None:
        try:
            for line in source:
                message = _message(line)
                sink.write(line)
                sink.flush()
                if self._log_client and "method" in message:
                    said = message.get("id", (message.get("params") or {}).get("requestId"))
                    sys.stderr.write(f"tap: client {message['method']} {json.dumps(said)}\n")
                    sys.stderr.flush()
                if "method" not in message and "id" in message:
                    with self._lock:
                        method = self._asked.pop(message["id"], None)
                    if method is not None:
                        sys.stderr.write(f"tap: answered {method}\n")
                        sys.stderr.flush()
        except BrokenPipeError:
            pass
        finally:
            sink.close()


def main(argv: list[str]) -> int:
    log_client = argv[:1] == ["--log-client"]
    argv = argv[1:] if log_client else argv
    server = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, preexec_fn=_die_with_parent)
    assert server.stdin is not None and server.stdout is not None
    signal.signal(signal.SIGTERM, lambda *_: server.terminate())
    tap = Tap(log_client=log_client)
    threading.Thread(target=tap.client_to_server, args=(sys.stdin.buffer, server.stdin), daemon=True).start()
    tap.server_to_client(server.stdout, sys.stdout.buffer)
    return server.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

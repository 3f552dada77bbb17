"""A bounded, line-oriented record of what a stdio server wrote to its stderr.

One ``StderrBuffer`` lives as long as its ``DownstreamServer`` (it survives restarts, so the lines that
explain a crash are still there after it); ``pump`` feeds it from one process's stderr pipe until EOF.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

import anyio
from anyio.abc import ByteReceiveStream

# Enough for a long Python traceback; older lines are dropped so a chatty server cannot grow memory.
MAX_LINES = 200
# Keeps one runaway line (a JSON dump, a progress bar without newlines) from filling the buffer.
MAX_LINE_CHARS = 1000
# What a status shows: enough to read the last error at a glance.
TAIL_LINES = 20
_ELLIPSIS = "…"


class StderrBuffer:
    """The last ``max_lines`` stderr lines of one server, each cut to ``max_line_chars``.

    Args:
        on_line: called with each complete line as it arrives (must be cheap; runs on the loop).
        max_lines: how many lines to keep.
        max_line_chars: longer lines are cut and end with "…".
    """

    def __init__(
        self,
        on_line: Callable[[str], None] | None = None,
        *,
        max_lines: int = MAX_LINES,
        max_line_chars: int = MAX_LINE_CHARS,
    ) -> None:
        self._lines: deque[str] = deque(maxlen=max_lines)
        self._times: deque[float] = deque(maxlen=max_lines)
        self._max_line_chars = max_line_chars
        self._on_line = on_line
        self._total = 0

    def append(self, line: str) -> None:
        """Record one line (without its newline)."""
        line = line.rstrip("\r\n")
        if len(line) > self._max_line_chars:
            line = line[: self._max_line_chars - 1] + _ELLIPSIS
        self._lines.append(line)
        self._times.append(time.time())
        self._total += 1
        if self._on_line is not None:
            self._on_line(line)

    def lines(self) -> tuple[str, ...]:
        """Every line kept, oldest first."""
        return tuple(self._lines)

    def timed_lines(self) -> tuple[tuple[float, str], ...]:
        """Every line kept with when it arrived (epoch seconds), oldest first."""
        return tuple(zip(self._times, self._lines, strict=True))

    def since(self, seen: int) -> tuple[tuple[str, ...], int]:
        """The kept lines that came after the first ``seen`` lines ever recorded, and how many were recorded.

        A follower passes back the count it was given; lines dropped meanwhile (more than ``max_lines``
        arrived between two looks) are not there, so fewer lines come than the count grew by.
        """
        fresh = min(max(self._total - seen, 0), len(self._lines))
        return (tuple(self._lines)[len(self._lines) - fresh :] if fresh else ()), self._total

    def tail(self, count: int = TAIL_LINES) -> tuple[str, ...]:
        """The last ``count`` lines, oldest first."""
        if count <= 0:
            return ()
        return tuple(self._lines)[-count:]

    async def pump(self, stream: ByteReceiveStream) -> None:
        """Read ``stream`` to its end, recording each line; a partial last line is recorded too."""
        pending = b""
        # Bytes, not chars: a line is cut in bytes first so a newline-less flood never sits in memory.
        limit = self._max_line_chars * 4
        try:
            async for chunk in stream:
                pending += chunk
                *complete, pending = pending.split(b"\n")
                for raw in complete:
                    self.append(raw.decode("utf-8", errors="replace"))
                if len(pending) > limit:
                    self.append(pending[:limit].decode("utf-8", errors="replace"))
                    pending = b""
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
            pass  # the pipe was closed under us at shutdown; what was read is kept
        if pending:
            self.append(pending.decode("utf-8", errors="replace"))

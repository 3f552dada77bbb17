"""A stdio server's pipes as its connection uses them: stdin written line by line, stdout read into lines.

``StdinPipe``: anyio's ``send`` wraps each write in two checkpoints, one of them a full loop turn; here
a line goes to asyncio's ``StreamWriter`` at once and is waited for only while the pipe is backed up.

``StdoutLines``: the server's stdout split into lines as it arrives. Fed from asyncio's read callback
(``connect_read_pipe``), it hands an answer to a raw call (``raw_lane.py``) to its waiting call in the
same loop pass it was read in, with no reader task in between. Every other line, and any raw answer
behind one, waits in order for ``pump``, which gives it the SDK's way (so the order the server wrote
in is kept); reading pauses while many lines wait, as a reader blocked on the SDK's stream would.
Where asyncio cannot read the pipe itself (Windows), a task reads it and ``feed``s the chunks.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import cast

import anyio
import anyio.abc

from gateway_core.downstream.raw_lane import RawLane

# Reading stops while more lines than this wait for the SDK's reader, and starts again at RESUME.
PAUSE_AT_LINES = 64
RESUME_AT_LINES = 16


class StdinPipe:
    """The server's stdin as the raw lane and the SDK's writer use it: each line written whole, at once."""

    def __init__(self, stream: anyio.abc.ByteSendStream, process: anyio.abc.Process) -> None:
        # The asyncio writer anyio's stream wraps (none where the process is not asyncio's).
        writer = getattr(getattr(process, "_process", None), "stdin", None)
        self._writer = writer if isinstance(writer, asyncio.StreamWriter) else None
        # What the writer writes to (its ``write`` is the transport's): each line goes straight to it.
        self._transport = None if self._writer is None else self._writer.transport
        self._stream = stream
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> bool:
        """Write ``data`` now; False when ``drained`` must be awaited (the pipe is backed up).

        Raises:
            anyio.BrokenResourceError: the pipe is closed (the server's end, or ours at close).
        """
        transport = self._transport
        if transport is None:
            self._pending.append(data)
            return False
        if transport.is_closing():
            raise anyio.BrokenResourceError
        try:
            transport.write(data)
        except RuntimeError as exc:  # uvloop: a write to a closed transport
            raise anyio.BrokenResourceError from exc
        return not transport.get_write_buffer_size()

    async def drained(self) -> None:
        """Wait until the pipe takes more (asyncio's ``drain``). Raises OSError when the pipe broke meanwhile."""
        if self._writer is not None:
            await self._writer.drain()
            return
        pending, self._pending = self._pending, []
        for data in pending:
            await self._stream.send(data)


class StdoutLines(asyncio.Protocol):
    """The server's stdout as lines: raw answers to their calls at once, the rest in order to ``pump`` (see above).

    Lines are split as bytes (a newline is never part of a longer UTF-8 sequence) and handed to the
    raw lane as they came, which parses them without decoding them first; every other line is decoded
    as UTF-8, a bad sequence replaced, as decoding the whole stream would give it. A last line without
    a newline is dropped at the end, as the SDK's reader drops it.
    """

    def __init__(self, raw: RawLane) -> None:
        self._raw = raw
        self._parts: list[bytes] = []
        self._queued: deque[str] = deque()
        self._ended = False
        self._wake: asyncio.Future[None] | None = None
        self._transport: asyncio.ReadTransport | None = None
        self._paused = False
        self._room: asyncio.Future[None] | None = None
        # A line ``pump`` is giving on: what comes after it waits too.
        self._sending = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """asyncio's: the pipe is open (``feed`` pauses and resumes reading it)."""
        self._transport = cast(asyncio.ReadTransport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        """asyncio's: the pipe ended (end of file, or an error reading it)."""
        self.end()

    def feed(self, data: bytes) -> None:
        """Take a chunk of stdout: each whole line to its raw call, or to the queue."""
        # A line's earlier parts wait here; only each new chunk is searched, so a message of any size
        # costs time in proportion to its size (re-splitting the whole line would not).
        *lines, rest = data.split(b"\n")
        parts = self._parts
        if lines and parts:
            lines[0] = b"".join([*parts, lines[0]])
            parts.clear()
        if rest:
            parts.append(rest)
        queued = self._queued
        for line in lines:
            if queued or self._sending or not self._raw.take(line):
                text = line.decode("utf-8", "replace")
                if text.strip():
                    queued.append(text)
        if queued:
            self._wake_pump()
            if len(queued) > PAUSE_AT_LINES and not self._paused:
                self._paused = True
                if self._transport is not None:
                    self._transport.pause_reading()

    # asyncio's: a chunk was read (``feed`` itself, with no call in between).
    data_received = feed

    def end(self) -> None:
        """Stdout ended (or broke): ``pump`` returns once the queue is empty."""
        self._ended = True
        self._wake_pump()

    async def room(self) -> None:
        """Wait while reading is paused (for a task that ``feed``s: the protocol is paused by its transport)."""
        while self._paused:
            self._room = asyncio.get_running_loop().create_future()
            await self._room

    async def pump(self, send: Callable[[str], Awaitable[None]]) -> None:
        """Give the queued lines on in order (a raw call's answer to its call, the rest to ``send``) until the end."""
        queued = self._queued
        while True:
            while queued:
                line = queued.popleft()
                if not self._raw.take(line):
                    self._sending = True
                    try:
                        await send(line)
                    finally:
                        self._sending = False
                if self._paused and len(queued) <= RESUME_AT_LINES:
                    self._resume()
            if self._ended:
                return
            self._wake = asyncio.get_running_loop().create_future()
            try:
                await self._wake
            finally:
                self._wake = None

    def _wake_pump(self) -> None:
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)

    def _resume(self) -> None:
        self._paused = False
        if self._transport is not None:
            self._transport.resume_reading()
        room = self._room
        if room is not None and not room.done():
            room.set_result(None)

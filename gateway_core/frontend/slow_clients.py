"""Slow clients never hold a connection: deadlines for a request's head and for the gaps in its body.

uvicorn closes an idle kept-alive connection, but a connection that sends nothing, or part of its
headers and then nothing, stays open for ever (the "slowloris" pattern), and so does a request whose
body stops arriving. ``GuardedHttpProtocol`` is uvicorn's httptools protocol with two deadlines:
a request's whole head must arrive within ``HEAD_TIMEOUT_S`` of its first byte (or of the
connection opening, or of anything, even a blank line, arriving on an idle kept-alive one), and
its body may pause for at most ``BODY_IDLE_TIMEOUT_S`` between parts. A client that misses one is
disconnected; nothing else waits for it. Once a request is complete there is no deadline: a tool
call may wait minutes for a person's answer. Once it is answered, the connection may stay idle for
uvicorn's keep-alive time (then it is closed without a word, as uvicorn closes it). A connection
keeps one timer for all these deadlines, set once per batch of bytes parsed: moving a deadline later
only notes it, and the timer, when it fires early, waits on until the deadline it finds.

A response's head is written together with the start of its body (``HeadWithBody``): one socket
send instead of two for an answer written at once; a stream's head still goes out in the same pass
of the loop.

``MAX_CONNECTIONS`` caps open connections and requests being served; beyond it uvicorn answers 503.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

logger = logging.getLogger(__name__)

HEAD_TIMEOUT_S = 10.0
BODY_IDLE_TIMEOUT_S = 30.0
MAX_CONNECTIONS = 1000
WAITING_FOR_HEAD = "its request headers"
WAITING_FOR_BODY = "the rest of its request body"
# A request scope's mark that its header values carry no whitespace around them (frontend/http.py need not strip it).
HEADERS_STRIPPED = "toolgate.headers_stripped"
# What an idle kept-alive connection waits for: its next request, for as long as uvicorn lets it.
WAITING_FOR_NEXT = ""


class HeadWithBody:
    """A connection's transport as its responses write to it: a response's head goes out with its body.

    uvicorn writes a response's status line and headers as soon as the app starts the response, and its
    body when the app sends it, a moment later in the same pass of the loop: two sends, and two wake-ups
    for the client. Here a response's first write is held and goes out with the next one. A response
    with a length has its body to come (or nothing, when it completes: ``flush``); any other (a stream,
    a ``100 Continue``) has what is held written at the end of the loop's pass at the latest, so a
    stream's head is never held back waiting for its first event. Everything else is the transport's.
    """

    __slots__ = ("_transport", "_loop", "_held", "_cycle")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None
        # The response whose first write is still to come.
        self._cycle: RequestResponseCycle | None = None

    def response_starts(self, cycle: RequestResponseCycle) -> None:
        """``cycle`` is about to be served: hold its first write for the one after."""
        self.flush()
        self._cycle = cycle

    def write(self, data: bytes) -> None:
        """Write ``data`` after anything held (see the class docstring)."""
        cycle = self._cycle
        if cycle is not None:
            self._cycle = None
            self._held = data
            if cycle.chunked_encoding is not False:  # no length: a stream, or not a response's head
                self._loop.call_soon(self.flush)
            return
        held = self._held
        if held is not None:
            self._held = None
            data = held + data
        self._transport.write(data)

    def flush(self) -> None:
        """Write what is held, if anything."""
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held)

    def close(self) -> None:
        """Close the connection once what is held and buffered is written."""
        self._cycle = None
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        """Whether the connection is closing or closed."""
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with deadlines for slow request heads and stalled bodies."""

    head_timeout_s = HEAD_TIMEOUT_S
    body_idle_timeout_s = BODY_IDLE_TIMEOUT_S
    # The one deadline in force (loop time; None: none), what it is for, and the timer that checks it.
    _deadline: float | None = None
    _deadline_s = 0.0
    _waiting_for = ""
    _timer: asyncio.TimerHandle | None = None
    _timer_at = 0.0  # when the timer fires (loop time)
    _now = 0.0  # when the bytes being parsed arrived (loop time)
    # What the bytes being parsed leave the connection waiting for (seconds, what): set once they are parsed.
    _next: tuple[float, str] | None = None
    _writer: HeadWithBody | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """A new connection: its first request head must arrive in time."""
        super().connection_made(transport)
        self._writer = HeadWithBody(transport, self.loop)
        self._arm(self.head_timeout_s, WAITING_FOR_HEAD, self.loop.time())

    def data_received(self, data: bytes) -> None:
        """Bytes arrived: parse them, then set the deadline the request steps they completed call for.

        The steps (a request's first byte, its complete head, a part of its body, its end) only note what
        is now awaited; the one deadline is set once, after the bytes are parsed, from when they arrived.
        Bytes arriving on an idle kept-alive connection start a request: its head must follow in time.
        As uvicorn's own otherwise (its keep-alive timer is never set here: ``on_response_complete``).
        """
        now = self._now = self.loop.time()
        if self._waiting_for == WAITING_FOR_NEXT and self._deadline is not None:
            self._next = (self.head_timeout_s, WAITING_FOR_HEAD)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._next = None
            msg = "Invalid HTTP request received."
            self.logger.warning(msg)
            self.send_400_response(msg)
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        following = self._next
        if following is not None:
            self._next = None
            self._arm(following[0], following[1], now)

    def on_message_begin(self) -> None:
        """The first byte of a request: its head must be complete in time.

        Its header values will be read without the whitespace around them (RFC 9110 §5.5: llhttp leaves
        out what precedes a value, uvicorn what follows it); the scope says so (``HEADERS_STRIPPED``).
        """
        super().on_message_begin()
        self.scope[HEADERS_STRIPPED] = True  # type: ignore[literal-required]
        self._next = (self.head_timeout_s, WAITING_FOR_HEAD)

    def on_headers_complete(self) -> None:
        """The head is complete: the body may not pause for long."""
        super().on_headers_complete()
        self._next = (self.body_idle_timeout_s, WAITING_FOR_BODY)

    def on_body(self, body: bytes) -> None:
        """A part of the body: the next may not be long in coming."""
        super().on_body(body)
        self._next = (self.body_idle_timeout_s, WAITING_FOR_BODY)

    def on_message_complete(self) -> None:
        """The whole request is here: no deadline while it is served."""
        super().on_message_complete()
        self._next = None
        self._deadline = None

    def connection_lost(self, exc: Exception | None) -> None:
        """The connection is gone: no deadline to keep."""
        self._deadline = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        super().connection_lost(exc)

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        """A request starts being served (those before it are answered): its response's head waits for its body.

        An app that hands every request on to another once it is there (``starting.StartingApp``) names it
        as ``serving``: the request goes to that one directly.
        """
        app = getattr(app, "serving", app)
        writer = self._writer
        if writer is not None:
            cycle.transport = writer  # type: ignore[assignment]
            if writer._held is not None:
                writer.flush()
            writer._cycle = cycle  # as ``response_starts``
        super()._start_asgi_task(cycle, app)

    def on_response_complete(self) -> None:
        """A response is complete: whatever of it is held goes out now (a response with no body).

        Then, as uvicorn's own: the next request waiting on the connection is served, or the connection
        may stay idle for the keep-alive time, a deadline on the connection's one timer.
        """
        if self._writer is not None:
            self._writer.flush()
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        # uvicorn unsets its keep-alive timer here: it is never set (below, the connection's one timer instead).
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        else:
            self._arm(self.timeout_keep_alive, WAITING_FOR_NEXT, self.loop.time())

    def send_400_response(self, msg: str) -> None:
        """Refuse a malformed request, after whatever an earlier response has held."""
        if self._writer is not None:
            self._writer.flush()
        super().send_400_response(msg)

    def _arm(self, seconds: float, waiting_for: str, now: float) -> None:
        deadline = now + seconds
        self._deadline, self._deadline_s, self._waiting_for = deadline, seconds, waiting_for
        timer = self._timer
        if timer is None or self._timer_at > deadline:
            if timer is not None:
                timer.cancel()
            self._timer = self.loop.call_at(deadline, self._check_deadline)
            self._timer_at = deadline

    def _check_deadline(self) -> None:
        self._timer = None
        deadline = self._deadline
        if deadline is None:
            return
        if deadline > self.loop.time():  # moved later since the timer was set: wait on
            self._timer = self.loop.call_at(deadline, self._check_deadline)
            self._timer_at = deadline
            return
        self._deadline = None
        if not self.transport.is_closing():
            if self._waiting_for != WAITING_FOR_NEXT:
                logger.info("closed a connection that did not send %s within %g s", self._waiting_for, self._deadline_s)
            self.transport.close()

"""Slow clients never hold a connection: deadlines for a request's head and for the gaps in its body.

uvicorn closes an idle kept-alive connection, but a connection that sends nothing, or part of its
headers and then nothing, stays open for ever (the "slowloris" pattern), and so does a request whose
body stops arriving. ``GuardedHttpProtocol`` is uvicorn's httptools protocol with two deadlines:
a request's whole head must arrive within ``HEAD_TIMEOUT_S`` of its first byte (or of the
connection opening), and its body may pause for at most ``BODY_IDLE_TIMEOUT_S`` between parts. A
client that misses one is disconnected; nothing else waits for it. Once a request is complete
there is no deadline: a tool call may wait minutes for a person's answer.

``MAX_CONNECTIONS`` caps open connections and requests being served; beyond it uvicorn answers 503.
"""

from __future__ import annotations

import asyncio
import logging

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

logger = logging.getLogger(__name__)

HEAD_TIMEOUT_S = 10.0
BODY_IDLE_TIMEOUT_S = 30.0
MAX_CONNECTIONS = 1000


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with deadlines for slow request heads and stalled bodies."""

    head_timeout_s = HEAD_TIMEOUT_S
    body_idle_timeout_s = BODY_IDLE_TIMEOUT_S
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """A new connection: its first request head must arrive in time."""
        super().connection_made(transport)
        self._arm(self.head_timeout_s, "its request headers")

    def on_message_begin(self) -> None:
        """The first byte of a request: its head must be complete in time."""
        super().on_message_begin()
        self._arm(self.head_timeout_s, "its request headers")

    def on_headers_complete(self) -> None:
        """The head is complete: the body may not pause for long."""
        super().on_headers_complete()
        self._arm(self.body_idle_timeout_s, "the rest of its request body")

    def on_body(self, body: bytes) -> None:
        """A part of the body: the next may not be long in coming."""
        super().on_body(body)
        self._arm(self.body_idle_timeout_s, "the rest of its request body")

    def on_message_complete(self) -> None:
        """The whole request is here: no deadline while it is served."""
        super().on_message_complete()
        self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        """The connection is gone: no deadline to keep."""
        self._disarm()
        super().connection_lost(exc)

    def _arm(self, seconds: float, waiting_for: str) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._too_slow, seconds, waiting_for)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self, seconds: float, waiting_for: str) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            logger.info("closed a connection that did not send %s within %g s", waiting_for, seconds)
            self.transport.close()

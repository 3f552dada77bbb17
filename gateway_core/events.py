"""One typed event stream from the core to whoever watches it (the tray app, tests).

Every change the core announces is a frozen dataclass published on the gateway's ``EventStream``:
a server's status or catalog, the names agents see, a configuration applied or rejected, an
approval requested or resolved, a session ended, decisions and calls recorded in the audit log, a
server's stderr line, a log message. Subscribers are called synchronously on the event loop, in
order, and must not block; one that raises is logged and the others still get the event. The stream
keeps the last ``REPLAY_EVENTS`` events so a late subscriber can catch up.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeAlias, TypeVar

from gateway_core.approvals import ApprovalRequested, ApprovalResolved
from gateway_core.audit import AuditRecord

logger = logging.getLogger(__name__)

REPLAY_EVENTS = 500
_E = TypeVar("_E")


@dataclass(frozen=True)
class ServerStatusChanged:
    """Server ``name``'s state changed, or it was added or removed (read the new status from the gateway)."""

    name: str


@dataclass(frozen=True)
class CatalogChanged:
    """What ready server ``name`` offers (tools, resources, prompts) changed; read it from the gateway."""

    name: str


@dataclass(frozen=True)
class NamesChanged:
    """The names agents see for the servers' tools and prompts changed (read them from the gateway).

    Published after the routing table is rebuilt, so a ``CatalogChanged`` may come before the new names.
    """


@dataclass(frozen=True)
class ConfigApplied:
    """A new configuration is in force."""


@dataclass(frozen=True)
class ConfigRejected:
    """An edit of config.json was refused; the running configuration stays. ``problems``: one sentence each."""

    problems: tuple[str, ...]


@dataclass(frozen=True)
class PausedChanged:
    """Pause all agents / Resume was switched (from the tray, the window or ``toolgate pause|resume``)."""

    paused: bool


@dataclass(frozen=True)
class SessionEnded:
    """A handshake-era agent session ended (DELETE, idle expiry, eviction, crash)."""

    session_id: str


@dataclass(frozen=True)
class CallsRecorded:
    """Decisions and call outcomes just written to the audit log, oldest first (one event per write).

    A call has finished when its ``OUTCOME`` record arrives. Nothing is published while auditing is off.
    """

    records: tuple[AuditRecord, ...]


@dataclass(frozen=True)
class ToolChangesChanged:
    """Tools waiting for the person's review (a changed definition, a new tool) came or went; read the gateway's."""


@dataclass(frozen=True)
class StderrLine:
    """One line a stdio server wrote to stderr."""

    server: str
    line: str


@dataclass(frozen=True)
class LogMessage:
    """One record of the core's log (``gateway_core`` and ``toolgate`` loggers), INFO and above."""

    time: float
    level: str
    source: str
    text: str


Event: TypeAlias = (
    ServerStatusChanged
    | CatalogChanged
    | NamesChanged
    | ConfigApplied
    | ConfigRejected
    | PausedChanged
    | ApprovalRequested
    | ApprovalResolved
    | SessionEnded
    | CallsRecorded
    | ToolChangesChanged
    | StderrLine
    | LogMessage
)


class EventStream:
    """Publishes events to subscribers, keeping the last few for late ones.

    Args:
        replay: how many recent events are kept.
    """

    def __init__(self, *, replay: int = REPLAY_EVENTS) -> None:
        self._recent: collections.deque[Event] = collections.deque(maxlen=replay)
        self._listeners: list[Callable[[Event], None]] = []
        self._reporting = False

    def publish(self, event: Event) -> None:
        """Hand ``event`` to every subscriber, in subscription order (on the event loop)."""
        self._recent.append(event)
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                # A broken subscriber (say, the GUI) must not decide what the core does next. The
                # report is itself a LogMessage event: never report a failure while reporting one.
                if not self._reporting:
                    self._reporting = True
                    try:
                        logger.exception("an event subscriber failed on %s", type(event).__name__)
                    finally:
                        self._reporting = False

    def subscribe(self, listener: Callable[[Event], None], *, replay: bool = False) -> Callable[[], None]:
        """Call ``listener`` with every event from now on (first with the recent ones, if ``replay``).

        Returns:
            A function that unsubscribes it (safe to call more than once).
        """
        if replay:
            for event in list(self._recent):
                listener(event)
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def on(self, kind: type[_E], handler: Callable[[_E], None]) -> Callable[[], None]:
        """Call ``handler`` with every event of type ``kind`` from now on; returns an unsubscribe."""

        def listener(event: Event) -> None:
            if isinstance(event, kind):
                handler(event)

        return self.subscribe(listener)


class EventLogHandler(logging.Handler):
    """Publishes the core's log records as ``LogMessage`` events; records from other threads go via the loop.

    Args:
        stream: where to publish.
    """

    def __init__(self, stream: EventStream) -> None:
        super().__init__(logging.INFO)
        self._stream = stream
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.get_ident()

    def attach(self) -> None:
        """Start publishing; the calling thread's running loop is where events are delivered."""
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        logging.getLogger().addHandler(self)

    def detach(self) -> None:
        """Stop publishing."""
        logging.getLogger().removeHandler(self)
        self._loop = None

    def emit(self, record: logging.LogRecord) -> None:
        """Publish one record (only the core's own loggers)."""
        if not record.name.startswith(("toolgate", "gateway_core")):
            return
        try:
            text = record.getMessage()
        except Exception:  # a broken format string must not break logging
            text = str(record.msg)
        event = LogMessage(record.created, record.levelname, record.name, text)
        loop = self._loop
        if threading.get_ident() == self._thread:
            self._stream.publish(event)
        elif loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._stream.publish, event)

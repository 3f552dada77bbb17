"""Resumable agent streams: what each handshake-era session's SSE streams carried, kept in memory, bounded.

The SDK's Streamable HTTP transport stores every message it puts on a session's SSE streams in an event
store, starts each POST's stream with a priming event (an id, no data, a ``retry:`` hint), and answers a
GET carrying ``Last-Event-ID`` with what followed that event on its stream, then the rest live. It
shares one store among all sessions and names streams by request ids, which repeat from session to
session, so each session gets its own view here: an event id is looked up only among the events of the
session asking, which only the agent that opened it can use. Bounds, in order: events of finished
streams (their response is stored) go first, oldest stream first; then the oldest events of unfinished
ones. A session's events are dropped when it ends.
"""

from __future__ import annotations

import itertools
import logging
from collections import deque
from collections.abc import Container, Iterable
from dataclasses import dataclass, field
from typing import Any
from uuid import uuid4

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser, AuthorizationContext, authorization_context
from mcp.server.lowlevel import Server
from mcp.server.streamable_http import (
    LAST_EVENT_ID_HEADER,
    MCP_SESSION_ID_HEADER,
    EventCallback,
    EventId,
    EventMessage,
    EventStore,
    StreamId,
)
from mcp.server.streamable_http import StreamableHTTPServerTransport as Transport
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.inbound import MCP_PROTOCOL_VERSION_HEADER
from mcp_types import (
    INVALID_REQUEST,
    ErrorData,
    JSONRPCError,
    JSONRPCMessage,
    JSONRPCResponse,
    jsonrpc_message_adapter,
)
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from gateway_core.frontend.json_answers import AnsweringTransport, HotCalls

logger = logging.getLogger(__name__)

# How long a client whose stream broke waits before reconnecting (the SSE `retry:` field): Toolgate never
# closes a stream on purpose, so this only delays recovery from a broken connection on this machine.
RETRY_INTERVAL_MS = 500
# How many users' requestors ``_owns`` keeps worked out (one per agent; more than this is unusual).
MAX_KEPT_REQUESTORS = 1024
NOTHING_TO_RESUME = (
    "Nothing to resume: this session no longer has the events after the Last-Event-ID sent (Toolgate keeps a "
    "bounded amount, oldest dropped first); send the request again."
)
# What a message that is not kept is numbered: no event has it, so resuming after it finds nothing.
UNKEPT_EVENT_ID = ""
ENDED_UNANSWERED = "Nothing to resume: the request on this stream ended without a result (it was cancelled)."


@dataclass(frozen=True)
class ReplayLimits:
    """How much of what agents were sent is kept for them to resume; the oldest goes first."""

    session_bytes: int = 16 * 1024 * 1024
    session_events: int = 1_000
    total_bytes: int = 64 * 1024 * 1024
    total_events: int = 10_000


@dataclass(eq=False)
class _Event:
    id: str
    stream: _Stream
    data: str | None  # the message as JSON; None for a priming event

    @property
    def size(self) -> int:
        return len(self.data) if self.data is not None else 0


@dataclass(eq=False)
class _Stream:
    session: _Session
    stream_id: str
    events: deque[_Event] = field(default_factory=deque)
    finished: bool = False
    # Its request ended without a result (cancelled): nothing more will come on it.
    unanswered: bool = False


@dataclass(eq=False)
class _Session:
    session_id: str
    streams: dict[str, _Stream] = field(default_factory=dict)
    index: dict[str, _Event] = field(default_factory=dict)
    size: int = 0


class ReplayBuffer:
    """Every session's stored events, within ``limits``.

    Args:
        limits: the most kept per session and in all.
    """

    def __init__(self, limits: ReplayLimits | None = None) -> None:
        self.limits = limits or ReplayLimits()
        self._sessions: dict[str, _Session] = {}
        # Every stream, in the order it started: eviction walks it oldest first.
        self._streams: dict[tuple[str, str], _Stream] = {}
        self._ids = itertools.count(1)
        self._size = 0
        self._count = 0

    def for_session(self, session_id: str, unkept: Container[str] = frozenset()) -> EventStore:
        """The SDK event store of one session: it sees and replays that session's events only.

        Messages on the streams named in ``unkept`` (requests answered with a JSON body: no stream to resume)
        are not kept.
        """
        return SessionEvents(self, session_id, unkept)

    @property
    def size(self) -> tuple[int, int]:
        """How many events are kept, and their size in bytes, in all."""
        return self._count, self._size

    def session_size(self, session_id: str) -> tuple[int, int]:
        """How many events are kept for one session, and their size in bytes."""
        session = self._sessions.get(session_id)
        return (len(session.index), session.size) if session is not None else (0, 0)

    def knows(self, session_id: str, event_id: str) -> bool:
        """Whether the session still has the event with this id."""
        session = self._sessions.get(session_id)
        return session is not None and event_id in session.index

    def unanswered(self, session_id: str, stream_id: str) -> None:
        """A request ended without a result: its stream is finished, and resuming it gets nothing."""
        stream = self._streams.get((session_id, stream_id))
        if stream is not None:
            stream.finished = stream.unanswered = True

    def ended_unanswered(self, session_id: str, event_id: str) -> bool:
        """Whether the event's stream belongs to a request that ended without a result."""
        session = self._sessions.get(session_id)
        event = session.index.get(event_id) if session is not None else None
        return event is not None and event.stream.unanswered

    def forget(self, session_id: str) -> None:
        """Drop an ended session's events."""
        session = self._sessions.get(session_id)
        if session is not None:
            for stream in list(session.streams.values()):
                self._drop_stream(stream)

    def store(self, session_id: str, stream_id: str, message: JSONRPCMessage | None) -> str:
        """Keep one message sent (or, for ``None``, the priming event) on a stream; its new event id."""
        session = self._sessions.get(session_id)
        if session is None:
            session = self._sessions[session_id] = _Session(session_id)
        stream = session.streams.get(stream_id)
        if stream is None:
            stream = session.streams[stream_id] = _Stream(session, stream_id)
            self._streams[session_id, stream_id] = stream
        data = message.model_dump_json(by_alias=True, exclude_unset=True) if message is not None else None
        event = _Event(str(next(self._ids)), stream, data)
        stream.events.append(event)
        stream.finished = stream.finished or isinstance(message, JSONRPCResponse | JSONRPCError)
        session.index[event.id] = event
        session.size += event.size
        self._size += event.size
        self._count += 1
        if event.size > min(self.limits.session_bytes, self.limits.total_bytes):
            # Kept, it would push out everything else, and a stream missing it cannot be resumed.
            self._drop_stream(stream)
        self._evict(session)
        return event.id

    async def replay(self, session_id: str, last_event_id: str, send: EventCallback) -> str | None:
        """Send what followed ``last_event_id`` on its stream, if this session has that event; its stream id."""
        session = self._sessions.get(session_id)
        event = session.index.get(last_event_id) if session is not None else None
        if event is None:
            logger.info("a client asked to resume after an event this session no longer has; nothing to replay")
            return None
        stream = event.stream
        last = event
        while (after := _events_after(stream, last)) is not None:
            # Events stored while these are sent are sent too, until none is left to hand over to the live stream.
            for later in after:
                last = later
                if later.data is not None:
                    message = jsonrpc_message_adapter.validate_json(later.data)
                    await send(EventMessage(message, later.id))
        return stream.stream_id

    def _evict(self, session: _Session) -> None:
        limits = self.limits
        while len(session.index) > limits.session_events or session.size > limits.session_bytes:
            self._drop_oldest(session.streams.values())
        while self._count > limits.total_events or self._size > limits.total_bytes:
            self._drop_oldest(self._streams.values())

    def _drop_oldest(self, streams: Iterable[_Stream]) -> None:
        """Drop the oldest finished stream among ``streams`` (oldest first), else the oldest event of the oldest one."""
        finished = next((stream for stream in streams if stream.finished), None)
        if finished is not None:
            self._drop_stream(finished)
            return
        stream = next(iter(streams))
        self._drop_event(stream.events.popleft())
        if not stream.events:
            self._drop_stream(stream)

    def _drop_stream(self, stream: _Stream) -> None:
        while stream.events:
            self._drop_event(stream.events.popleft())
        session = stream.session
        session.streams.pop(stream.stream_id, None)
        self._streams.pop((session.session_id, stream.stream_id), None)
        if not session.streams:
            self._sessions.pop(session.session_id, None)

    def _drop_event(self, event: _Event) -> None:
        session = event.stream.session
        del session.index[event.id]
        session.size -= event.size
        self._size -= event.size
        self._count -= 1


def _events_after(stream: _Stream, last: _Event) -> list[_Event] | None:
    """The events of ``stream`` after ``last`` (None if there are none, or ``last`` was dropped meanwhile)."""
    events = list(stream.events)
    try:
        position = next(i for i, event in enumerate(events) if event is last)
    except StopIteration:
        return None
    return events[position + 1 :] or None


class SessionEvents(EventStore):
    """One session's view of the ``ReplayBuffer``: the SDK event store its transport uses."""

    def __init__(self, buffer: ReplayBuffer, session_id: str, unkept: Container[str] = frozenset()) -> None:
        self._buffer = buffer
        self._session_id = session_id
        self._unkept = unkept

    async def store_event(self, stream_id: StreamId, message: JSONRPCMessage | None) -> EventId:
        """Keep a message sent on this session's stream ``stream_id``; its event id (none if it is not kept)."""
        if stream_id in self._unkept:
            return UNKEPT_EVENT_ID
        return self._buffer.store(self._session_id, stream_id, message)

    async def replay_events_after(self, last_event_id: EventId, send_callback: EventCallback) -> StreamId | None:
        """Send this session's events that followed ``last_event_id`` on its stream; that stream's id."""
        return await self._buffer.replay(self._session_id, last_event_id, send_callback)


class ResumableSessionManager(StreamableHTTPSessionManager):
    """The SDK's session manager, with each handshake-era session storing its streams in its own view of ``replay``.

    Args:
        app: the MCP server agents talk to.
        replay: where every session's events are kept.
        **options: the SDK manager's own arguments (``event_store`` excepted).
    """

    def __init__(
        self,
        app: Server[Any],
        *,
        replay: ReplayBuffer,
        json_answers: bool = True,
        hot_calls: HotCalls | None = None,
        **options: Any,
    ) -> None:
        super().__init__(app, retry_interval=RETRY_INTERVAL_MS, **options)
        self.replay = replay
        self.json_answers = json_answers
        self.hot_calls = hot_calls
        # The requestor each user a request carried stands for (``_owns``), by the user's identity.
        self._requestors: dict[int, tuple[AuthenticatedUser, AuthorizationContext]] = {}

    async def handle_request(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request; a resumption the session has nothing for is refused rather than left empty.

        An empty answer would have the SDK's client reconnect with the same ``Last-Event-ID`` forever; a
        stream whose request was cancelled would be held open with nothing more ever to come.
        """
        headers = Headers(scope=scope)
        session_id, last_event_id = headers.get(MCP_SESSION_ID_HEADER), headers.get(LAST_EVENT_ID_HEADER)
        if (
            scope["method"] == "GET"
            and session_id is not None
            and last_event_id is not None
            and self._owns(session_id, scope)
            and (
                not self.replay.knows(session_id, last_event_id)
                or self.replay.ended_unanswered(session_id, last_event_id)
            )
        ):
            why = NOTHING_TO_RESUME if not self.replay.knows(session_id, last_event_id) else ENDED_UNANSWERED
            body = JSONRPCError(jsonrpc="2.0", id=None, error=ErrorData(code=INVALID_REQUEST, message=why))
            response = Response(
                body.model_dump_json(by_alias=True, exclude_none=True), 404, media_type="application/json"
            )
            await response(scope, receive, send)
            return
        await super().handle_request(scope, receive, send)

    def session_of(self, request: Request) -> tuple[str, AnsweringTransport] | None:
        """The handshake-era session a request is for, if the manager would hand it straight to its transport.

        As the SDK's manager routes a request: a handshake-era protocol-version header (or none), and a
        session id it holds, opened by the request's user. None otherwise: the manager decides the request.
        """
        version = request.headers.get(MCP_PROTOCOL_VERSION_HEADER)
        session_id = request.headers.get(MCP_SESSION_ID_HEADER)
        if (version is not None and version not in HANDSHAKE_PROTOCOL_VERSIONS) or session_id is None:
            return None
        transport = self._server_instances.get(session_id)
        if not isinstance(transport, AnsweringTransport) or not self._owns(session_id, request.scope):
            return None
        return session_id, transport

    async def discard_ended(self, session_id: str, transport: AnsweringTransport) -> None:
        """Forget a session found by ``session_of`` that ended while serving a request, as the SDK's manager does."""
        await self._discard_session(session_id, transport)

    def _owns(self, session_id: str, scope: Scope) -> bool:
        """Whether the session exists and the request comes from whoever opened it (else the SDK answers 404)."""
        user = scope.get("user")
        if isinstance(user, AuthenticatedUser):
            kept = self._requestors.get(id(user))
            if kept is not None and kept[0] is user:
                requestor: AuthorizationContext | None = kept[1]
            else:  # the agent port makes one user per agent: each is worked out once
                requestor = authorization_context(user)
                if len(self._requestors) >= MAX_KEPT_REQUESTORS:
                    self._requestors.clear()
                self._requestors[id(user)] = (user, requestor)
        else:
            requestor = None
        return session_id in self._server_instances and self._session_owners.get(session_id) == requestor

    def _admit_session(self, requestor: AuthorizationContext | None) -> Transport | None:
        # As the SDK's (2.3), with two changes: the transport answers plain requests with JSON
        # (json_answers.py), and each session stores its streams in its own view of the replay buffer
        # where the SDK hands every session the manager's one event store.
        if self.max_sessions is not None and len(self._server_instances) >= self.max_sessions:
            return None
        session_id = uuid4().hex
        transport = AnsweringTransport(
            mcp_session_id=session_id,
            security_settings=self.security_settings,
            retry_interval=self.retry_interval,
            idle_timeout=self.session_idle_timeout,
            json_answers=self.json_answers,
            hot_calls=self.hot_calls,
        )
        transport._event_store = self.replay.for_session(session_id, transport.json_answered)
        if requestor is not None:
            self._session_owners[session_id] = requestor
        self._server_instances[session_id] = transport
        logger.info("Created new transport with session ID: %s", session_id)
        return transport

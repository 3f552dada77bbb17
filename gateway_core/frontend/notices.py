"""Resource updates and log messages from servers, delivered to the agents that asked for them.

* **Resource subscriptions.** A handshake-era agent subscribes with ``resources/subscribe``; a
  2026-07-28 agent names URIs in ``subscriptions/listen``. Toolgate subscribes at the owning server
  once, however many agents want the URI, and unsubscribes when the last one stops (or its session
  or listen stream ends). A ``notifications/resources/updated`` reaches exactly the subscribed
  agents that may still see that server.
* **Log messages.** A handshake-era agent asks with ``logging/setLevel``; it then gets every
  server's messages at that level and above, on its session, with ``logger`` naming the server
  (``"server"`` or ``"server/logger"``). Servers are asked for the most verbose level any agent
  wants. A 2026-07-28 agent opts in per request through ``_meta``; it gets the messages a server
  sends during that request, when that request is the only one in flight at the server (a log
  message does not say which call it belongs to, and another agent's must not reach it).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.lowlevel
import mcp_types as types
from anyio.streams.memory import MemoryObjectSendStream
from mcp.server.session import ServerSession
from mcp.server.subscriptions import ResourceUpdated

from gateway_core.downstream.pool import DownstreamPool
from gateway_core.errors import DownstreamError
from gateway_core.frontend.listen_bus import ListenBus

logger = logging.getLogger(__name__)

# The 2026 request whose task is forwarding it, seen by the handler of a message on its own stream.
_LOGGING_FOR: ContextVar[Receiver | None] = ContextVar("toolgate_logging_for", default=None)

LEVELS: tuple[types.LoggingLevel, ...] = (
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
)


_READY = object()
# Event-loop turns a finishing 2026 request waits for log messages that arrived with its result.
FLUSH_CHECKPOINTS = 3
# Notices waiting for delivery; beyond this the newest are dropped (and logged).
NOTICE_BACKLOG = 1024


def _tagged(server: str, params: types.LoggingMessageNotificationParams) -> types.LoggingMessageNotification:
    """The message as agents see it: ``logger`` names the server (``server`` or ``server/logger``)."""
    tagged = params.model_copy(update={"logger": f"{server}/{params.logger}" if params.logger else server})
    return types.LoggingMessageNotification(params=tagged)


def at_least(level: types.LoggingLevel, threshold: types.LoggingLevel) -> bool:
    """Whether a message at ``level`` passes a ``threshold``."""
    return LEVELS.index(level) >= LEVELS.index(threshold)


@dataclass
class Receiver:
    """One handshake-era session, or one 2026 listen stream or request, as a receiver of notices."""

    agent: str
    session: ServerSession
    uris: set[tuple[str, str]] = field(default_factory=set)  # (server, uri)
    level: types.LoggingLevel | None = None
    related_request_id: types.RequestId | None = None
    logs: list[types.LoggingMessageNotification] = field(default_factory=list)
    pending: anyio.Event = field(default_factory=anyio.Event)

    def servers_for(self, uri: str) -> list[str]:
        """The servers at which this receiver is subscribed to ``uri``."""
        return sorted(server for server, subscribed in self.uris if subscribed == uri)


class Notices:
    """Who subscribed to what and who wants which log messages; delivers server notices to them.

    Args:
        pool: the downstream servers.
        may_see: whether an agent may still see a server (its policy does not deny the whole server).
        bus: the bus feeding 2026 ``subscriptions/listen`` streams, each addressed to its receiver.
    """

    def __init__(self, pool: DownstreamPool, may_see: Callable[[str, str], bool], bus: ListenBus) -> None:
        self._pool = pool
        self._may_see = may_see
        self._bus = bus
        self._sessions: dict[str, Receiver] = {}
        self._listening: dict[int, Receiver] = {}  # 2026 listen streams, by id of their receiver
        self._requests: dict[int, tuple[str, Receiver]] = {}  # 2026 requests opted in to logging, by server
        self._refs: dict[tuple[str, str], int] = {}
        self._level: types.LoggingLevel | None = None
        self._set_at: dict[str, types.LoggingLevel] = {}
        self._send: MemoryObjectSendStream[tuple[str, Any]] | None = None

    # --- handshake-era sessions -------------------------------------------------------------------

    def session(self, session_id: str, agent: str, session: ServerSession) -> Receiver:
        """The receiver for a handshake-era session (created on first use)."""
        entry = self._sessions.get(session_id)
        if entry is None:
            entry = self._sessions[session_id] = Receiver(agent, session)
        return entry

    def session_ended(self, session_id: str) -> None:
        """Forget a session: drop its subscriptions (unsubscribing servers no one else needs)."""
        entry = self._sessions.pop(session_id, None)
        if entry is not None:
            self._drop(entry)

    def _drop(self, receiver: Receiver) -> None:
        for server, uri in list(receiver.uris):
            self._send_nowait((server, types.UnsubscribeRequest(params=types.UnsubscribeRequestParams(uri=uri))))
        receiver.uris.clear()

    async def subscribe(self, receiver: Receiver, server: str, uri: str) -> None:
        """Subscribe ``receiver`` to ``uri`` at ``server`` (subscribing the server if it is the first)."""
        if (server, uri) in receiver.uris:
            return
        await self._acquire(server, uri)
        receiver.uris.add((server, uri))

    async def unsubscribe(self, receiver: Receiver, server: str, uri: str) -> None:
        """Undo ``subscribe``; unknown subscriptions are ignored."""
        if (server, uri) in receiver.uris:
            receiver.uris.discard((server, uri))
            await self._release(server, uri)

    async def set_level(self, receiver: Receiver, level: types.LoggingLevel) -> None:
        """Send ``receiver`` server log messages at ``level`` and above."""
        receiver.level = level
        if self._level is None or not at_least(level, self._level):
            self._level = level
        await self.apply_level()

    async def apply_level(self) -> None:
        """Ask every ready server that logs for the most verbose level an agent wants (once per server run)."""
        level = self._level
        if level is None:
            return
        for name, server in list(self._pool.servers.items()):
            if server.session.supports_logging and self._set_at.get(name) != level:
                self._set_at[name] = level
                try:
                    await server.session.set_logging_level(level)
                except (DownstreamError, Exception) as exc:  # one server's refusal must not stop the rest
                    logger.info("server %r did not take log level %r: %s", name, level, exc)

    def server_ready(self, name: str) -> None:
        """A server (re)started: it knows nothing of earlier subscriptions and log levels; tell it again."""
        self._set_at.pop(name, None)
        self._send_nowait((name, _READY))

    async def _renew(self, name: str) -> None:
        await self.apply_level()
        downstream = self._pool.servers.get(name)
        if downstream is None or not downstream.session.supports_subscriptions:
            return
        for server, uri in [key for key in self._refs if key[0] == name]:
            try:
                await downstream.session.subscribe(uri)
            except Exception as exc:  # the server may have gone again; its next start retries
                logger.info("server %r did not take subscribing to %r again: %s", server, uri, exc)

    # --- 2026 listen streams and requests -------------------------------------------------------

    @asynccontextmanager
    async def logging_request(
        self, server: str, agent: str, session: ServerSession, request_id: Any, level: types.LoggingLevel | None
    ) -> AsyncIterator[None]:
        """While the body runs, ``server``'s log messages at ``level`` and above go to this 2026 request.

        They travel on the request's own stream, so the last ones are sent before the body's result:
        on leaving, messages that arrived with the result are given a moment to be handed over.
        Without a level (the request did not opt in) nothing is registered.
        """
        if level is None:
            yield
            return
        receiver = Receiver(agent, session, level=level, related_request_id=request_id)
        key = id(receiver)
        self._requests[key] = (server, receiver)
        # A message that arrives on this request's own stream to the server is handled in this context.
        token = _LOGGING_FOR.set(receiver)
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._send_logs, receiver)
                try:
                    yield
                finally:
                    # The SDK hands a notification over in a task of its own, which may run after
                    # the result it preceded on the wire.
                    for _ in range(FLUSH_CHECKPOINTS):
                        await anyio.lowlevel.checkpoint()
                    del self._requests[key]
                    await self._flush_logs(receiver)
                    tg.cancel_scope.cancel()
        finally:
            _LOGGING_FOR.reset(token)
            self._requests.pop(key, None)

    async def _send_logs(self, receiver: Receiver) -> None:
        while True:
            await receiver.pending.wait()
            await self._flush_logs(receiver)

    async def _flush_logs(self, receiver: Receiver) -> None:
        receiver.pending = anyio.Event()
        while receiver.logs:
            notification = receiver.logs.pop(0)
            with contextlib.suppress(Exception):  # the agent's request may be gone; nothing to do then
                await receiver.session.send_notification(notification, related_request_id=receiver.related_request_id)

    @contextmanager
    def listening(self, agent: str, session: ServerSession) -> Iterator[Receiver]:
        """A receiver for one 2026 listen stream; its subscriptions end with the body."""
        receiver = Receiver(agent, session)
        self._listening[id(receiver)] = receiver
        try:
            with self._bus.addressed_to(receiver):
                yield receiver
        finally:
            del self._listening[id(receiver)]
            self._drop(receiver)

    # --- delivery --------------------------------------------------------------------------------

    def on_notice(self, server: str, notification: types.ServerNotification) -> None:
        """Called by the pool (on the loop, without blocking) for each update or log message."""
        if isinstance(notification, types.LoggingMessageNotification):
            self._to_request(server, _tagged(server, notification.params))
        self._send_nowait((server, notification))

    def _to_request(self, server: str, notification: types.LoggingMessageNotification) -> None:
        """Hand a log message to the 2026 request it belongs to, if that can be told (decided now).

        A message a Streamable HTTP server sent on the request's own stream is that request's
        (``_LOGGING_FOR``); otherwise it is the request's only if it is the one call in flight there.
        """
        asking = _LOGGING_FOR.get()
        waiting = [receiver for name, receiver in self._requests.values() if name == server]
        if asking is not None and any(receiver is asking for receiver in waiting):
            receiver = asking
        else:
            downstream = self._pool.servers.get(server)
            if len(waiting) != 1 or downstream is None or downstream.session.calls_in_flight > 1:
                return
            receiver = waiting[0]
        if receiver.level is not None and at_least(notification.params.level, receiver.level):
            receiver.logs.append(notification)
            receiver.pending.set()

    def _send_nowait(self, item: tuple[str, Any]) -> None:
        if self._send is None:
            return  # not serving yet (or any more): there is no agent to deliver to
        try:
            self._send.send_nowait(item)
        except anyio.WouldBlock:
            logger.warning("dropped a notice from server %r: agents are not reading them fast enough", item[0])

    async def run(self) -> None:
        """Deliver notices until cancelled."""
        send, receive = anyio.create_memory_object_stream[tuple[str, Any]](NOTICE_BACKLOG)
        self._send = send
        with send, receive:
            try:
                async for server, item in receive:
                    await self._handle(server, item)
            finally:
                self._send = None

    async def _handle(self, server: str, item: Any) -> None:
        try:
            if item is _READY:
                await self._renew(server)
            elif isinstance(item, types.UnsubscribeRequest):
                await self._release(server, item.params.uri)
            elif isinstance(item, types.ResourceUpdatedNotification):
                await self._deliver_update(server, item.params.uri)
            elif isinstance(item, types.LoggingMessageNotification):
                await self._deliver_log(server, item.params)
        except Exception:  # one receiver's failure must not end delivery for the others
            logger.exception("delivering a notice from server %r failed", server)

    async def _deliver_update(self, server: str, uri: str) -> None:
        for entry in list(self._sessions.values()):
            if (server, uri) in entry.uris and self._may_see(entry.agent, server):
                await entry.session.send_resource_updated(uri)
        for entry in list(self._listening.values()):
            if (server, uri) in entry.uris and self._may_see(entry.agent, server):
                self._bus.send_to(entry, ResourceUpdated(uri=uri))
        await anyio.lowlevel.checkpoint()

    async def _deliver_log(self, server: str, params: types.LoggingMessageNotificationParams) -> None:
        notification = _tagged(server, params)
        for entry in list(self._sessions.values()):
            if entry.level is not None and at_least(params.level, entry.level) and self._may_see(entry.agent, server):
                await entry.session.send_notification(notification)

    async def _acquire(self, server: str, uri: str) -> None:
        key = (server, uri)
        if self._refs.get(key, 0) == 0:
            downstream = self._pool.servers.get(server)
            if downstream is not None and downstream.session.supports_subscriptions:
                await downstream.session.subscribe(uri)
        self._refs[key] = self._refs.get(key, 0) + 1

    async def _release(self, server: str, uri: str) -> None:
        key = (server, uri)
        left = self._refs.get(key, 0) - 1
        if left > 0:
            self._refs[key] = left
            return
        self._refs.pop(key, None)
        downstream = self._pool.servers.get(server)
        if downstream is not None and downstream.session.supports_subscriptions:
            try:
                await downstream.session.unsubscribe(uri)
            except Exception as exc:  # the server may be gone; nothing is left to undo
                logger.info("server %r did not take unsubscribing from %r: %s", server, uri, exc)

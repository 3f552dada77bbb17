"""The bus behind 2026 ``subscriptions/listen`` streams, which knows whose stream each listener is.

The SDK's ``ListenHandler`` registers one listener per stream on a ``SubscriptionBus`` and filters
events only by kind and URI. List changes are for every stream; a resource update is not: it must
reach only the streams subscribed to that URI *at that server*, of agents that may still see the
server. So the stream's receiver is named while the handler subscribes (``addressed_to``), and
``send_to`` delivers to that receiver's stream alone; a resource update published to everyone is
dropped (fail closed).
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import anyio.lowlevel
from mcp.server.subscriptions import ResourceUpdated, ServerEvent

logger = logging.getLogger(__name__)

_ADDRESS: contextvars.ContextVar[object | None] = contextvars.ContextVar("toolgate_listen_address", default=None)


class ListenBus:
    """A ``SubscriptionBus`` whose listeners each belong to one receiver (a 2026 listen stream)."""

    def __init__(self) -> None:
        self._listeners: dict[object, tuple[object | None, Callable[[ServerEvent], None]]] = {}

    @contextmanager
    def addressed_to(self, receiver: object) -> Iterator[None]:
        """Listeners subscribed in the body belong to ``receiver``."""
        token = _ADDRESS.set(receiver)
        try:
            yield
        finally:
            _ADDRESS.reset(token)

    async def publish(self, event: ServerEvent, *, only: Callable[[object | None], bool] | None = None) -> None:
        """Deliver a list change to every stream, or to those whose receiver passes ``only``.

        Resource updates go through ``send_to``.
        """
        if isinstance(event, ResourceUpdated):
            logger.warning("a resource update was published to every listen stream; it was dropped")
        else:
            for owner, listener in list(self._listeners.values()):
                if only is None or only(owner):
                    self._call(listener, event)
        await anyio.lowlevel.checkpoint()

    def send_to(self, receiver: object, event: ServerEvent) -> None:
        """Deliver ``event`` to the streams of ``receiver`` only."""
        for owner, listener in list(self._listeners.values()):
            if owner is receiver:
                self._call(listener, event)

    def subscribe(self, listener: Callable[[ServerEvent], None]) -> Callable[[], None]:
        """Register ``listener`` for the receiver named by ``addressed_to`` (none: list changes only)."""
        token = object()
        self._listeners[token] = (_ADDRESS.get(), listener)

        def unsubscribe() -> None:
            self._listeners.pop(token, None)

        return unsubscribe

    @staticmethod
    def _call(listener: Callable[[ServerEvent], None], event: ServerEvent) -> None:
        try:
            listener(event)
        except Exception:  # one stream's failure must not starve the others
            logger.exception("a listen stream failed to take an event")

"""Which agent a server's question belongs to, told from what the protocol gives, never by making calls wait.

A server may ask something during a call (``sampling/createMessage``, ``elicitation/create``,
``roots/list``). Calls to one server run side by side whoever makes them; each question is then
put to the agent whose call it is, found in the first of these that applies:

1. **The call's own stream.** A Streamable HTTP server sends a call's questions on that call's
   response stream. The SDK's HTTP transport reads that stream in the context of the task that sent
   the call, and its dispatcher answers the question in that same context (``contextvars``), so the
   call that is asking is ``_ASKING_CALL`` there. (A 2026-07-28 server asks inside the call's own
   result: ``session.py`` answers those rounds directly and never comes here.)
2. **The only owner in flight.** On stdio and legacy SSE nothing on the wire links a question to a
   request. If every call in flight at the server has the same owner, the question is that owner's.
3. **Nobody.** Otherwise Toolgate cannot tell, and guessing could show one agent's question to
   another: the question is refused (roots get the answer for questions outside any call).

An owner is what one conversation with the agent looks like on the wire: a handshake-era session
(its questions may travel on any of its calls), or a single 2026-07-28 call (its questions travel
back inside that call's result).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Protocol

import mcp_types as types


class Caller(Protocol):
    """The agent-side end of a forwarded request, as the downstream side sees it."""

    @property
    def agent(self) -> str:
        """The agent's id."""

    @property
    def owner(self) -> Hashable:
        """Calls with the same owner are one conversation: a question may be put to any of them."""

    @property
    def interactive(self) -> bool:
        """Whether this caller could answer a server's question at all."""

    @property
    def capabilities(self) -> types.ClientCapabilities | None:
        """What the agent declared it can do (a 2026-07-28 server is told, see ``envelope.py``)."""

    async def ask(self, server: str, request: types.InputRequest) -> types.InputResponse | types.ErrorData:
        """Put ``server``'s question to the agent; its answer, or an error to give the server."""

    async def ask_round(
        self, server: str, questions: Mapping[str, types.InputRequest]
    ) -> dict[str, types.InputResponse | types.ErrorData]:
        """Put a 2026 server's round of questions to the agent, under the server's keys; an answer per key."""


class _Call:
    """One request in flight for a caller (an identity: the same caller may have several)."""

    __slots__ = ("caller",)

    # No ``__init__``: ``enter`` sets ``caller`` (one Python call fewer per forwarded request).
    caller: Caller


# The call whose task is running: set while a request is sent and its response read, and seen by the
# SDK's handler of a question that arrived on that request's own response stream.
_ASKING_CALL: ContextVar[_Call | None] = ContextVar("toolgate_asking_call", default=None)


class CallsInFlight:
    """The calls forwarded for agents that are in flight on one server, and whose a question is."""

    def __init__(self) -> None:
        self._running: list[_Call] = []

    @contextmanager
    def running(self, caller: Caller) -> Iterator[None]:
        """Count a call of ``caller`` as in flight for the body (which sends it and reads its response)."""
        entered = self.enter(caller)
        try:
            yield
        finally:
            self.leave(entered)

    def enter(self, caller: Caller) -> tuple[_Call, Token[_Call | None]]:
        """``running`` without a context manager: the call counts as in flight until ``leave``."""
        call = _Call()
        call.caller = caller
        self._running.append(call)
        return call, _ASKING_CALL.set(call)

    def leave(self, entered: tuple[_Call, Token[_Call | None]]) -> None:
        """The call ``enter`` began is over (in the task that entered it)."""
        call, token = entered
        _ASKING_CALL.reset(token)
        self._running.remove(call)

    def owner_of_question(self) -> Caller | None:
        """The caller a question arriving now belongs to, or None when that cannot be told (see above)."""
        asking = _ASKING_CALL.get()
        if asking is not None and any(call is asking for call in self._running):
            return asking.caller
        if self._running and len({call.caller.owner for call in self._running}) == 1:
            return self._running[-1].caller
        return None

    @property
    def count(self) -> int:
        """How many calls are in flight."""
        return len(self._running)

    @property
    def owners(self) -> int:
        """How many owners the calls in flight have."""
        return len({call.caller.owner for call in self._running})

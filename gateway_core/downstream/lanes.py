"""Which agent a server's question belongs to: callers in flight on one downstream connection.

A server that asks something during a call (``sampling/createMessage``, ``elicitation/create``,
``roots/list``) does not say which call it is asking for: on stdio nothing on the wire links the
question to a request. Toolgate therefore keeps every connection unambiguous. A call whose caller
could answer such a question (an *interactive* caller: it advertised sampling, elicitation or
roots) never runs on a connection at the same time as a call from another owner, so a question
that arrives while an interactive call is in flight belongs to that call's owner. Calls from
callers that cannot answer run side by side as before; a question that arrives while only such
calls are in flight is refused, which is the right answer for every one of them.

An owner is what one conversation with the agent looks like on the wire: a handshake-era session
(its questions may travel on any of its calls), or a single 2026-07-28 call (its questions travel
back inside that call's result).

Waiting is first come, first served: a caller that would conflict with an earlier waiter waits
behind it, so interactive calls are not starved by a stream of plain ones.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Hashable, Mapping
from contextlib import asynccontextmanager
from typing import Protocol

import anyio
import mcp_types as types


class Caller(Protocol):
    """The agent-side end of a forwarded request, as the downstream side sees it."""

    @property
    def agent(self) -> str:
        """The agent's id."""

    @property
    def owner(self) -> Hashable:
        """Calls with the same owner may share a connection freely."""

    @property
    def interactive(self) -> bool:
        """Whether this caller could answer a server's question at all."""

    async def ask(self, server: str, request: types.InputRequest) -> types.InputResponse | types.ErrorData:
        """Put ``server``'s question to the agent; its answer, or an error to give the server."""

    async def ask_round(
        self, server: str, questions: Mapping[str, types.InputRequest]
    ) -> dict[str, types.InputResponse | types.ErrorData]:
        """Put a 2026 server's round of questions to the agent, under the server's keys; an answer per key."""


def _conflict(a: Caller, b: Caller) -> bool:
    return a.owner != b.owner and (a.interactive or b.interactive)


class Lanes:
    """The callers in flight on one connection, admitted so that questions have one possible owner."""

    def __init__(self) -> None:
        self._running: list[Caller] = []
        self._waiting: list[Caller] = []
        self._changed = anyio.Event()

    @asynccontextmanager
    async def hold(self, caller: Caller) -> AsyncIterator[None]:
        """Run the body once ``caller`` may use the connection without making a question ambiguous."""
        self._waiting.append(caller)
        try:
            while not self._admissible(caller):
                changed = self._changed
                await changed.wait()
        finally:
            self._waiting.remove(caller)
            self._signal()
        self._running.append(caller)
        try:
            yield
        finally:
            self._running.remove(caller)
            self._signal()

    def owner_of_question(self) -> Caller | None:
        """The caller a question arriving now belongs to, or None when that cannot be told.

        While an interactive call runs, every call in flight has its owner (see the module
        docstring); the most recent one is the most likely to be the one asking. Otherwise the
        question is unambiguous only if every call in flight has the same owner (who will say it
        cannot answer).
        """
        for caller in reversed(self._running):
            if caller.interactive:
                return caller
        if self._running and len({caller.owner for caller in self._running}) == 1:
            return self._running[-1]
        return None

    @property
    def count(self) -> int:
        """How many calls are in flight."""
        return len(self._running)

    def _admissible(self, caller: Caller) -> bool:
        if any(_conflict(caller, other) for other in self._running):
            return False
        earlier = self._waiting[: self._waiting.index(caller)]
        return not any(_conflict(caller, other) for other in earlier)

    def _signal(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

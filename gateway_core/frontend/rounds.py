"""2026-07-28 requests that wait between rounds while their agent answers a server's questions.

A handshake-era server asks its questions in the middle of a call and waits for the answer on the
same connection. A 2026-07-28 agent can only receive them as the call's result: an
``InputRequiredResult`` holding the questions and an opaque ``requestState``, after which the
agent sends the same request again with its answers. So the downstream call keeps running in the
background here, parked under a fresh unguessable ``requestState``; the agent's retry (checked to
come from the same agent, for the same method and name) hands the answers over and waits for the
next round: another question, or the final result.

A parked request the agent does not come back for within ``PARKED_TTL_S`` is cancelled, and its
questions are answered with an error, so no downstream call waits forever. One that ends while parked
(its server stopped waiting for the answer) keeps its result for the agent's retry, within that time.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import anyio
import anyio.abc
import mcp_types as types
from mcp.shared.exceptions import MCPError

from gateway_core.frontend.callers import RoundTripCaller

logger = logging.getLogger(__name__)

PARKED_TTL_S = 300.0

_R = TypeVar("_R")
Target = tuple[str, str]  # (method, tool or prompt name or resource URI)
# Told which request of the agent's is open for the call, so progress goes to it: None just before a
# round's questions are returned (awaited, so what is being sent on that request gets there first),
# then the retry's request context.
Follow = Callable[[Any], Awaitable[None]]


class _Running(Generic[_R]):
    """One request running in the background while its agent answers questions."""

    def __init__(self, agent: str, target: Target, caller: RoundTripCaller, follow: Follow | None) -> None:
        self.agent = agent
        self.target = target
        self.caller = caller
        self.follow = follow
        self.scope = anyio.CancelScope()
        self.done = anyio.Event()
        self.resumed = anyio.Event()
        self.result: _R | None = None
        self.error: BaseException | None = None

    async def run(self, work: Callable[[], Awaitable[_R]]) -> None:
        with self.scope:
            try:
                self.result = await work()
            except Exception as exc:  # handed to the agent's request that waits for it
                self.error = exc
        if self.scope.cancelled_caught:
            self.error = MCPError(types.INVALID_REQUEST, "the request was abandoned before it finished")
        self.caller.abandon()
        self.done.set()


class Rounds:
    """The background requests of 2026 agents, and the ones parked until their agent answers."""

    def __init__(self, *, ttl_s: float = PARKED_TTL_S) -> None:
        self._ttl_s = ttl_s
        self._parked: dict[str, _Running[Any]] = {}
        self._tg: anyio.abc.TaskGroup | None = None

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Host the background requests until cancelled (which cancels them all)."""
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                task_status.started()
                await anyio.sleep_forever()
        finally:
            self._tg = None
            self._parked.clear()

    async def begin(
        self,
        agent: str,
        target: Target,
        caller: RoundTripCaller,
        work: Callable[[], Awaitable[_R]],
        *,
        follow: Follow | None = None,
    ) -> _R | types.InputRequiredResult:
        """Start ``work`` in the background; its result, or the first round of questions."""
        if self._tg is None:
            return await work()
        running: _Running[_R] = _Running(agent, target, caller, follow)
        self._tg.start_soon(running.run, work, name=f"{target[0]} {target[1]!r} for {agent!r}")
        return await self._step(running)

    async def resume(
        self, agent: str, target: Target, state: str, responses: types.InputResponses | None, ctx: Any = None
    ) -> Any:
        """Hand the agent's answers to its parked request; the result, or the next round of questions.

        ``ctx`` is the retry's request context, handed to the request's ``follow``.

        Raises:
            MCPError: ``state`` names no parked request of this agent for this target.
        """
        running = self._parked.get(state)
        if running is None or running.agent != agent or running.target != target:
            raise MCPError(
                types.INVALID_PARAMS,
                f"requestState is unknown or expired for {target[0]} {target[1]!r}; send the request again without it",
            )
        del self._parked[state]
        running.resumed.set()
        if running.follow is not None and ctx is not None:
            await running.follow(ctx)
        running.caller.answer(responses)
        return await self._step(running)

    async def _step(self, running: _Running[_R]) -> _R | types.InputRequiredResult:
        try:
            await _first(running.done, running.caller.asked)
        except BaseException:
            # The agent's request went away mid-round: nobody can answer now.
            running.scope.cancel()
            raise
        if running.done.is_set():
            if running.error is not None:
                raise running.error
            assert running.result is not None
            return running.result
        state = secrets.token_urlsafe(24)
        running.resumed = anyio.Event()
        if running.follow is not None:
            try:
                await running.follow(None)
            except BaseException:
                running.scope.cancel()  # as above: the round's questions can no longer reach the agent
                raise
        self._parked[state] = running
        assert self._tg is not None
        self._tg.start_soon(self._expire, state, running)
        return types.InputRequiredResult(input_requests=running.caller.take_questions(), request_state=state)

    async def _expire(self, state: str, running: _Running[Any]) -> None:
        # Only the agent's retry ends the wait: a request that ends while parked (its server stopped
        # waiting for the answer) keeps its result or error for that retry, until the time limit.
        with anyio.move_on_after(self._ttl_s):
            await running.resumed.wait()
        if self._parked.pop(state, None) is not None:
            if running.done.is_set():
                logger.info(
                    "agent %r did not come back for the result of %s %r within %g s; it was dropped",
                    running.agent,
                    *running.target,
                    self._ttl_s,
                )
                return
            logger.info(
                "agent %r did not answer %s %r within %g s; the request was cancelled",
                running.agent,
                *running.target,
                self._ttl_s,
            )
            running.scope.cancel()


async def _first(*events: anyio.Event) -> None:
    """Wait until any of ``events`` is set."""
    if any(event.is_set() for event in events):
        return
    async with anyio.create_task_group() as tg:

        async def wait(event: anyio.Event) -> None:
            await event.wait()
            tg.cancel_scope.cancel()

        for event in events:
            tg.start_soon(wait, event)

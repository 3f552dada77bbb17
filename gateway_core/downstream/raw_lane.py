"""A stdio connection's raw lane: a hot call written straight to the server's stdin, its answer taken off stdout.

The SDK's way sends a request through three tasks and three memory streams (the dispatcher, the stdin
writer, the stdout reader), with a model built, dumped and parsed on the way. The hot path's
``tools/call`` (``ServerSession.call_tool_passing_through``) instead serializes its request once and
writes it from the calling task; the stdout reader hands a line that answers it straight to that task
(``take``), which waits on a plain future (no cancel scope, no task, no event object per call). The
lane keeps one loop timer for all its calls' deadlines: a call whose deadline is later than the one
armed only notes it, and the timer, when it fires, times out the calls that are due and waits on for
the next (no timer made and cancelled per call). Every other line (notifications, the server's own questions,
answers to the dispatcher) goes the SDK's way, so questions asked during a raw call still reach the
calling agent (``session.py``).

The lane keeps the dispatcher's contract: its own ids (``toolgate-N`` strings: the dispatcher numbers
with integers, so the two never collide), an error answer raised as ``MCPError``, a call cancelled or
past its deadline followed by ``notifications/cancelled``, and ``Connection closed`` for every call
still waiting when the connection ends. Writes share the stdin pipe with the SDK's writer; each line
is one write, so lines never interleave. Lifecycle: made by ``open_stdio``, closed when stdout ends or
the connection closes.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from typing import Any, Protocol

import anyio
import pydantic_core
from mcp.shared.exceptions import MCPError
from mcp_types import CONNECTION_CLOSED, ErrorData
from pydantic import ValidationError

# The lane's request ids start with this; a line without it answers nothing of the lane's.
ID_PREFIX = "toolgate-"
_MARK = f'"{ID_PREFIX}'
_MARK_BYTES = _MARK.encode()
# What a call still waiting gets when the connection ends: the dispatcher's own words (session.py reads them).
CLOSED = ErrorData(code=CONNECTION_CLOSED, message="Connection closed")
# Bound for the courtesy cancel after a call is abandoned (the dispatcher's): a wedged pipe cannot hang it.
CANCEL_WRITE_TIMEOUT_S = 5.0
# What a call's future holds when its deadline passed first.
_TIMED_OUT = ErrorData(code=CONNECTION_CLOSED, message="timed out")

# How early the loop runs a timer (asyncio's clock resolution): a call is due when its timer would run.
_CLOCK_RESOLUTION = time.get_clock_info("monotonic").resolution

Outcome = dict[str, Any] | ErrorData


class LaneTimeoutError(TimeoutError):
    """The call's deadline passed before its answer came (the server was told to cancel it)."""


class Pipe(Protocol):
    """The server's stdin as the lane writes to it (``stdio.py``'s ``StdinPipe``)."""

    def write(self, data: bytes) -> bool:
        """Write ``data`` whole, now; False when the pipe is backed up and ``drained`` must be awaited.

        Raises:
            OSError, anyio.BrokenResourceError, anyio.ClosedResourceError: the pipe is broken or closed.
        """

    async def drained(self) -> None:
        """Wait until the pipe takes more. Raises as ``write`` does."""


def _settle(answer: asyncio.Future[Outcome], outcome: Outcome) -> None:
    if not answer.done():
        answer.set_result(outcome)


class RawLane:
    """Raw requests over one stdio connection (see the module docstring).

    Args:
        pipe: the server's stdin (the same pipe the SDK's writer uses).
        broken: called when a write fails (the connection is lost).
    """

    # A pipe carries no headers (``base.Lane``).
    sends_headers = False

    def __init__(self, pipe: Pipe, broken: Callable[[], None]) -> None:
        self._pipe = pipe
        self._broken = broken
        # Each waiting call's answer and deadline (the loop's clock; inf: none).
        self._waiting: dict[str, tuple[asyncio.Future[Outcome], float]] = {}
        self._sent = 0
        self._closed = False
        # The lane's one timer for its calls' deadlines, and when it runs (inf: not armed).
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf

    async def request(
        self,
        method: str,
        params: dict[str, Any] | None,
        *,
        headers: dict[str, str] | None = None,
        deadline: float | None = None,
    ) -> dict[str, Any]:
        """Send a request and return its result as it came, as ``JSONRPCDispatcher.send_raw_request`` does.

        ``headers`` are the session stamp's (an HTTP lane's; a pipe has none). ``deadline`` (the
        loop's clock, ``anyio.current_time``): when it passes first, the server is told to cancel.

        Raises:
            MCPError: the server answered with an error, or ``CONNECTION_CLOSED`` ("Connection closed"):
                the connection ended before the answer.
            LaneTimeoutError: the deadline passed first.
        """
        if self._closed:
            raise MCPError(code=CLOSED.code, message=CLOSED.message)
        self._sent += 1
        request_id = f"{ID_PREFIX}{self._sent}"
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[Outcome] = loop.create_future()
        if deadline is None:
            self._waiting[request_id] = (answer, math.inf)
        else:
            self._waiting[request_id] = (answer, deadline)
            if deadline < self._timer_at:
                self._arm(loop, deadline)
        # The request as the SDK's dispatcher and stdio writer put it on the wire (an empty ``_meta`` left
        # out). The dispatcher also adds the current OpenTelemetry trace context to ``_meta``; with no
        # tracer set up (Toolgate sets none) that adds nothing, and neither does the lane.
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params:
            if "_meta" in params and not params["_meta"]:
                params = {key: value for key, value in params.items() if key != "_meta"}
            if params:
                message["params"] = params
        try:
            try:  # ``_send``, without a call of its own when the pipe takes the line at once (as it almost always does)
                sent = self._pipe.write(pydantic_core.to_json(message) + b"\n") or await self._drained(deadline)
            except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
                self._broken()
                sent = False
            if not sent:
                _settle(answer, CLOSED)
            outcome = await answer
        except anyio.get_cancelled_exc_class():
            await self._cancel(request_id)
            raise
        finally:
            self._waiting.pop(request_id, None)
        if outcome is _TIMED_OUT:
            await self._cancel(request_id)
            raise LaneTimeoutError()
        if isinstance(outcome, ErrorData):
            raise MCPError(code=outcome.code, message=outcome.message, data=outcome.data)
        return outcome

    def take(self, line: str | bytes) -> bool:
        """Whether ``line`` (from stdout, decoded or as it came) answers a raw call; if so it is handed to that call.

        The line is read as the SDK reads a ``JSONRPCMessage``: a response to a call of the lane's that
        is still waiting, with a result object or a valid error; anything else goes the SDK's way, as before.
        """
        waiting = self._waiting
        if not waiting or (_MARK_BYTES not in line if type(line) is bytes else _MARK not in line):
            return False
        try:
            message = pydantic_core.from_json(line)
        except ValueError:
            # Not JSON: the SDK's reader says so, as for any line. (Or, as it came, a bad UTF-8 sequence
            # that its text replaces: ``pipes.StdoutLines`` then queues its text, which comes here again.)
            return False
        if type(message) is not dict or message.get("jsonrpc") != "2.0" or "method" in message:
            return False
        request_id = message.get("id")
        if type(request_id) is not str or request_id not in waiting:
            return False  # not to a call of the lane's still waiting (its ids all start with ``ID_PREFIX``)
        outcome: Outcome
        if type(result := message.get("result")) is dict:
            outcome = result
        else:
            try:
                outcome = ErrorData.model_validate(message.get("error"))
            except ValidationError:
                return False
        answer = waiting.pop(request_id)[0]
        if not answer.done():  # ``_settle``, inline
            answer.set_result(outcome)
        return True

    def close(self) -> None:
        """The connection ended: every call still waiting fails with ``CLOSED``, later ones at once."""
        self._closed = True
        for waiting, _ in self._waiting.values():
            _settle(waiting, CLOSED)
        self._waiting.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._timer_at = math.inf

    def _arm(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        """Run the lane's timer at ``when`` (instead of when it was to run)."""
        if self._timer is not None:
            self._timer.cancel()
        self._timer = loop.call_at(when, self._expire, loop)
        self._timer_at = when

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        """The lane's timer: every call now due times out; the timer waits on for the next deadline."""
        self._timer = None
        self._timer_at = math.inf
        due = loop.time() + _CLOCK_RESOLUTION  # as the loop judges a timer due
        after = math.inf
        for answer, deadline in self._waiting.values():
            if deadline < due:
                _settle(answer, _TIMED_OUT)
            elif deadline < after:
                after = deadline
        if after != math.inf:
            self._arm(loop, after)

    async def _drained(self, deadline: float | None) -> bool:
        """Wait while the pipe is backed up, until ``deadline`` at most (the rest of ``_send``). Raises as it does."""
        with anyio.move_on_at(math.inf if deadline is None else deadline):
            await self._pipe.drained()
        return True

    async def _cancel(self, request_id: str) -> None:
        """The courtesy cancel the dispatcher sends for an abandoned call, bounded and shielded."""
        with anyio.move_on_after(CANCEL_WRITE_TIMEOUT_S, shield=True):
            await self._send(_cancel_line(request_id), None)

    async def _send(self, line: bytes, deadline: float | None) -> bool:
        """Write ``line``; False if the pipe broke. A backed-up pipe is waited for until ``deadline`` at most."""
        try:
            return self._pipe.write(line) or await self._drained(deadline)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
            self._broken()
            return False


def _cancel_line(request_id: str) -> bytes:
    """The courtesy cancel the SDK's dispatcher sends for a request its caller abandoned."""
    params = {"requestId": request_id, "reason": "caller cancelled"}
    return pydantic_core.to_json({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": params}) + b"\n"

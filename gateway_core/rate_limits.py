"""Per-agent call limits: ``"limits": {"calls_per_minute": N, "concurrent": M}`` on an agent stops a runaway loop.

``calls_per_minute`` counts the agent's tool calls that started in the last 60 seconds (a sliding
window, so a burst cannot reset at a minute boundary); ``concurrent`` counts its calls in flight (a
call waiting for a person's answer counts). A call over either limit is refused at once, before the
policy is asked, and says which limit and when to retry. Each agent is counted on its own: one agent's
burst never slows another.
"""

from __future__ import annotations

import collections
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

WINDOW_S = 60.0


class CallLimits(BaseModel):
    """An agent's ``limits`` block; a limit left out does not apply."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    calls_per_minute: int | None = Field(default=None, gt=0)
    concurrent: int | None = Field(default=None, gt=0)


@dataclass(frozen=True)
class LimitHit:
    """A call refused by one of its agent's limits.

    Attributes:
        limit: ``calls_per_minute`` or ``concurrent``.
        allowed: the limit's value.
        retry_after_s: seconds until a call would fit again, or None (``concurrent``: when a call in
            flight ends).
    """

    limit: str
    allowed: int
    retry_after_s: float | None

    @property
    def rule_text(self) -> str:
        """The limit as the audit log names it, e.g. ``limits.calls_per_minute = 60``."""
        return f"limits.{self.limit} = {self.allowed}"

    def reason(self, agent: str) -> str:
        """One sentence for the agent, the audit log and the GUI, saying which limit and when to retry."""
        if self.limit == "concurrent":
            return (
                f"agent {agent!r} already has {self.allowed} tool calls in flight, its limit ({self.rule_text}); "
                "retry when one of them has finished"
            )
        return (
            f"agent {agent!r} has made {self.allowed} tool calls in the last minute, its limit ({self.rule_text}); "
            f"retry in {math.ceil(self.retry_after_s or 0)} s"
        )


@dataclass
class _Counts:
    started: collections.deque[float] = field(default_factory=collections.deque)
    in_flight: int = 0


class RateLimiter:
    """Counts each agent's recent and in-flight calls against its ``CallLimits``.

    Use it from one event loop: ``acquire`` before a call, ``release`` once for every call it admitted.

    Args:
        clock: a monotonic clock (seconds).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._counts: dict[str, _Counts] = {}

    def acquire(self, agent: str, limits: CallLimits) -> LimitHit | None:
        """Admit one call of ``agent`` (counting it) or say which limit it is over (not counting it).

        Args:
            agent: the calling agent.
            limits: the agent's limits in force.

        Returns:
            None when the call may go ahead (then call ``release`` when it ends), else the limit hit.
        """
        if limits.calls_per_minute is None and limits.concurrent is None:
            counts = self._counts.setdefault(agent, _Counts())
            counts.in_flight += 1
            return None
        now = self._clock()
        counts = self._counts.setdefault(agent, _Counts())
        started = counts.started
        while started and started[0] <= now - WINDOW_S:
            started.popleft()
        if limits.concurrent is not None and counts.in_flight >= limits.concurrent:
            return LimitHit("concurrent", limits.concurrent, None)
        if limits.calls_per_minute is not None:
            while len(started) > limits.calls_per_minute:  # the limit was lowered: keep only what counts
                started.popleft()
            if len(started) >= limits.calls_per_minute:
                return LimitHit("calls_per_minute", limits.calls_per_minute, started[0] + WINDOW_S - now)
            started.append(now)
        counts.in_flight += 1
        return None

    def release(self, agent: str) -> None:
        """One call ``acquire`` admitted for ``agent`` has ended."""
        counts = self._counts.get(agent)
        if counts is not None and counts.in_flight > 0:
            counts.in_flight -= 1
            if counts.in_flight == 0 and not counts.started:
                del self._counts[agent]

    def in_flight(self, agent: str) -> int:
        """How many of ``agent``'s admitted calls have not ended."""
        counts = self._counts.get(agent)
        return 0 if counts is None else counts.in_flight

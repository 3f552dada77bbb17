"""Per-agent call limits: ``"limits": {"calls_per_minute": N, "concurrent": M}`` on an agent stops a runaway loop.

``calls_per_minute`` counts the agent's tool calls that started in the last 60 seconds (a sliding
window, so a burst cannot reset at a minute boundary); ``concurrent`` counts its calls in flight (a
call waiting for a person's answer counts). The same two may be set for the agent's calls to one server,
under ``"servers"``: ``{"calls_per_minute": 120, "servers": {"github": {"calls_per_minute": 10}}}``; a call
counts against the agent's limits and against those of the agent and its server, and must fit both. A
call over any limit is refused at once, before the policy is asked, and says which limit and when to
retry. Each agent (and each agent and server) is counted on its own: one agent's burst never slows
another, nor the same agent's calls to other servers beyond its own overall limits.
"""

from __future__ import annotations

import collections
import math
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, field_validator

WINDOW_S = 60.0


class CallLimits(BaseModel):
    """A ``limits`` block (an agent's, or an agent's for one server); a limit left out does not apply."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    calls_per_minute: int | None = Field(default=None, gt=0)
    concurrent: int | None = Field(default=None, gt=0)

    @property
    def empty(self) -> bool:
        """Whether no limit is set."""
        return self.calls_per_minute is None and self.concurrent is None


class AgentLimits(CallLimits):
    """An agent's ``limits``: its own, plus ``servers``: limits on its calls to each named server."""

    servers: dict[str, CallLimits] = Field(default_factory=dict)

    @field_validator("servers")
    @classmethod
    def _named_servers(cls, servers: dict[str, CallLimits]) -> dict[str, CallLimits]:
        if any(not name for name in servers):
            raise ValueError('expected server names (as in "servers"), each with its limits')
        return servers


NO_LIMITS = CallLimits()
"""No limit at all (an agent without ``limits``), built once."""


@dataclass(frozen=True)
class LimitHit:
    """A call refused by one of its agent's limits.

    Attributes:
        limit: ``calls_per_minute`` or ``concurrent``.
        allowed: the limit's value.
        retry_after_s: seconds until a call would fit again, or None (``concurrent``: when a call in
            flight ends).
        server: the server whose per-server limit it is, or None for the agent's own limit.
    """

    limit: str
    allowed: int
    retry_after_s: float | None
    server: str | None = None

    @property
    def rule_text(self) -> str:
        """The limit as the audit log names it, e.g. ``limits.calls_per_minute = 60``."""
        where = "limits" if self.server is None else f"limits.servers.{self.server}"
        return f"{where}.{self.limit} = {self.allowed}"

    def reason(self, agent: str) -> str:
        """One sentence for the agent, the audit log and the GUI, saying which limit and when to retry."""
        to = "" if self.server is None else f" to server {self.server!r}"
        its = "its limit" if self.server is None else "its limit for that server"
        calls = "1 tool call" if self.allowed == 1 else f"{self.allowed} tool calls"
        if self.limit == "concurrent":
            finished = "it has" if self.allowed == 1 else "one of them has"
            return (
                f"agent {agent!r} already has {calls}{to} in flight, {its} ({self.rule_text}); "
                f"retry when {finished} finished"
            )
        return (
            f"agent {agent!r} has made {calls}{to} in the last minute, {its} ({self.rule_text}); "
            f"retry in {math.ceil(self.retry_after_s or 0)} s"
        )


class RateLimiter:
    """Counts each agent's (and each agent and server's) recent and in-flight calls against their ``CallLimits``.

    Use it from one event loop: ``acquire`` before a call, ``release`` once for every call it admitted.
    Calls in flight are counted even while no limit is set, so a ``concurrent`` limit set later counts
    the calls already running; the start times of calls are kept only while ``calls_per_minute`` is set.

    Args:
        clock: a monotonic clock (seconds).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        # Calls in flight by agent and by (agent, server); a key leaves when its last call ends.
        self._flying: dict[Hashable, int] = {}
        # When each key's calls in the window started, oldest first (only keys with ``calls_per_minute``).
        self._started: dict[Hashable, collections.deque[float]] = {}

    def acquire(self, agent: str, limits: CallLimits, server: str | None = None) -> LimitHit | None:
        """Admit one call of ``agent`` to ``server`` (counting it) or say which limit it is over (not counting it).

        Args:
            agent: the calling agent.
            limits: the agent's limits in force (with ``AgentLimits``, also its per-server ones).
            server: the server the call goes to.

        Returns:
            None when the call may go ahead (then call ``release`` with the same agent and server when it
            ends), else the limit hit.
        """
        per_server = limits.servers.get(server) if isinstance(limits, AgentLimits) and server is not None else None
        flying, pair = self._flying, (agent, server)
        if per_server is None and limits.calls_per_minute is None and limits.concurrent is None:
            # No limit applies (the common case): only what is in flight is counted.
            flying[agent] = flying.get(agent, 0) + 1
            flying[pair] = flying.get(pair, 0) + 1
            if self._started:  # a limit was removed: nothing to keep for it
                self._started.pop(agent, None)
                self._started.pop(pair, None)
            return None
        now = self._clock()
        hit = self._over(agent, limits, now, None)
        if hit is None and per_server is not None:
            hit = self._over(pair, per_server, now, server)
        if hit is not None:
            return hit
        self._admit(agent, limits, now)
        self._admit(pair, per_server or NO_LIMITS, now)
        return None

    def release(self, agent: str, server: str | None = None) -> None:
        """One call ``acquire`` admitted for ``agent`` (to ``server``) has ended."""
        flying = self._flying
        for key in (agent, (agent, server)):
            count = flying.get(key)
            if count is not None:
                if count > 1:
                    flying[key] = count - 1
                else:
                    del flying[key]

    def in_flight(self, agent: str, server: str | None = None) -> int:
        """How many of ``agent``'s admitted calls (to ``server``, when given) have not ended."""
        return self._flying.get(agent if server is None else (agent, server), 0)

    def _over(self, key: Hashable, limits: CallLimits, now: float, server: str | None) -> LimitHit | None:
        if limits.empty:
            return None
        if limits.concurrent is not None and self._flying.get(key, 0) >= limits.concurrent:
            return LimitHit("concurrent", limits.concurrent, None, server)
        started = self._started.get(key)
        if limits.calls_per_minute is None or started is None:
            return None
        while started and started[0] <= now - WINDOW_S:
            started.popleft()
        while len(started) > limits.calls_per_minute:  # the limit was lowered: keep only what counts
            started.popleft()
        if len(started) >= limits.calls_per_minute:
            return LimitHit("calls_per_minute", limits.calls_per_minute, started[0] + WINDOW_S - now, server)
        return None

    def _admit(self, key: Hashable, limits: CallLimits, now: float) -> None:
        self._flying[key] = self._flying.get(key, 0) + 1
        if limits.calls_per_minute is not None:
            started = self._started.get(key)
            if started is None:
                started = self._started[key] = collections.deque()
            started.append(now)
        else:
            self._started.pop(key, None)  # the limit was removed: nothing to keep for it

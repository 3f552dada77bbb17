"""Each agent's share of the gateway: open sessions and requests in flight, so one cannot starve the others.

Sessions: every handshake-era session is counted for the agent that opened it. When an agent opens
one more than ``gateway.max_sessions_per_agent``, *its own* oldest idle session (no request in
flight, no open stream) is ended; if none of its sessions is idle, its oldest one is. Other agents
never notice. Sessions that ended on their own (DELETE, idle expiry) are forgotten as they are
found gone.

Requests: an agent may have at most ``gateway.max_requests_per_agent`` POSTs in flight (a tool call
waiting for a person's answer counts); one more is refused at once with 429, saying why. Standalone
GET streams are not requests in this sense: each session has at most one.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from gateway_core.config import GatewaySettings

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class _Session:
    agent: str
    active: int = 0


@dataclass
class AgentLimits:
    """Counts per agent; ``end_session`` ends a session, ``is_open`` says whether one still exists.

    Args:
        settings: the gateway settings in force (``max_sessions_per_agent``, ``max_requests_per_agent``).
        end_session: ends the session with this id (it answers 404 afterwards).
        is_open: whether the session with this id still exists.
    """

    settings: Callable[[], GatewaySettings]
    end_session: Callable[[str], Awaitable[None]]
    is_open: Callable[[str], bool]
    # Insertion order is age: the first of an agent's sessions is its oldest.
    _sessions: dict[str, _Session] = field(default_factory=dict)
    # Requests in flight by agent (only agents with some).
    _requests: dict[str, int] = field(default_factory=dict)

    @property
    def max_sessions(self) -> int:
        """Open sessions one agent may have."""
        return self.settings().max_sessions_per_agent

    @property
    def max_requests(self) -> int:
        """Requests one agent may have in flight."""
        return self.settings().max_requests_per_agent

    def begin_request(self, agent: str) -> bool:
        """Count one more request of ``agent`` in flight; False (and nothing counted) if it has its maximum."""
        requests = self._requests
        count = requests.get(agent, 0)
        if count >= self.settings().max_requests_per_agent:
            return False
        requests[agent] = count + 1
        return True

    def end_request(self, agent: str) -> None:
        """One request of ``agent`` finished."""
        requests = self._requests
        count = requests.get(agent, 0) - 1
        if count > 0:
            requests[agent] = count
        else:
            requests.pop(agent, None)

    def requests_in_flight(self, agent: str) -> int:
        """How many requests ``agent`` has in flight."""
        return self._requests.get(agent, 0)

    def session_in_use(self, session_id: str | None) -> _Session | None:
        """Mark the session busy while a request (or its stream) is served; give it to ``session_done`` after.

        As ``using``, without a context manager: the agent port does this for every request.
        """
        session = self._sessions.get(session_id) if session_id is not None else None
        if session is not None:
            session.active += 1
        return session

    @staticmethod
    def session_done(session: _Session | None) -> None:
        """A request ``session_in_use`` marked its session busy for is served."""
        if session is not None:
            session.active -= 1

    def sessions_of(self, agent: str) -> list[str]:
        """The agent's open sessions, oldest first."""
        return [sid for sid, session in self._sessions.items() if session.agent == agent]

    async def session_opened(self, agent: str, session_id: str) -> None:
        """Count a session ``agent`` just opened, and end its oldest ones beyond the maximum."""
        if session_id in self._sessions:
            return
        for gone in [sid for sid in self._sessions if not self.is_open(sid)]:
            del self._sessions[gone]
        self._sessions[session_id] = _Session(agent)
        mine = self.sessions_of(agent)
        while len(mine) > self.max_sessions:
            older = mine[:-1]  # never the one just opened
            idle = [sid for sid in older if self._sessions[sid].active == 0]
            victim = (idle or older)[0]
            mine.remove(victim)
            del self._sessions[victim]
            logger.warning(
                "agent %r opened more than %d sessions; its oldest %s session was ended "
                "(gateway.max_sessions_per_agent)",
                agent,
                self.max_sessions,
                "idle" if idle else "busy",
            )
            await self.end_session(victim)

    def session_ended(self, session_id: str) -> None:
        """Forget a session that ended."""
        self._sessions.pop(session_id, None)

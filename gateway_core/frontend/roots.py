"""What each agent's roots (workspace folders) are, for servers that ask outside any call.

A server asking during a call gets the calling agent's answer directly (``callers.py``). An agent's
own instance of a ``per_agent`` server may also ask on its own, typically right after starting or
after ``notifications/roots/list_changed``. Then Toolgate answers with the roots the agent gave
last, or asks one of the agent's handshake-era sessions on its standalone stream. A 2026-07-28
agent cannot be asked outside a call, so until it has answered once its instance gets no roots.
"""

from __future__ import annotations

import logging

import anyio
import mcp_types as types
from mcp.server.session import ServerSession

logger = logging.getLogger(__name__)

# How long an agent may take to answer roots/list asked outside a call.
ASK_TIMEOUT_S = 10.0


class AgentRoots:
    """The last roots each agent gave, and its sessions that can be asked for them."""

    def __init__(self) -> None:
        self._known: dict[str, types.ListRootsResult] = {}
        self._sessions: dict[str, tuple[str, ServerSession]] = {}  # session id → (agent, session)

    def remember(self, agent: str, roots: types.ListRootsResult) -> None:
        """Keep the roots ``agent`` just gave."""
        self._known[agent] = roots

    def forget(self, agent: str) -> None:
        """The agent said its roots changed: the next question asks it again."""
        self._known.pop(agent, None)

    def session_seen(self, agent: str, session_id: str, session: ServerSession) -> None:
        """A handshake-era session of ``agent``; kept if it can be asked for roots."""
        capabilities = session.client_capabilities
        if capabilities is not None and capabilities.roots is not None:
            self._sessions[session_id] = (agent, session)

    def session_ended(self, session_id: str) -> None:
        """Forget a session that closed."""
        self._sessions.pop(session_id, None)

    async def roots(self, agent: str) -> types.ListRootsResult | None:
        """The agent's roots: as last given, else asked of one of its sessions; None if unknown."""
        known = self._known.get(agent)
        if known is not None:
            return known
        for owner, session in list(self._sessions.values()):
            if owner != agent:
                continue
            try:
                with anyio.fail_after(ASK_TIMEOUT_S):
                    answer = await session.send_request(types.ListRootsRequest(), types.ListRootsResult)
            except Exception as exc:  # a session that cannot answer: try the next one
                logger.info("agent %r did not answer roots/list: %s", agent, exc)
                continue
            self._known[agent] = answer
            return answer
        return None

"""Each agent's own process of a server configured with ``"isolation": "per_agent"``.

Filesystem- and git-style servers keep state (open repositories, allowed roots) per connection.
For them each agent gets a separate downstream session: started on that agent's first call,
answering ``roots/list`` with that agent's roots, and stopped after ``idle_timeout_s`` without
calls. The pool's own instance of the server stays up for the listings everyone sees (tools,
prompts, resources), for subscriptions and log levels; calls go to the agent's instance.

An agent's instance is offered the client capabilities (sampling, elicitation, roots) that the
request starting it declared. A later request of that agent declaring more restarts it, offered
both, once no call is running on it; until then that request uses the instance as it is. An
instance reached in 2026-07-28 is told each request's capabilities with the request, so it never
needs that restart. An instance started by a handshake-era request speaks the handshake era only, as the
server would to that agent directly (``era_twin.py``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio
import anyio.abc
import mcp_types as types

from gateway_core.config import ServerConfig
from gateway_core.downstream.offer import covers, offer_for, union
from gateway_core.downstream.server import DownstreamServer

logger = logging.getLogger(__name__)

# The agent's roots, for questions its own instance asks outside a call (None: not known).
RootsOfAgent = Callable[[str], Awaitable[types.ListRootsResult | None]]
# Builds an agent's instance: (server name, config, agent, its roots, the capabilities to offer, whether
# it may speak 2026-07-28 rather than only the handshake era).
NewServer = Callable[[str, ServerConfig, str, RootsOfAgent, types.ClientCapabilities, bool], DownstreamServer]


def same_session(old: ServerConfig, new: ServerConfig) -> bool:
    """Whether a running session can carry on under ``new`` (only naming, call or idle timeouts changed)."""
    keep = {"prefix", "timeout_s", "idle_timeout_s"}
    return old.model_dump(exclude=keep) == new.model_dump(exclude=keep)


@dataclass
class _Instance:
    server: DownstreamServer
    config: ServerConfig
    modern: bool
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    last_used: float = 0.0
    users: int = 0


class AgentInstances:
    """The per-agent instances of every ``per_agent`` server, keyed by (server, agent).

    Args:
        new_server: builds a ``DownstreamServer`` for (server name, config, agent, roots, offer).
        agent_roots: the agent's roots when an instance asks outside a call.
    """

    def __init__(self, new_server: NewServer, agent_roots: RootsOfAgent) -> None:
        self._new_server = new_server
        self._agent_roots = agent_roots
        self._instances: dict[tuple[str, str], _Instance] = {}
        self._tg: anyio.abc.TaskGroup | None = None
        self._changed = anyio.Event()

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Supervise the instances and stop idle ones until cancelled (which stops them all)."""
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                tg.start_soon(self._reap_idle)
                task_status.started()
                await anyio.sleep_forever()
        finally:
            self._tg = None
            self._instances.clear()

    @asynccontextmanager
    async def use(
        self,
        name: str,
        config: ServerConfig,
        agent: str,
        declared: types.ClientCapabilities | None,
        *,
        modern: bool = True,
    ) -> AsyncIterator[DownstreamServer]:
        """The agent's instance of server ``name``, started if need be; kept from idling while in use.

        ``declared`` is what the agent's request said it can answer (see the module docstring).
        """
        key, wanted = (name, agent), offer_for(declared)
        instance = self._instances.get(key)
        if instance is None or not same_session(instance.config, config):
            self._stop(key)
            instance = self._start(name, config, agent, wanted, modern)
        elif instance.users or instance.server.session.tells_capabilities_per_request:
            instance.config = config
        elif covers(instance.server.session.offer, wanted):
            instance.config = config
        else:
            logger.info("restarting server %r for agent %r: the agent now declares more capabilities", name, agent)
            offer = union(instance.server.session.offer, wanted)
            self._stop(key)
            instance = self._start(name, config, agent, offer, instance.modern)
        instance.users += 1
        try:
            with anyio.move_on_after(max(config.timeout_s, 10.0)):
                await instance.server.tried.wait()
            yield instance.server
        finally:
            instance.users -= 1
            instance.last_used = anyio.current_time()
            self._signal()

    def agents_of(self, name: str) -> list[str]:
        """The agents that have an instance of server ``name`` running."""
        return sorted(agent for server, agent in self._instances if server == name)

    def of_server(self, name: str) -> list[DownstreamServer]:
        """Server ``name``'s running instances, one per agent."""
        return [inst.server for (server, _), inst in self._instances.items() if server == name]

    def instances_for(self, agent: str) -> list[DownstreamServer]:
        """The agent's running instances."""
        return [inst.server for (_, owner), inst in self._instances.items() if owner == agent]

    def keep_only(self, configs: dict[str, ServerConfig]) -> None:
        """Stop the instances of servers that are gone, disabled or no longer per_agent."""
        for key, instance in list(self._instances.items()):
            config = configs.get(key[0])
            if config is None or not config.enabled or config.isolation != "per_agent":
                self._stop(key)
            elif same_session(instance.config, config):
                instance.config = config
            else:
                self._stop(key)  # the agent's next call starts it with the new configuration

    def _start(
        self, name: str, config: ServerConfig, agent: str, offer: types.ClientCapabilities, modern: bool
    ) -> _Instance:
        if self._tg is None:
            raise RuntimeError("per-agent servers are not being supervised (the gateway is not running)")
        server = self._new_server(name, config, agent, self._agent_roots, offer, modern)
        instance = _Instance(server, config, modern, last_used=anyio.current_time())
        self._instances[(name, agent)] = instance
        logger.info("starting server %r for agent %r (isolation per_agent)", name, agent)
        self._tg.start_soon(self._supervise, instance, name=f"downstream {name!r} for {agent!r}")
        self._signal()
        return instance

    def _stop(self, key: tuple[str, str]) -> None:
        instance = self._instances.pop(key, None)
        if instance is not None:
            instance.scope.cancel()

    @staticmethod
    async def _supervise(instance: _Instance) -> None:
        with instance.scope:
            await instance.server.run()

    async def _reap_idle(self) -> None:
        while True:
            now = anyio.current_time()
            next_check = math.inf
            for key, instance in list(self._instances.items()):
                if instance.users:
                    continue
                due = instance.last_used + instance.config.idle_timeout_s
                if due <= now:
                    logger.info(
                        "stopping server %r for agent %r: unused for %g s", *key, instance.config.idle_timeout_s
                    )
                    self._stop(key)
                else:
                    next_check = min(next_check, due)
            changed = self._changed
            with anyio.move_on_after(next_check - now if next_check < math.inf else math.inf):
                await changed.wait()

    def _signal(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

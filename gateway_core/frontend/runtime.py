"""One immutable snapshot of everything a request is decided by, swapped whole.

A ``Runtime`` holds the configuration, every agent's compiled policy, the routing table and the
agents' token map. Nothing in it changes: a new configuration, a changed catalog or re-read tokens
each build a new ``Runtime`` and put it in the ``RuntimeCell`` in one assignment (on the event loop,
so a request never sees half of a change). Everyone reads the same cell through ``now``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from gateway_core.config import Config
from gateway_core.frontend.routing import Routes
from gateway_core.policy import AgentPolicy, Effect

_NO_TOKENS: Mapping[bytes, str] = MappingProxyType({})


def _compile(config: Config) -> Mapping[str, AgentPolicy]:
    return MappingProxyType(
        {agent_id: AgentPolicy(agent_id, agent.default, agent.rules) for agent_id, agent in config.agents.items()}
    )


@dataclass(frozen=True)
class Runtime:
    """The gateway's state at one moment.

    Attributes:
        config: the configuration in force.
        policies: each configured agent's compiled policy.
        routes: where each public tool, prompt and resource name leads.
        tokens: the SHA-256 digest of each agent's token → the agent's id.
        allowed_origins: ``config.gateway.allowed_origins``, ready for lookups.
    """

    config: Config
    policies: Mapping[str, AgentPolicy]
    routes: Routes = field(default_factory=Routes)
    tokens: Mapping[bytes, str] = field(default_factory=lambda: _NO_TOKENS)
    allowed_origins: frozenset[str] = frozenset()

    @classmethod
    def of(cls, config: Config) -> Runtime:
        """The runtime of ``config``, with no routes and no tokens yet."""
        return cls(config, _compile(config), allowed_origins=frozenset(config.gateway.allowed_origins))

    def with_config(self, config: Config) -> Runtime:
        """The runtime under ``config``: policies compiled again; routes and tokens kept until they are rebuilt."""
        return dataclasses.replace(
            self,
            config=config,
            policies=_compile(config),
            allowed_origins=frozenset(config.gateway.allowed_origins),
        )

    def policy(self, agent_id: str) -> AgentPolicy:
        """The agent's policy; an agent that is not (or no longer) configured may do nothing."""
        return self.policies.get(agent_id) or AgentPolicy(agent_id, Effect.DENY, ())


class RuntimeCell:
    """Holds the current ``Runtime``; ``swap`` replaces it in one step.

    Args:
        runtime: the first runtime.
    """

    def __init__(self, runtime: Runtime) -> None:
        self._now = runtime

    @property
    def now(self) -> Runtime:
        """The runtime in force."""
        return self._now

    def swap(self, change: Callable[[Runtime], Runtime]) -> Runtime:
        """Replace the runtime with ``change(runtime)``; returns the new one."""
        self._now = change(self._now)
        return self._now

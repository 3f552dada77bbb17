"""Helpers for the front end's tests: fake servers behind a real pool (in memory), agents connected in memory.

Every configured server is served in this process by a fresh ``FakeServer`` each time it starts; nothing
is spawned and no socket is opened. Agents are SDK clients talking to the agent-facing server over
in-memory streams, identified the way the HTTP layer identifies them (the SDK's access-token context).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.session import IncomingMessage
from mcp.server.auth.middleware.auth_context import auth_context_var
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.lowlevel import Server
from mcp.shared.exceptions import MCPError

from gateway_core.approvals import ApprovalBroker
from gateway_core.config import Config, ServerConfig, parse_config
from gateway_core.downstream import DownstreamPool, ServerState
from gateway_core.downstream.base import ConnectError, Connection
from gateway_core.downstream.memory import open_memory
from gateway_core.events import EventStream
from gateway_core.frontend.guard import CallGuard
from gateway_core.frontend.metrics import Metrics
from gateway_core.frontend.runtime import Runtime, RuntimeCell
from gateway_core.frontend.server import AgentFacingServer
from tests.fakes.eras import refuse_discover, refuse_handshake
from tests.fakes.fake_server import FakeServer

WAIT_S = 10.0
ALLOW_ALL = {"default": "allow"}
# A request recorded at a fake server: (server, method, the URI, level or completed name it named).
Asked = tuple[str, str, str]


class FakeServers:
    """Opens each configured server as an in-memory ``FakeServer``; records subscriptions, log levels, completions.

    Tests say before the pool starts which servers behave differently:
    ``modern`` ones refuse the handshake, ``handshake_only`` ones (all but ``modern`` ones, with
    ``handshake_era``) do not know ``server/discover``; others speak both eras, and Toolgate reaches them
    in 2026-07-28. ``broken`` ones cannot
    be reached at all, and ``refuse_level`` ones answer ``logging/setLevel`` with an error.
    """

    def __init__(self, *, handshake_era: bool = False) -> None:
        self.modern: set[str] = set()
        self.handshake_only: set[str] = set()
        # Every server not named in ``modern`` speaks the handshake era only.
        self.handshake_era = handshake_era
        self.broken: set[str] = set()
        self.refuse_level: set[str] = set()
        self.latest: dict[str, FakeServer] = {}
        self.asked: list[Asked] = []
        self._changed = anyio.Event()

    def open(self, name: str, config: ServerConfig) -> AbstractAsyncContextManager[Connection]:
        """The transport of server ``name``: a fresh fake server, as a restarted process would be."""
        if name in self.broken:
            raise ConnectError(f"{name} cannot be reached")
        fake = FakeServer(name, 0)
        if name in self.modern:
            fake.server.middleware = [*fake.server.middleware, refuse_handshake]
        if name in self.handshake_only or (self.handshake_era and name not in self.modern):
            refuse_discover(fake.server)
        self._record(fake, "resources/subscribe", types.SubscribeRequestParams, fake.interactive.subscribe)
        self._record(fake, "resources/unsubscribe", types.UnsubscribeRequestParams, fake.interactive.unsubscribe)
        self._record(fake, "logging/setLevel", types.SetLevelRequestParams, fake.interactive.set_level)
        self._record(fake, "completion/complete", types.CompleteRequestParams, fake.interactive.complete)
        self.latest[name] = fake
        return open_memory(fake.server)

    def _record(self, fake: FakeServer, method: str, params_type: type[Any], handler: Any) -> None:
        async def recorded(ctx: Any, params: Any) -> Any:
            self.asked.append((fake.name, method, _named(params)))
            self._changed.set()
            self._changed = anyio.Event()
            if method == "logging/setLevel" and fake.name in self.refuse_level:
                raise MCPError(types.INVALID_PARAMS, "no logging here")
            return await handler(ctx, params)

        fake.server.add_request_handler(method, params_type, recorded)

    async def until_asked(self, *expected: Asked) -> None:
        """Wait (bounded) until every one of ``expected`` was asked."""
        with anyio.fail_after(WAIT_S):
            while not set(expected) <= set(self.asked):
                await self._changed.wait()


def _named(params: Any) -> str:
    """What a recorded request is about: its URI, its log level, or what it completes."""
    if isinstance(params, types.CompleteRequestParams):
        ref = params.ref
        return ref.name if isinstance(ref, types.PromptReference) else ref.uri
    return str(getattr(params, "uri", None) or params.level)


@pytest.fixture
def fake_servers() -> FakeServers:
    """Servers in memory, for ``running_gateway``."""
    return FakeServers()


def config_of(servers: Mapping[str, Mapping[str, Any]], agents: Mapping[str, Mapping[str, Any]]) -> Config:
    """A configuration with these servers (each served by a fake) and agents (each with a policy)."""
    document = {
        "servers": {name: {"command": "served-in-memory", **fields} for name, fields in servers.items()},
        "agents": {agent: {"name": agent, **policy} for agent, policy in agents.items()},
    }
    return parse_config(json.dumps(document))


class Inbox:
    """Every notification an agent received, and a way to wait until they satisfy a condition."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self._arrived = anyio.Event()

    async def handler(self, message: IncomingMessage) -> None:
        self.messages.append(message)
        self._arrived.set()
        self._arrived = anyio.Event()

    def of(self, kind: type[Any]) -> list[Any]:
        return [m for m in self.messages if isinstance(m, kind)]

    async def until(self, condition: Callable[[], bool]) -> None:
        with anyio.fail_after(WAIT_S):
            while not condition():
                await self._arrived.wait()


@dataclass
class Gateway:
    """The agent-facing server over a running pool, and what it records."""

    front: AgentFacingServer
    pool: DownstreamPool
    runtime: RuntimeCell
    metrics: Metrics
    approvals: ApprovalBroker

    async def until_routed(self, condition: Callable[[], bool]) -> None:
        """Wait (bounded) until the routing table satisfies ``condition``."""
        with anyio.fail_after(WAIT_S):
            while not condition():
                await self.front.wait_refreshed()

    def outcomes(self) -> dict[str, float]:
        """How many forwarded requests ended each way, as ``agent/server/outcome`` → count (from /metrics)."""
        found = {}
        for line in self.metrics.render([]).splitlines():
            if line.startswith("toolgate_tool_calls_total{"):
                labels, _, value = line.rpartition(" ")
                fields = dict(part.split("=", 1) for part in labels[labels.index("{") + 1 : -1].split(","))
                key = "/".join(fields[name].strip('"') for name in ("agent", "server", "outcome"))
                found[key] = float(value)
        return found


@asynccontextmanager
async def running_gateway(
    fakes: FakeServers, servers: Mapping[str, Mapping[str, Any]], agents: Mapping[str, Mapping[str, Any]]
) -> AsyncIterator[Gateway]:
    """The pool (every server a fake in ``fakes``) and the agent-facing server wired as the gateway wires them.

    Every server has been tried and routed when the block begins.
    """
    config = config_of(servers, agents)
    runtime = RuntimeCell(Runtime.of(config))
    approvals = ApprovalBroker(timeout_s=lambda: 60.0, on_always=lambda request, effect: None)
    guard = CallGuard(runtime, approvals, None)
    metrics = Metrics()
    fronts: list[AgentFacingServer] = []
    pool = DownstreamPool(
        config.servers,
        resolve=dict,
        on_change=lambda name: fronts[0].on_pool_change(name),
        on_catalog=lambda name: fronts[0].on_pool_change(name),
        on_notice=lambda name, notice: fronts[0].notices.on_notice(name, notice),
        transport=fakes.open,
    )
    front = AgentFacingServer(runtime, pool, guard, metrics, EventStream(), version="0.0.0-test")
    fronts.append(front)
    gateway = Gateway(front, pool, runtime, metrics, approvals)
    async with anyio.create_task_group() as tg:
        await tg.start(front.run)
        await tg.start(pool.run)
        with anyio.fail_after(WAIT_S):
            await pool.wait_all_tried()

        def routed() -> bool:
            ready = {name for name, server in pool.servers.items() if server.status.state is ServerState.READY}
            routes = front.routes
            down = {server for _, server in routes.unavailable_prefixes}
            return ready == {route.server for route in routes.tools.values()} and down == pool.servers.keys() - ready

        await gateway.until_routed(routed)
        yield gateway
        front.close()
        tg.cancel_scope.cancel()


@asynccontextmanager
async def in_memory(server: Server[Any], agent_id: str | None = None) -> AsyncIterator[Any]:
    """The client's end of ``server`` served over in-memory streams (JSON-RPC, as over HTTP).

    With ``agent_id``, every message is sent as that agent: the SDK hands the sender's context to the
    handler, as the HTTP layer's authentication does for each request.
    """
    async with open_memory(server) as connection:
        read, write = connection.streams
        yield read, write if agent_id is None else _SentAs(write, agent_id)


class _SentAs:
    """A client's write stream whose messages carry the agent's access token."""

    def __init__(self, inner: Any, agent_id: str) -> None:
        self._inner = inner
        self._user = AuthenticatedUser(AccessToken(token="-", client_id=agent_id, scopes=[]))

    async def send(self, item: Any) -> None:
        identified = auth_context_var.set(self._user)
        try:
            await self._inner.send(item)
        finally:
            auth_context_var.reset(identified)

    def close(self) -> None:
        self._inner.close()

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def __aenter__(self) -> _SentAs:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


@asynccontextmanager
async def agent(server: Server[Any], agent_id: str, mode: str = "legacy", **options: Any) -> AsyncIterator[Client]:
    """An agent connected to ``server`` and identified as ``agent_id``, speaking ``mode``'s protocol era."""
    async with Client(in_memory(server, agent_id), mode=mode, **options) as client:
        yield client

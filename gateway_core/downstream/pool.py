"""All configured servers together: one supervisor task per enabled server, in one task group.

``DownstreamPool.run`` starts every supervisor, reports itself started, and on cancellation returns
once every server is closed (processes ended). Disabled servers get no task and show as STOPPED.
``apply`` takes a new set of server configurations while running and starts, stops or restarts
only the servers whose configuration changed.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from contextlib import AbstractAsyncContextManager

import anyio
import anyio.abc
import mcp_types as types

from gateway_core.config import ServerConfig
from gateway_core.downstream.base import Connection, Notice, ResolveFn, ServerState, ServerStatus
from gateway_core.downstream.oauth import SignIns
from gateway_core.downstream.per_agent import AgentInstances, RootsOfAgent, same_session
from gateway_core.downstream.server import DownstreamServer
from gateway_core.downstream.stdio import NORMAL_STOP, QUICK_STOP
from gateway_core.launch.environment import LaunchEnvironment

OpenConnection = Callable[[str, ServerConfig], AbstractAsyncContextManager[Connection]]
"""Opens the connection to the server of this name and configuration."""


class DownstreamPool:
    """The supervised sessions of every enabled server.

    Args:
        servers: name → configuration, in display order.
        resolve: resolves secret references in env/header values.
        on_change: called with a server's name whenever its status changes (or it is added or removed).
        on_catalog: called with a ready server's name when what it offers changed.
        on_stderr: called with ``(name, line)`` for each stderr line of a stdio server.
        on_notice: called with ``(name, notification)`` for each resource update and log message.
        agent_roots: an agent's roots, for its own instance of a ``per_agent`` server.
        launch: what stdio servers' environment starts from (``PATH``); Toolgate's own when None.
        transport: opens the connection to server ``(name, config)`` instead of its configured
            transport (tests: servers in memory, see ``memory.py``).
        sign_ins: where remote servers' sign-ins are kept (``oauth.py``); None: no OAuth tokens are sent.
    """

    def __init__(
        self,
        servers: Mapping[str, ServerConfig],
        *,
        resolve: ResolveFn,
        on_change: Callable[[str], None],
        on_catalog: Callable[[str], None] | None = None,
        on_stderr: Callable[[str, str], None] | None = None,
        on_notice: Callable[[str, Notice], None] | None = None,
        agent_roots: RootsOfAgent | None = None,
        launch: LaunchEnvironment | None = None,
        transport: OpenConnection | None = None,
        sign_ins: SignIns | None = None,
    ) -> None:
        self._sign_ins = sign_ins
        self._configs = dict(servers)
        self._launch = launch
        self._on_notice = on_notice
        self._instances = AgentInstances(self._new_agent_server, agent_roots or _no_roots)
        self._resolve = resolve
        self._on_change = on_change
        self._on_catalog = on_catalog
        self._on_stderr = on_stderr
        self._transport = transport
        self._servers: dict[str, DownstreamServer] = {}
        # A shared server's two ways in for ``use`` (a handshake-era request's, a 2026-07-28 one's), made once.
        self._shared: dict[str, tuple[_Shared, _Shared]] = {}
        for name, config in servers.items():
            if config.enabled:
                self._add(name, self._new_server(name, config))
        self._scopes: dict[str, anyio.CancelScope] = {}
        self._task_group: anyio.abc.TaskGroup | None = None
        self._stop_times = NORMAL_STOP

    def stopping_everything(self) -> None:
        """The gateway is stopping: from now on every server gets the short grace (it exits within a second)."""
        self._stop_times = QUICK_STOP

    @property
    def servers(self) -> Mapping[str, DownstreamServer]:
        """The enabled servers by name (a server being stopped by ``apply`` is no longer here)."""
        return self._servers

    def apply(self, servers: Mapping[str, ServerConfig], *, restart: Collection[str] = ()) -> None:
        """Take new server configurations: start added ones, stop removed or disabled ones, restart changed ones.

        A change only to ``prefix`` or ``timeout_s`` needs no restart and is applied in place, unless the
        server is named in ``restart`` (e.g. a secret it reads at start has a new value).
        """
        old, self._configs = self._configs, dict(servers)
        self._instances.keep_only(self._configs)
        for name in old.keys() - servers.keys():
            self._stop(name)
        for name, config in servers.items():
            running = self._servers.get(name)
            if not config.enabled:
                self._stop(name)
            elif running is None:
                self._start(name, config)
            elif name not in restart and same_session(running.config, config):
                running.config = config
            else:
                self._stop(name)
                self._start(name, config)

    def use(
        self, name: str, agent: str, declared: types.ClientCapabilities | None = None, *, modern: bool = True
    ) -> AbstractAsyncContextManager[DownstreamServer | None]:
        """The server ``agent``'s calls to ``name`` go to: its own instance for a ``per_agent`` server.

        ``declared`` is the capabilities the agent's request declared: an instance of its own is
        offered them (see ``per_agent.py``). A handshake-era request (not ``modern``) goes to the
        server's handshake-era twin where one serves (``era_twin.py``); an instance of its own that it
        starts speaks the handshake era. None when ``name`` is not an enabled server.
        """
        shared = self._shared.get(name)
        if shared is not None:
            return shared[modern]  # every call to a shared server: nothing made, no generator to run
        config, server = self._configs.get(name), self._servers.get(name)
        if config is None or server is None:
            return _NO_SERVER
        return self._instances.use(name, config, agent, declared, modern=modern)

    def agent_instances(self, agent: str) -> list[DownstreamServer]:
        """The agent's own running instances of ``per_agent`` servers."""
        return self._instances.instances_for(agent)

    def instance_agents(self, name: str) -> list[str]:
        """The agents with their own instance of server ``name`` running."""
        return self._instances.agents_of(name)

    def sign_in_changed(self, name: str) -> bool:
        """Server ``name``'s stored sign-in may have changed: it and its agents' instances look now.

        Returns whether ``name`` is an enabled server.
        """
        server = self._servers.get(name)
        if server is None:
            return False
        server.sign_in_changed()
        for instance in self._instances.of_server(name):
            instance.sign_in_changed()
        return True

    def restart(self, name: str) -> bool:
        """Stop server ``name`` and start it again now (no backoff); returns whether it is enabled.

        The new start continues the old one's record: its failures, stderr lines and restart count.
        """
        config = self._configs.get(name)
        if config is None or not config.enabled:
            return False
        previous = self._servers.get(name)
        self._stop(name)
        self._start(name, config, previous=previous)
        return True

    def _new_server(self, name: str, config: ServerConfig) -> DownstreamServer:
        return DownstreamServer(
            name,
            config,
            resolve=self._resolve,
            on_change=self._on_change,
            on_catalog=self._on_catalog,
            on_stderr=self._on_stderr,
            on_notice=self._on_notice,
            stop_times=lambda: self._stop_times,
            launch=self._launch,
            transport=self._transport_of(name, config),
            sign_ins=self._sign_ins,
            era_twin=True,
        )

    def _new_agent_server(
        self,
        name: str,
        config: ServerConfig,
        agent: str,
        roots: RootsOfAgent,
        offer: types.ClientCapabilities,
        modern: bool,
    ) -> DownstreamServer:
        label = f"{name} (agent {agent})"

        async def outside_call_roots() -> types.ListRootsResult | None:
            return await roots(agent)

        stderr = self._on_stderr
        return DownstreamServer(
            label,
            config,
            resolve=self._resolve,
            on_change=lambda _: None,
            on_stderr=None if stderr is None else (lambda _, line: stderr(name, f"[{agent}] {line}")),
            outside_call_roots=outside_call_roots,
            offer=offer,
            stop_times=lambda: self._stop_times,
            launch=self._launch,
            transport=self._transport_of(name, config),
            sign_ins=self._sign_ins,
            sign_in_as=name,  # the server's one sign-in, whichever agent's instance uses it
            handshake_only=not modern,
        )

    def _transport_of(
        self, name: str, config: ServerConfig
    ) -> Callable[[], AbstractAsyncContextManager[Connection]] | None:
        transport = self._transport
        return None if transport is None else (lambda: transport(name, config))

    def _start(self, name: str, config: ServerConfig, *, previous: DownstreamServer | None = None) -> None:
        server = self._new_server(name, config)
        if previous is not None:
            server.carry_over(previous)
        self._add(name, server)
        if self._task_group is not None:
            self._spawn(server)
        self._on_change(name)

    def _add(self, name: str, server: DownstreamServer) -> None:
        self._servers[name] = server
        if server.config.isolation == "per_agent":
            self._shared.pop(name, None)
        else:
            self._shared[name] = (_Shared(server, modern=False), _Shared(server, modern=True))

    def _stop(self, name: str) -> None:
        self._servers.pop(name, None)
        self._shared.pop(name, None)
        scope = self._scopes.pop(name, None)
        if scope is not None:
            scope.cancel()
        self._on_change(name)

    def _spawn(self, server: DownstreamServer) -> None:
        assert self._task_group is not None
        scope = anyio.CancelScope()
        self._scopes[server.name] = scope
        self._task_group.start_soon(self._supervise, server, scope, name=f"downstream {server.name!r}")

    async def _supervise(self, server: DownstreamServer, scope: anyio.CancelScope) -> None:
        with scope:
            await server.run()

    def statuses(self) -> list[ServerStatus]:
        """One status per configured server, disabled ones included (as STOPPED), in config order."""
        return [
            self._servers[name].status
            if name in self._servers
            else ServerStatus(name=name, state=ServerState.STOPPED, transport=config.transport, reason="disabled")
            for name, config in self._configs.items()
        ]

    def all_tried(self) -> bool:
        """Whether every enabled server has finished its first start attempt (ready or failed)."""
        return all(server.tried.is_set() for server in self._servers.values())

    async def wait_all_tried(self) -> None:
        """Wait until ``all_tried()``."""
        for server in list(self._servers.values()):
            await server.tried.wait()

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Supervise every enabled server until cancelled.

        ``task_status.started()`` fires right after the supervisors are spawned (not when they are
        ready: see ``all_tried``). On cancellation it returns once every server is closed; each server's
        close is bounded (``stdio.CLOSE_TIMEOUT_S`` for a process tree), and they close concurrently.
        """
        async with anyio.create_task_group() as tg:
            self._task_group = tg
            try:
                await tg.start(self._instances.run)
                for server in list(self._servers.values()):
                    self._spawn(server)
                task_status.started()
                await anyio.sleep_forever()
            finally:
                self._task_group = None


class _Shared:
    """``DownstreamPool.use`` for a shared server (or none): the server serving the request's era.

    Holds nothing of one call's: the pool makes each once, and every call of that era uses it.
    """

    __slots__ = ("_modern", "_server")

    def __init__(self, server: DownstreamServer | None, *, modern: bool) -> None:
        self._server = server
        self._modern = modern

    async def __aenter__(self) -> DownstreamServer | None:
        server = self._server
        if server is None or self._modern:
            return server  # a 2026-07-28 agent is served by the server itself
        known = server.for_handshake_era_now()  # as almost always: nothing to wait for
        if known is not None:
            return known
        await server.era_settled()
        return server.for_era(modern=False)

    async def __aexit__(self, *exc_info: object) -> None:
        return None


# ``use`` for a name that is not an enabled server.
_NO_SERVER = _Shared(None, modern=True)


async def _no_roots(agent: str) -> types.ListRootsResult | None:
    return None

"""The gateway: downstream pool, agent-facing MCP server and HTTP endpoint, owned by one task group.

Lifecycle: ``bind()`` takes the listening socket (so a taken port fails before anything starts),
``run()`` serves until ``stop()`` is called or the task is cancelled, then shuts down in a bounded
time: listen streams ended, agent sessions closed, HTTP server stopped, downstream servers closed
and their processes ended. Used headless by ``toolgate serve`` and inside the tray app.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import socket
import sys
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import anyio
import anyio.abc
import mcp_types as types
from starlette.types import ASGIApp

from gateway_core import control_socket
from gateway_core.agent_tokens import AgentTokens, ReadTokens
from gateway_core.approvals import AlwaysNotPossible, Answer, ApprovalBroker, ApprovalError, ApprovalRequest
from gateway_core.audit import AuditLog, AuditQuery, AuditRecord, AuditStatus
from gateway_core.config import Config
from gateway_core.config.edit import add_rule, put_timed_rule, set_agent_rule
from gateway_core.config.watch import watch_config
from gateway_core.control_file import ControlEndpoint, ControlFile, new_control_token
from gateway_core.control_socket import ControlSocket, control_socket_path
from gateway_core.downstream.base import Catalog, Notice, ResolveFn, ServerStatus
from gateway_core.downstream.oauth import SignIns
from gateway_core.downstream.pool import DownstreamPool
from gateway_core.errors import AgentError, ConfigError, InstanceError
from gateway_core.events import (
    CallsRecorded,
    CatalogChanged,
    ConfigApplied,
    ConfigRejected,
    EventStream,
    PausedChanged,
    ServerStatusChanged,
    SessionEnded,
    StderrLine,
)
from gateway_core.frontend.body_limit import BodyLimit
from gateway_core.frontend.control import ControlApp
from gateway_core.frontend.guard import CallGuard
from gateway_core.frontend.hot_lane import HotLane
from gateway_core.frontend.http import MCP_PATH, GatewayHttpApp
from gateway_core.frontend.limits import AgentLimits
from gateway_core.frontend.listen import HTTP_SHUTDOWN_TIMEOUT_S, EmbeddedUvicorn
from gateway_core.frontend.listing_size import ListingSizes, listing_sizes
from gateway_core.frontend.metrics import Metrics
from gateway_core.frontend.replay import ReplayBuffer, ResumableSessionManager
from gateway_core.frontend.routing import NameKind, PublicName, Routes
from gateway_core.frontend.runtime import Runtime, RuntimeCell
from gateway_core.frontend.server import AgentFacingServer
from gateway_core.frontend.starting import StartingApp
from gateway_core.launch.environment import LaunchEnvironment
from gateway_core.paths import Paths
from gateway_core.pin_file import pins_path
from gateway_core.pin_keeper import PinKeeper
from gateway_core.pinning import ToolChange
from gateway_core.policy import AgentPolicy, Effect, RuleSource, literal_match
from gateway_core.timed_rules import remove_expired
from gateway_core.version import toolgate_version

logger = logging.getLogger(__name__)

# The SDK refuses request bodies over 4 MiB by default, which stdio servers take; the only limit is
# the one the person sets (gateway.max_request_body_mb, see frontend/body_limit.py).
SDK_REQUEST_BODY_LIMIT = sys.maxsize
# Set to 0 to send every request the long way (to compare, or to rule the short way out when something is odd).
HOT_PATH_ENV = "TOOLGATE_HOT_PATH"


def hot_path_enabled(environ: Mapping[str, str]) -> bool:
    """Whether ``environ`` leaves the hot path on (``TOOLGATE_HOT_PATH=0`` turns it off)."""
    return environ.get(HOT_PATH_ENV, "1").strip() != "0"


@dataclass(frozen=True)
class Endpoint:
    """Where agents reach the gateway."""

    host: str
    port: int

    @property
    def url(self) -> str:
        """The MCP endpoint URL, e.g. ``http://127.0.0.1:47800/mcp``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{MCP_PATH}"


class Gateway:
    """One running gateway.

    Args:
        config: the validated configuration.
        resolve: resolves ``${secret:NAME}`` references in a server's ``env`` or ``headers``.
        read_tokens: reads every agent's token (blocking; run off the event loop); they identify each
            request, kept fresh while the gateway runs.
        paths: where Toolgate's files are: the audit database, the control file; ``None`` keeps
            nothing on disk (no audit log, no control channel).
        config_path: config.json, watched and applied live, and where "always" answers are written;
            ``None`` for a configuration that only changes through ``apply_config``.
        sign_ins: where remote servers' sign-ins (OAuth tokens) are kept; None: none are sent.
        launch: what stdio servers' environment starts from (``gateway_core.launch.environment``),
            resolved once by the caller; Toolgate's own environment when None.
        hot_path: whether plain requests take the short way (``hot_path_enabled``): a plain handshake-era
            request is answered with one JSON body instead of an SSE stream. None: as ``TOOLGATE_HOT_PATH``
            says (on unless it is ``0``).
    """

    def __init__(
        self,
        config: Config,
        *,
        resolve: ResolveFn,
        read_tokens: ReadTokens,
        paths: Paths | None = None,
        config_path: Path | None = None,
        sign_ins: SignIns | None = None,
        launch: LaunchEnvironment | None = None,
        hot_path: bool | None = None,
    ) -> None:
        self.hot_path = hot_path_enabled(os.environ) if hot_path is None else hot_path
        self._runtime = RuntimeCell(Runtime.of(config))
        self.events = EventStream()
        self._config_path = config_path
        self._tokens = AgentTokens(read_tokens, runtime=self._runtime)
        self._config_rejection: ConfigError | None = None
        self._config_event = anyio.Event()
        self._paths = paths
        self._metrics = Metrics()
        self._audit = (
            AuditLog(
                paths.audit_db,
                retention_days=config.audit.retention_days,
                max_size_mb=config.audit.max_size_mb,
                on_written=lambda records: self.events.publish(CallsRecorded(records)),
            )
            if paths is not None and config.audit.enabled
            else None
        )
        self._approvals = ApprovalBroker(
            timeout_s=lambda: self.config.gateway.approval_timeout_s,
            on_always=self._remember_always,
            on_timed=self._remember_timed if config_path is not None else None,
        )
        self._approvals.subscribe(self.events.publish)
        self._pins = PinKeeper(
            pins_path(paths) if paths is not None else None,
            audit=self._audit,
            publish=self.events.publish,
            policies=lambda: self._runtime.now.policies.values(),
        )
        self._guard = CallGuard(self._runtime, self._approvals, self._audit, changed=self._pins.change)
        self._pool = DownstreamPool(
            config.servers,
            resolve=resolve,
            on_change=self._on_pool_change,
            on_catalog=self._on_catalog_change,
            on_stderr=lambda server, line: self.events.publish(StderrLine(server, line)),
            on_notice=self._on_notice,
            agent_roots=lambda agent: self._frontend.roots.roots(agent),
            sign_ins=sign_ins,
            launch=launch,
        )
        self._frontend = AgentFacingServer(
            self._runtime,
            self._pool,
            self._guard,
            self._metrics,
            self.events,
            version=toolgate_version(),
            hot_path=self.hot_path,
        )
        self._control_token = new_control_token()
        # Where a control socket serves the approvals, the agent port only proves the gateway's identity.
        self._port_control = ControlApp(
            self._approvals, self._control_token, approvals=not control_socket.supported(), names=self
        )
        self._replay = ReplayBuffer()
        self._frontend.on_unanswered = self._replay.unanswered
        self._sessions = ResumableSessionManager(
            self._frontend.server,
            replay=self._replay,
            json_answers=self.hot_path,
            hot_calls=self._frontend.hot_path.plan if self.hot_path else None,
            security_settings=None,
            max_request_body_size=SDK_REQUEST_BODY_LIMIT,
            session_idle_timeout=config.gateway.session_idle_timeout_s,
        )
        self._limits = AgentLimits(
            settings=lambda: self._runtime.now.config.gateway,
            end_session=self._end_session,
            is_open=lambda session_id: session_id in self._sessions._server_instances,
        )
        self.events.on(SessionEnded, lambda event: self._limits.session_ended(event.session_id))
        self.events.on(SessionEnded, lambda event: self._replay.forget(event.session_id))
        mcp_app: ASGIApp = BodyLimit(self._sessions.handle_request, self._body_limit_mb)
        if self.hot_path:
            sessions = self._sessions
            modern = self._frontend.modern_lane(
                security=sessions.security_settings,
                json_response=sessions.json_response,
                lifespan_state=lambda: sessions._lifespan_state,
            )
            mcp_app = HotLane(
                mcp_app, sessions=sessions, limit_mb=self._body_limit_mb, metrics=self._metrics, modern=modern
            )
        self._http_app = GatewayHttpApp(
            mcp_app,
            limits=self._limits,
            identify=self._tokens.identify,
            runtime=self._runtime,
            metrics=self._metrics,
            statuses=self._pool.statuses,
            all_tried=self._pool.all_tried,
            version=toolgate_version(),
            control=self._port_control,
            audit_healthy=lambda: self._audit.status.healthy if self._audit is not None else None,
        )
        self._stop = anyio.Event()
        self._sizes: tuple[Runtime | None, dict[str, ListingSizes]] = (None, {})

    def statuses(self) -> list[ServerStatus]:
        """The state of every configured server, enabled or not."""
        return self._pool.statuses()

    def ready(self) -> bool:
        """Whether every enabled server has finished its first start attempt (ready or failed)."""
        return self._pool.all_tried()

    async def wait_ready(self) -> None:
        """Wait until ``ready()``."""
        await self._pool.wait_all_tried()

    def stop(self) -> None:
        """Ask ``run()`` to shut down; safe to call more than once, from the loop's thread."""
        self._stop.set()

    @property
    def paused(self) -> bool:
        """Whether every call is being refused (see ``pause``)."""
        return self._guard.paused

    def pause(self) -> None:
        """Refuse every tool call, prompt and resource read, saying Toolgate is paused, until ``resume``."""
        if not self._guard.paused:
            self._guard.paused = True
            logger.info("Toolgate is paused: every call is refused until it is resumed")
            self.events.publish(PausedChanged(True))

    def resume(self) -> None:
        """Let calls through again after ``pause``."""
        if self._guard.paused:
            self._guard.paused = False
            logger.info("Toolgate resumed")
            self.events.publish(PausedChanged(False))

    def apply_config(self, config: Config, *, restart: Collection[str] = ()) -> None:
        """Use ``config`` from now on: restart only changed servers, apply policies to the next request.

        The GUI's edits and the file watcher both come through here. ``gateway.host`` and
        ``gateway.port`` only change with a restart. Servers named in ``restart`` are restarted even
        when their entry is unchanged (a secret they read at start has a new value).
        """
        old = self.config
        self._runtime.swap(lambda runtime: runtime.with_config(config))
        self._config_rejection = None
        self._config_settled()
        if (old.gateway.host, old.gateway.port) != (config.gateway.host, config.gateway.port):
            logger.warning("gateway.host and gateway.port changes take effect when Toolgate restarts")
        self._sessions.session_idle_timeout = config.gateway.session_idle_timeout_s  # for sessions opened from now
        self._pool.apply(config.servers, restart=restart)
        self._frontend.config_changed()
        if old.agents.keys() != config.agents.keys():
            self._tokens.refresh_soon()
        logger.info("applied the changed configuration")

    def _body_limit_mb(self) -> float | None:
        return self._runtime.now.config.gateway.max_request_body_mb

    async def _end_session(self, session_id: str) -> None:
        # The SDK (2.3) has no public way to end one session; this is what its DELETE and idle expiry do.
        transport = self._sessions._server_instances.get(session_id)
        if transport is not None:
            await self._sessions._discard_session(session_id, transport)

    def reject_config(self, error: ConfigError) -> None:
        """Keep the running configuration and make the rejected edit's problems visible."""
        self._config_rejection = error
        self._config_settled()

    @property
    def config_problems(self) -> list[str]:
        """The problems of the last rejected edit of config.json, until a configuration is applied."""
        rejection = self._config_rejection
        return list(rejection.problems) if rejection is not None else []

    async def wait_config_settled(self) -> None:
        """Wait until the next configuration change is applied or rejected."""
        await self._config_event.wait()

    def _config_settled(self) -> None:
        self._config_event.set()
        self._config_event = anyio.Event()
        rejection = self._config_rejection
        self.events.publish(ConfigApplied() if rejection is None else ConfigRejected(tuple(rejection.problems)))

    def _remember_always(self, request: ApprovalRequest, effect: Effect) -> None:
        if self._config_path is None:
            logger.warning("cannot remember an 'always' answer: this gateway has no config file")
            return
        match = literal_match(request.server, request.tool)
        self.apply_config(set_agent_rule(self._config_path, request.agent, match, effect, source=_answered(request)))

    def _remember_timed(self, request: ApprovalRequest, effect: Effect, until: float) -> None:
        assert self._config_path is not None  # on_timed is only given with a config file
        match = literal_match(request.server, request.tool)
        expires = datetime.fromtimestamp(until, UTC)
        self.apply_config(
            put_timed_rule(self._config_path, request.agent, match, effect, expires, source=_answered(request))
        )

    def _next_expiry(self, after: float) -> float | None:
        expiries = (policy.next_expiry(after) for policy in self._runtime.now.policies.values())
        return min((when for when in expiries if when is not None), default=None)

    def _control_file(
        self, endpoint: Endpoint, channel: ControlSocket | None
    ) -> contextlib.AbstractContextManager[object]:
        """Publish the control channel to same-user tools (``toolgate approvals``, ``toolgate tools``) while serving."""
        if self._paths is None:
            return contextlib.nullcontext()
        base = endpoint.url.removesuffix(MCP_PATH)
        socket_path = None if channel is None else str(channel.path)
        return ControlFile(self._paths, ControlEndpoint(base, self._control_token, socket_path))

    @property
    def audit_status(self) -> AuditStatus | None:
        """Whether audit records are being written (``None`` when auditing is off)."""
        return self._audit.status if self._audit is not None else None

    def _on_pool_change(self, server: str) -> None:
        self._observe_tools(server)
        self._frontend.on_pool_change(server)
        self.events.publish(ServerStatusChanged(server))

    def _on_catalog_change(self, server: str) -> None:
        self._observe_tools(server)
        self._frontend.on_pool_change(server)
        self.events.publish(CatalogChanged(server))

    # --- pinned tools (gateway_core.pin_keeper) -----------------------------------------------------

    def _observe_tools(self, server: str) -> None:
        tools = self.catalog(server).tools
        if tools:
            self._pins.observe(server, tools)

    def tool_changes(self) -> list[ToolChange]:
        """The tools whose definitions wait for the person's review (changed, or new), by server and tool."""
        return self._pins.changes()

    def accept_tools(self, server: str, tool: str | None = None, *, seen: str | None = None) -> list[ToolChange]:
        """Accept what ``server`` lists now for ``tool`` (or every tool of it waiting for review): pin it.

        Args:
            server: the server.
            tool: the tool; None for all of the server's changes.
            seen: the fingerprint of the definition the person was shown (refused if it changed since).

        Raises:
            PinError: nothing to accept (see ``ToolPins.accept``).
        """
        return self._pins.accept(server, tool, seen=seen)

    def _on_notice(self, server: str, notification: Notice) -> None:
        if isinstance(notification, types.TaskStatusNotification):
            self._frontend.tasks.on_status(server, notification)
        else:
            self._frontend.notices.on_notice(server, notification)

    def pending_approvals(self) -> list[ApprovalRequest]:
        """Requests waiting for a person's answer, oldest first."""
        return sorted(self._approvals.pending(), key=lambda request: request.created_at)

    def allow_when_under(self, request_id: str, argument: str, folder: str) -> ApprovalRequest:
        """Allow a waiting tool call once and add the rule "always allow this tool when ARGUMENT is under FOLDER".

        Raises:
            ApprovalError: the request no longer waits, or there is no config file to keep the rule in.
            AlwaysNotPossible: the request is not a tool call.
            ConfigError: the rule was refused (e.g. the folder is not an absolute path); nothing was answered.
        """
        request = next((r for r in self._approvals.pending() if r.id == request_id.strip().lower()), None)
        if request is None:
            raise ApprovalError(f"no pending approval with id {request_id!r} (it may have been answered or withdrawn)")
        if not request.can_be_always:
            raise AlwaysNotPossible(f"a rule with conditions is for one tool; this is a {request.kind}")
        if self._config_path is None:
            raise ApprovalError("this gateway has no config file, so it cannot keep a rule")
        rule = {
            "match": literal_match(request.server, request.tool),
            "effect": Effect.ALLOW.value,
            "when": {argument: {"under": [folder]}},
        }
        self.apply_config(add_rule(self._config_path, request.agent, rule, source=_answered(request)))
        return self._approvals.answer(request.id, Answer.ALLOW_ONCE)

    def answer_approval(self, request_id: str, answer: Answer, *, for_s: float | None = None) -> ApprovalRequest:
        """Answer a waiting request; returns it (raises ``ApprovalError`` when it no longer waits).

        ``for_s`` is how long a timed answer (``ALLOW_FOR``, ``DENY_FOR``) holds, in seconds.
        """
        return self._approvals.answer(request_id, answer, for_s=for_s)

    def put_token(self, agent_id: str, token: str | None) -> None:
        """Make ``token`` agent ``agent_id``'s token at once (``None``: the agent has none any more)."""
        self._tokens.put(agent_id, token)

    async def query_audit(self, query: AuditQuery) -> list[AuditRecord]:
        """Audit records matching ``query``, newest first; none when auditing is off."""
        return [] if self._audit is None else await self._audit.query(query)

    @property
    def routes(self) -> Routes:
        """The agent-facing routing table in force (read-only; replaced whole when it changes)."""
        return self._runtime.now.routes

    def public_names(self, agent_id: str | None = None) -> list[PublicName]:
        """The tools, then the prompts, agents are listed now: each with its server's own name and why it differs.

        Args:
            agent_id: only what this agent's policy lets it see; every listed name when None.

        Raises:
            AgentError: there is no agent ``agent_id``.
        """
        names = self._runtime.now.routes.names
        if agent_id is None:
            return list(names)
        if agent_id not in self.config.agents:
            raise AgentError(f"there is no agent {agent_id!r}; `toolgate agents list` shows the agents")
        return [
            name
            for name in names
            if self._guard.may_see(agent_id, name.server, name.upstream_name if name.kind is NameKind.TOOL else None)
        ]

    def listing_sizes(self) -> dict[str, ListingSizes]:
        """Each agent's ``tools/list`` size in both tool modes, in config order (worked out once per change)."""
        runtime = self._runtime.now
        if self._sizes[0] is not runtime:
            sizes = {
                agent_id: listing_sizes(runtime.routes, runtime.policy(agent_id), entry.always_listed)
                for agent_id, entry in runtime.config.agents.items()
            }
            self._sizes = (runtime, sizes)
        return dict(self._sizes[1])

    async def wait_routes_rebuilt(self) -> None:
        """Wait until the routing table is next rebuilt (after any server's state or catalog changed)."""
        await self._frontend.wait_refreshed()

    def sessions_of(self, agent_id: str) -> list[str]:
        """The agent's open handshake-era sessions, oldest first."""
        return self._limits.sessions_of(agent_id)

    def requests_in_flight(self, agent_id: str) -> int:
        """How many of the agent's HTTP requests are being served now."""
        return self._limits.requests_in_flight(agent_id)

    def instance_agents(self, server: str) -> list[str]:
        """The agents with their own running instance of per-agent server ``server``."""
        return self._pool.instance_agents(server)

    def sign_in_changed(self, name: str) -> bool:
        """Server ``name``'s stored sign-in may have changed (``toolgate login|logout``): it looks now.

        Returns whether ``name`` is an enabled server.
        """
        return self._pool.sign_in_changed(name)

    def restart_server(self, name: str) -> bool:
        """Restart server ``name`` now; returns ``False`` when it is not configured or is disabled."""
        restarted = self._pool.restart(name)
        if restarted:
            logger.info("server %r restarted on request", name)
        return restarted

    def catalog(self, name: str) -> Catalog:
        """What server ``name`` offers as last listed; empty unless it is ready."""
        server = self._pool.servers.get(name)
        return server.catalog if server is not None else Catalog()

    def stderr_lines(self, name: str) -> tuple[str, ...]:
        """The stderr lines kept for stdio server ``name``, oldest first."""
        server = self._pool.servers.get(name)
        return server.stderr_lines() if server is not None else ()

    def stderr_timed_lines(self, name: str) -> tuple[tuple[float, str], ...]:
        """``stderr_lines`` with when each line arrived (epoch seconds)."""
        server = self._pool.servers.get(name)
        return server.stderr_timed_lines() if server is not None else ()

    def stderr_since(self, name: str, seen: int) -> tuple[tuple[str, ...], int] | None:
        """Server ``name``'s stderr lines after the first ``seen`` and how many it wrote; None: not enabled."""
        server = self._pool.servers.get(name)
        return server.stderr_since(seen) if server is not None else None

    def policy(self, agent_id: str) -> AgentPolicy:
        """Agent ``agent_id``'s compiled policy under the running configuration (unknown agents: deny)."""
        return self._runtime.now.policy(agent_id)

    @property
    def config(self) -> Config:
        """The configuration in force."""
        return self._runtime.now.config

    async def run(
        self,
        sock: socket.socket,
        *,
        listening: tuple[EmbeddedUvicorn, StartingApp] | None = None,
        task_status: anyio.abc.TaskStatus[Endpoint] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve agents on ``sock`` until ``stop()``; reports the endpoint once it accepts connections.

        ``listening`` is an HTTP server already serving ``sock`` with a ``StartingApp`` (``toolgate
        serve`` listens before the gateway is built): the gateway takes it over instead of starting
        its own, and stops it when it stops.
        """
        host, port = sock.getsockname()[:2]
        endpoint = Endpoint(host, port)
        self._http_app.bind(host, port)
        http = listening[0] if listening is not None else EmbeddedUvicorn.agent_port(self._http_app)
        channel: ControlSocket | None = None
        # The servers stop on their own scope, so they close at once when the gateway stops, alongside
        # the HTTP server's shutdown rather than after it.
        servers_scope = anyio.CancelScope()
        servers_closed = anyio.Event()

        async def run_servers(*, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
            try:
                with servers_scope:
                    await self._pool.run(task_status=task_status)
            finally:
                servers_closed.set()

        try:
            async with anyio.create_task_group() as tg:
                await tg.start(self._tokens.run)
                if self._audit is not None:
                    await tg.start(self._audit.run)
                await tg.start(self._pins.run)
                await tg.start(run_servers)
                await tg.start(self._frontend.run)
                if self._config_path is not None:
                    tg.start_soon(
                        watch_config, self._config_path, lambda: self.config, self.apply_config, self.reject_config
                    )
                    tg.start_soon(
                        functools.partial(
                            remove_expired,
                            self._config_path,
                            next_expiry=self._next_expiry,
                            changed=self.wait_config_settled,
                            apply=self.apply_config,
                        )
                    )
                async with self._sessions.run():
                    if listening is None:
                        tg.start_soon(http.serve_until_exit, sock)
                    else:
                        listening[1].open(self._http_app)
                    await http.listening.wait()
                    if not http.started:
                        raise InstanceError(f"the HTTP server could not start on {endpoint.url}; see the log above")
                    logger.info("Toolgate is listening on %s", endpoint.url)
                    channel, control_http = await self._open_control_socket(tg)
                    try:
                        with self._control_file(endpoint, channel):
                            task_status.started(endpoint)
                            await self._stop.wait()
                        # Every server at once: stdin closed, SIGTERM shortly after (see stdio.QUICK_STOP).
                        self._pool.stopping_everything()
                        servers_scope.cancel()
                        self._frontend.close()
                    finally:
                        if control_http is not None:
                            control_http.should_exit = True
                http.should_exit = True
                with anyio.move_on_after(HTTP_SHUTDOWN_TIMEOUT_S + 1):
                    await http.finished.wait()
                    if control_http is not None:
                        await control_http.finished.wait()
                    await servers_closed.wait()
                tg.cancel_scope.cancel()
        finally:
            if channel is not None:  # also when the run is cancelled or fails: no socket left open
                channel.close()

    async def _open_control_socket(
        self, tg: anyio.abc.TaskGroup
    ) -> tuple[ControlSocket | None, EmbeddedUvicorn | None]:
        """Serve the control channel on a user-only Unix socket where there can be one (else on the agent port)."""
        if self._paths is None or not control_socket.supported():
            return None, None
        try:
            channel = ControlSocket(control_socket_path(self._paths))
        except OSError as exc:
            logger.warning(
                "the control socket could not be opened (%s); approvals are answered on the agent port, "
                "with the control token",
                exc,
            )
            self._port_control.serves_approvals = True
            return None, None
        server = EmbeddedUvicorn.serving(
            ControlApp(self._approvals, self._control_token, names=self), shutdown_timeout_s=1
        )
        tg.start_soon(server.serve_until_exit, channel.sock)
        await server.listening.wait()
        return channel, server


def _answered(request: ApprovalRequest) -> RuleSource:
    """Where a rule written from an answer to ``request`` came from: that answer, now."""
    return RuleSource(answer=request.id, at=datetime.now(UTC))

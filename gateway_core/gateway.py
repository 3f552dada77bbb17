"""The gateway: downstream pool, agent-facing MCP server and HTTP endpoint, owned by one task group.

Lifecycle: ``bind()`` takes the listening socket (so a taken port fails before anything starts),
``run()`` serves until ``stop()`` is called or the task is cancelled, then shuts down in a bounded
time: listen streams ended, agent sessions closed, HTTP server stopped, downstream servers closed
and their processes ended. Used headless by ``toolgate serve`` and inside the tray app.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.abc
import mcp_types as types
import uvicorn
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

from gateway_core import control_socket
from gateway_core.agent_tokens import AgentTokens, ReadTokens
from gateway_core.approvals import ApprovalBroker, ApprovalRequest
from gateway_core.audit import AuditLog, AuditStatus
from gateway_core.config import Config
from gateway_core.config.edit import set_agent_rule
from gateway_core.config.watch import watch_config
from gateway_core.control_file import ControlEndpoint, ControlFile, new_control_token
from gateway_core.control_socket import ControlSocket, control_socket_path
from gateway_core.downstream.base import Catalog, ResolveFn, ServerStatus
from gateway_core.downstream.pool import DownstreamPool
from gateway_core.errors import ConfigError, InstanceError
from gateway_core.events import (
    ConfigApplied,
    ConfigRejected,
    EventStream,
    ServerStatusChanged,
    SessionEnded,
    StderrLine,
)
from gateway_core.frontend.control import ControlApp
from gateway_core.frontend.guard import CallGuard
from gateway_core.frontend.http import MCP_PATH, GatewayHttpApp
from gateway_core.frontend.limits import AgentLimits
from gateway_core.frontend.metrics import Metrics
from gateway_core.frontend.runtime import Runtime, RuntimeCell
from gateway_core.frontend.server import AgentFacingServer
from gateway_core.frontend.slow_clients import MAX_CONNECTIONS, GuardedHttpProtocol
from gateway_core.paths import Paths
from gateway_core.policy import AgentPolicy, Effect, literal_match
from gateway_core.version import toolgate_version

logger = logging.getLogger(__name__)

# The SDK's own limit; agents' requests are JSON-RPC messages, never bulk uploads.
MAX_REQUEST_BODY_BYTES = 4 * 1024 * 1024
# Agents connect in bursts when an IDE starts several sessions at once.
LISTEN_BACKLOG = 256
# How long open HTTP connections get to finish when the gateway stops.
HTTP_SHUTDOWN_TIMEOUT_S = 2.0


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


class _EmbeddedUvicorn(uvicorn.Server):
    """uvicorn that leaves signal handling to its host (``toolgate serve`` or the Qt app)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = anyio.Event()
        self.finished = anyio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.listening.set()

    async def serve_until_exit(self, sock: socket.socket) -> None:
        try:
            await self.serve([sock])
        finally:
            self.finished.set()
            self.listening.set()  # wakes a waiter even when start-up failed


def bind(host: str, port: int) -> socket.socket:
    """Open the listening socket, or raise InstanceError saying why the address cannot be used."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and
    # without it every response that is written in parts waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        if os.name == "posix":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(LISTEN_BACKLOG)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise InstanceError(
                f"port {port} on {host} is already in use (another Toolgate or another program); "
                "stop it, or choose another port with --port or gateway.port in config.json"
            ) from exc
        raise InstanceError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return sock


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
    """

    def __init__(
        self,
        config: Config,
        *,
        resolve: ResolveFn,
        read_tokens: ReadTokens,
        paths: Paths | None = None,
        config_path: Path | None = None,
    ) -> None:
        self.runtime = RuntimeCell(Runtime.of(config))
        self.events = EventStream()
        self.config_path = config_path
        self.tokens = AgentTokens(read_tokens, runtime=self.runtime)
        self.config_rejection: ConfigError | None = None
        self._config_event = anyio.Event()
        self.paths = paths
        self.metrics = Metrics()
        self.audit = (
            AuditLog(
                paths.audit_db,
                retention_days=config.audit.retention_days,
                max_size_mb=config.audit.max_size_mb,
            )
            if paths is not None and config.audit.enabled
            else None
        )
        self.approvals = ApprovalBroker(
            timeout_s=lambda: self.config.gateway.approval_timeout_s, on_always=self._remember_always
        )
        self.approvals.subscribe(self.events.publish)
        self.guard = CallGuard(self.runtime, self.approvals, self.audit)
        self.pool = DownstreamPool(
            config.servers,
            resolve=resolve,
            on_change=self._on_pool_change,
            on_stderr=lambda server, line: self.events.publish(StderrLine(server, line)),
            on_notice=self._on_notice,
            agent_roots=lambda agent: self.frontend.roots.roots(agent),
        )
        self.frontend = AgentFacingServer(
            self.runtime, self.pool, self.guard, self.metrics, self.events, version=toolgate_version()
        )
        self._control_token = new_control_token()
        # Where a control socket serves the approvals, the agent port only proves the gateway's identity.
        self._port_control = ControlApp(self.approvals, self._control_token, approvals=not control_socket.supported())
        self._sessions = StreamableHTTPSessionManager(
            self.frontend.server,
            security_settings=None,
            max_request_body_size=MAX_REQUEST_BODY_BYTES,
            session_idle_timeout=config.gateway.session_idle_timeout_s,
        )
        self.limits = AgentLimits(
            settings=lambda: self.runtime.now.config.gateway,
            end_session=self._end_session,
            is_open=lambda session_id: session_id in self._sessions._server_instances,
        )
        self.events.on(SessionEnded, lambda event: self.limits.session_ended(event.session_id))
        self.http_app = GatewayHttpApp(
            self._sessions.handle_request,
            limits=self.limits,
            identify=self.tokens.identify,
            runtime=self.runtime,
            metrics=self.metrics,
            statuses=self.pool.statuses,
            all_tried=self.pool.all_tried,
            version=toolgate_version(),
            control=self._port_control,
            audit_healthy=lambda: self.audit.status.healthy if self.audit is not None else None,
        )
        self._stop = anyio.Event()

    def statuses(self) -> list[ServerStatus]:
        """The state of every configured server, enabled or not."""
        return self.pool.statuses()

    def ready(self) -> bool:
        """Whether every enabled server has finished its first start attempt (ready or failed)."""
        return self.pool.all_tried()

    async def wait_ready(self) -> None:
        """Wait until ``ready()``."""
        await self.pool.wait_all_tried()

    def stop(self) -> None:
        """Ask ``run()`` to shut down; safe to call more than once, from the loop's thread."""
        self._stop.set()

    @property
    def paused(self) -> bool:
        """Whether every call is being refused (see ``pause``)."""
        return self.guard.paused

    def pause(self) -> None:
        """Refuse every tool call, prompt and resource read, saying Toolgate is paused, until ``resume``."""
        self.guard.paused = True
        logger.info("Toolgate is paused: every call is refused until it is resumed")

    def resume(self) -> None:
        """Let calls through again after ``pause``."""
        self.guard.paused = False
        logger.info("Toolgate resumed")

    def apply_config(self, config: Config, *, restart: Collection[str] = ()) -> None:
        """Use ``config`` from now on: restart only changed servers, apply policies to the next request.

        The GUI's edits and the file watcher both come through here. ``gateway.host`` and
        ``gateway.port`` only change with a restart. Servers named in ``restart`` are restarted even
        when their entry is unchanged (a secret they read at start has a new value).
        """
        old = self.config
        self.runtime.swap(lambda runtime: runtime.with_config(config))
        self.config_rejection = None
        self._config_settled()
        if (old.gateway.host, old.gateway.port) != (config.gateway.host, config.gateway.port):
            logger.warning("gateway.host and gateway.port changes take effect when Toolgate restarts")
        self._sessions.session_idle_timeout = config.gateway.session_idle_timeout_s  # for sessions opened from now
        self.pool.apply(config.servers, restart=restart)
        self.frontend.config_changed()
        if old.agents.keys() != config.agents.keys():
            self.tokens.refresh_soon()
        logger.info("applied the changed configuration")

    async def _end_session(self, session_id: str) -> None:
        # The SDK (2.3) has no public way to end one session; this is what its DELETE and idle expiry do.
        transport = self._sessions._server_instances.get(session_id)
        if transport is not None:
            await self._sessions._discard_session(session_id, transport)

    def reject_config(self, error: ConfigError) -> None:
        """Keep the running configuration and make the rejected edit's problems visible."""
        self.config_rejection = error
        self._config_settled()

    async def wait_config_settled(self) -> None:
        """Wait until the next configuration change is applied or rejected."""
        await self._config_event.wait()

    def _config_settled(self) -> None:
        self._config_event.set()
        self._config_event = anyio.Event()
        rejection = self.config_rejection
        self.events.publish(ConfigApplied() if rejection is None else ConfigRejected(tuple(rejection.problems)))

    def _remember_always(self, request: ApprovalRequest, effect: Effect) -> None:
        if self.config_path is None:
            logger.warning("cannot remember an 'always' answer: this gateway has no config file")
            return
        self.apply_config(
            set_agent_rule(self.config_path, request.agent, literal_match(request.server, request.tool), effect)
        )

    def _control_file(
        self, endpoint: Endpoint, channel: ControlSocket | None
    ) -> contextlib.AbstractContextManager[object]:
        """Publish the control channel to same-user tools (``toolgate approvals``) while serving."""
        if self.paths is None:
            return contextlib.nullcontext()
        base = endpoint.url.removesuffix(MCP_PATH)
        socket_path = None if channel is None else str(channel.path)
        return ControlFile(self.paths, ControlEndpoint(base, self._control_token, socket_path))

    @property
    def audit_status(self) -> AuditStatus | None:
        """Whether audit records are being written (``None`` when auditing is off)."""
        return self.audit.status if self.audit is not None else None

    def _on_pool_change(self, server: str) -> None:
        self.frontend.on_pool_change(server)
        self.events.publish(ServerStatusChanged(server))

    def _on_notice(self, server: str, notification: types.ServerNotification) -> None:
        self.frontend.notices.on_notice(server, notification)

    def restart_server(self, name: str) -> bool:
        """Restart server ``name`` now; returns ``False`` when it is not configured or is disabled."""
        restarted = self.pool.restart(name)
        if restarted:
            logger.info("server %r restarted on request", name)
        return restarted

    def catalog(self, name: str) -> Catalog:
        """What server ``name`` offers as last listed; empty unless it is ready."""
        server = self.pool.servers.get(name)
        return server.catalog if server is not None else Catalog()

    def stderr_lines(self, name: str) -> tuple[str, ...]:
        """The stderr lines kept for stdio server ``name``, oldest first."""
        server = self.pool.servers.get(name)
        return server.stderr_lines() if server is not None else ()

    def policy(self, agent_id: str) -> AgentPolicy:
        """Agent ``agent_id``'s compiled policy under the running configuration (unknown agents: deny)."""
        return self.runtime.now.policy(agent_id)

    @property
    def config(self) -> Config:
        """The configuration in force."""
        return self.runtime.now.config

    async def run(
        self, sock: socket.socket, *, task_status: anyio.abc.TaskStatus[Endpoint] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Serve agents on ``sock`` until ``stop()``; reports the endpoint once it accepts connections."""
        host, port = sock.getsockname()[:2]
        endpoint = Endpoint(host, port)
        self.http_app.bind(host, port)
        http = _EmbeddedUvicorn(
            uvicorn.Config(
                self.http_app,
                log_config=None,
                lifespan="off",
                access_log=False,
                timeout_graceful_shutdown=int(HTTP_SHUTDOWN_TIMEOUT_S),
                server_header=False,
                http=GuardedHttpProtocol,
                limit_concurrency=MAX_CONNECTIONS,
            )
        )
        channel: ControlSocket | None = None
        try:
            async with anyio.create_task_group() as tg:
                await tg.start(self.tokens.run)
                if self.audit is not None:
                    await tg.start(self.audit.run)
                await tg.start(self.pool.run)
                await tg.start(self.frontend.run)
                if self.config_path is not None:
                    tg.start_soon(
                        watch_config, self.config_path, lambda: self.config, self.apply_config, self.reject_config
                    )
                async with self._sessions.run():
                    tg.start_soon(http.serve_until_exit, sock)
                    await http.listening.wait()
                    if not http.started:
                        raise InstanceError(f"the HTTP server could not start on {endpoint.url}; see the log above")
                    logger.info("Toolgate is listening on %s", endpoint.url)
                    channel, control_http = await self._open_control_socket(tg)
                    try:
                        with self._control_file(endpoint, channel):
                            task_status.started(endpoint)
                            await self._stop.wait()
                        self.pool.stopping_everything()
                        self.frontend.close()
                    finally:
                        if control_http is not None:
                            control_http.should_exit = True
                http.should_exit = True
                with anyio.move_on_after(HTTP_SHUTDOWN_TIMEOUT_S + 1):
                    await http.finished.wait()
                    if control_http is not None:
                        await control_http.finished.wait()
                tg.cancel_scope.cancel()
        finally:
            if channel is not None:  # also when the run is cancelled or fails: no socket left open
                channel.close()

    async def _open_control_socket(
        self, tg: anyio.abc.TaskGroup
    ) -> tuple[ControlSocket | None, _EmbeddedUvicorn | None]:
        """Serve the approvals on a user-only Unix socket where there can be one (else on the agent port)."""
        if self.paths is None or not control_socket.supported():
            return None, None
        try:
            channel = ControlSocket(control_socket_path(self.paths))
        except OSError as exc:
            logger.warning(
                "the control socket could not be opened (%s); approvals are answered on the agent port, "
                "with the control token",
                exc,
            )
            self._port_control.serves_approvals = True
            return None, None
        server = _EmbeddedUvicorn(
            uvicorn.Config(
                ControlApp(self.approvals, self._control_token),
                log_config=None,
                lifespan="off",
                access_log=False,
                timeout_graceful_shutdown=1,
                server_header=False,
                http=GuardedHttpProtocol,
            )
        )
        tg.start_soon(server.serve_until_exit, channel.sock)
        await server.listening.wait()
        return channel, server

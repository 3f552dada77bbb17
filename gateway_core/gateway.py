"""The gateway: downstream pool, agent-facing MCP server and HTTP endpoint, owned by one task group.

Lifecycle: ``bind()`` takes the listening socket (so a taken port fails before anything starts),
``run()`` serves until ``stop()`` is called or the task is cancelled, then shuts down in a bounded
time: listen streams ended, agent sessions closed, HTTP server stopped, downstream servers closed
and their processes ended. Used headless by ``toolgate serve`` and, later, inside the tray app.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import anyio
import anyio.abc
import uvicorn
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

from gateway_core.config import Config
from gateway_core.downstream.base import ResolveFn, ServerStatus
from gateway_core.downstream.pool import DownstreamPool
from gateway_core.errors import InstanceError
from gateway_core.frontend.http import MCP_PATH, GatewayHttpApp
from gateway_core.frontend.metrics import Metrics
from gateway_core.frontend.server import AgentFacingServer
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
        identify: maps a bearer token to an agent id, or ``None``.
        on_stderr: called with (server, line) for every stderr line of a stdio server.
    """

    def __init__(
        self,
        config: Config,
        *,
        resolve: ResolveFn,
        identify: Callable[[str], str | None],
        on_stderr: Callable[[str, str], None] | None = None,
    ) -> None:
        self.config = config
        self.metrics = Metrics()
        self.pool = DownstreamPool(config.servers, resolve=resolve, on_change=self._on_pool_change, on_stderr=on_stderr)
        self.frontend = AgentFacingServer(config, self.pool, self.metrics, version=toolgate_version())
        self._sessions = StreamableHTTPSessionManager(
            self.frontend.server, security_settings=None, max_request_body_size=MAX_REQUEST_BODY_BYTES
        )
        self.http_app = GatewayHttpApp(
            self._sessions.handle_request,
            identify=identify,
            allowed_origins=config.gateway.allowed_origins,
            metrics=self.metrics,
            statuses=self.pool.statuses,
            ready=self.pool.all_tried,
            version=toolgate_version(),
        )
        self._stop = anyio.Event()

    def statuses(self) -> list[ServerStatus]:
        """The state of every configured server, enabled or not."""
        return self.pool.statuses()

    def stop(self) -> None:
        """Ask ``run()`` to shut down; safe to call more than once, from the loop's thread."""
        self._stop.set()

    def _on_pool_change(self, server: str) -> None:
        self.frontend.on_pool_change(server)

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
            )
        )
        async with anyio.create_task_group() as tg:
            await tg.start(self.pool.run)
            tg.start_soon(self.frontend.watch_catalog)
            async with self._sessions.run():
                tg.start_soon(http.serve_until_exit, sock)
                await http.listening.wait()
                if not http.started:
                    raise InstanceError(f"the HTTP server could not start on {endpoint.url}; see the log above")
                logger.info("Toolgate is listening on %s", endpoint.url)
                task_status.started(endpoint)
                await self._stop.wait()
                self.frontend.close()
            http.should_exit = True
            with anyio.move_on_after(HTTP_SHUTDOWN_TIMEOUT_S + 1):
                await http.finished.wait()
            tg.cancel_scope.cancel()

"""Listening for HTTP: the agent port's socket (``bind``) and uvicorn embedded in the gateway's loop.

The socket is taken before anything starts, so a taken port fails at once with a sentence saying
what to do. ``EmbeddedUvicorn`` leaves signals to its host (``toolgate serve`` or the Qt app), says
when it listens and when it has finished, and cuts off slow clients (``slow_clients.py``).
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import uvicorn

from gateway_core.errors import InstanceError
from gateway_core.frontend.slow_clients import MAX_CONNECTIONS, GuardedHttpProtocol

# Agents connect in bursts when an IDE starts several sessions at once.
LISTEN_BACKLOG = 256
# How long open HTTP connections get to finish when the gateway stops.
HTTP_SHUTDOWN_TIMEOUT_S = 2.0


class EmbeddedUvicorn(uvicorn.Server):
    """uvicorn that leaves signal handling to its host (``toolgate serve`` or the Qt app)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = anyio.Event()
        self.finished = anyio.Event()

    @classmethod
    def serving(
        cls, app: Callable[..., Any], *, shutdown_timeout_s: float, limit_concurrency: int | None = None
    ) -> EmbeddedUvicorn:
        """A quiet HTTP server for ``app``: no access log, no lifespan, no Server header, slow clients cut off.

        No proxy headers either: agents reach Toolgate directly, so an ``X-Forwarded-For`` or
        ``X-Forwarded-Proto`` a local client sends must not change who or what the request says it is
        (uvicorn trusts them from loopback by default, in a middleware on every request).
        """
        return cls(
            uvicorn.Config(
                app,
                log_config=None,
                lifespan="off",
                access_log=False,
                timeout_graceful_shutdown=int(shutdown_timeout_s),
                server_header=False,
                proxy_headers=False,
                http=GuardedHttpProtocol,
                limit_concurrency=limit_concurrency,
            )
        )

    @classmethod
    def agent_port(cls, app: Callable[..., Any]) -> EmbeddedUvicorn:
        """The HTTP server of the port agents connect to, serving ``app``."""
        return cls.serving(app, shutdown_timeout_s=HTTP_SHUTDOWN_TIMEOUT_S, limit_concurrency=MAX_CONNECTIONS)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Install no signal handlers: the host decides what a signal means."""
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start serving, then say so through ``listening``."""
        await super().startup(sockets)
        self.listening.set()

    async def serve_until_exit(self, sock: socket.socket) -> None:
        """Serve on ``sock`` until ``should_exit``; ``finished`` is set however it ends."""
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

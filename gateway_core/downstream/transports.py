"""Opening the connection a server's configuration names: one function per transport, chosen by a table.

Every transport yields a ``Connection`` (``base.py``): the message streams and how to learn that the
server has gone. Tests give a server the in-memory transport (``memory.py``) instead.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from gateway_core.config import ServerConfig
from gateway_core.downstream.base import Connection, ResolveFn
from gateway_core.downstream.oauth import GatewayAuth, MachineAuth
from gateway_core.downstream.remote import open_http, open_sse
from gateway_core.downstream.stderr import StderrBuffer
from gateway_core.downstream.stdio import StdioCommand, StopTimes, open_stdio
from gateway_core.launch.environment import LaunchEnvironment


@dataclass(frozen=True)
class Opening:
    """What opening one server's connection needs besides its configuration."""

    resolve: ResolveFn
    stderr: StderrBuffer
    stop_times: Callable[[], StopTimes]
    auth: GatewayAuth | MachineAuth | None = None
    launch: LaunchEnvironment | None = None
    """What stdio servers' environment starts from; Toolgate's own when None."""


Transport = Callable[[ServerConfig, Opening], AbstractAsyncContextManager[Connection]]


def _open_stdio(config: ServerConfig, opening: Opening) -> AbstractAsyncContextManager[Connection]:
    assert config.command is not None
    env = opening.resolve(config.env) if config.env else {}
    launch_env = opening.launch.variables if opening.launch is not None else None
    spec = StdioCommand(config.command, config.args, env, config.cwd, launch_env)
    return open_stdio(spec, stderr=opening.stderr, stop_times=opening.stop_times)


def _open_http(config: ServerConfig, opening: Opening) -> AbstractAsyncContextManager[Connection]:
    assert config.url is not None
    return open_http(config.url, opening.resolve(config.headers) if config.headers else {}, opening.auth)


def _open_sse(config: ServerConfig, opening: Opening) -> AbstractAsyncContextManager[Connection]:
    assert config.url is not None
    return open_sse(config.url, opening.resolve(config.headers) if config.headers else {}, opening.auth)


TRANSPORTS: dict[str, Transport] = {"stdio": _open_stdio, "http": _open_http, "sse": _open_sse}
"""How each configured ``transport`` is opened."""


def open_transport(config: ServerConfig, opening: Opening) -> AbstractAsyncContextManager[Connection]:
    """Open the connection ``config`` describes (secrets resolved now, at each start).

    Raises:
        MissingSecretError: a ``${secret:…}`` reference has no value.
    """
    return TRANSPORTS[config.transport](config, opening)

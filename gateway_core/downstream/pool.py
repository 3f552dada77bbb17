"""All configured servers together: one supervisor task per enabled server, in one task group.

``DownstreamPool.run`` starts every supervisor, reports itself started, and on cancellation returns
once every server is closed (processes ended). Disabled servers get no task and show as STOPPED.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import anyio
import anyio.abc

from gateway_core.config import ServerConfig
from gateway_core.downstream.base import ResolveFn, ServerState, ServerStatus
from gateway_core.downstream.server import DownstreamServer


class DownstreamPool:
    """The supervised sessions of every enabled server.

    Args:
        servers: name → configuration, in display order.
        resolve: resolves secret references in env/header values.
        on_change: called with a server's name whenever its status or catalog changes.
        on_stderr: called with ``(name, line)`` for each stderr line of a stdio server.
    """

    def __init__(
        self,
        servers: Mapping[str, ServerConfig],
        *,
        resolve: ResolveFn,
        on_change: Callable[[str], None],
        on_stderr: Callable[[str, str], None] | None = None,
    ) -> None:
        self._configs = dict(servers)
        self.servers: Mapping[str, DownstreamServer] = {
            name: DownstreamServer(name, config, resolve=resolve, on_change=on_change, on_stderr=on_stderr)
            for name, config in servers.items()
            if config.enabled
        }

    def statuses(self) -> list[ServerStatus]:
        """One status per configured server, disabled ones included (as STOPPED), in config order."""
        return [
            self.servers[name].status
            if name in self.servers
            else ServerStatus(name=name, state=ServerState.STOPPED, transport=config.transport, reason="disabled")
            for name, config in self._configs.items()
        ]

    def all_tried(self) -> bool:
        """Whether every enabled server has finished its first start attempt (ready or failed)."""
        return all(server.tried.is_set() for server in self.servers.values())

    async def wait_all_tried(self) -> None:
        """Wait until ``all_tried()``."""
        for server in self.servers.values():
            await server.tried.wait()

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Supervise every enabled server until cancelled.

        ``task_status.started()`` fires right after the supervisors are spawned (not when they are
        ready: see ``all_tried``). On cancellation it returns once every server is closed; each server's
        close is bounded (``stdio.CLOSE_TIMEOUT_S`` for a process tree), and they close concurrently.
        """
        async with anyio.create_task_group() as tg:
            for server in self.servers.values():
                tg.start_soon(server.run, name=f"downstream {server.name!r}")
            task_status.started()

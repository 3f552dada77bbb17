"""Helpers for downstream tests: a change recorder to wait on, and a pool runner."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager

import anyio

from gateway_core.config import ServerConfig
from gateway_core.downstream import DownstreamPool, DownstreamServer, ServerState
from tests.fakes.launch import fake_command

# Starting a Python fake costs ~0.7 s of imports; a loaded CI machine may need several times that.
WAIT_S = 30.0


def no_secrets(values: Mapping[str, str]) -> dict[str, str]:
    return dict(values)


def fake_config(*extra: str, **fields: object) -> ServerConfig:
    command, args = fake_command(*extra)
    return ServerConfig.model_validate({"command": command, "args": args, **fields})


class Changes:
    """An ``on_change`` (and ``on_catalog``, ``on_stderr``) callback that records calls and lets a test wait."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.catalogs: list[str] = []
        self.stderr_lines: list[tuple[str, str]] = []
        self._event: anyio.Event | None = None

    def __call__(self, name: str) -> None:
        self.names.append(name)
        self._wake()

    def catalog(self, name: str) -> None:
        """An ``on_catalog`` callback: catalog changes wake ``until`` too."""
        self.catalogs.append(name)
        self._wake()

    def stderr(self, name: str, line: str) -> None:
        """An ``on_stderr`` callback: stderr lines wake ``until`` too."""
        self.stderr_lines.append((name, line))
        self._wake()

    def _wake(self) -> None:
        if self._event is not None:
            self._event.set()

    async def until(self, condition: Callable[[], bool], within: float = WAIT_S) -> None:
        with anyio.fail_after(within):
            while True:
                self._event = anyio.Event()
                if condition():
                    return
                await self._event.wait()


@asynccontextmanager
async def running(pool: DownstreamPool) -> AsyncIterator[DownstreamPool]:
    async with anyio.create_task_group() as tg:
        await tg.start(pool.run)
        yield pool
        tg.cancel_scope.cancel()


@asynccontextmanager
async def ready_fake(config: ServerConfig | None = None) -> AsyncIterator[tuple[DownstreamServer, Changes]]:
    """One pool with the fake server as ``fake``, started and READY; the server and its change log."""
    changes = Changes()
    pool = DownstreamPool(
        {"fake": config or fake_config()},
        resolve=no_secrets,
        on_change=changes,
        on_catalog=changes.catalog,
        on_stderr=changes.stderr,
    )
    async with running(pool):
        server = pool.servers["fake"]
        await changes.until(lambda: server.status.state is ServerState.READY)
        yield server, changes

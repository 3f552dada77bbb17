"""A downstream server's logic without a process: the in-memory transport."""

from __future__ import annotations

from contextlib import asynccontextmanager as asynccontextmanager_of
from typing import Any

import anyio
import pytest

from gateway_core.config import ServerConfig
from gateway_core.downstream import DownstreamServer, ServerState
from gateway_core.downstream.memory import open_memory
from tests.fakes.fake_server import FakeServer
from tests.gateway_core.downstream.conftest import Changes, no_secrets

pytestmark = pytest.mark.anyio

WAIT_S = 10.0
# Never started: the in-memory transport replaces it.
UNUSED = ServerConfig.model_validate({"command": "never-run"})


async def test_a_server_in_memory_becomes_ready_lists_its_catalog_and_answers_calls():
    fake = FakeServer("memory", extra_tools=2)
    changes = Changes()
    server = DownstreamServer(
        "memory", UNUSED, resolve=no_secrets, on_change=changes, transport=lambda: open_memory(fake.server)
    )
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.run)
        await changes.until(lambda: server.status.state is ServerState.READY)
        echoed = await server.session.call_tool("echo", {"text": "no process"})
        names = [tool.name for tool in server.catalog.tools]
        info = server.status.server_info
        tg.cancel_scope.cancel()

    assert echoed.structured_content == {"text": "no process"}
    assert {"echo", "tool_000", "tool_001"} <= set(names)
    assert info == {"name": "memory", "version": "0.0.1"}


async def test_a_server_in_memory_that_stops_serving_is_failed_with_the_reason():
    fake = FakeServer("memory", extra_tools=0)
    changes = Changes()
    stop = anyio.Event()

    def transport() -> Any:
        @asynccontextmanager_of
        async def serving_until_stopped():
            async with open_memory(fake.server) as connection:

                async def stop_later() -> None:
                    await stop.wait()
                    connection.lost.set()

                async with anyio.create_task_group() as tg:
                    tg.start_soon(stop_later)
                    yield connection
                    tg.cancel_scope.cancel()

        return serving_until_stopped()

    server = DownstreamServer("memory", UNUSED, resolve=no_secrets, on_change=changes, transport=transport)
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.run)
        await changes.until(lambda: server.status.state is ServerState.READY)
        stop.set()
        await changes.until(lambda: server.status.state is ServerState.FAILED)
        reason = server.status.reason
        tg.cancel_scope.cancel()

    assert reason is not None and "stopped serving" in reason

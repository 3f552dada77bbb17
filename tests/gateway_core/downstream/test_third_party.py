"""Real third-party servers: mcp-server-time (installed in the venv) and, opt-in, the npm reference server."""

from __future__ import annotations

import json
import sys

import anyio
import mcp_types as types
import pytest

from gateway_core.config import ServerConfig
from gateway_core.downstream import DownstreamPool, ServerState
from tests.fakes.third_party import everything_server
from tests.gateway_core.downstream.conftest import Changes, no_secrets, running

pytestmark = pytest.mark.anyio


async def test_mcp_server_time_becomes_ready_and_tells_the_time() -> None:
    config = ServerConfig(command=sys.executable, args=("-m", "mcp_server_time", "--local-timezone", "UTC"))
    changes = Changes()
    pool = DownstreamPool({"time": config}, resolve=no_secrets, on_change=changes)
    async with running(pool):
        server = pool.servers["time"]
        await changes.until(lambda: server.status.state is ServerState.READY)
        result = await server.session.call_tool("get_current_time", {"timezone": "UTC"})
        status = server.status

    assert status.tools >= 2
    assert result.is_error is not True
    [content] = result.content
    assert isinstance(content, types.TextContent)
    assert json.loads(content.text)["timezone"] == "UTC"


async def test_a_2026_server_that_announces_no_list_changes_is_not_asked_to_listen_for_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # mcp-server-time runs on the SDK 2.x here: it speaks 2026-07-28, announces no list changes and
    # has no subscriptions/listen (it answers -32601).
    config = ServerConfig(command=sys.executable, args=("-m", "mcp_server_time", "--local-timezone", "UTC"))
    changes = Changes()
    pool = DownstreamPool({"time": config}, resolve=no_secrets, on_change=changes)
    async with running(pool):
        server = pool.servers["time"]
        await changes.until(lambda: server.status.state is ServerState.READY)
        live = server.session.live
        assert live is not None
        with anyio.fail_after(5):
            await live.listen_for_changes()  # nothing to listen to: returns at once, sends nothing
        status = server.status

    assert status.protocol_version == "2026-07-28"
    assert "listening for list changes failed" not in caplog.text


async def test_the_npm_everything_server_of_the_handshake_era_works() -> None:
    entry = everything_server()
    changes = Changes()
    pool = DownstreamPool(
        {"everything": ServerConfig(command=str(entry), args=("stdio",))}, resolve=no_secrets, on_change=changes
    )
    async with running(pool):
        server = pool.servers["everything"]
        await changes.until(lambda: server.status.state is not ServerState.STARTING)
        assert server.status.state is ServerState.READY, server.status.reason
        result = await server.session.call_tool("echo", {"message": "through toolgate"})
        status = server.status

    assert status.tools > 5
    assert status.resources > 0
    assert status.prompts > 0
    assert any("through toolgate" in getattr(block, "text", "") for block in result.content)

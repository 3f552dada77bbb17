"""Streamable HTTP and legacy SSE servers, against the fake MCP server running as a real subprocess."""

from __future__ import annotations

from typing import Literal

import anyio
import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError

from gateway_core.config import ServerConfig
from gateway_core.downstream import DownstreamPool, ServerState
from gateway_core.errors import ServerUnavailableError
from tests.fakes.launch import FAKE_TOOL_COUNT, serve_fake
from tests.gateway_core.downstream.conftest import Changes, running

pytestmark = pytest.mark.anyio

KINDS: tuple[Literal["http", "sse"], ...] = ("http", "sse")


@pytest.mark.parametrize("kind", KINDS)
async def test_remote_server_becomes_ready_and_passes_results_through(kind: Literal["http", "sse"]) -> None:
    resolved: list[dict[str, str]] = []

    def resolve(values: object) -> dict[str, str]:
        resolved.append({"X-Token": "resolved-value"})
        return resolved[-1]

    with serve_fake(kind, "--name", f"remote-{kind}") as fake:
        config = ServerConfig(url=fake.url, type=kind, headers={"X-Token": "${secret:TOKEN}"})
        changes = Changes()
        pool = DownstreamPool({"remote": config}, resolve=resolve, on_change=changes)
        async with running(pool):
            server = pool.servers["remote"]
            await changes.until(lambda: server.status.state is ServerState.READY)
            echoed = await server.session.call_tool("echo", {"text": "over the wire"})
            status = server.status

    assert (status.transport, status.tools, status.resources, status.prompts) == (kind, FAKE_TOOL_COUNT, 1, 1)
    assert status.server_info["name"] == f"remote-{kind}"
    assert echoed.structured_content == {"text": "over the wire"}
    assert echoed.meta is not None and echoed.meta["fake/server"] == f"remote-{kind}"
    assert resolved


@pytest.mark.parametrize("kind", KINDS)
async def test_a_remote_server_that_dies_fails_the_call_and_is_retried(kind: Literal["http", "sse"]) -> None:
    with serve_fake(kind) as fake:
        changes = Changes()
        pool = DownstreamPool({"remote": ServerConfig(url=fake.url, type=kind)}, resolve=dict, on_change=changes)
        async with running(pool):
            server = pool.servers["remote"]
            await changes.until(lambda: server.status.state is ServerState.READY)

            with anyio.fail_after(5), pytest.raises(ServerUnavailableError):
                await server.session.call_tool("crash", {})

            await changes.until(lambda: server.status.restarts >= 1 and server.status.state is ServerState.FAILED)
            assert server.status.reason is not None
            assert server.status.reason.startswith(f"cannot reach {fake.url}")


@pytest.mark.parametrize("kind", KINDS)
async def test_a_result_far_over_one_mib_passes_through_and_the_server_stays_ready(kind: Literal["http", "sse"]):
    size = 20 * 1024 * 1024
    with serve_fake(kind) as fake:
        changes = Changes()
        pool = DownstreamPool({"remote": ServerConfig(url=fake.url, type=kind)}, resolve=dict, on_change=changes)
        async with running(pool):
            server = pool.servers["remote"]
            await changes.until(lambda: server.status.state is ServerState.READY)
            with anyio.fail_after(30):
                result = await server.session.call_tool("blob", {"size": size})
                after = await server.session.call_tool("echo", {"text": "still here"})
            status = server.status

    assert result.content == [types.TextContent(text="x" * size)]
    assert after.structured_content == {"text": "still here"}
    assert (status.state, status.restarts) == (ServerState.READY, 0)


@pytest.mark.parametrize("kind", KINDS)
async def test_a_request_a_server_refuses_as_too_large_fails_alone_and_later_ones_are_served(
    kind: Literal["http", "sse"],
) -> None:
    # The fake keeps the SDK's own 4 MiB limit on request bodies.
    with serve_fake(kind) as fake:
        changes = Changes()
        pool = DownstreamPool({"remote": ServerConfig(url=fake.url, type=kind)}, resolve=dict, on_change=changes)
        async with running(pool):
            server = pool.servers["remote"]
            await changes.until(lambda: server.status.state is ServerState.READY)
            with anyio.fail_after(30):
                with pytest.raises(MCPError) as refused:
                    await server.session.call_tool("measure", {"data": "y" * (5 * 1024 * 1024)})
                after = await server.session.call_tool("echo", {"text": "still here"})
            status = server.status

    assert refused.value.error.code == types.INTERNAL_ERROR
    assert after.structured_content == {"text": "still here"}
    assert (status.state, status.restarts) == (ServerState.READY, 0)


async def test_a_call_whose_stream_the_server_closes_mid_call_resumes_and_the_server_stays_ready() -> None:
    # SEP-1699: the SDK's client reconnects with Last-Event-ID and gets the rest of the call.
    with serve_fake("http", "--resumable") as fake:
        changes = Changes()
        pool = DownstreamPool({"remote": ServerConfig(url=fake.url, type="http")}, resolve=dict, on_change=changes)
        progress: list[str | None] = []

        async def on_progress(done: float, total: float | None, message: str | None) -> None:
            progress.append(message)

        async with running(pool):
            server = pool.servers["remote"]
            await changes.until(lambda: server.status.state is ServerState.READY)
            with anyio.fail_after(10):
                result = await server.session.call_tool("drop_stream", {"text": "still here"}, progress=on_progress)
                after = await server.session.call_tool("echo", {"text": "and after"})
            status = server.status

    assert result.content == [types.TextContent(text="resumed: still here")]
    assert progress == ["before the stream closed", "after the stream closed"]
    assert after.structured_content == {"text": "and after"}
    assert (status.state, status.restarts) == (ServerState.READY, 0)

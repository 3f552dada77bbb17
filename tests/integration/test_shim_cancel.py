"""Cancelling a call through toolgate-shim does what cancelling it over HTTP does, in both eras.

Parity: the same SDK client, as the same agent, cancels a running call once directly over HTTP and
once through the real shim subprocess, against the real gateway and the fake server.
"""

from __future__ import annotations

import functools
from contextlib import AbstractAsyncContextManager
from typing import Literal

import anyio
import pytest
from mcp import Client

from tests.integration.harness import BOTH_ERAS, Mode, RunningGateway, agent_client, running_gateway, stdio_fake
from tests.integration.test_shim import shim_client

pytestmark = pytest.mark.anyio

Route = Literal["http", "shim"]
WAIT_S = 10.0


def connect(gw: RunningGateway, route: Route, mode: Mode) -> AbstractAsyncContextManager[Client]:
    if route == "http":
        return agent_client(gw.url, gw.tokens["agent-a"], mode=mode)
    return shim_client(gw.base, gw.tokens["agent-a"], mode)


@pytest.mark.parametrize("route", ["http", "shim"])
@pytest.mark.parametrize("mode", BOTH_ERAS)
async def test_a_cancelled_call_runs_once_is_cancelled_at_the_server_and_the_session_carries_on(
    mode: Mode, route: Route
) -> None:
    async with running_gateway({"fake": stdio_fake()}) as gw:
        await gw.wait_ready()
        async with connect(gw, route, mode) as client:
            # Calls before it, so the cancelled call goes out on a kept-alive connection (as an agent's calls
            # mostly do): by the second answer, the shim's worker that carried the first is free again.
            await client.call_tool("fake__echo", {"text": "before"})
            await client.call_tool("fake__echo", {"text": "before"})
            sessions = gw.gateway.sessions_of("agent-a")
            with anyio.fail_after(WAIT_S):
                async with anyio.create_task_group() as tg:
                    # No progress callback: a 2026 call then gets no response head until it is answered.
                    tg.start_soon(functools.partial(client.call_tool, "fake__slow", {"seconds": 60}))
                    await gw.stderr.wait_for("fake", "slow started")
                    tg.cancel_scope.cancel()
                await gw.stderr.wait_for("fake", "slow cancelled")
                after = await client.call_tool("fake__echo", {"text": "after"})
            sessions_after = gw.gateway.sessions_of("agent-a")
        # Counted once the agent is gone: the shim has then sent everything it was ever going to send.
        runs = [line for server, line in gw.stderr.lines if server == "fake" and line == "slow started"]

    assert after.structured_content == {"text": "after"}
    assert sessions_after == sessions
    assert len(runs) == 1

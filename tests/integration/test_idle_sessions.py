"""A handshake-era session ends once it has been idle for ``gateway.session_idle_timeout_s``, counted from its last use.

Each request in flight holds the session, and the countdown starts again when the last one ends, as the SDK's
transport keeps it; driven over HTTP with the hot path on and off.
"""

from __future__ import annotations

import time

import anyio
import pytest

from gateway_core.events import SessionEnded
from gateway_core.gateway import HOT_PATH_ENV
from tests.integration.harness import running_gateway, stdio_fake
from tests.integration.test_json_answers import ACCEPT, ECHO, VERSION, agent

pytestmark = pytest.mark.anyio

IDLE_S = 2.0
# Less than the idle timeout, with room for a loaded machine; two of them are more than it.
GAP_S = 1.2


@pytest.fixture(params=["1", "0"], ids=["hot path on", "hot path off"])
def hot_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(HOT_PATH_ENV, request.param)


@pytest.mark.usefixtures("hot_path")
async def test_a_session_used_more_often_than_its_idle_timeout_stays_open_and_ends_once_left_idle() -> None:
    async with running_gateway({"fake": stdio_fake(prefix="")}, session_idle_timeout_s=IDLE_S) as gw:
        await gw.wait_ready()
        ended = anyio.Event()
        ended_ids: list[str] = []
        async with agent(gw.url, gw.tokens["agent-a"], {}) as clock:
            # The gateway's first call settles the server's era, which can take seconds on a loaded machine:
            # made before the session under test opens, so that no call timed below is the first.
            await clock.request("tools/call", ECHO)
            async with agent(gw.url, gw.tokens["agent-a"], {}) as session:

                def on_ended(event: SessionEnded) -> None:
                    if event.session_id == session.session_id:
                        ended_ids.append(event.session_id)
                        ended.set()

                gw.gateway.events.on(SessionEnded, on_ended)
                await session.request("tools/call", ECHO)
                first_used = time.monotonic()
                answers = []
                for _ in range(2):
                    # The other session's call is the clock: this one is idle meanwhile.
                    await clock.request("tools/call", {"name": "slow", "arguments": {"seconds": GAP_S}})
                    _, messages = await session.request("tools/call", ECHO)
                    answers.append(messages[-1])
                used_for = time.monotonic() - first_used
                last_used = time.monotonic()
                with anyio.fail_after(IDLE_S + 20):
                    await ended.wait()
                idle_for = time.monotonic() - last_used
                headers = {"Accept": ACCEPT, "Mcp-Session-Id": session.session_id, "MCP-Protocol-Version": VERSION}
                after = await session.http.post(
                    gw.url, json={"jsonrpc": "2.0", "id": 99, "method": "tools/call", "params": ECHO}, headers=headers
                )

    assert used_for > IDLE_S  # open longer than its idle timeout, in use all along
    assert all(answer["result"]["structuredContent"] == {"text": "hi"} for answer in answers)
    assert idle_for >= IDLE_S - 0.05  # ended by being idle, not earlier
    assert ended_ids == [session.session_id]
    assert after.status_code == 404

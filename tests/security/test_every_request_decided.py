"""Every agent request that reaches a server is decided, audited with its outcome, and counted alike;
no answer promises more than it keeps."""

from __future__ import annotations

import sqlite3
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError

from gateway_core.approvals import AlwaysNotPossible, Answer, ApprovalRequested
from gateway_core.errors import ErrorCode
from tests.integration.harness import RunningGateway, agent_client, running_gateway, stdio_fake
from tests.integration.test_server_notices import subscribe

pytestmark = pytest.mark.anyio

WAIT_S = 20.0
ASK_EVERYTHING = {"default": "ask"}


async def next_request(gw: RunningGateway) -> Any:
    """The next approval request (already pending, or the next one to come)."""
    arrived = anyio.Event()

    def on_event(event: object) -> None:
        if isinstance(event, ApprovalRequested):
            arrived.set()

    unsubscribe = gw.gateway.events.subscribe(on_event)
    try:
        with anyio.fail_after(WAIT_S):
            while not gw.gateway.pending_approvals():
                await arrived.wait()
    finally:
        unsubscribe()
    return gw.gateway.pending_approvals()[0]


def outcomes(gw: RunningGateway) -> list[tuple[str, str, str]]:
    """(agent, tool, outcome) of every outcome record, oldest first (read after the gateway stopped)."""
    with sqlite3.connect(gw.paths.audit_db) as db:
        return list(db.execute("SELECT agent, tool, outcome FROM records WHERE kind = 'outcome' ORDER BY id"))


def metric_lines(text: str, outcome: str) -> list[str]:
    return [line for line in text.splitlines() if "calls_total" in line and f'outcome="{outcome}"' in line]


async def test_always_on_a_prompt_is_refused_as_a_promise_it_cannot_keep_and_once_still_works():
    async with running_gateway({"fake": stdio_fake()}, policies={"agent-a": ASK_EVERYTHING}) as gw:
        await gw.wait_ready()
        config_before = gw.paths.config_file.read_text()
        async with agent_client(gw.url, gw.tokens["agent-a"]) as client, anyio.create_task_group() as tg:
            got: list[types.GetPromptResult] = []

            async def get() -> None:
                got.append(await client.get_prompt("fake__greet", {"name": "Ada"}))

            tg.start_soon(get)
            request = await next_request(gw)
            with pytest.raises(AlwaysNotPossible, match="decided for the whole server") as refused:
                gw.gateway.answer_approval(request.id, Answer.ALLOW_ALWAYS)
            still_pending = [r.id for r in gw.gateway.pending_approvals()]
            gw.gateway.answer_approval(request.id, Answer.ALLOW_ONCE)

    assert request.kind == "prompt" and not request.can_be_always
    assert "fake/*" in str(refused.value)
    assert still_pending == [request.id]
    assert gw.paths.config_file.read_text() == config_before  # no rule was written
    assert got and got[0].messages


async def test_a_completion_under_ask_is_refused_without_asking_and_recorded():
    async with running_gateway({"fake": stdio_fake()}, policies={"agent-a": ASK_EVERYTHING}) as gw:
        await gw.wait_ready()
        async with agent_client(gw.url, gw.tokens["agent-a"]) as client:
            with pytest.raises(MCPError) as refused:
                await client.complete(types.PromptReference(name="fake__greet"), {"name": "name", "value": "A"})
            asked = gw.gateway.pending_approvals()

    assert refused.value.error.code == ErrorCode.DENIED_BY_POLICY
    assert "never put to the person" in refused.value.error.message
    assert asked == []
    assert ("agent-a", "fake__greet", "denied") in outcomes(gw)


async def test_a_subscription_under_ask_is_asked_about_and_its_outcome_recorded():
    async with running_gateway({"fake": stdio_fake()}, policies={"agent-a": ASK_EVERYTHING}) as gw:
        await gw.wait_ready()
        async with agent_client(gw.url, gw.tokens["agent-a"]) as client, anyio.create_task_group() as tg:
            tg.start_soon(subscribe, client, "fake://greeting")
            request = await next_request(gw)
            gw.gateway.answer_approval(request.id, Answer.ALLOW_ONCE)

    assert (request.kind, request.public_name) == ("subscription", "fake://greeting")
    assert ("agent-a", "fake://greeting", "ok") in outcomes(gw)


async def test_prompts_and_reads_have_outcomes_like_calls_and_metrics_count_the_same():
    async with running_gateway({"fake": stdio_fake()}) as gw:
        await gw.wait_ready()
        async with agent_client(gw.url, gw.tokens["agent-a"]) as client:
            await client.get_prompt("fake__greet", {"name": "Ada"})
            await client.read_resource("fake://greeting")
            await client.complete(types.PromptReference(name="fake__greet"), {"name": "name", "value": "A"})
            with pytest.raises(MCPError):
                await client.read_resource("fake://items/not-a-number/../x")
        async with httpx2.AsyncClient() as http:
            metrics = (await http.get(gw.base + "/metrics")).text

    recorded = outcomes(gw)
    assert ("agent-a", "fake__greet", "ok") in recorded
    assert ("agent-a", "fake://greeting", "ok") in recorded
    ok_count = sum(float(line.rsplit(" ", 1)[1]) for line in metric_lines(metrics, "ok"))
    assert ok_count == len([r for r in recorded if r[2] == "ok"])


async def test_an_approval_timeout_is_the_same_outcome_in_the_audit_log_and_in_metrics():
    ask_add = {"default": "allow", "rules": [{"match": "fake/add", "effect": "ask"}]}
    async with running_gateway({"fake": stdio_fake()}, policies={"agent-a": ask_add}, approval_timeout_s=0.3) as gw:
        await gw.wait_ready()
        async with agent_client(gw.url, gw.tokens["agent-a"]) as client:
            result = await client.call_tool("fake__add", {"a": 1, "b": 1})
        async with httpx2.AsyncClient() as http:
            metrics = (await http.get(gw.base + "/metrics")).text

    assert result.is_error is True
    assert ("agent-a", "add", "timeout") in outcomes(gw)
    assert metric_lines(metrics, "timeout") and not metric_lines(metrics, "denied")

"""2026 requests parked between rounds of questions: handed out, resumed by the right agent, expired."""

from __future__ import annotations

import functools
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError

from gateway_core.frontend.callers import RoundTripCaller
from gateway_core.frontend.rounds import Rounds

pytestmark = pytest.mark.anyio

CAN_ELICIT = types.ClientCapabilities(elicitation=types.ElicitationCapability())
QUESTION = types.ElicitRequest(
    params=types.ElicitRequestFormParams(message="Name?", requested_schema={"type": "object", "properties": {}})
)
TARGET = ("tools/call", "srv__ask")
WAIT_S = 10.0


async def no_record(*args: Any) -> None:
    return None


async def test_a_question_is_handed_out_and_the_agents_retry_brings_the_answer_to_the_work():
    caller = RoundTripCaller("agent-a", CAN_ELICIT, no_record)

    async def work() -> types.CallToolResult:
        answer = await caller.ask("srv", QUESTION)
        assert isinstance(answer, types.ElicitResult)
        return types.CallToolResult(content=[types.TextContent(text=f"got {answer.action}")])

    rounds = Rounds()
    async with anyio.create_task_group() as tg:
        await tg.start(rounds.run)
        first = await rounds.begin("agent-a", TARGET, caller, work)
        assert isinstance(first, types.InputRequiredResult)
        assert list(first.input_requests.values()) == [QUESTION]
        (key,) = first.input_requests
        with pytest.raises(MCPError, match="requestState is unknown or expired"):
            await rounds.resume("agent-b", TARGET, first.request_state, {key: types.ElicitResult(action="decline")})
        final = await rounds.resume("agent-a", TARGET, first.request_state, {key: types.ElicitResult(action="decline")})
        tg.cancel_scope.cancel()
    assert final.content[0].text == "got decline"


async def test_a_parked_request_the_agent_never_resumes_is_cancelled_after_the_time_limit():
    caller = RoundTripCaller("agent-a", CAN_ELICIT, no_record)
    cancelled = anyio.Event()

    async def work() -> types.CallToolResult:
        try:
            await caller.ask("srv", QUESTION)
            await anyio.sleep_forever()
        finally:
            cancelled.set()
        raise AssertionError("unreachable")

    rounds = Rounds(ttl_s=0.1)
    async with anyio.create_task_group() as tg:
        await tg.start(rounds.run)
        first = await rounds.begin("agent-a", TARGET, caller, work)
        with anyio.fail_after(10):
            await cancelled.wait()
        with pytest.raises(MCPError, match="requestState is unknown or expired"):
            await rounds.resume("agent-a", TARGET, first.request_state, {})
        tg.cancel_scope.cancel()


async def test_a_request_that_goes_away_while_its_round_is_handed_out_is_not_left_running():
    caller = RoundTripCaller("agent-a", CAN_ELICIT, no_record)
    cancelled, in_follow, never = anyio.Event(), anyio.Event(), anyio.Event()

    async def work() -> types.CallToolResult:
        try:
            await caller.ask("srv", QUESTION)
            await anyio.sleep_forever()
        finally:
            cancelled.set()
        raise AssertionError("unreachable")

    async def follow(ctx: object) -> None:
        if ctx is None:  # as ProgressRelay.retarget(None): waits (bounded) for progress still being sent
            in_follow.set()
            await never.wait()

    rounds = Rounds()
    async with anyio.create_task_group() as tg:
        await tg.start(rounds.run)
        async with anyio.create_task_group() as request:  # the agent's HTTP request
            request.start_soon(functools.partial(rounds.begin, "agent-a", TARGET, caller, work, follow=follow))
            with anyio.fail_after(WAIT_S):
                await in_follow.wait()
            request.cancel_scope.cancel()  # the agent disconnected
        with anyio.fail_after(WAIT_S):
            await cancelled.wait()  # the downstream call was cancelled, not left waiting for an answer
        tg.cancel_scope.cancel()


async def test_a_request_that_ends_while_parked_gives_its_result_to_the_agents_retry():
    # A server may stop waiting for its question and answer anyway (its own timeout, a default): the
    # result must reach the agent when it comes back with the round's requestState, not be dropped.
    caller = RoundTripCaller("agent-a", CAN_ELICIT, no_record)
    release, finished = anyio.Event(), anyio.Event()

    async def work() -> types.CallToolResult:
        with anyio.CancelScope() as asking:
            async with anyio.create_task_group() as tg:

                async def ask() -> None:
                    await caller.ask("srv", QUESTION)

                tg.start_soon(ask)
                await release.wait()
                asking.cancel()  # the server gave up on its question
        finished.set()
        return types.CallToolResult(content=[types.TextContent(text="answered without the question")])

    rounds = Rounds()
    async with anyio.create_task_group() as tg:
        await tg.start(rounds.run)
        first = await rounds.begin("agent-a", TARGET, caller, work)
        assert isinstance(first, types.InputRequiredResult)
        release.set()
        with anyio.fail_after(WAIT_S):
            await finished.wait()
        await anyio.wait_all_tasks_blocked()  # everything the work's end sets off has run (no server here)
        with anyio.fail_after(WAIT_S):
            final = await rounds.resume("agent-a", TARGET, first.request_state, {})
        tg.cancel_scope.cancel()
    assert final.content[0].text == "answered without the question"

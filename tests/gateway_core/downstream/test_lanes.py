"""Lanes: calls that could be asked questions never share a connection with another owner's calls."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import anyio
import mcp_types as types
import pytest

from gateway_core.downstream.lanes import Lanes

pytestmark = pytest.mark.anyio


@dataclass(frozen=True)
class FakeCaller:
    agent: str
    owner: Hashable
    interactive: bool

    async def ask(self, server: str, request: types.InputRequest) -> types.InputResponse | types.ErrorData:
        raise AssertionError("not asked in these tests")


IDE_A = FakeCaller("a", "session-a", interactive=True)
IDE_A_AGAIN = FakeCaller("a", "session-a", interactive=True)
IDE_B = FakeCaller("b", "session-b", interactive=True)
SCRIPT_C = FakeCaller("c", "session-c", interactive=False)
SCRIPT_D = FakeCaller("d", "session-d", interactive=False)


async def hold_until(lanes: Lanes, caller: FakeCaller, entered: anyio.Event, release: anyio.Event) -> None:
    async with lanes.hold(caller):
        entered.set()
        await release.wait()


async def test_callers_that_cannot_be_asked_run_side_by_side_and_a_question_then_has_no_owner():
    lanes = Lanes()
    async with lanes.hold(SCRIPT_C), lanes.hold(SCRIPT_D):
        assert lanes.count == 2
        assert lanes.owner_of_question() is None


async def test_an_owners_calls_share_the_connection_and_its_latest_interactive_call_owns_a_question():
    lanes = Lanes()
    async with lanes.hold(IDE_A), lanes.hold(IDE_A_AGAIN):
        assert lanes.owner_of_question() is IDE_A_AGAIN


async def test_another_owners_call_waits_while_an_interactive_call_runs_and_then_goes_first_come_first_served():
    lanes = Lanes()
    order: list[str] = []
    a_in, a_out, b_in, c_in = anyio.Event(), anyio.Event(), anyio.Event(), anyio.Event()
    release = anyio.Event()

    async def call(caller: FakeCaller, entered: anyio.Event) -> None:
        async with lanes.hold(caller):
            order.append(caller.agent)
            entered.set()
            await release.wait()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(hold_until, lanes, IDE_A, a_in, a_out)
            await a_in.wait()
            tg.start_soon(call, IDE_B, b_in)
            await anyio.wait_all_tasks_blocked()
            tg.start_soon(call, SCRIPT_C, c_in)
            await anyio.wait_all_tasks_blocked()
            assert order == []  # b waits for a; c waits behind b, who came first
            assert lanes.owner_of_question() is IDE_A
            a_out.set()
            await b_in.wait()
            assert order == ["b"]
            assert not c_in.is_set()
            release.set()
            await c_in.wait()
    assert order == ["b", "c"]

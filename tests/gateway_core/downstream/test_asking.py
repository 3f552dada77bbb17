"""Whose question it is: the call's own stream first, then the only owner in flight, else nobody."""

from __future__ import annotations

import contextvars
from collections.abc import Hashable, Mapping
from dataclasses import dataclass

import mcp_types as types

from gateway_core.downstream.asking import CallsInFlight


@dataclass(frozen=True)
class FakeCaller:
    agent: str
    owner: Hashable
    interactive: bool = True

    async def ask(self, server: str, request: types.InputRequest) -> types.InputResponse | types.ErrorData:
        raise AssertionError("not asked in these tests")

    async def ask_round(
        self, server: str, questions: Mapping[str, types.InputRequest]
    ) -> dict[str, types.InputResponse | types.ErrorData]:
        raise AssertionError("not asked in these tests")


IDE_A = FakeCaller("a", "session-a")
IDE_A_AGAIN = FakeCaller("a", "session-a")
IDE_B = FakeCaller("b", "session-b")


def test_a_question_outside_any_call_has_no_owner():
    assert CallsInFlight().owner_of_question() is None


def test_calls_of_one_owner_make_the_question_that_owners():
    calls = CallsInFlight()
    with calls.running(IDE_A), calls.running(IDE_A_AGAIN):
        # Answered outside either call's context, as a question read from stdio is.
        owner = contextvars.Context().run(calls.owner_of_question)
        assert calls.count == 2 and calls.owners == 1
    assert owner is IDE_A_AGAIN


def test_calls_of_two_owners_make_a_question_from_nowhere_nobodys():
    calls = CallsInFlight()
    with calls.running(IDE_A):
        context = contextvars.copy_context()
    with calls.running(IDE_B):
        with calls.running(IDE_A):
            assert contextvars.Context().run(calls.owner_of_question) is None
            # A call that has ended does not claim questions that arrive in its old context.
            assert context.run(calls.owner_of_question) is None


def test_a_question_on_a_calls_own_stream_is_that_calls_whoever_else_is_in_flight():
    calls = CallsInFlight()
    seen = {}
    with calls.running(IDE_B):
        with calls.running(IDE_A):
            seen["a"] = contextvars.copy_context().run(calls.owner_of_question)
        with calls.running(IDE_B):
            pass
    assert seen["a"] is IDE_A
    assert calls.count == 0

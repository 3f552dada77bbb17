"""The approvals broker resolves each request from its first answer, its timeout or its caller's departure."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import pytest

from gateway_core.approvals import (
    AlwaysNotPossible,
    Answer,
    ApprovalBroker,
    ApprovalError,
    ApprovalEvent,
    ApprovalRequest,
    ApprovalRequested,
    ApprovalResolved,
    BadDuration,
    Outcome,
    Resolution,
)
from gateway_core.errors import ToolgateError
from gateway_core.policy import Effect

pytestmark = pytest.mark.anyio

WAIT_S = 5


class Recorder:
    """Collects broker events and lets a test wait for the next request."""

    def __init__(self, broker: ApprovalBroker) -> None:
        self.events: list[ApprovalEvent] = []
        self._requested: list[ApprovalRequest] = []
        self._arrived = anyio.Event()
        broker.subscribe(self._on_event)

    def _on_event(self, event: ApprovalEvent) -> None:
        self.events.append(event)
        if isinstance(event, ApprovalRequested):
            self._requested.append(event.request)
            self._arrived.set()

    async def next_request(self) -> ApprovalRequest:
        with anyio.fail_after(WAIT_S):
            while not self._requested:
                self._arrived = anyio.Event()
                await self._arrived.wait()
        return self._requested.pop(0)

    def resolutions(self) -> list[Resolution]:
        return [e.resolution for e in self.events if isinstance(e, ApprovalResolved)]


def make_broker(timeout_s: float = 60.0, always: list[tuple[ApprovalRequest, Effect]] | None = None) -> ApprovalBroker:
    record = always if always is not None else []
    return ApprovalBroker(timeout_s=lambda: timeout_s, on_always=lambda req, effect: record.append((req, effect)))


def call(tool: str = "create_issue", *, agent: str = "claude", session_id: str | None = "s1") -> dict[str, Any]:
    return {
        "agent": agent,
        "server": "github",
        "tool": tool,
        "public_name": f"github__{tool}",
        "arguments": {"title": "hello"},
        "rule_text": "github/* → ask",
        "reason": "github/* asks for approval",
        "session_id": session_id,
    }


async def ask_and_answer(broker: ApprovalBroker, answer: Answer) -> Resolution:
    recorder = Recorder(broker)
    results: list[Resolution] = []

    async def asker() -> None:
        results.append(await broker.ask(**call()))

    with anyio.fail_after(WAIT_S):
        async with anyio.create_task_group() as tg:
            tg.start_soon(asker)
            request = await recorder.next_request()
            assert broker.answer(request.id, answer) == request
    return results[0]


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        (Answer.ALLOW_ONCE, Outcome.ALLOWED),
        (Answer.ALLOW_SESSION, Outcome.ALLOWED),
        (Answer.ALLOW_ALWAYS, Outcome.ALLOWED),
        (Answer.DENY, Outcome.DENIED),
        (Answer.DENY_ALWAYS, Outcome.DENIED),
    ],
)
async def test_each_answer_resolves_the_waiting_call_with_its_outcome(answer: Answer, outcome: Outcome):
    broker = make_broker()

    resolution = await ask_and_answer(broker, answer)

    assert resolution.outcome is outcome
    assert resolution.answer is answer
    assert resolution.allowed is (outcome is Outcome.ALLOWED)
    assert resolution.request.tool == "create_issue"
    assert resolution.waited_s >= 0
    assert broker.pending() == []


async def test_a_request_describes_the_call_with_a_short_id():
    broker = make_broker()
    recorder = Recorder(broker)

    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: broker.ask(**call()))
        request = await recorder.next_request()
        assert broker.pending() == [request]
        broker.answer(request.id, Answer.DENY)

    assert len(request.id) == 6 and request.id.isalnum()
    assert (request.agent, request.server, request.tool, request.public_name) == (
        "claude",
        "github",
        "create_issue",
        "github__create_issue",
    )
    assert request.arguments == {"title": "hello"}
    assert request.session_id == "s1"
    assert request.created_at > 0


async def test_an_unanswered_request_times_out_as_a_deny():
    broker = make_broker(timeout_s=0)
    recorder = Recorder(broker)

    with anyio.fail_after(WAIT_S):
        resolution = await broker.ask(**call())

    assert resolution.outcome is Outcome.TIMED_OUT
    assert not resolution.allowed
    assert resolution.answer is None
    assert broker.pending() == []
    assert [type(e) for e in recorder.events] == [ApprovalRequested, ApprovalResolved]


async def test_the_timeout_is_read_for_each_request():
    timeout = [60.0]
    broker = ApprovalBroker(timeout_s=lambda: timeout[0], on_always=lambda req, effect: None)
    timeout[0] = 0

    with anyio.fail_after(WAIT_S):
        resolution = await broker.ask(**call())

    assert resolution.outcome is Outcome.TIMED_OUT


async def test_answering_after_a_timeout_is_an_error():
    broker = make_broker(timeout_s=0)
    with anyio.fail_after(WAIT_S):
        resolution = await broker.ask(**call())

    with pytest.raises(ApprovalError, match="timed out"):
        broker.answer(resolution.request.id, Answer.ALLOW_ONCE)


async def test_a_cancelled_caller_withdraws_its_request_and_the_cancellation_propagates():
    broker = make_broker()
    recorder = Recorder(broker)
    cancelled = anyio.Event()
    returned: list[Resolution] = []

    async def asker() -> None:
        try:
            returned.append(await broker.ask(**call()))
        except anyio.get_cancelled_exc_class():
            cancelled.set()
            raise

    with anyio.fail_after(WAIT_S):
        async with anyio.create_task_group() as tg:
            tg.start_soon(asker)
            request = await recorder.next_request()
            tg.cancel_scope.cancel()
        await cancelled.wait()

    assert returned == []
    assert broker.pending() == []
    [withdrawn] = recorder.resolutions()
    assert withdrawn.outcome is Outcome.WITHDRAWN
    assert not withdrawn.allowed
    assert withdrawn.request == request
    with pytest.raises(ApprovalError, match="withdrawn"):
        broker.answer(request.id, Answer.ALLOW_ONCE)


async def test_many_pending_requests_each_get_their_own_answer():
    broker = make_broker()
    recorder = Recorder(broker)
    results: dict[str, Resolution] = {}
    tools = [f"tool_{i}" for i in range(6)]

    async def asker(tool: str) -> None:
        results[tool] = await broker.ask(**call(tool))

    with anyio.fail_after(WAIT_S):
        async with anyio.create_task_group() as tg:
            for tool in tools:
                tg.start_soon(asker, tool)
            requests = [await recorder.next_request() for _ in tools]
            assert sorted(r.tool for r in broker.pending()) == tools
            assert len({r.id for r in requests}) == len(tools)
            # Answer in reverse, allowing the even-numbered tools only.
            for request in reversed(requests):
                answer = Answer.ALLOW_ONCE if int(request.tool[-1]) % 2 == 0 else Answer.DENY
                broker.answer(request.id, answer)
                assert request not in broker.pending()
                assert len(broker.pending()) == requests.index(request)

    assert {tool: r.allowed for tool, r in results.items()} == {t: int(t[-1]) % 2 == 0 for t in tools}
    assert all(results[t].request.tool == t for t in tools)


async def test_pending_lists_the_oldest_request_first():
    broker = make_broker()
    recorder = Recorder(broker)

    with anyio.fail_after(WAIT_S):
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: broker.ask(**call("first")))
            first = await recorder.next_request()
            tg.start_soon(lambda: broker.ask(**call("second")))
            second = await recorder.next_request()
            assert broker.pending() == [first, second]
            tg.cancel_scope.cancel()


async def test_answering_a_request_twice_is_an_error_and_keeps_the_first_answer():
    broker = make_broker()
    recorder = Recorder(broker)
    results: list[Resolution] = []

    async def asker() -> None:
        results.append(await broker.ask(**call()))

    with anyio.fail_after(WAIT_S):
        async with anyio.create_task_group() as tg:
            tg.start_soon(asker)
            request = await recorder.next_request()
            broker.answer(request.id, Answer.DENY)
            with pytest.raises(ApprovalError, match=f"no pending approval with id '{request.id}'"):
                broker.answer(request.id, Answer.ALLOW_ONCE)

    assert results[0].outcome is Outcome.DENIED
    assert [r.outcome for r in recorder.resolutions()] == [Outcome.DENIED]


def test_answering_an_unknown_id_is_a_toolgate_error():
    broker = make_broker()

    with pytest.raises(ToolgateError, match="no pending approval with id 'zzz'"):
        broker.answer("zzz", Answer.ALLOW_ONCE)


async def test_allow_for_this_session_allows_the_same_tool_again_without_asking():
    broker = make_broker()
    await ask_and_answer(broker, Answer.ALLOW_SESSION)
    recorder = Recorder(broker)

    with anyio.fail_after(WAIT_S):
        again = await broker.ask(**call())

    assert again.allowed
    assert again.answer is Answer.ALLOW_SESSION
    assert again.waited_s == 0
    assert recorder.events == []
    assert broker.pending() == []


@pytest.mark.parametrize(
    "other",
    [
        {"tool": "delete_repo"},
        {"session_id": "s2"},
        {"agent": "cursor"},
        {"session_id": None},
    ],
)
async def test_a_session_grant_covers_only_that_agent_session_and_tool(other: dict[str, Any]):
    timeout = [60.0]
    broker = ApprovalBroker(timeout_s=lambda: timeout[0], on_always=lambda req, effect: None)
    await ask_and_answer(broker, Answer.ALLOW_SESSION)
    timeout[0] = 0

    with anyio.fail_after(WAIT_S):
        resolution = await broker.ask(**{**call(), **other})

    assert resolution.outcome is Outcome.TIMED_OUT


async def test_ending_the_session_forgets_its_grants():
    timeout = [60.0]
    broker = ApprovalBroker(timeout_s=lambda: timeout[0], on_always=lambda req, effect: None)
    await ask_and_answer(broker, Answer.ALLOW_SESSION)
    timeout[0] = 0

    broker.end_session("s1")
    with anyio.fail_after(WAIT_S):
        resolution = await broker.ask(**call())

    assert resolution.outcome is Outcome.TIMED_OUT


async def test_allow_once_grants_nothing_for_later_calls():
    timeout = [60.0]
    broker = ApprovalBroker(timeout_s=lambda: timeout[0], on_always=lambda req, effect: None)
    await ask_and_answer(broker, Answer.ALLOW_ONCE)
    timeout[0] = 0

    with anyio.fail_after(WAIT_S):
        resolution = await broker.ask(**call())

    assert resolution.outcome is Outcome.TIMED_OUT


@pytest.mark.parametrize(
    ("answer", "effect"),
    [(Answer.ALLOW_ALWAYS, Effect.ALLOW), (Answer.DENY_ALWAYS, Effect.DENY)],
)
async def test_an_always_answer_is_handed_on_as_a_rule_with_its_effect(answer: Answer, effect: Effect):
    always: list[tuple[ApprovalRequest, Effect]] = []
    broker = make_broker(always=always)

    resolution = await ask_and_answer(broker, answer)

    assert always == [(resolution.request, effect)]


@pytest.mark.parametrize("answer", [Answer.ALLOW_ONCE, Answer.ALLOW_SESSION, Answer.DENY])
async def test_other_answers_write_no_rule(answer: Answer):
    always: list[tuple[ApprovalRequest, Effect]] = []
    broker = make_broker(always=always)

    await ask_and_answer(broker, answer)

    assert always == []


async def test_a_failing_rule_write_is_logged_and_the_answer_still_applies(caplog: pytest.LogCaptureFixture):
    def broken(request: ApprovalRequest, effect: Effect) -> None:
        raise OSError("disk full")

    broker = ApprovalBroker(timeout_s=lambda: 60, on_always=broken)

    with caplog.at_level(logging.ERROR, logger="gateway_core.approvals"):
        resolution = await ask_and_answer(broker, Answer.DENY_ALWAYS)

    assert resolution.outcome is Outcome.DENIED
    assert "could not save the deny rule" in caplog.text


async def test_events_announce_each_request_and_its_resolution():
    broker = make_broker()
    events: list[ApprovalEvent] = []
    unsubscribe = broker.subscribe(events.append)

    resolution = await ask_and_answer(broker, Answer.ALLOW_ONCE)
    unsubscribe()
    unsubscribe()
    await ask_and_answer(broker, Answer.DENY)

    assert events == [ApprovalRequested(resolution.request), ApprovalResolved(resolution)]


async def test_a_failing_listener_does_not_stop_the_call(caplog: pytest.LogCaptureFixture):
    broker = make_broker()

    def broken(event: ApprovalEvent) -> None:
        raise RuntimeError("GUI gone")

    broker.subscribe(broken)
    with caplog.at_level(logging.ERROR, logger="gateway_core.approvals"):
        resolution = await ask_and_answer(broker, Answer.ALLOW_ONCE)

    assert resolution.allowed
    assert "listener failed" in caplog.text


async def test_an_answer_after_the_caller_was_cancelled_keeps_the_answer_as_the_outcome():
    broker = make_broker()
    recorder = Recorder(broker)

    with anyio.fail_after(WAIT_S):
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: broker.ask(**call()))
            request = await recorder.next_request()
            broker.answer(request.id, Answer.DENY)
            tg.cancel_scope.cancel()

    assert [r.outcome for r in recorder.resolutions()] == [Outcome.DENIED]


def timed_broker(written: list[tuple[ApprovalRequest, Effect, float]]) -> ApprovalBroker:
    return ApprovalBroker(
        timeout_s=lambda: 60,
        on_always=lambda req, effect: None,
        on_timed=lambda req, effect, until: written.append((req, effect, until)),
        wall_clock=lambda: 1_800_000_000.0,
    )


@pytest.mark.parametrize(("answer", "effect"), [(Answer.ALLOW_FOR, Effect.ALLOW), (Answer.DENY_FOR, Effect.DENY)])
async def test_a_timed_answer_resolves_the_call_and_writes_a_rule_expiring_after_its_duration(
    answer: Answer, effect: Effect
):
    written: list[tuple[ApprovalRequest, Effect, float]] = []
    broker = timed_broker(written)
    recorder = Recorder(broker)
    results: list[Resolution] = []

    async def asker() -> None:
        results.append(await broker.ask(**call()))

    with anyio.fail_after(WAIT_S):
        async with anyio.create_task_group() as tg:
            tg.start_soon(asker)
            request = await recorder.next_request()
            broker.answer(request.id, answer, for_s=900)

    assert results[0].answer is answer and results[0].allowed is answer.allows
    assert written == [(request, effect, 1_800_000_900.0)]


@pytest.mark.parametrize(
    ("answer", "for_s", "message"),
    [
        (Answer.ALLOW_FOR, None, "needs a duration"),
        (Answer.ALLOW_FOR, 0, "needs a duration"),
        (Answer.DENY_FOR, -5, "needs a duration"),
        (Answer.ALLOW_FOR, 365 * 86400, "answer 'always' for longer"),
        (Answer.ALLOW_ONCE, 60, "a duration goes only with a timed answer"),
    ],
)
async def test_a_timed_answer_without_a_usable_duration_answers_nothing(
    answer: Answer, for_s: float | None, message: str
):
    written: list[tuple[ApprovalRequest, Effect, float]] = []
    broker = timed_broker(written)
    recorder = Recorder(broker)

    with anyio.fail_after(WAIT_S):
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: broker.ask(**call()))
            request = await recorder.next_request()
            with pytest.raises(BadDuration, match=message):
                broker.answer(request.id, answer, for_s=for_s)
            assert broker.pending() == [request]
            broker.answer(request.id, Answer.DENY)

    assert written == []


async def test_a_broker_without_a_place_for_timed_rules_refuses_timed_answers():
    broker = make_broker()
    recorder = Recorder(broker)

    with anyio.fail_after(WAIT_S):
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: broker.ask(**call()))
            request = await recorder.next_request()
            with pytest.raises(BadDuration, match="cannot keep a timed answer"):
                broker.answer(request.id, Answer.ALLOW_FOR, for_s=60)
            broker.answer(request.id, Answer.DENY)


async def test_a_timed_answer_to_a_prompt_is_refused_like_always():
    written: list[tuple[ApprovalRequest, Effect, float]] = []
    broker = timed_broker(written)
    recorder = Recorder(broker)

    with anyio.fail_after(WAIT_S):
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: broker.ask(**{**call(), "kind": "prompt"}))
            request = await recorder.next_request()
            with pytest.raises(AlwaysNotPossible, match="timed answers write a rule for one tool"):
                broker.answer(request.id, Answer.ALLOW_FOR, for_s=60)
            broker.answer(request.id, Answer.DENY)

    assert written == []

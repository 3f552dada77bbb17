"""The guard, the enforcement point: one decision per call, a person asked when the policy says so, all on record."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import anyio
import pytest

from gateway_core.approvals import Answer, ApprovalBroker, ApprovalRequested
from gateway_core.audit import AuditLog, AuditQuery, read_records
from gateway_core.config import parse_config
from gateway_core.frontend.guard import PAUSED_MESSAGE, Admission, Asking, CallGuard
from gateway_core.frontend.runtime import Runtime, RuntimeCell

pytestmark = pytest.mark.anyio

WAIT_S = 10.0
RULES = {
    "default": "deny",
    "rules": [
        {"match": "fs/read", "effect": "allow"},
        {"match": "fs/write", "effect": "ask"},
    ],
}


def runtime_with(agent: dict[str, Any]) -> RuntimeCell:
    document = {"agents": {"cursor": {"name": "Cursor", **agent}}}
    return RuntimeCell(Runtime.of(parse_config(json.dumps(document))))


def broker(timeout_s: float = 60.0) -> ApprovalBroker:
    return ApprovalBroker(timeout_s=lambda: timeout_s, on_always=lambda request, effect: None)


async def admit(guard: CallGuard, tool: str | None, **options: Any) -> Admission:
    return await guard.admit(
        agent="cursor",
        session_id=None,
        server="fs",
        tool=tool,
        public_name=f"fs__{tool}",
        arguments={"path": "/x"},
        **options,
    )


async def until_asked(approvals: ApprovalBroker) -> None:
    """Wait (bounded) until a request is pending."""
    asked = anyio.Event()
    unsubscribe = approvals.subscribe(lambda event: asked.set() if isinstance(event, ApprovalRequested) else None)
    try:
        with anyio.fail_after(WAIT_S):
            while not approvals.pending():
                await asked.wait()
    finally:
        unsubscribe()


async def answer_when_asked(approvals: ApprovalBroker, answer: Answer) -> None:
    await until_asked(approvals)
    approvals.answer(approvals.pending()[0].id, answer)


async def test_allow_deny_and_an_unconfigured_agent_are_decided_without_asking():
    approvals = broker()
    guard = CallGuard(runtime_with(RULES), approvals, None)

    allowed = await admit(guard, "read")
    denied = await admit(guard, "delete")
    stranger = await guard.admit(
        agent="ghost", session_id=None, server="fs", tool="read", public_name="fs__read", arguments=None
    )

    assert allowed.allowed and allowed.decision.rule_text == "fs/read → allow"
    assert not denied.allowed and denied.refused_as == "denied"
    assert denied.refusal == "Toolgate: agent 'cursor' may not call fs__delete (rule: default → deny)"
    assert not stranger.allowed
    assert approvals.pending() == []


async def test_an_ask_waits_for_the_person_and_their_answer_decides():
    approvals = broker()
    guard = CallGuard(runtime_with(RULES), approvals, None)
    results: list[Admission] = []

    async def call() -> None:
        results.append(await admit(guard, "write"))

    async with anyio.create_task_group() as tg:
        tg.start_soon(call)
        await answer_when_asked(approvals, Answer.ALLOW_ONCE)
    async with anyio.create_task_group() as tg:
        tg.start_soon(call)
        await answer_when_asked(approvals, Answer.DENY)

    assert results[0].allowed and results[0].resolution is not None
    assert not results[1].allowed and "the person denied agent 'cursor' the call to fs__write" in str(
        results[1].refusal
    )


def test_a_verdict_settles_allow_and_deny_at_once_and_leaves_only_an_ask_to_the_person():
    approvals = broker()
    guard = CallGuard(runtime_with(RULES), approvals, None)

    def verdict(tool: str) -> Admission | Asking:
        return guard.verdict(
            agent="cursor", session_id="s1", server="fs", tool=tool, public_name=f"fs__{tool}", arguments=None
        )

    allowed, denied, asking = verdict("read"), verdict("delete"), verdict("write")

    assert isinstance(allowed, Admission) and allowed.allowed
    assert isinstance(denied, Admission) and not denied.allowed and denied.refused_as == "denied"
    assert isinstance(asking, Asking) and asking.decision.rule_text == "fs/write → ask"
    assert asking.session_id == "s1" and asking.public_name == "fs__write"
    assert not approvals.pending()  # nobody is asked until ``ask`` is awaited


async def test_a_verdict_to_ask_is_put_to_the_person_by_ask():
    approvals = broker()
    guard = CallGuard(runtime_with(RULES), approvals, None)
    asking = guard.verdict(
        agent="cursor", session_id=None, server="fs", tool="write", public_name="fs__write", arguments={"path": "/x"}
    )
    assert isinstance(asking, Asking)
    results: list[Admission] = []

    async def call() -> None:
        results.append(await guard.ask(asking, None))

    async with anyio.create_task_group() as tg:
        tg.start_soon(call)
        await answer_when_asked(approvals, Answer.ALLOW_ONCE)

    assert results[0].allowed and results[0].resolution is not None
    assert results[0].call_id == asking.call_id


async def test_an_unanswered_ask_is_refused_and_counted_as_a_timeout():
    guard = CallGuard(runtime_with(RULES), broker(timeout_s=0.05), None)

    with anyio.fail_after(WAIT_S):
        refused = await admit(guard, "write")

    assert not refused.allowed and refused.refused_as == "timeout"
    assert "nobody approved fs__write for agent 'cursor'" in str(refused.refusal)


async def test_without_asking_an_ask_is_refused_at_once_and_nobody_is_asked():
    approvals = broker()
    guard = CallGuard(runtime_with({"default": "ask"}), approvals, None)

    refused = await admit(guard, None, kind="completion", ask=False)

    assert not refused.allowed and "never put to the person" in str(refused.refusal)
    assert approvals.pending() == []


async def test_an_agent_that_goes_away_while_asked_withdraws_its_request():
    approvals = broker()
    guard = CallGuard(runtime_with(RULES), approvals, None)
    gone = anyio.Event()

    async def disconnected() -> bool:
        return gone.is_set()

    async def leave_when_asked() -> None:
        await until_asked(approvals)
        gone.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(leave_when_asked)
        with anyio.fail_after(WAIT_S):
            withdrawn = await admit(guard, "write", disconnected=disconnected)

    assert not withdrawn.allowed and "went away before an answer" in str(withdrawn.refusal)
    assert approvals.pending() == []


async def test_a_paused_guard_refuses_even_what_is_allowed():
    guard = CallGuard(runtime_with(RULES), broker(), None)
    guard.paused = True

    refused = await admit(guard, "read")

    assert not refused.allowed and refused.refusal == PAUSED_MESSAGE


async def test_the_next_decision_follows_a_swapped_runtime():
    runtime = runtime_with(RULES)
    guard = CallGuard(runtime, broker(), None)
    before = await admit(guard, "read")

    stricter = parse_config(json.dumps({"agents": {"cursor": {"name": "Cursor", "default": "deny"}}}))
    runtime.swap(lambda now: now.with_config(stricter))
    after = await admit(guard, "read")

    assert before.allowed and not after.allowed


async def test_every_decision_and_outcome_is_on_record(tmp_path: Path):
    path = tmp_path / "audit.sqlite3"
    audit = AuditLog(path)
    async with anyio.create_task_group() as tg:
        await tg.start(audit.run)
        guard = CallGuard(runtime_with(RULES), broker(), audit)
        allowed = await admit(guard, "read")
        guard.record_outcome(
            allowed, agent="cursor", server="fs", tool="read", outcome="ok", latency_s=0.01, result_size=3
        )
        await admit(guard, "delete")
        tg.cancel_scope.cancel()
    records = [dataclasses.asdict(r) for r in reversed(read_records(path, AuditQuery(limit=10)))]

    assert [(r["kind"], r["tool"], r["outcome"] or r["effect"]) for r in records] == [
        ("decision", "read", "allow"),
        ("outcome", "read", "ok"),
        ("decision", "delete", "deny"),
        ("outcome", "delete", "denied"),
    ]

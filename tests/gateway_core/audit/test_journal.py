"""A call's records encoded from their shapes (``journal.Shape``) are the bytes ``encode_values`` makes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway_core.audit import AuditLog, AuditQuery, CallOutcome, RecordKind, journal, store
from gateway_core.audit import log as audit_log
from gateway_core.audit.journal import journal_paths

_text = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=40)
_number = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-(2**70), 2**70))
_maybe_text = st.none() | _text
_time = st.floats(min_value=0, max_value=4e9)
_outcome = st.sampled_from(list(CallOutcome))
_size = st.none() | st.integers(-(2**70), 2**70)
# A decision's values, for the tests that encode one two ways.
_A_DECISION = {
    "time": _time,
    "call_id": _text,
    "agent": _text,
    "server": _text,
    "tool": _text,
    "effect": st.sampled_from(["allow", "ask", "deny"]),
    "rule": _text,
    "reason": _text,
    "arguments": _text,
}


def _shared(values: tuple[Any, ...]) -> tuple[str, str]:
    return journal.shared(journal.text(values[2]), journal.shared_tails(*values[3:8]))


@given(**_A_DECISION)
@settings(max_examples=200)
def test_a_decision_encoded_from_its_shape_is_the_line_and_json_of_its_values(
    time: float, call_id: str, agent: str, server: str, tool: str, effect: str, rule: str, reason: str, arguments: str
) -> None:
    values = (time, RecordKind.DECISION, call_id, agent, server, tool, effect, rule, reason)
    values += (None, None, 0.0, None, None, arguments)

    shaped = audit_log._DECISION.encode(*_shared(values), repr(time), journal.text(reason), journal.text(arguments))

    assert shaped == journal.encode_values(values)


@given(
    time=_time,
    call_id=_text,
    effect=st.none() | st.sampled_from(["allow", "ask", "deny"]),
    rule=_maybe_text,
    reason=_maybe_text,
    answer=_maybe_text,
    waited_s=st.none() | _number,
    latency_s=_number,
    outcome=_outcome,
    result_size=_size,
)
@settings(max_examples=200)
def test_an_outcome_encoded_from_its_shape_is_the_line_and_json_of_its_values(
    time: float,
    call_id: str,
    effect: str | None,
    rule: str | None,
    reason: str | None,
    answer: str | None,
    waited_s: float | None,
    latency_s: float,
    outcome: CallOutcome,
    result_size: int | None,
) -> None:
    values = (time, RecordKind.OUTCOME, call_id, "a", "s", "t", effect, rule, reason, answer, waited_s, latency_s)
    values += (outcome, result_size, "")
    texts = [journal.text(value) for value in (reason, answer, waited_s, latency_s, outcome, result_size)]

    shaped = audit_log._OUTCOME.encode(*_shared(values), repr(time), *texts)

    assert shaped == journal.encode_values(values)


def test_a_shape_fixes_only_columns_a_calls_two_records_do_not_share() -> None:
    with pytest.raises(ValueError, match="can be fixed"):
        journal.Shape({"agent": "a"})
    with pytest.raises(ValueError, match="can be fixed"):
        journal.Shape({"time": 1.0})


def _journal(path: Path) -> bytes:
    return b"".join(file.read_bytes() for file in journal_paths(path) if file.exists())


@pytest.mark.anyio
@pytest.mark.parametrize("asked", [True, False])
async def test_decide_and_finish_journal_and_store_a_call_as_record_decision_and_record_outcome_do(
    tmp_path: Path, asked: bool
) -> None:
    ways: dict[str, tuple[bytes, list[tuple[Any, ...]]]] = {}
    for way in ("decide", "record"):
        path = tmp_path / way / "audit.sqlite3"
        path.parent.mkdir()
        log = AuditLog(path)
        async with anyio.create_task_group() as tg:
            await tg.start(log.run)
            decision = {
                "call_id": "c1",
                "agent": "cursor",
                "server": "github",
                "tool": "create_issue",
                "effect": "ask",
                "rule": 'github/* → ask "quoted"',
                "reason": "the person decides\n",
                "arguments": {"repo": "octo/hello", "token": "ghp_secret", "n": 1.5},
            }
            outcome: dict[str, Any] = {"outcome": "ok", "latency_s": 0.25, "result_size": 40}
            if asked:
                outcome |= {"answer": "once", "waited_s": 3.5}
            if way == "decide":
                call = log.decide(**decision)
                log.finish(call, **outcome)
            else:
                await log.record_decision(**decision)
                log.record_outcome(
                    **{k: decision[k] for k in ("call_id", "agent", "server", "tool", "effect", "rule")}, **outcome
                )
            journaled = _journal(path)
            records = await log.query(AuditQuery())
            tg.cancel_scope.cancel()
        times = [record.time for record in reversed(records)]
        # The same bytes but for the times the records were made at.
        for n, when in enumerate(times):
            journaled = journaled.replace(repr(when).encode(), f"T{n}".encode())
        ways[way] = journaled, [(*vars(record).values(),)[2:] for record in reversed(records)]
        assert store_chain_intact(path)

    assert ways["decide"] == ways["record"]
    lines = [
        json.loads(line.replace(b":T0,", b":0,").replace(b":T1,", b":1,")) for line in ways["decide"][0].splitlines()
    ]
    assert [(line["kind"], line["outcome"], line["answer"], line["reason"]) for line in lines] == [
        ("decision", None, None, "the person decides\n"),
        ("outcome", "ok", "once" if asked else None, None),
    ]


def store_chain_intact(path: Path) -> bool:
    report = store.verify_chain(path)
    return report.intact and report.checked == 2


@pytest.mark.anyio
async def test_the_outcome_of_a_call_whose_tool_holds_a_lone_surrogate_is_recorded_written_out(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite3"
    log = AuditLog(path)
    async with anyio.create_task_group() as tg:
        await tg.start(log.run)
        call = log.decide(
            call_id="odd", agent="a", server="s", tool="t\ud800", effect="allow", rule="r", reason="r", arguments=None
        )
        log.finish(call, outcome="ok", latency_s=0.0)
        stored = [(r.kind, r.tool) for r in await log.query(AuditQuery())]
        tg.cancel_scope.cancel()

    assert stored == [(RecordKind.OUTCOME, "t\\ud800"), (RecordKind.DECISION, "t\\ud800")]
    assert log.status.healthy


@given(
    call_ids=st.lists(_text, min_size=2, max_size=3),
    agent=_text,
    server=_text,
    tool=_text,
    effect=st.none() | st.sampled_from(["allow", "ask", "deny"]),
    rule=_maybe_text,
)
@settings(max_examples=200)
def test_the_shared_columns_of_a_call_that_repeats_another_s_are_encoded_as_its_own_values(
    call_ids: list[str], agent: str, server: str, tool: str, effect: str | None, rule: str | None
) -> None:
    tails = journal.shared_tails(agent, server, tool, effect, rule)  # made once, for every call
    for call_id in call_ids:
        values = (call_id, agent, server, tool, effect, rule)
        texts = [journal.text(value) for value in values]
        expected_line = ",".join(f"{json.dumps(name)}:{part}" for name, part in zip(journal.SHARED, texts, strict=True))

        assert journal.shared(journal.text(call_id), tails) == (expected_line, ",".join(texts))


@given(**_A_DECISION)
@settings(max_examples=200)
def test_a_decision_encoded_from_its_filled_shape_is_the_line_and_json_of_its_values(
    time: float, call_id: str, agent: str, server: str, tool: str, effect: str, rule: str, reason: str, arguments: str
) -> None:
    values = (time, RecordKind.DECISION, call_id, agent, server, tool, effect, rule, reason)
    values += (None, None, 0.0, None, None, arguments)
    line, json_template = audit_log._DECISION.filled(
        journal.shared_tails(agent, server, tool, effect, rule), {"reason": journal.text(reason)}
    )
    texts = (repr(time), journal.text(call_id), journal.text(arguments))

    assert ((line % texts).encode(), json_template % texts) == journal.encode_values(values)


@given(
    time=_time,
    call_id=_text,
    agent=_text,
    rule=_maybe_text,
    latency_s=_number,
    outcome=_outcome,
    result_size=_size,
)
@settings(max_examples=200)
def test_an_outcome_nobody_was_asked_about_encoded_from_its_filled_shape_is_the_line_and_json_of_its_values(
    time: float,
    call_id: str,
    agent: str,
    rule: str | None,
    latency_s: float,
    outcome: CallOutcome,
    result_size: int | None,
) -> None:
    values = (time, RecordKind.OUTCOME, call_id, agent, "s%s", "t", "allow", rule, None, None, None, latency_s)
    values += (outcome, result_size, "")
    line, json_template = audit_log._OUTCOME.filled(
        journal.shared_tails(agent, "s%s", "t", "allow", rule), {"reason": "null", "answer": "null", "waited_s": "null"}
    )
    texts = tuple(journal.text(value) for value in (call_id, latency_s, outcome, result_size))
    texts = (repr(time), *texts)

    assert ((line % texts).encode(), json_template % texts) == journal.encode_values(values)


def test_a_shape_is_filled_only_with_its_open_columns() -> None:
    with pytest.raises(ValueError, match="can be filled"):
        audit_log._DECISION.filled(journal.shared_tails("a", "s", "t", "allow", "r"), {"latency_s": "0.0"})


def test_the_kept_forms_of_calls_stay_bounded() -> None:
    log = AuditLog(Path("unused.sqlite3"))  # not running: nothing is written, the forms are still made
    for n in range(audit_log.MAX_FORMS + 5):
        log.decide(
            call_id="id", agent=f"agent{n}", server="s", tool="t", effect="allow", rule="r", reason="r", arguments=None
        )

    assert 0 < len(audit_log._FORMS) <= audit_log.MAX_FORMS

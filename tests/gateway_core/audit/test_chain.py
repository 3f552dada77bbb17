"""The audit log's hash chain: an edited, deleted or inserted record is found, retention keeps the chain whole."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import time
from pathlib import Path

import anyio
import pytest

from gateway_core.audit import AuditLog, AuditQuery, CallOutcome, RecordKind, chain, journal, store
from gateway_core.audit.chain import head_path
from tests.gateway_core.audit.test_store import record


def written(path: Path, count: int, *, start: float | None = None) -> None:
    conn = store.open_writer(path)
    try:
        for i in range(count):
            at = (start if start is not None else time.time()) + i
            store.insert_records(conn, [record(f"c{i}", RecordKind.DECISION, time=at, reason=f"reason {i}")])
    finally:
        conn.close()


def tamper(path: Path, statement: str, *params: object) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute(statement, params)


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "audit.sqlite3"
    written(path, 10)
    return path


def test_an_untouched_log_is_intact(log: Path) -> None:
    report = store.verify_chain(log)

    assert report.intact and report.checked == 10 and report.uncovered == 0


@pytest.mark.parametrize(
    ("statement", "params", "broken_at"),
    [
        pytest.param("UPDATE records SET reason = ? WHERE id = ?", ("nothing to see", 4), 4, id="edited"),
        pytest.param("UPDATE records SET time = time - 1 WHERE id = ?", (7,), 7, id="edited-time"),
        pytest.param("DELETE FROM records WHERE id = ?", (5,), 6, id="deleted"),
        pytest.param(
            "INSERT INTO records (id, time, kind, call_id, agent, server, tool, latency_s, arguments, hash) "
            "SELECT 100, time, kind, 'x', agent, server, tool, latency_s, arguments, hash FROM records WHERE id = ?",
            (10,),
            100,
            id="inserted",
        ),
        pytest.param("UPDATE records SET hash = NULL WHERE id = ?", (2,), 2, id="hash-removed"),
    ],
)
def test_a_changed_record_is_named_as_the_first_broken_link(
    log: Path, statement: str, params: tuple[object, ...], broken_at: int
) -> None:
    tamper(log, statement, *params)

    report = store.verify_chain(log)

    assert not report.intact
    assert report.problem is not None and report.problem.startswith(f"the chain breaks at record {broken_at}:")


def test_deleting_the_newest_records_shows_and_stays_visible_after_more_are_written(log: Path) -> None:
    tamper(log, "DELETE FROM records WHERE id > ?", 7)

    assert store.verify_chain(log).problem == (
        "the newest records were deleted: the head file names record 10, the log ends at record 7"
    )
    written(log, 3)
    report = store.verify_chain(log)
    assert report.problem is not None and report.problem.startswith("the chain breaks at record 11:")


def test_a_log_whose_head_file_is_gone_is_not_intact(log: Path) -> None:
    head_path(log).unlink()

    assert "head file audit.sqlite3.head is missing" in (store.verify_chain(log).problem or "")


def test_a_log_replaced_by_a_rewritten_one_does_not_match_its_head(log: Path) -> None:
    head = json.loads(head_path(log).read_text())
    head_path(log).write_text(json.dumps({"id": head["id"], "hash": "f" * 64}))

    assert store.verify_chain(log).problem == "record 10 does not match the head file: the log was rewritten"


def test_retention_keeps_the_chain_verifiable_with_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite3"
    written(path, 10, start=1000.0)
    conn = store.open_writer(path)
    try:
        deleted = store.prune(conn, older_than=1004.5, max_bytes=10**9)
        store.insert_records(conn, [record("new", RecordKind.DECISION)])
    finally:
        conn.close()

    report = store.verify_chain(path)
    assert deleted == 5
    assert report.intact and report.checked == 6
    tamper(path, "DELETE FROM records WHERE id = ?", 6)  # the oldest one left
    assert (store.verify_chain(path).problem or "").startswith("the chain breaks at record 7:")


def test_retention_that_empties_the_log_leaves_it_intact(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite3"
    written(path, 3, start=1000.0)
    conn = store.open_writer(path)
    try:
        store.prune(conn, older_than=time.time(), max_bytes=10**9)
    finally:
        conn.close()

    assert store.verify_chain(path).intact


def test_records_from_before_the_chain_are_reported_as_not_covered(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite3"
    written(path, 4)
    with sqlite3.connect(path) as conn:  # as an older Toolgate left it: schema 1, no hashes
        conn.execute("UPDATE records SET hash = NULL")
        conn.execute("DROP TABLE chain_checkpoint")
        conn.execute("ALTER TABLE records DROP COLUMN hash")
        conn.execute("UPDATE schema_version SET version = 1")
    head_path(path).unlink()
    assert store.verify_chain(path).uncovered == 4

    written(path, 2)

    report = store.verify_chain(path)
    assert report.intact and (report.checked, report.uncovered) == (2, 4)


def test_a_record_hashes_and_journals_to_the_same_bytes_as_before_so_existing_logs_still_verify() -> None:
    # Both values were produced by the code before the audit log's serializers were built once (10319ec).
    row = (7, 1764746847.125, "decision", "c1", "bench", "echo", "echo", "allow", "echo/ec* → allow", "rule allows it")
    row += (None, None, 0.0, None, 40, '{"text": "héllo"}')
    decision = record("c1", RecordKind.DECISION, time=1764746847.125, rule="echo/ec* → allow")

    assert chain.record_hash(chain.GENESIS, row) == "d492f81faaab4a1eda1bf8b7b444216069e5b690c3841c553022b823f30bb2a5"
    assert (
        journal.encode(dataclasses.replace(decision, arguments='{"text": "héllo"}'))
        == (
            '{"time":1764746847.125,"kind":"decision","call_id":"c1","agent":"a","server":"s","tool":"t",'
            '"effect":"allow","rule":"echo/ec* → allow","reason":"allowed","answer":null,"waited_s":null,'
            '"latency_s":0.0,"outcome":null,"result_size":null,"arguments":"{\\"text\\": \\"héllo\\"}"}\n'
        ).encode()
    )


class _Seconds(float):
    """A float subclass, which json writes by its own path."""


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"reason": 'quotes " and \\ back\nslash\t\x00 → ünïcödé 🐍', "arguments": '{"a": "\\u2028 \u2028"}'},
        {"time": 0.1 + 0.2, "latency_s": 1e-07, "waited_s": 12345678901234.5, "result_size": 2**70},
        {"latency_s": float("nan"), "waited_s": float("inf"), "time": -0.0, "result_size": True},
        {"latency_s": _Seconds(2.5), "kind": RecordKind.OUTCOME, "outcome": CallOutcome.TOOL_ERROR, "effect": None},
    ],
)
def test_a_records_journal_line_and_hash_are_the_bytes_json_writes_whatever_its_values_hold(
    changes: dict[str, object],
) -> None:
    values = dataclasses.replace(record("c1", RecordKind.DECISION, time=1764746847.125), **changes)
    columns = tuple(getattr(values, name) for name in store.RECORD_COLUMNS)

    line, columns_json = journal.encode_values(columns)

    as_json = dict(zip(store.RECORD_COLUMNS, columns, strict=True))
    assert line == json.dumps(as_json, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
    assert chain.record_hash_of(chain.GENESIS, 7, columns_json) == chain.record_hash(chain.GENESIS, (7, *columns))
    assert chain.record_hash_of(chain.GENESIS, 7, columns_json.encode()) == chain.record_hash(
        chain.GENESIS, (7, *columns)
    )


@pytest.mark.anyio
async def test_records_the_gateway_writes_chain_as_records_written_one_by_one_do(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite3"
    async with anyio.create_task_group() as tg:
        log = AuditLog(path)
        await tg.start(log.run)
        await log.record_decision(
            call_id="c1",
            agent="a",
            server="s",
            tool="t",
            effect="allow",
            rule="r → allow",
            reason='"why" ✓',
            arguments={"text": "ünïcödé\n", "n": 1.5},
        )
        log.record_outcome(
            call_id="c1",
            agent="a",
            server="s",
            tool="t",
            outcome="ok",
            latency_s=0.1 + 0.2,
            result_size=40,
            effect="allow",
            rule="r → allow",
        )
        log.record_notice(agent="*", server="s", tool="t", effect="ask", rule="changed", reason="it changed")
        await log.query(AuditQuery())
        tg.cancel_scope.cancel()

    with sqlite3.connect(path) as conn:
        stored = conn.execute(f"SELECT id, {', '.join(store.RECORD_COLUMNS)}, hash FROM records ORDER BY id").fetchall()
    previous = chain.GENESIS
    for row in stored:
        previous = chain.record_hash(previous, row[:-1])
        assert row[-1] == previous
    assert len(stored) == 4
    assert store.verify_chain(path).intact

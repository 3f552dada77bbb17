import os
import time

import pytest

from gateway_core.audit import AuditQuery, AuditRecord, CallOutcome, RecordKind, chain, new_call_id, records, store


def record(call_id: str, kind: RecordKind, **values) -> AuditRecord:
    base = {
        "id": 0,
        "time": time.time(),
        "kind": kind,
        "call_id": call_id,
        "agent": "a",
        "server": "s",
        "tool": "t",
        "effect": "allow",
        "rule": "default → allow",
        "reason": "allowed",
        "answer": None,
        "waited_s": None,
        "latency_s": 0.0,
        "outcome": None,
        "result_size": None,
        "arguments": "{}",
    }
    return AuditRecord(**(base | values))


def test_call_ids_select_both_halves_of_exactly_those_calls_however_far_apart(tmp_path):
    path = tmp_path / "audit.sqlite3"
    conn = store.open_writer(path)
    try:
        records = [record("slow", RecordKind.DECISION)]
        records += [record(f"other{n}", RecordKind.DECISION) for n in range(300)]
        records.append(record("slow", RecordKind.OUTCOME, outcome=CallOutcome.OK))
        store.insert_records(conn, records)
    finally:
        conn.close()

    found = store.read_records(path, AuditQuery(call_ids=("slow", "other7")))

    assert sorted((r.call_id, r.kind) for r in found) == [
        ("other7", RecordKind.DECISION),
        ("slow", RecordKind.DECISION),
        ("slow", RecordKind.OUTCOME),
    ]
    assert store.read_records(path, AuditQuery(call_ids=())) == []


def test_call_ids_are_32_hex_digits_and_those_made_later_sort_later() -> None:
    # Sorted ids make the audit log's call_id index grow at its end: a group commit writes a page or
    # two of it instead of a page per record.
    ids = [new_call_id() for _ in range(2000)]

    assert all(len(call_id) == 32 and int(call_id, 16) >= 0 for call_id in ids)
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    assert new_call_id()[:14] > format((time.time_ns() - 10**9) // 1000, "014x")  # the time leads


def test_call_ids_read_their_random_bits_in_blocks_and_never_repeat_one() -> None:
    ids = [new_call_id() for _ in range(3 * records._RANDOM_PARTS_PER_READ + 5)]

    random_parts = [call_id[14:] for call_id in ids]
    assert len(set(random_parts)) == len(ids)
    assert all(len(part) == 18 and int(part, 16) >= 0 for part in random_parts)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_a_forked_process_makes_call_ids_of_its_own_not_those_its_parent_read_ahead() -> None:
    new_call_id()  # the parent has read a block it has not handed out yet
    reading, writing = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child
        os.write(writing, new_call_id()[14:].encode())
        os._exit(0)
    os.close(writing)
    try:
        from_child = os.read(reading, 64).decode()
    finally:
        os.close(reading)
        os.waitpid(child, 0)

    assert len(from_child) == 18
    assert from_child != new_call_id()[14:]


def test_a_batch_of_more_records_than_one_insert_takes_is_stored_whole_in_order_and_chained(tmp_path) -> None:
    path = tmp_path / "audit.sqlite3"
    count = 2 * store.INSERT_ROWS + 5
    conn = store.open_writer(path)
    try:
        written = store.insert_records(
            conn, [record(f"c{n}", RecordKind.DECISION, latency_s=n / 7) for n in range(count)]
        )
        later = store.insert_records(conn, [record("last", RecordKind.OUTCOME, outcome=CallOutcome.OK)])
    finally:
        conn.close()

    stored = store.read_records(path, AuditQuery(limit=1000))
    assert [(r.id, r.call_id, r.latency_s) for r in reversed(stored)] == [
        (n + 1, f"c{n}", n / 7) for n in range(count)
    ] + [(count + 1, "last", 0.0)]
    assert [r.id for r in written + later] == list(range(1, count + 2))
    assert store.verify_chain(path) == chain.ChainReport(count + 1, 0, None)

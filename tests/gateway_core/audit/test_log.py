from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
import sys
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from gateway_core.audit import AuditLog, AuditQuery, AuditRecord, AuditStatus, CallOutcome, RecordKind
from gateway_core.audit import log as audit_log
from gateway_core.audit.journal import journal_paths
from gateway_core.paths import Paths

REPO_ROOT = Path(__file__).resolve().parents[3]


@asynccontextmanager
async def running(log: AuditLog) -> AsyncIterator[AuditLog]:
    async with anyio.create_task_group() as tg:
        with anyio.fail_after(10):
            await tg.start(log.run)
        yield log
        tg.cancel_scope.cancel()


async def decide(log: AuditLog, call_id: str, **overrides: str) -> None:
    fields = {"agent": "cursor", "server": "github", "tool": "create_issue", "effect": "allow"}
    fields.update(overrides)
    await log.record_decision(
        call_id=call_id,
        rule="github/* → allow",
        reason="github/* allows every github tool",
        arguments={"repo": "octo/hello", "token": "ghp_secret"},
        **fields,
    )


async def committed(log: AuditLog, call_id: str) -> None:
    """A decision, then a query, which waits for the group commit that writes it (or fails to)."""
    await decide(log, call_id)
    await log.query(AuditQuery(limit=1))


def rows(path: Path, sql: str = "SELECT call_id, kind FROM records ORDER BY id") -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def journal_lines(path: Path) -> list[dict[str, Any]]:
    """Every whole record line in the journal files of the audit database ``path``."""
    lines: list[dict[str, Any]] = []
    for file in journal_paths(path):
        if file.exists():
            lines += [json.loads(line) for line in file.read_bytes().splitlines()]
    return lines


@pytest.mark.anyio
async def test_a_decision_is_in_the_journal_when_record_decision_returns_and_committed_by_the_next_group_commit() -> (
    None
):
    path = Paths.from_env().audit_db
    async with running(AuditLog(path)) as log:
        await decide(log, "c1")
        journaled = [(line["call_id"], line["kind"]) for line in journal_lines(path)]

        await log.query(AuditQuery())  # a query first commits what was recorded before it
        stored = rows(path, "SELECT call_id, kind, agent, server, tool, effect, rule, outcome, arguments FROM records")

    assert journaled == [("c1", "decision")]
    assert stored == [
        (
            "c1",
            "decision",
            "cursor",
            "github",
            "create_issue",
            "allow",
            "github/* → allow",
            None,
            '{"repo": "octo/hello", "token": "[redacted]"}',
        )
    ]
    assert not any(file.exists() for file in journal_paths(path))


@pytest.mark.anyio
async def test_records_made_while_the_writer_waits_for_its_next_group_commit_do_not_wake_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A window longer than the test: only the queries' flushes commit anything.
    monkeypatch.setattr(audit_log, "FLUSH_DELAY_S", 60.0)
    async with running(AuditLog(tmp_path / "audit.sqlite3")) as log:
        wakes: list[int] = []
        notify = log._wakeup.notify
        monkeypatch.setattr(log._wakeup, "notify", lambda n=1: (wakes.append(n), notify(n))[1])
        await decide(log, "c1")  # the writer is idle: this wakes it
        await log.query(AuditQuery())  # the query's flush wakes it too, and c1 is committed
        woken = len(wakes)
        await decide(log, "c2")  # in the window before the next group commit: no wake-up
        await decide(log, "c3")
        stored = await log.query(AuditQuery())
        wakes_in_all = len(wakes)

    assert (woken, wakes_in_all) == (2, 3)
    assert [record.call_id for record in stored] == ["c3", "c2", "c1"]


@pytest.mark.anyio
async def test_the_database_uses_wal_and_records_its_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "new-folder" / "audit.sqlite3"
    async with running(AuditLog(path)):
        assert rows(path, "PRAGMA journal_mode") == [("wal",)]
        assert rows(path, "SELECT version FROM schema_version") == [(2,)]
    if os.name != "nt":
        assert path.stat().st_mode & 0o777 == 0o600
        assert path.parent.stat().st_mode & 0o777 == 0o700


@pytest.mark.anyio
async def test_many_concurrent_decisions_are_each_journaled_when_their_call_returns_and_all_committed(
    tmp_path: Path,
) -> None:
    path = tmp_path / "audit.sqlite3"
    returned: list[str] = []

    async def one(call_id: str) -> None:
        await decide(log, call_id)
        assert call_id in {line["call_id"] for line in journal_lines(path)} | {r[0] for r in rows(path)}
        returned.append(call_id)

    async with running(AuditLog(path)) as log, anyio.create_task_group() as tg:
        for i in range(200):
            tg.start_soon(one, f"c{i}")

    assert sorted(returned) == sorted(f"c{i}" for i in range(200))
    assert len(rows(path)) == 200


@pytest.mark.anyio
async def test_an_outcome_is_written_by_the_next_group_commit_with_its_call_id(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite3"
    async with running(AuditLog(path)) as log:
        await decide(log, "c1", effect="ask")
        log.record_outcome(
            call_id="c1",
            agent="cursor",
            server="github",
            tool="create_issue",
            outcome="ok",
            latency_s=0.25,
            result_size=123,
            answer="allow_once",
            waited_s=4.5,
            effect="ask",
            rule="default → ask",
        )
        await decide(log, "c2")

        records = await log.query(AuditQuery())

    outcome = next(r for r in records if r.kind is RecordKind.OUTCOME)
    assert outcome.call_id == "c1"
    assert outcome.outcome is CallOutcome.OK
    assert (outcome.latency_s, outcome.result_size, outcome.answer, outcome.waited_s) == (0.25, 123, "allow_once", 4.5)
    assert [r.call_id for r in records] == ["c2", "c1", "c1"]


@pytest.mark.anyio
async def test_outcomes_queued_before_shutdown_are_flushed_when_the_log_stops(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite3"
    async with running(AuditLog(path)) as log:
        for i in range(50):
            log.record_outcome(call_id=f"c{i}", agent="a", server="s", tool="t", outcome="denied", latency_s=0.0)

    assert len(rows(path)) == 50


@pytest.mark.anyio
async def test_queries_filter_by_agent_server_tool_outcome_time_and_text(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite3"
    async with running(AuditLog(path)) as log:
        await decide(log, "c1", agent="cursor", server="github", tool="create_issue")
        await decide(log, "c2", agent="claude", server="github", tool="list_repos")
        await decide(log, "c3", agent="claude", server="fs", tool="read_file", effect="deny")
        log.record_outcome(call_id="c3", agent="claude", server="fs", tool="read_file", outcome="denied", latency_s=0)
        await decide(log, "c4", agent="cursor", server="fs", tool="write_file")
        everything = await log.query(AuditQuery())
        middle = everything[2].time

        def ids(records: list[AuditRecord]) -> list[str]:
            return [r.call_id for r in records]

        assert ids(await log.query(AuditQuery(agent="claude"))) == ["c3", "c3", "c2"]
        assert ids(await log.query(AuditQuery(server="github"))) == ["c2", "c1"]
        assert ids(await log.query(AuditQuery(tool="read_file"))) == ["c3", "c3"]
        assert ids(await log.query(AuditQuery(outcome="denied"))) == ["c3"]
        assert ids(await log.query(AuditQuery(text="FILE"))) == ["c4", "c3", "c3"]
        assert ids(await log.query(AuditQuery(text="octo/hel"))) == ["c4", "c3", "c2", "c1"]
        assert ids(await log.query(AuditQuery(text="%"))) == []
        assert ids(await log.query(AuditQuery(since=middle))) == ids(everything[:3])
        assert ids(await log.query(AuditQuery(until=middle))) == ids(everything[3:])


@pytest.mark.anyio
async def test_queries_page_newest_first_with_before_id(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite3"
    async with running(AuditLog(path)) as log:
        for i in range(7):
            await decide(log, f"c{i}")
        first = await log.query(AuditQuery(limit=3))
        second = await log.query(AuditQuery(limit=3, before_id=first[-1].id))
        third = await log.query(AuditQuery(limit=3, before_id=second[-1].id))

    assert [r.call_id for r in first + second + third] == [f"c{i}" for i in range(6, -1, -1)]
    assert len(third) == 1


@pytest.mark.anyio
async def test_a_query_before_the_database_exists_finds_nothing(tmp_path: Path) -> None:
    assert await AuditLog(tmp_path / "audit.sqlite3").query(AuditQuery()) == []


@pytest.mark.anyio
async def test_each_committed_record_is_handed_on_once_in_order_with_its_id(tmp_path: Path) -> None:
    written: list[AuditRecord] = []
    both = anyio.Event()

    def on_written(records: tuple[AuditRecord, ...]) -> None:
        written.extend(records)
        if len(written) >= 2:
            both.set()

    async with running(AuditLog(tmp_path / "audit.sqlite3", on_written=on_written)) as log:
        await decide(log, "c1")
        log.record_outcome(call_id="c1", agent="cursor", server="github", tool="t", outcome="ok", latency_s=0.1)
        with anyio.fail_after(5):
            await both.wait()

    first, second = written
    assert (first.call_id, first.kind, first.id > 0) == ("c1", RecordKind.DECISION, True)
    assert (second.call_id, second.kind, second.id > first.id) == ("c1", RecordKind.OUTCOME, True)


@pytest.mark.anyio
async def test_records_older_than_the_retention_are_deleted_when_the_log_starts(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite3"
    async with running(AuditLog(path)) as log:
        for i in range(4):
            await decide(log, f"c{i}")
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE records SET time = time - 3 * 86400 WHERE call_id IN ('c0', 'c1')")
    conn.close()

    async with running(AuditLog(path, retention_days=2)):
        kept = rows(path, "SELECT call_id FROM records ORDER BY id")

    assert kept == [("c2",), ("c3",)]


@pytest.mark.anyio
async def test_over_the_size_cap_the_oldest_records_are_deleted_until_the_file_fits(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite3"
    async with running(AuditLog(path)) as log:
        for i in range(3000):
            log.record_outcome(call_id=f"c{i:04}", agent="a" * 100, server="s", tool="t", outcome="ok", latency_s=0)
        await decide(log, "last")
    page_size, pages_before = rows(path, "PRAGMA page_size")[0][0], rows(path, "PRAGMA page_count")[0][0]
    assert pages_before * page_size > 400_000

    cap_mb = 0.25
    async with running(AuditLog(path, max_size_mb=cap_mb)):
        pages_after = rows(path, "PRAGMA page_count")[0][0]
        kept = rows(path, "SELECT call_id FROM records ORDER BY id")

    assert pages_after * page_size <= cap_mb * 1024 * 1024
    assert kept[-1] == ("last",)
    assert 100 < len(kept) < 3000
    assert [c for (c,) in kept[:-1]] == [f"c{i:04}" for i in range(3001 - len(kept), 3000)]


@pytest.mark.anyio
async def test_a_locked_database_makes_the_log_unhealthy_and_it_recovers_once_writable(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "audit.sqlite3"
    statuses: list[AuditStatus] = []
    async with running(AuditLog(path, on_status=statuses.append)) as log:
        await committed(log, "before")
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        with caplog.at_level(logging.INFO, logger="gateway_core.audit"):
            await committed(log, "while-locked")
            locked = log.status
            await committed(log, "still-locked")
            blocker.execute("ROLLBACK")
            blocker.close()
            await committed(log, "after")

        recovered = log.status

    assert locked == AuditStatus(False, f"the audit log cannot be written: database is locked ({path})")
    assert recovered == AuditStatus(True, None)
    assert statuses == [locked, recovered]
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", f"The audit log cannot be written: database is locked ({path})"),
        ("INFO", f"The audit log is being written again: {path}"),
    ]
    assert rows(path, "SELECT call_id FROM records ORDER BY id") == [("before",), ("after",)]


@pytest.mark.anyio
async def test_a_log_that_cannot_be_created_says_why_and_starts_writing_once_it_can(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "data"
    blocked.write_text("a file where the audit folder should be")
    path = blocked / "audit.sqlite3"
    with caplog.at_level(logging.WARNING, logger="gateway_core.audit"):
        async with running(AuditLog(path)) as log:
            opening = log.status
            await committed(log, "lost")
            blocked.unlink()
            await committed(log, "kept")
            recovered = log.status

    assert not opening.healthy
    assert opening.problem is not None
    assert opening.problem.startswith("the audit log cannot be written: ")
    assert opening.problem.endswith(f"({path})")
    assert len(caplog.records) == 1
    assert recovered.healthy
    assert rows(path, "SELECT call_id FROM records") == [("kept",)]


@pytest.mark.anyio
async def test_recording_while_the_log_is_not_running_is_reported_and_does_not_block(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = AuditLog(tmp_path / "audit.sqlite3")

    with caplog.at_level(logging.WARNING, logger="gateway_core.audit"), anyio.fail_after(5):
        await decide(log, "c1")

    assert not log.status.healthy
    assert "not running" in (log.status.problem or "")


@pytest.mark.anyio
async def test_a_lone_surrogate_in_a_calls_arguments_is_recorded_written_out_and_the_log_keeps_writing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "audit.sqlite3"
    async with running(AuditLog(path)) as log:
        await log.record_decision(
            call_id="odd",
            agent="a",
            server="s",
            tool="t\ud800",
            effect="allow",
            rule="default → allow",
            reason="r",
            arguments={"text": "half a pair: \ud800"},
        )
        await decide(log, "next")
        stored = [(r.call_id, r.tool, r.arguments) for r in await log.query(AuditQuery())]

    assert stored == [
        ("next", "create_issue", '{"repo": "octo/hello", "token": "[redacted]"}'),
        ("odd", "t\\ud800", '{"text": "half a pair: \\ud800"}'),
    ]
    assert log.status.healthy


@pytest.mark.anyio
async def test_an_unknown_effect_or_outcome_is_a_programming_error(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.sqlite3")

    with pytest.raises(ValueError, match="unknown effect"):
        await decide(log, "c1", effect="maybe")
    with pytest.raises(ValueError, match="finished"):
        log.record_outcome(call_id="c1", agent="a", server="s", tool="t", outcome="finished", latency_s=0)


_CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    import anyio
    from gateway_core.audit import AuditLog

    async def main() -> None:
        log = AuditLog(Path(sys.argv[1]))
        async with anyio.create_task_group() as tg:
            await tg.start(log.run)
            await log.record_decision(
                call_id="survivor", agent="a", server="s", tool="t", effect="allow",
                rule="default → allow", reason="r", arguments=None,
            )
            os.kill(os.getpid(), signal.SIGKILL)

    anyio.run(main)
    """
)


@pytest.mark.skipif(os.name == "nt", reason="SIGKILL is POSIX")
@pytest.mark.anyio
async def test_a_recorded_decision_survives_the_process_being_killed_and_is_folded_in_at_the_next_start(
    tmp_path: Path,
) -> None:
    path = tmp_path / "audit.sqlite3"

    with anyio.fail_after(60):
        child = await anyio.run_process([sys.executable, "-c", _CHILD, str(path)], cwd=REPO_ROOT, check=False)
    assert child.returncode == -signal.SIGKILL, child.stderr
    async with running(AuditLog(path)):
        folded = rows(path, "SELECT call_id FROM records")

    assert folded == [("survivor",)]
    assert not any(file.exists() for file in journal_paths(path))


def record_line(call_id: str, kind: str, at: float) -> bytes:
    fields = {
        "time": at,
        "kind": kind,
        "call_id": call_id,
        "agent": "a",
        "server": "s",
        "tool": "t",
        "effect": "allow",
        "rule": "default → allow",
        "reason": "r",
        "answer": None,
        "waited_s": None,
        "latency_s": 0.0,
        "outcome": "ok" if kind == "outcome" else None,
        "result_size": None,
        "arguments": "",
    }
    return json.dumps(fields).encode() + b"\n"


@pytest.mark.anyio
async def test_a_journal_line_a_crash_cut_short_is_skipped_and_reported_and_the_whole_ones_are_folded_in(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "audit.sqlite3"
    first, second = journal_paths(path)
    whole = record_line("whole", "decision", 1000.0) + record_line("whole", "outcome", 1001.0)
    first.write_bytes(whole + record_line("torn", "decision", 1002.0)[:40])
    second.write_bytes(record_line("other", "decision", 1000.5) + b'{"time": 1003.0, "kind": "deci\n')

    with caplog.at_level(logging.INFO, logger="gateway_core.audit"):
        async with running(AuditLog(path, retention_days=365 * 100)) as log:
            shown = [(r.call_id, r.kind.value) for r in await log.query(AuditQuery())]

    assert shown == [("whole", "outcome"), ("other", "decision"), ("whole", "decision")]
    assert "Skipped 2 audit journal line(s) a crash cut short" in caplog.text
    assert "Folded 3 audit record(s) left by a crash" in caplog.text


@pytest.mark.anyio
async def test_journal_records_already_committed_before_a_crash_are_not_stored_twice(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite3"
    async with running(AuditLog(path, retention_days=365 * 100)) as log:
        await decide(log, "committed")
    stored = await AuditLog(path).query(AuditQuery())
    # A crash between the commit and the emptying of the journal leaves the committed line behind.
    line = record_line("committed", "decision", stored[0].time)
    journal_paths(path)[1].write_bytes(line + record_line("new", "decision", stored[0].time + 1))

    async with running(AuditLog(path, retention_days=365 * 100)):
        kept = rows(path, "SELECT call_id FROM records ORDER BY id")

    assert kept == [("committed",), ("new",)]


@pytest.mark.skipif(os.name == "nt", reason="symbolic links need privileges on Windows")
@pytest.mark.anyio
async def test_a_link_planted_where_the_journal_goes_is_never_written_through_and_records_still_reach_the_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "audit.sqlite3"
    target = tmp_path / "elsewhere.txt"
    target.write_text("not yours")
    journal_paths(path)[0].symlink_to(target)

    with caplog.at_level(logging.WARNING, logger="gateway_core.audit"):
        async with running(AuditLog(path)) as log:
            await decide(log, "c1")

    assert target.read_text() == "not yours"
    assert rows(path, "SELECT call_id FROM records") == [("c1",)]
    assert "The audit journal cannot be used" in caplog.text

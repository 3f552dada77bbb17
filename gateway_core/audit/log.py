"""``AuditLog``: commits every decision before the call goes on, and queues every outcome.

One writer thread owns the write connection. Callers queue records; the thread takes everything
queued, writes it in one transaction (group commit), commits, and only then wakes the waiting
callers on the event loop. ``run()`` starts the thread and, when cancelled, flushes and closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from enum import Enum
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import TaskStatus

from gateway_core.audit import store
from gateway_core.audit.records import EFFECTS, AuditQuery, AuditRecord, AuditStatus, CallOutcome, RecordKind
from gateway_core.audit.summary import summarize_arguments

logger = logging.getLogger(__name__)

# Retention runs at start, then this often, and after this many inserts (a busy gateway fills the cap sooner).
RETENTION_INTERVAL_S = 600.0
RETENTION_EVERY_INSERTS = 5000
# Outcomes wait at most this long to share a transaction with the next decision: one commit per call,
# not two, and no writer thread competing with the event loop while it sends the result.
OUTCOME_FLUSH_DELAY_S = 0.05
# Closing waits this long for the last records to be flushed; a stuck disk must not hang shutdown.
SHUTDOWN_TIMEOUT_S = 5.0
_SECONDS_PER_DAY = 86400.0

_Waiter = asyncio.Future[None]


class AuditLog:
    """The audit log of one running gateway: a SQLite file written by a dedicated thread.

    Writing never raises for disk problems: a failed write makes ``status`` unhealthy, logs a
    warning once per new problem, and the records of that transaction are lost; the next
    successful write makes it healthy again.

    Args:
        path: the database file (``Paths.audit_db``); it and its folder are created when needed.
        retention_days: records older than this are deleted.
        max_size_mb: when the file grows past this, the oldest records are deleted.
        on_status: called on the event loop whenever ``status`` changes.
        on_written: called on the event loop with the records each transaction committed, oldest first.
    """

    def __init__(
        self,
        path: Path,
        *,
        retention_days: float = 30,
        max_size_mb: float = 200,
        on_status: Callable[[AuditStatus], None] | None = None,
        on_written: Callable[[tuple[AuditRecord, ...]], None] | None = None,
    ) -> None:
        self._path = path
        self._retention_s = retention_days * _SECONDS_PER_DAY
        self._max_bytes = int(max_size_mb * 1024 * 1024)
        self._on_status = on_status
        self._on_written = on_written
        self._status = AuditStatus(healthy=True)
        self._lock = threading.Lock()
        self._wakeup = threading.Condition(self._lock)
        self._pending: list[tuple[AuditRecord, _Waiter | None]] = []
        self._first_pending_at = 0.0
        self._decision_waiting = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    @property
    def status(self) -> AuditStatus:
        """Whether records are being committed, and if not, why."""
        return self._status

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Open the database in the writer thread and write records until cancelled.

        Signals ``task_status.started()`` once the file is open and old records are pruned (or the
        opening failed, which ``status`` then says). On cancellation, the records queued so far are
        written and the file is closed, waiting at most ``SHUTDOWN_TIMEOUT_S``.

        Raises:
            RuntimeError: this log is already running.
        """
        if self._loop is not None:
            raise RuntimeError("this AuditLog is already running")
        loop = asyncio.get_running_loop()
        ready = anyio.Event()
        finished = anyio.Event()
        self._loop = loop
        self._stopping = False
        thread = threading.Thread(
            target=self._write_until_stopped,
            args=(loop, ready.set, finished.set),
            name="toolgate-audit-writer",
            daemon=True,
        )
        thread.start()
        try:
            await ready.wait()
            task_status.started()
            await anyio.sleep_forever()
        finally:
            with self._lock:
                self._stopping = True
                self._wakeup.notify()
            with anyio.move_on_after(SHUTDOWN_TIMEOUT_S, shield=True):
                await finished.wait()
            if not finished.is_set():
                logger.warning("The audit log did not finish writing within %.0f s: %s", SHUTDOWN_TIMEOUT_S, self._path)
            self._loop = None

    async def record_decision(
        self,
        *,
        call_id: str,
        agent: str,
        server: str,
        tool: str,
        effect: str,
        rule: str,
        reason: str,
        arguments: Mapping[str, Any] | None,
    ) -> None:
        """Record the policy's decision on a call; returns once the record is committed.

        Concurrent callers share one transaction. Disk problems do not raise: they show in ``status``.

        Args:
            call_id: the call's id, shared with its outcome record.
            agent: the calling agent's id.
            server: the downstream server's name.
            tool: the tool's upstream name.
            effect: ``"allow"``, ``"ask"`` or ``"deny"``.
            rule: the deciding rule, e.g. ``"github/* → allow"``.
            reason: the policy's sentence.
            arguments: the call's arguments; only a redacted summary is stored.

        Raises:
            ValueError: ``effect`` is not one of the three effects.
        """
        record = AuditRecord(
            id=0,
            time=time.time(),
            kind=RecordKind.DECISION,
            call_id=call_id,
            agent=agent,
            server=server,
            tool=tool,
            effect=_effect(effect),
            rule=rule,
            reason=reason,
            answer=None,
            waited_s=None,
            latency_s=0.0,
            outcome=None,
            result_size=None,
            arguments=summarize_arguments(arguments),
        )
        waiter: _Waiter = asyncio.get_running_loop().create_future()
        if self._enqueue(record, waiter):
            await waiter

    def record_outcome(
        self,
        *,
        call_id: str,
        agent: str,
        server: str,
        tool: str,
        outcome: str,
        latency_s: float,
        result_size: int | None = None,
        answer: str | None = None,
        waited_s: float | None = None,
        effect: str | None = None,
        rule: str | None = None,
        reason: str | None = None,
    ) -> None:
        """Queue the outcome of a call; the next group commit writes it. Never blocks.

        Args:
            call_id: the id of the call's decision record.
            agent: the calling agent's id.
            server: the downstream server's name.
            tool: the tool's upstream name.
            outcome: one of ``CallOutcome``'s values, e.g. ``"ok"`` or ``"denied"``.
            latency_s: how long the call took.
            result_size: the result's size in bytes.
            answer: the approval answer, if the call was asked about.
            waited_s: how long the approval took, if the call was asked about.
            effect: the decision's effect.
            rule: the deciding rule.
            reason: the policy's sentence.

        Raises:
            ValueError: ``outcome`` or ``effect`` is not a known value.
        """
        record = AuditRecord(
            id=0,
            time=time.time(),
            kind=RecordKind.OUTCOME,
            call_id=call_id,
            agent=agent,
            server=server,
            tool=tool,
            effect=None if effect is None else _effect(effect),
            rule=rule,
            reason=reason,
            answer=answer,
            waited_s=waited_s,
            latency_s=latency_s,
            outcome=CallOutcome(_value(outcome)),
            result_size=result_size,
            arguments="",
        )
        self._enqueue(record, None)

    async def query(self, q: AuditQuery) -> list[AuditRecord]:
        """Read records, newest first, on a separate read-only connection in a worker thread.

        Returns:
            The records ``q`` selects; none if the database does not exist yet.

        Raises:
            sqlite3.Error: the file cannot be read.
        """
        try:
            return await anyio.to_thread.run_sync(store.read_records, self._path, q)
        except FileNotFoundError:
            return []

    # -- the event loop's side ------------------------------------------------------------------

    def _enqueue(self, record: AuditRecord, waiter: _Waiter | None) -> bool:
        with self._lock:
            running = self._loop is not None and not self._stopping
            if running:
                if not self._pending:
                    self._first_pending_at = time.monotonic()
                    self._wakeup.notify()
                self._pending.append((record, waiter))
                if waiter is not None:
                    # A caller waits for this commit; outcomes alone can wait for company.
                    self._decision_waiting = True
                    self._wakeup.notify()
        if not running:
            self._report(f"the audit log is not running, so records are not written ({self._path})")
        return running

    def _committed(self, records: list[AuditRecord], waiters: list[_Waiter], problem: str | None) -> None:
        self._report(problem)
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
        if records and self._on_written is not None:
            self._on_written(tuple(records))

    def _report(self, problem: str | None) -> None:
        if problem == self._status.problem:
            return
        if problem is None:
            logger.info("The audit log is being written again: %s", self._path)
        else:
            logger.warning("%s", problem[:1].upper() + problem[1:])
        self._status = AuditStatus(healthy=problem is None, problem=problem)
        if self._on_status is not None:
            self._on_status(self._status)

    # -- the writer thread ----------------------------------------------------------------------

    def _write_until_stopped(
        self, loop: asyncio.AbstractEventLoop, ready: Callable[[], None], finished: Callable[[], None]
    ) -> None:
        conn: sqlite3.Connection | None = None
        try:
            conn, problem = self._open()
            if conn is not None:
                problem = self._prune(conn)
            _post(loop, self._report, problem)
            _post(loop, ready)
            next_prune = time.monotonic() + RETENTION_INTERVAL_S
            inserted = 0
            while True:
                with self._lock:
                    self._wait_for_work(next_prune)
                    batch, self._pending = self._pending, []
                    self._decision_waiting = False
                    stopping = self._stopping
                if batch:
                    conn = self._write(loop, conn, batch)
                    inserted += len(batch)
                if conn is not None and (time.monotonic() >= next_prune or inserted >= RETENTION_EVERY_INSERTS):
                    problem = self._prune(conn)
                    if problem is not None:
                        _post(loop, self._report, problem)
                    next_prune = time.monotonic() + RETENTION_INTERVAL_S
                    inserted = 0
                elif conn is None and time.monotonic() >= next_prune:
                    next_prune = time.monotonic() + RETENTION_INTERVAL_S
                if stopping:
                    break
        finally:
            if conn is not None:
                conn.close()
            _post(loop, finished)

    def _wait_for_work(self, next_prune: float) -> None:
        """Sleep (holding the condition) until a decision waits, outcomes are due, pruning is due, or stop."""
        while not self._stopping and not self._decision_waiting:
            now = time.monotonic()
            if now >= next_prune:
                return
            if self._pending:
                due = self._first_pending_at + OUTCOME_FLUSH_DELAY_S
                if now >= due:
                    return
                self._wakeup.wait(min(due, next_prune) - now)
            else:
                self._wakeup.wait(next_prune - now)

    def _open(self) -> tuple[sqlite3.Connection | None, str | None]:
        try:
            return store.open_writer(self._path), None
        except (sqlite3.Error, OSError) as exc:
            return None, self._problem(exc)

    def _write(
        self,
        loop: asyncio.AbstractEventLoop,
        conn: sqlite3.Connection | None,
        batch: list[tuple[AuditRecord, _Waiter | None]],
    ) -> sqlite3.Connection | None:
        committed: list[AuditRecord] = []
        problem: str | None = None
        if conn is None:
            conn, problem = self._open()
        if conn is not None:
            try:
                committed = store.insert_records(conn, [record for record, _ in batch])
            except sqlite3.Error as exc:
                problem = self._problem(exc)
        _post(loop, self._committed, committed, [waiter for _, waiter in batch if waiter is not None], problem)
        return conn

    def _prune(self, conn: sqlite3.Connection) -> str | None:
        try:
            deleted = store.prune(conn, older_than=time.time() - self._retention_s, max_bytes=self._max_bytes)
        except sqlite3.Error as exc:
            return self._problem(exc)
        if deleted:
            logger.debug("Deleted %d old audit records from %s", deleted, self._path)
        return None

    def _problem(self, exc: sqlite3.Error | OSError) -> str:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return f"the audit log cannot be written: {reason} ({self._path})"


def _post(loop: asyncio.AbstractEventLoop, callback: Callable[..., None], *args: Any) -> None:
    # The loop may already be closed if shutdown gave up waiting for this thread.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(callback, *args)


def _value(value: str) -> str:
    return str(value.value) if isinstance(value, Enum) else value


def _effect(effect: str) -> str:
    text = _value(effect)
    if text not in EFFECTS:
        raise ValueError(f"unknown effect {effect!r}; expected one of {sorted(EFFECTS)}")
    return text

"""``AuditLog``: every record reaches the journal before the call goes on, and SQLite in group commits.

Recording a decision or an outcome appends one line to the journal with one ``write()`` on the
caller's thread (so a killed process loses nothing it recorded) and queues the record; it never
waits for SQLite. One writer thread owns the write connection: it takes everything queued, writes
it in one transaction (group commit) and empties the journal that held it. At start it folds in a
journal a crash left behind. ``run()`` starts the thread and, when cancelled, flushes and closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from enum import Enum
from json.encoder import encode_basestring
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import TaskStatus

from gateway_core.audit import journal, store
from gateway_core.audit.records import (
    EFFECTS,
    AuditQuery,
    AuditRecord,
    AuditStatus,
    CallOutcome,
    RecordKind,
    new_call_id,
)
from gateway_core.audit.summary import summarize_arguments

logger = logging.getLogger(__name__)

# Retention runs at start, then this often, and after this many inserts (a busy gateway fills the cap sooner).
RETENTION_INTERVAL_S = 600.0
RETENTION_EVERY_INSERTS = 5000
# Records wait at most this long to share a transaction with the ones after them: few commits, and
# no writer thread competing with the event loop on every call. The journal holds them meanwhile.
FLUSH_DELAY_S = 0.05
# A query waits at most this long for what was recorded before it to be committed.
FLUSH_WAIT_S = 5.0
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
        self._pending: list[store.Row] = []
        # When the writer next takes what is pending (the end of the window after a group commit, or
        # FLUSH_DELAY_S after a record found it idle); None while it is idle: the next record wakes it.
        self._due: float | None = None
        self._urgent = False
        self._flush_waiters: list[_Waiter] = []
        # The two journal files (appended to while the log runs), and which one takes appends now.
        self._journal_fds: tuple[int, int] | None = None
        self._active = 0
        self._recovered = False
        self._journal_warned = False
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

        Signals ``task_status.started()`` once the file is open, a journal left by a crash is folded
        in and old records are pruned (or the opening failed, which ``status`` then says). On
        cancellation, the records queued so far are written and the file is closed, waiting at most
        ``SHUTDOWN_TIMEOUT_S``; the journal is removed once everything in it is committed.

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
        self._due = None
        self._recovered = False
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
        """Record the policy's decision on a call; returns once the record is in the journal.

        The journal survives the process being killed; the writer commits the record to SQLite
        within ``FLUSH_DELAY_S``, in one transaction with the records around it. Disk problems do
        not raise: they show in ``status``. ``decide`` does the same without awaiting.

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
        self.decide(
            call_id=call_id,
            agent=agent,
            server=server,
            tool=tool,
            effect=effect,
            rule=rule,
            reason=reason,
            arguments=arguments,
        )

    def decide(
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
    ) -> AuditedCall:
        """``record_decision``, returning once the record is in the journal: the call, for its outcome (``finish``).

        Raises:
            ValueError: ``effect`` is not one of the three effects.
        """
        key = (agent, server, tool, effect, rule, reason)
        form = _FORMS.get(key) or _form(key)
        call_text = encode_basestring(call_id) if type(call_id) is str else journal.text(call_id)
        call = _NEW(AuditedCall)
        call.call_id, call.id_text, call.form = call_id, call_text, form
        call.agent, call.server, call.tool, call.effect, call.rule = form.columns
        now, summary = time.time(), summarize_arguments(arguments)
        values = (now, _DECISION_KIND, call_id, *form.decision_values, summary)
        if form.encodable:
            try:
                # A summary is always a str.
                parts = (float.__repr__(now).encode(), call_text.encode(), encode_basestring(summary).encode())
            except UnicodeEncodeError:
                pass  # a lone surrogate: written out as an escape by ``_enqueue``
            else:
                self._queue(values, form.decision_line % parts, form.decision_json % parts)
                return call
        self._enqueue(values)
        return call

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
        """Record the outcome of a call in the journal; the next group commit writes it. Never blocks.

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
        call = AuditedCall(call_id, agent, server, tool, None if effect is None else _effect(effect), rule)
        self.finish(
            call,
            outcome=outcome,
            latency_s=latency_s,
            result_size=result_size,
            answer=answer,
            waited_s=waited_s,
            reason=reason,
        )

    def finish(
        self,
        call: AuditedCall,
        *,
        outcome: str,
        latency_s: float,
        result_size: int | None = None,
        answer: str | None = None,
        waited_s: float | None = None,
        reason: str | None = None,
    ) -> None:
        """``record_outcome`` for a call ``decide`` recorded (its id, agent, server, tool, effect and rule).

        Raises:
            ValueError: ``outcome`` is not a known value.
        """
        ended = _OUTCOMES.get(outcome) or CallOutcome(_value(outcome))
        now = time.time()
        agent, server, tool, effect, rule = call.form.columns
        values = (
            now,
            RecordKind.OUTCOME,
            call.call_id,
            agent,
            server,
            tool,
            effect,
            rule,
            reason,
            answer,
            waited_s,
            latency_s,
            ended,
            result_size,
            "",
        )
        text = journal.text
        time_text = float.__repr__(now)
        latency_text = (
            float.__repr__(latency_s) if type(latency_s) is float and math.isfinite(latency_s) else text(latency_s)
        )
        size_text = (
            "null"
            if result_size is None
            else int.__repr__(result_size)
            if type(result_size) is int
            else text(result_size)
        )
        form = call.form
        if reason is None and answer is None and waited_s is None and form.encodable:
            # A call nobody was asked about (nearly every one): the form's line has these three as null.
            try:
                parts = (
                    time_text.encode(),
                    call.id_text.encode(),
                    latency_text.encode(),
                    _OUTCOME_BYTES[ended],
                    size_text.encode(),
                )
            except UnicodeEncodeError:
                self._enqueue(values)  # a lone surrogate: written out as an escape there
            else:
                self._queue(values, form.outcome_line % parts, form.outcome_json % parts)
            return
        try:
            line, columns_json = _OUTCOME.encode(
                *journal.shared(call.id_text, form.tails),
                time_text,
                "null" if reason is None else text(reason),
                "null" if answer is None else text(answer),
                "null" if waited_s is None else text(waited_s),
                latency_text,
                _OUTCOME_TEXTS[ended],
                size_text,
            )
        except UnicodeEncodeError:
            self._enqueue(values)  # a lone surrogate: written out as an escape there
        else:
            self._queue(values, line, columns_json)

    def record_notice(
        self,
        *,
        agent: str,
        server: str,
        tool: str,
        effect: str,
        rule: str,
        reason: str,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Record something that happened to a tool rather than a call (its definition changed), as a pair.

        A decision (``effect``, ``rule``, ``reason``, ``details`` summarised as arguments) and its outcome
        ``ok``, sharing a new call id, so it reads like a call in every view of the log. Never blocks.
        """
        call_id = new_call_id()
        now = time.time()
        effect = _effect(effect)
        columns = (call_id, agent, server, tool, effect, rule, reason, None, None, 0.0)
        self._enqueue((now, RecordKind.DECISION, *columns, None, None, summarize_arguments(details)))
        self._enqueue((now, RecordKind.OUTCOME, *columns, CallOutcome.OK, None, ""))

    async def query(self, q: AuditQuery) -> list[AuditRecord]:
        """Read records, newest first, on a separate read-only connection in a worker thread.

        While the log runs, what was recorded before the query is committed first (waiting at most
        ``FLUSH_WAIT_S``), so a query sees every record made before it.

        Returns:
            The records ``q`` selects; none if the database does not exist yet.

        Raises:
            sqlite3.Error: the file cannot be read.
        """
        await self._flushed()
        try:
            return await anyio.to_thread.run_sync(store.read_records, self._path, q)
        except FileNotFoundError:
            return []

    # -- the event loop's side ------------------------------------------------------------------

    def _enqueue(self, values: tuple[Any, ...]) -> None:
        """Journal and queue one record, given as its columns' values (``store.RECORD_COLUMNS`` order)."""
        try:
            line, columns_json = journal.encode_values(values)
        except UnicodeEncodeError:
            # A lone surrogate (JSON allows "\ud800") can be neither UTF-8 in the journal nor text in SQLite.
            values = _without_surrogates(values)
            line, columns_json = journal.encode_values(values)
        self._queue(values, line, columns_json)

    def _queue(self, values: tuple[Any, ...], line: bytes, columns_json: str | bytes) -> None:
        """Journal and queue one record, given as its values and their encodings (``journal.encode_values``).

        ``columns_json`` may be UTF-8 (as the journal line is) rather than text (``chain.record_hash_of``).
        """
        with self._lock:
            running = self._loop is not None and not self._stopping
            if running:
                fds = self._journal_fds
                if fds is not None:
                    # One ``write()`` of one line to the journal (holding the lock, so lines never interleave).
                    try:
                        written = os.write(fds[self._active], line)
                    except OSError as exc:
                        self._journal_problem(exc.strerror or str(exc))
                    else:
                        if written != len(line):
                            self._journal_problem(f"only {written} of {len(line)} bytes were written")
                if self._due is None:
                    # The writer is idle. Otherwise it is writing, or waiting for the window's end: no wake-up.
                    self._due = time.monotonic() + FLUSH_DELAY_S
                    self._wakeup.notify()
                self._pending.append((values, columns_json))
        if not running:
            self._report(f"the audit log is not running, so records are not written ({self._path})")

    def _journal_problem(self, reason: str) -> None:
        if not self._journal_warned:
            self._journal_warned = True
            logger.warning(
                "The audit journal cannot be used (%s); records still reach %s, but a crash may lose the last ones",
                reason,
                self._path,
            )

    async def _flushed(self) -> None:
        """Return once everything recorded so far is committed (or could not be), or after ``FLUSH_WAIT_S``."""
        with self._lock:
            if self._loop is None or self._stopping:
                return
            waiter: _Waiter = asyncio.get_running_loop().create_future()
            self._flush_waiters.append(waiter)
            self._urgent = True
            self._wakeup.notify()
        with anyio.move_on_after(FLUSH_WAIT_S):
            await waiter

    def _committed(self, records: list[AuditRecord], problem: str | None) -> None:
        self._report(problem)
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
        clean = False
        try:
            conn, problem = self._open()
            if conn is not None:
                problem = self._recover(conn) or self._prune(conn)
            _post(loop, self._report, problem)
            _post(loop, ready)
            next_prune = time.monotonic() + RETENTION_INTERVAL_S
            inserted = 0
            while True:
                with self._lock:
                    self._wait_for_work(next_prune)
                    batch, self._pending = self._pending, []
                    waiters, self._flush_waiters = self._flush_waiters, []
                    self._urgent = False
                    stopping = self._stopping
                    # Appends go to the other (empty) file while this batch is committed.
                    folded = self._active if batch and self._journal_fds is not None else None
                    if folded is not None:
                        self._active = 1 - folded
                    if batch:
                        self._due = math.inf  # records made while this batch is written wait for the next one
                committed = True
                if batch:
                    conn, committed = self._write(loop, conn, batch)
                    inserted += len(batch)
                    with self._lock:
                        # The next group's window: records made in it are written at its end, with no
                        # wake-up each (under steady traffic the writer wakes once per group commit).
                        self._due = time.monotonic() + FLUSH_DELAY_S
                    # A batch that failed is lost (``status`` says so), except at shutdown: then its
                    # journal stays, to be folded in at the next start.
                    if folded is not None and (committed or not stopping):
                        self._empty_journal(folded)
                if waiters:
                    _post(loop, _wake, waiters)
                if conn is not None and (time.monotonic() >= next_prune or inserted >= RETENTION_EVERY_INSERTS):
                    problem = self._prune(conn)
                    if problem is not None:
                        _post(loop, self._report, problem)
                    next_prune = time.monotonic() + RETENTION_INTERVAL_S
                    inserted = 0
                elif conn is None and time.monotonic() >= next_prune:
                    next_prune = time.monotonic() + RETENTION_INTERVAL_S
                if stopping:
                    clean = committed
                    break
        finally:
            self._close_journal(remove=clean)
            if conn is not None:
                conn.close()
            _post(loop, finished)

    def _wait_for_work(self, next_prune: float) -> None:
        """Sleep (holding the condition) until a flush is asked for, records are due, pruning is due, or stop."""
        while not self._stopping and not self._urgent:
            now = time.monotonic()
            if now >= next_prune:
                return
            due = self._due
            if due is None:
                self._wakeup.wait(next_prune - now)
            elif now < due:
                self._wakeup.wait(min(due, next_prune) - now)
            elif self._pending:
                return
            else:
                self._due = None  # the window ended with nothing to write: the next record wakes the writer

    def _open(self) -> tuple[sqlite3.Connection | None, str | None]:
        try:
            return store.open_writer(self._path), None
        except (sqlite3.Error, OSError) as exc:
            return None, self._problem(exc)

    def _recover(self, conn: sqlite3.Connection) -> str | None:
        """Fold in a journal left by a crash, then start journaling (once the database could be opened).

        Returns:
            Why the database cannot be written, if folding failed (the journal is then left as it is).
        """
        if self._recovered:
            return None
        self._recovered = True
        files = journal.journal_paths(self._path)
        try:
            found = [journal.decode(journal.read(file)) for file in files]
        except OSError as exc:
            self._journal_problem(exc.strerror or str(exc))
            return None
        # The two files take turns; a crash can leave records in both. Order them by time (stable).
        records = sorted((r for part in found for r in part.records), key=lambda r: r.time)
        torn = sum(part.torn for part in found)
        if records:
            try:
                folded = store.insert_missing_records(conn, records)
            except sqlite3.Error as exc:
                return self._problem(exc)
            logger.info("Folded %d audit record(s) left by a crash into %s", len(folded), self._path)
        if torn:
            logger.warning(
                "Skipped %d audit journal line(s) a crash cut short before they were whole (%s)", torn, files[0].parent
            )
        fds: list[int] = []
        try:
            for file in files:
                fds.append(journal.open_for_append(file))
                os.ftruncate(fds[-1], 0)
        except OSError as exc:
            for fd in fds:
                os.close(fd)
            self._journal_problem(exc.strerror or str(exc))
            return None
        with self._lock:
            self._journal_fds = (fds[0], fds[1])
            self._active = 0
        return None

    def _empty_journal(self, index: int) -> None:
        """Empty a journal file whose records were just committed (it is not the one appended to)."""
        fds = self._journal_fds
        if fds is None:
            return
        try:
            os.ftruncate(fds[index], 0)
        except OSError as exc:
            # Left as it is: its records are skipped as already stored if a crash leaves it behind.
            logger.warning("The audit journal could not be emptied: %s", exc.strerror or exc)

    def _close_journal(self, *, remove: bool) -> None:
        with self._lock:
            fds, self._journal_fds = self._journal_fds, None
        if fds is None:
            return
        for fd in fds:
            os.close(fd)
        if remove:
            # Everything was committed: no journal is left behind to fold in at the next start.
            for file in journal.journal_paths(self._path):
                with contextlib.suppress(OSError):
                    file.unlink()

    def _write(
        self, loop: asyncio.AbstractEventLoop, conn: sqlite3.Connection | None, batch: list[store.Row]
    ) -> tuple[sqlite3.Connection | None, bool]:
        committed: list[AuditRecord] = []
        problem: str | None = None
        if conn is None:
            conn, problem = self._open()
            if conn is not None:
                problem = self._recover(conn)
        if conn is not None and problem is None:
            try:
                committed = store.insert_rows(conn, batch)
            except sqlite3.Error as exc:
                problem = self._problem(exc)
        _post(loop, self._committed, committed, problem)
        return conn, problem is None

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


def _without_surrogates(values: tuple[Any, ...]) -> tuple[Any, ...]:
    """A record's values with each lone surrogate in their text written out as a backslash escape (``udXXX``)."""
    return tuple(
        value.encode("utf-8", "backslashreplace").decode() if type(value) is str else value  # not the enums
        for value in values
    )


def _wake(waiters: list[_Waiter]) -> None:
    for waiter in waiters:
        if not waiter.done():
            waiter.set_result(None)


def _post(loop: asyncio.AbstractEventLoop, callback: Callable[..., None], *args: Any) -> None:
    # The loop may already be closed if shutdown gave up waiting for this thread.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(callback, *args)


# The outcomes by their text (a ``CallOutcome`` finds itself too): one lookup instead of the enum's call.
_OUTCOMES: dict[str, CallOutcome] = {outcome.value: outcome for outcome in CallOutcome}


def _value(value: str) -> str:
    return str(value.value) if isinstance(value, Enum) else value


def _effect(effect: str) -> str:
    text = _value(effect)
    if text not in EFFECTS:
        raise ValueError(f"unknown effect {effect!r}; expected one of {sorted(EFFECTS)}")
    return text


# The two shapes of a call's records (``journal.Shape``): what a decision and an outcome always hold.
_DECISION = journal.Shape(
    {
        "kind": RecordKind.DECISION,
        "answer": None,
        "waited_s": None,
        "latency_s": 0.0,
        "outcome": None,
        "result_size": None,
    }
)
_OUTCOME = journal.Shape({"kind": RecordKind.OUTCOME, "arguments": ""})
_OUTCOME_TEXTS = {outcome: journal.text(outcome) for outcome in CallOutcome}
_OUTCOME_BYTES = {outcome: text.encode() for outcome, text in _OUTCOME_TEXTS.items()}


_OUTCOME_FILLED = {"reason": "null", "answer": "null", "waited_s": "null"}
_DECISION_KIND = RecordKind.DECISION
_NEW = object.__new__


class _Form:
    """What every record of calls by one agent to one tool under one decision holds, encoded once.

    The columns a call's two records share but its id (agent, server, tool, effect, rule), and the decision's
    reason: the templates of their journal lines and JSON (``journal.Shape.filled``) leave open only the
    time, the call id and what differs from call to call.
    """

    __slots__ = (
        "columns",
        "decision_json",
        "decision_line",
        "decision_values",
        "encodable",
        "outcome_json",
        "outcome_line",
        "tails",
    )

    def __init__(self, agent: str, server: str, tool: str, effect: str | None, rule: str | None, reason: Any) -> None:
        self.columns = (agent, server, tool, effect, rule)
        self.tails = journal.shared_tails(agent, server, tool, effect, rule)
        # What a decision holds after its call id but its arguments summary (``store.RECORD_COLUMNS`` order).
        self.decision_values = (agent, server, tool, effect, rule, reason, None, None, 0.0, None, None)
        templates = (
            *_DECISION.filled(self.tails, {"reason": journal.text(reason)}),
            *_OUTCOME.filled(self.tails, _OUTCOME_FILLED),
        )
        # The templates as UTF-8; unless a column holds a lone surrogate: then the records go through ``_enqueue``.
        try:
            self.decision_line, self.decision_json, self.outcome_line, self.outcome_json = (
                template.encode() for template in templates
            )
            self.encodable = True
        except UnicodeEncodeError:
            self.decision_line = self.decision_json = self.outcome_line = self.outcome_json = b""
            self.encodable = False


def _form(key: tuple[str, str, str, str, str, str]) -> _Form:
    """The form of a decision with these columns (agent, server, tool, effect, rule, reason; ``decide``).

    Kept for the next call when all are plain strings.

    Raises:
        ValueError: ``effect`` is not one of the three effects.
    """
    agent, server, tool, effect, rule, reason = key
    form = _Form(agent, server, tool, _effect(effect), rule, reason)
    # Only plain strings are kept: a subclass would find its plain twin's entry (and an invalid effect never is).
    if all(type(value) is str for value in key):
        _keep(key, form)
    return form


def _keep(key: tuple[str | None, ...], form: _Form) -> None:
    if len(_FORMS) >= MAX_FORMS:
        _FORMS.clear()
    _FORMS[key] = form


# The forms of calls, by their agent, server, tool, effect, rule and decision's reason (plain strings only;
# ``_OUTCOME_ONLY`` for the reason of a call made for its outcome alone, ``AuditedCall``).
_FORMS: dict[tuple[Any, ...], _Form] = {}
_OUTCOME_ONLY: Any = object()
MAX_FORMS = 1024


class AuditedCall:
    """A call whose decision ``AuditLog.decide`` recorded: what its outcome record holds too, encoded once.

    Attributes:
        call_id: the call's id.
        agent: the calling agent's id.
        server: the downstream server's name.
        tool: the tool's upstream name (or the public name of a prompt or resource).
        effect: the decision's effect.
        rule: the deciding rule.
    """

    __slots__ = ("agent", "call_id", "effect", "form", "id_text", "rule", "server", "tool")

    def __init__(self, call_id: str, agent: str, server: str, tool: str, effect: str | None, rule: str | None) -> None:
        self.call_id = call_id
        self.agent = agent
        self.server = server
        self.tool = tool
        self.effect = effect
        self.rule = rule
        self.id_text = encode_basestring(call_id) if type(call_id) is str else journal.text(call_id)
        key = (agent, server, tool, effect, rule, _OUTCOME_ONLY)
        form = _FORMS.get(key)
        if form is None:
            form = _Form(agent, server, tool, effect, rule, None)
            if all(value is None or type(value) is str for value in key[:5]):
                _keep(key, form)
        self.form = form

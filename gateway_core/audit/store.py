"""The audit log's SQLite file: schema, inserts, retention, and read-only queries.

Plain synchronous functions: the writer thread of ``AuditLog`` and the ``toolgate logs`` command call them.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from gateway_core.audit import chain
from gateway_core.audit.records import AuditQuery, AuditRecord, CallOutcome, RecordKind
from gateway_core.paths import ensure_private_dir

SCHEMA_VERSION = 2  # 2: each record's chain hash (audit/chain.py) and the retention checkpoint
# Only the gateway writes, so the lock is rarely held by anyone else; waiting longer would hold up
# the call whose decision is being recorded.
WRITE_BUSY_TIMEOUT_MS = 500
# A reader may meet the writer's checkpoint; it can afford to wait a little longer.
READ_BUSY_TIMEOUT_MS = 2000
# When over the size cap, delete the oldest records until the file is under this share of it.
SIZE_TARGET_SHARE = 0.9
# Each pass deletes the share of records its estimate says is too much; a few passes always suffice.
MAX_PRUNE_PASSES = 8
# The audit trail is private, like the folder it lives in.
DB_FILE_MODE = 0o600

_COLUMNS = (
    "time",
    "kind",
    "call_id",
    "agent",
    "server",
    "tool",
    "effect",
    "rule",
    "reason",
    "answer",
    "waited_s",
    "latency_s",
    "outcome",
    "result_size",
    "arguments",
)
RECORD_COLUMNS = _COLUMNS
"""Every column of a record but its id, in the order SQLite stores them."""
_INSERT = f"INSERT INTO records (id, {', '.join(_COLUMNS)}, hash) VALUES ({', '.join('?' for _ in _COLUMNS)}, ?, ?)"
_SELECT = f"SELECT id, {', '.join(_COLUMNS)} FROM records"
# A group commit inserts up to this many records with one statement: SQLite runs it in one step, so the
# writer thread lets go of the GIL and takes it back once per statement, not once per record.
INSERT_ROWS = 32


@functools.cache
def _inserting(rows: int) -> str:
    """The statement inserting ``rows`` records (at most ``INSERT_ROWS``: the connection keeps each prepared)."""
    row = f"({', '.join('?' for _ in range(len(_COLUMNS) + 2))})"
    return f"INSERT INTO records (id, {', '.join(_COLUMNS)}, hash) VALUES {', '.join([row] * rows)}"


_SCHEMA = (
    """CREATE TABLE records (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        time REAL NOT NULL,
        kind TEXT NOT NULL,
        call_id TEXT NOT NULL,
        agent TEXT NOT NULL,
        server TEXT NOT NULL,
        tool TEXT NOT NULL,
        effect TEXT,
        rule TEXT,
        reason TEXT,
        answer TEXT,
        waited_s REAL,
        latency_s REAL NOT NULL,
        outcome TEXT,
        result_size INTEGER,
        arguments TEXT NOT NULL,
        hash TEXT
    )""",
    "CREATE INDEX records_time ON records (time)",
    "CREATE INDEX records_call_id ON records (call_id)",
    "CREATE TABLE chain_checkpoint (id INTEGER NOT NULL, hash TEXT NOT NULL)",
)
# Version 1 → 2: the chain starts at the first record written after the upgrade.
_UPGRADE_TO_2 = (
    "ALTER TABLE records ADD COLUMN hash TEXT",
    "CREATE TABLE chain_checkpoint (id INTEGER NOT NULL, hash TEXT NOT NULL)",
)


class SchemaTooNewError(sqlite3.DatabaseError):
    """The file was written by a newer Toolgate whose schema this one does not know."""


def open_writer(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) the audit database for writing: WAL, ``synchronous=NORMAL``, current schema.

    Args:
        path: the database file; its folder is created (mode 0700) if missing.

    Raises:
        sqlite3.Error: the file cannot be opened or is not a Toolgate audit log.
        OSError: the folder or file cannot be created.
    """
    ensure_private_dir(path.parent)
    if not path.exists():
        # An empty file is an empty database; creating it here gives it mode 0600 from the start.
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, DB_FILE_MODE))
    conn = sqlite3.connect(path, isolation_level=None, factory=WriterConnection)
    try:
        conn.execute(f"PRAGMA busy_timeout = {WRITE_BUSY_TIMEOUT_MS}")
        # Only takes effect before the first table exists; lets retention give space back to the disk.
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        conn.execute("PRAGMA journal_mode = WAL")
        # In WAL mode a committed transaction survives a crash of the process (not of the OS) without fsync.
        conn.execute("PRAGMA synchronous = NORMAL")
        _migrate(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def _migrate(conn: sqlite3.Connection) -> None:
    with _transaction(conn):
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = conn.execute("SELECT version FROM schema_version").fetchone()
        if row is None:
            for statement in _SCHEMA:
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
        elif row[0] > SCHEMA_VERSION:
            raise SchemaTooNewError(
                f"it was written by a newer Toolgate (schema {row[0]}, this one knows {SCHEMA_VERSION})"
            )
        elif row[0] == 1:
            for statement in _UPGRADE_TO_2:
                conn.execute(statement)
            conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))


Row = tuple[tuple[Any, ...], str | bytes | None]
"""A record to insert: its columns' values (``RECORD_COLUMNS`` order), and their JSON when known (``journal``),
as text or UTF-8."""


def insert_records(conn: sqlite3.Connection, records: Sequence[AuditRecord]) -> list[AuditRecord]:
    """Write ``records`` in one transaction and commit it.

    Returns:
        The records as stored, with their ids.

    Raises:
        sqlite3.Error: nothing was written.
    """
    return insert_rows(conn, [(tuple(getattr(record, name) for name in _COLUMNS), None) for record in records])


def insert_rows(conn: sqlite3.Connection, rows: Sequence[Row]) -> list[AuditRecord]:
    """``insert_records`` for records given as their columns' values; their JSON, when given, is hashed as it is.

    Returns:
        The records as stored, with their ids.

    Raises:
        sqlite3.Error: nothing was written.
    """
    stored: list[AuditRecord] = []
    params: list[Any] = []
    known = conn.chain_end if isinstance(conn, WriterConnection) else None
    new, fields, hash_of = object.__new__, _RECORD_FIELDS, chain.record_hash_of
    with _transaction(conn):
        record_id, previous = known if known is not None else _chain_end(conn)
        for values, columns_json in rows:
            record_id += 1
            row = (record_id, *values)
            if columns_json is None:
                previous = chain.record_hash(previous, row)
            else:
                previous = hash_of(previous, record_id, columns_json)
            params += row
            params.append(previous)
            # The ``AuditRecord`` of the stored row, without running the frozen constructor (a few µs per record).
            record = new(AuditRecord)
            record.__dict__.update(zip(fields, row, strict=False))  # both are the id and RECORD_COLUMNS
            stored.append(record)
        width = len(_COLUMNS) + 2
        for start in range(0, len(params), width * INSERT_ROWS):
            chunk = params[start : start + width * INSERT_ROWS]
            conn.execute(_inserting(len(chunk) // width), chunk)
    if not stored:
        return stored
    if not isinstance(conn, WriterConnection):
        with contextlib.suppress(OSError):  # the head only lags; verify then checks the chain up to it
            chain.write_head(_database_file(conn), record_id, previous)
        return stored
    conn.chain_end = (record_id, previous)
    if time.monotonic() >= conn.head_due:
        conn.write_head()
    return stored


_RECORD_FIELDS = ("id", *_COLUMNS)


# Writing the head file costs more than a commit; it is rewritten at most this often (the newest records
# written since are not anchored outside the database until the next write).
HEAD_EVERY_S = 1.0


class WriterConnection(sqlite3.Connection):
    """The writer's connection, which remembers where the chain ends and when the head file is due.

    Only the first batch looks the end up (``_chain_end``); later ones chain on from memory, so records
    deleted from the end meanwhile leave a gap that ``verify`` sees.
    """

    chain_end: tuple[int, str] | None = None
    head_due: float = 0.0
    head_written: tuple[int, str] | None = None

    def write_head(self) -> None:
        """Write the head file for the chain's end now, unless it already names it."""
        if self.chain_end is not None and self.chain_end != self.head_written:
            with contextlib.suppress(OSError):  # the head only lags; verify then checks the chain up to it
                chain.write_head(_database_file(self), *self.chain_end)
                self.head_written = self.chain_end
            self.head_due = time.monotonic() + HEAD_EVERY_S

    def close(self) -> None:
        """Write the head file if it lags, then close."""
        with contextlib.suppress(sqlite3.Error):
            self.write_head()
        super().close()


def _chain_end(conn: sqlite3.Connection) -> tuple[int, str]:
    """The id the last record had (ids are never reused) and the hash the next record chains to.

    That is the last record's hash; with no records, the checkpoint's (or ``GENESIS``). When the head
    file names a newer record than the table holds, the newest records were deleted: the chain goes on
    from the head's hash, so the gap stays visible to ``verify``.
    """
    sequence = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'records'").fetchone()
    last = conn.execute("SELECT id, hash FROM records ORDER BY id DESC LIMIT 1").fetchone()
    last_id = max(sequence[0] if sequence else 0, last[0] if last else 0)
    if last is not None:
        previous = last[1] or chain.GENESIS  # no hash: written before the chain existed
    else:
        checkpoint = conn.execute("SELECT id, hash FROM chain_checkpoint").fetchone()
        previous = chain.GENESIS if checkpoint is None else checkpoint[1]
    head, _ = chain.read_head(_database_file(conn))
    if head is not None and head[0] > (last[0] if last else 0):
        previous = head[1]
    return last_id, previous


def _database_file(conn: sqlite3.Connection) -> Path:
    return Path(conn.execute("PRAGMA database_list").fetchone()[2])


def _checkpoint(conn: sqlite3.Connection, where: str, params: tuple[Any, ...]) -> None:
    """Keep the hash of the newest record about to be deleted, so the chain still starts from a known hash."""
    row = conn.execute(f"SELECT id, hash FROM records WHERE {where} ORDER BY id DESC LIMIT 1", params).fetchone()
    if row is not None and row[1] is not None:
        conn.execute("DELETE FROM chain_checkpoint")
        conn.execute("INSERT INTO chain_checkpoint (id, hash) VALUES (?, ?)", row)


def verify_chain(path: Path) -> chain.ChainReport:
    """Check the hash chain of the audit database at ``path`` without writing to it (see ``audit.chain``).

    Raises:
        FileNotFoundError: there is no audit database at ``path`` yet.
        sqlite3.Error: the file cannot be read or is not a Toolgate audit log.
    """
    if not path.is_file():
        raise FileNotFoundError(2, "no audit log yet", str(path))
    conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)
    try:
        conn.execute(f"PRAGMA busy_timeout = {READ_BUSY_TIMEOUT_MS}")
        version = conn.execute("SELECT version FROM schema_version").fetchone()
        if version is None or version[0] < 2:
            return chain.ChainReport(0, conn.execute("SELECT count(*) FROM records").fetchone()[0], None)
        return chain.verify(conn, _COLUMNS, path)
    finally:
        conn.close()


def insert_missing_records(conn: sqlite3.Connection, records: Sequence[AuditRecord]) -> list[AuditRecord]:
    """Write those of ``records`` not stored yet, chained, in one transaction (folding in a journal left by a crash).

    A record counts as stored when one of the same kind, call and time is (a crash may come between
    the commit of a journal's records and the emptying of the journal).

    Returns:
        The records written, with their ids.

    Raises:
        sqlite3.Error: nothing was written.
    """
    missing = [
        record
        for record in records
        if conn.execute(
            "SELECT 1 FROM records WHERE call_id = ? AND kind = ? AND time = ? LIMIT 1",
            (record.call_id, record.kind, record.time),
        ).fetchone()
        is None
    ]
    return insert_records(conn, missing) if missing else []


def prune(conn: sqlite3.Connection, *, older_than: float, max_bytes: int) -> int:
    """Delete records made before ``older_than``; if the file is over ``max_bytes``, delete the oldest too.

    Over the cap, records are deleted until the data fits in ``SIZE_TARGET_SHARE`` of it, and the freed
    pages are given back to the file system.

    Returns:
        How many records were deleted.

    Raises:
        sqlite3.Error: the deletion failed; nothing was deleted by the failing step.
    """
    # The oldest records up to the first that is recent enough: always a prefix, so the chain stays whole.
    old = "id < coalesce((SELECT min(id) FROM records WHERE time >= ?), (SELECT max(id) + 1 FROM records))"
    with _transaction(conn):
        _checkpoint(conn, old, (older_than,))
        deleted = conn.execute(f"DELETE FROM records WHERE {old}", (older_than,)).rowcount
    if used_bytes(conn) > max_bytes:
        target = max_bytes * SIZE_TARGET_SHARE
        for _ in range(MAX_PRUNE_PASSES):
            used = used_bytes(conn)
            count = conn.execute("SELECT count(*) FROM records").fetchone()[0]
            if used <= target or count == 0:
                break
            drop = max(count - int(count * target / used), 1)
            with _transaction(conn):
                oldest = "id <= (SELECT id FROM records ORDER BY id LIMIT 1 OFFSET ?)"
                _checkpoint(conn, oldest, (drop - 1,))
                deleted += conn.execute(f"DELETE FROM records WHERE {oldest}", (drop - 1,)).rowcount
    if deleted:
        # The pragma frees one page per step; executescript, unlike execute, steps it to the end.
        conn.executescript("PRAGMA incremental_vacuum;")
    return deleted


def used_bytes(conn: sqlite3.Connection) -> int:
    """The bytes the database's live pages take (the file, less its free pages)."""
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    return int((pages - free) * page_size)


def read_records(path: Path, q: AuditQuery) -> list[AuditRecord]:
    """Read the records ``q`` selects, newest first, without ever writing to the file.

    Args:
        path: the audit database.
        q: the filters, the page size and where the page starts.

    Raises:
        FileNotFoundError: there is no audit database at ``path`` yet.
        sqlite3.Error: the file cannot be read or is not a Toolgate audit log.
    """
    if not path.is_file():
        raise FileNotFoundError(2, "no audit log yet", str(path))
    where, params = _conditions(q)
    sql = f"{_SELECT}{' WHERE ' + ' AND '.join(where) if where else ''} ORDER BY id DESC LIMIT ?"
    conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)
    try:
        conn.execute(f"PRAGMA busy_timeout = {READ_BUSY_TIMEOUT_MS}")
        rows = conn.execute(sql, (*params, max(q.limit, 0))).fetchall()
    finally:
        conn.close()
    return [_record(row) for row in rows]


def _conditions(q: AuditQuery) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    for column, value in (("agent", q.agent), ("server", q.server), ("tool", q.tool), ("outcome", q.outcome)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    for condition, bound in (("time >= ?", q.since), ("time < ?", q.until)):
        if bound is not None:
            where.append(condition)
            params.append(bound)
    for condition, record_id in (("id < ?", q.before_id), ("id > ?", q.after_id)):
        if record_id is not None:
            where.append(condition)
            params.append(record_id)
    if q.call_ids is not None:
        where.append(f"call_id IN ({', '.join('?' * len(q.call_ids))})" if q.call_ids else "0")
        params.extend(q.call_ids)
    if q.text:
        pattern = "%" + q.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where.append("(" + " OR ".join(f"{c} LIKE ? ESCAPE '\\'" for c in ("tool", "arguments", "reason")) + ")")
        params.extend([pattern] * 3)
    return where, params


def _record(row: tuple[Any, ...]) -> AuditRecord:
    values = dict(zip(("id", *_COLUMNS), row, strict=True))
    values["kind"] = RecordKind(values["kind"])
    values["outcome"] = None if values["outcome"] is None else CallOutcome(values["outcome"])
    return AuditRecord(**values)


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``, or ``ROLLBACK`` if the block or the commit fails."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.rollback()
        raise

"""A hash chain through the audit records, so an edited, deleted or inserted record shows.

Each record's ``hash`` is SHA-256 of the previous record's hash and the record itself (its id and
every column, as canonical JSON). The first record's previous hash is ``GENESIS``; when retention
deletes the oldest records, the last deleted one's id and hash stay in the ``chain_checkpoint``
table, so the chain still starts from a known hash. The newest record's id and hash are also written
next to the database (``head_path``) after each write: deleting the newest records, or replacing the
whole file with an older copy, then shows too. ``verify`` walks the chain and names the first record
where it breaks. Records written before the chain existed (an older Toolgate) have no hash and are
reported as not covered.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GENESIS = "0" * 64
HEAD_SUFFIX = ".head"
# What ``json.dumps(..., separators=(",", ":"), ensure_ascii=False)`` builds on every call, built once.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=True)


def record_hash(previous: str, row: Sequence[Any]) -> str:
    """The hash of one record: SHA-256 of ``previous`` and the record's id and columns as canonical JSON."""
    payload = _ENCODER.encode(list(row))
    return hashlib.sha256(f"{previous}\n{payload}".encode()).hexdigest()


def record_hash_of(previous: str, record_id: int, columns_json: str | bytes) -> str:
    """``record_hash`` for a record whose columns are already JSON: their texts joined by commas, in order.

    ``columns_json`` is that text, or the same as UTF-8.
    """
    if isinstance(columns_json, bytes):
        return hashlib.sha256(b"%s\n[%d,%s]" % (previous.encode(), record_id, columns_json)).hexdigest()
    return hashlib.sha256(f"{previous}\n[{record_id},{columns_json}]".encode()).hexdigest()


def head_path(database: Path) -> Path:
    """Where the chain's newest id and hash are kept, next to the database."""
    return database.with_name(database.name + HEAD_SUFFIX)


def write_head(database: Path, record_id: int, digest: str) -> None:
    """Replace the head file with the newest record's id and hash (a planted link is replaced, never followed)."""
    target = head_path(database)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({"id": record_id, "hash": digest}, out)
        os.replace(name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(name)
        raise


@dataclass(frozen=True)
class ChainReport:
    """What ``verify`` found.

    Attributes:
        checked: how many records carry a hash and were checked.
        uncovered: how many older records have no hash (written before the chain existed).
        problem: the first broken link as one sentence, or None when the chain holds.
    """

    checked: int
    uncovered: int
    problem: str | None

    @property
    def intact(self) -> bool:
        """Whether no link is broken."""
        return self.problem is None


def verify(conn: sqlite3.Connection, columns: Sequence[str], database: Path) -> ChainReport:
    """Walk the records in id order, recompute each hash and compare it, and compare the head file.

    Args:
        conn: a (read-only) connection to the audit database.
        columns: the record columns the hash covers, in order (after the id).
        database: the database file, whose head file is read.
    """
    head, head_problem = read_head(database)
    checkpoint = conn.execute("SELECT id, hash FROM chain_checkpoint").fetchone()
    previous, previous_id = (GENESIS, 0) if checkpoint is None else (checkpoint[1], checkpoint[0])
    if head is not None and checkpoint is not None and head == tuple(checkpoint):
        head = None  # every record since the head was deleted by retention, which kept its hash
    checked = uncovered = 0
    started = checkpoint is not None
    for row in conn.execute(f"SELECT id, {', '.join(columns)}, hash FROM records ORDER BY id"):
        record_id, stored = row[0], row[-1]
        if stored is None and not started:
            uncovered += 1
            previous_id = record_id
            continue
        started = True
        if stored is None or record_hash(previous, row[:-1]) != stored:
            after = f"record {previous_id}" if previous_id else "the start of the log"
            problem = (
                f"the chain breaks at record {record_id}: it was edited, or records between {after} and it "
                "were deleted or inserted"
            )
            return ChainReport(checked, uncovered, problem)
        if head is not None and record_id == head[0] and stored != head[1]:
            return ChainReport(
                checked, uncovered, f"record {record_id} does not match the head file: the log was rewritten"
            )
        previous, previous_id = stored, record_id
        checked += 1
    if head is not None and head[0] > previous_id:
        problem = (
            f"the newest records were deleted: the head file names record {head[0]}, "
            f"the log ends at record {previous_id}"
        )
        return ChainReport(checked, uncovered, problem)
    if head is None and head_problem is not None and started:
        return ChainReport(checked, uncovered, head_problem)
    return ChainReport(checked, uncovered, None)


def read_head(database: Path) -> tuple[tuple[int, str] | None, str | None]:
    """The head file's (id, hash), or None and why it cannot be had."""
    path = head_path(database)
    try:
        head = json.loads(path.read_text(encoding="utf-8"))
        return (int(head["id"]), str(head["hash"])), None
    except FileNotFoundError:
        return None, f"the chain's head file {path.name} is missing, so deleting the newest records would not show"
    except (OSError, ValueError, KeyError, TypeError):
        return None, f"the chain's head file {path.name} cannot be read"

"""Exporting audit records to a JSON Lines or CSV file, written atomically (a temporary file, then a rename).

``read_matching`` pages through the audit log for every record a query selects; ``export_records``
writes them in the format the file name's suffix asks for.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, TextIO

from gateway_core import AuditQuery, AuditRecord, Links, atomic_file

FIELDS = tuple(field.name for field in dataclasses.fields(AuditRecord))
# Records read per query while exporting: few round trips, modest memory per page.
EXPORT_PAGE = 2000


async def read_matching(
    query_audit: Callable[[AuditQuery], Awaitable[list[AuditRecord]]], query: AuditQuery, *, page: int = EXPORT_PAGE
) -> list[AuditRecord]:
    """Every record ``query`` selects (its ``limit`` and ``before_id`` are ignored), oldest first.

    Args:
        query_audit: reads one page, newest first (``GatewayApi.query_audit``).
        query: the filters.
        page: records read per call.
    """
    records: list[AuditRecord] = []
    before: int | None = None
    while True:
        batch = await query_audit(dataclasses.replace(query, limit=page, before_id=before))
        records.extend(batch)
        if len(batch) < page:
            break
        before = batch[-1].id
    records.reverse()
    return records


def export_records(records: Iterable[AuditRecord], path: Path) -> int:
    """Write ``records`` as CSV when ``path`` ends in ``.csv``, else as JSON Lines; returns how many."""
    if path.suffix.lower() == ".csv":
        return export_csv(records, path)
    return export_jsonl(records, path)


def export_jsonl(records: Iterable[AuditRecord], path: Path) -> int:
    """Write ``records`` to ``path``, one JSON object per line; returns how many were written.

    Raises:
        OSError: the file cannot be written; nothing is left at ``path`` then (an old file stays).
    """

    def write(out: TextIO) -> int:
        count = 0
        for record in records:
            out.write(json.dumps(_row(record), ensure_ascii=False) + "\n")
            count += 1
        return count

    return _write_atomically(path, write)


def export_csv(records: Iterable[AuditRecord], path: Path) -> int:
    """Write ``records`` to ``path`` as CSV with a header row; returns how many were written.

    Empty values (``None``) are written as empty cells.

    Raises:
        OSError: the file cannot be written; nothing is left at ``path`` then (an old file stays).
    """

    def write(out: TextIO) -> int:
        writer = csv.DictWriter(out, fieldnames=FIELDS)
        writer.writeheader()
        count = 0
        for record in records:
            writer.writerow(_row(record))
            count += 1
        return count

    return _write_atomically(path, write)


def _row(record: AuditRecord) -> dict[str, Any]:
    return {name: _plain(getattr(record, name)) for name in FIELDS}


def _plain(value: Any) -> Any:
    # Enum members (kind, outcome) are written as their values.
    return value.value if hasattr(value, "value") else value


def _write_atomically(path: Path, write: Callable[[TextIO], int]) -> int:
    # The person chose this file in a save dialog: a link there is theirs to keep.
    with atomic_file(path, links=Links.FOLLOW) as binary:
        out = io.TextIOWrapper(binary, encoding="utf-8", newline="")
        count = write(out)
        out.flush()
        out.detach()
    return count

"""The audit journal: every record appended to a file with one ``write()`` before the call goes on.

A process that is killed loses nothing it recorded: the journal holds every record the SQLite file
does not hold yet. The writer thread folds the journal into SQLite in group commits. Two files take
turns: records are appended to the active one; the writer takes what is pending, turns appends to
the other (empty) file, commits the batch and empties the file it folded. When the log starts, a
journal left by a crash (either file) is folded in first; records already committed are skipped,
and a line a crash cut short is skipped and reported, never stored.

One record is one line of JSON holding the record's columns (its id is given by SQLite).
"""

from __future__ import annotations

import json
import math
import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring
from pathlib import Path
from typing import Any

from gateway_core.audit.records import AuditRecord, CallOutcome, RecordKind
from gateway_core.audit.store import RECORD_COLUMNS

JOURNAL_FILE_MODE = 0o600
# O_NOFOLLOW does not exist on Windows, where opening a file never follows a link anyway.
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_BINARY = getattr(os, "O_BINARY", 0)
# Every column of a record but its id, in the order SQLite stores them (one list, the store's).
FIELDS = RECORD_COLUMNS
# What ``json.dumps(..., ensure_ascii=False, separators=(",", ":"))`` builds on every call, built once.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def journal_paths(db: Path) -> tuple[Path, Path]:
    """The two journal files of the audit database ``db``, next to it."""
    return db.with_name(f"{db.stem}-journal-0.jsonl"), db.with_name(f"{db.stem}-journal-1.jsonl")


def encode(record: AuditRecord) -> bytes:
    """One journal line: the record's columns as JSON (line breaks in values are escaped), then a newline."""
    return encode_values(tuple(getattr(record, name) for name in FIELDS))[0]


def encode_values(values: Sequence[Any]) -> tuple[bytes, str]:
    """A record's journal line (from its columns' values, in ``FIELDS`` order), and those values as JSON.

    The second is the values' JSON texts joined by commas: what the record's chain hash covers after its
    id (``chain.record_hash_of``), so the writer does not encode the record a second time. Both are the
    bytes ``json`` builds for the same values (with ``ensure_ascii=False`` and no spaces), built here
    without its general machinery: each value is encoded once.

    Raises:
        UnicodeEncodeError: a value holds a lone surrogate (the line cannot be UTF-8).
    """
    encoder = _ENCODE_BY_TYPE.get
    texts = tuple([encoder(type(value), _json)(value) for value in values])
    return (_LINE % texts).encode(), ",".join(texts)


# A journal line with a ``%s`` for each value's JSON: ``{"time":%s,"kind":%s,…}`` and a newline.
_LINE = "{" + ",".join(f"{encode_basestring(name)}:%s" for name in FIELDS) + "}\n"


def _json(value: Any) -> str:
    """``value`` as ``_ENCODER`` writes it."""
    return _ENCODER.encode(value)


def _float(value: float) -> str:
    return float.__repr__(value) if math.isfinite(value) else _ENCODER.encode(value)


def _null(_value: None) -> str:
    return "null"


# How the types a record's columns hold are written, as ``_ENCODER`` writes them (the enums as their value).
_ENCODE_BY_TYPE: dict[type, Callable[[Any], str]] = {
    str: encode_basestring,
    RecordKind: encode_basestring,
    CallOutcome: encode_basestring,
    float: _float,
    int: int.__repr__,
    type(None): _null,
}


def text(value: Any) -> str:
    """One column's value as ``encode_values`` writes it."""
    return _ENCODE_BY_TYPE.get(type(value), _json)(value)


# The columns a call's decision and outcome records both hold, with the same values: its id, agent, server,
# tool, effect and rule. They follow one another, so a call's records share their encoding (``shared``).
SHARED = FIELDS[2:8]


def shared(call_text: str, tails: tuple[str, str]) -> tuple[str, str]:
    """The ``SHARED`` columns of a call's records: as in a journal line, and as ``encode_values``'s JSON.

    ``call_text`` is the call id's JSON (``text``); ``tails`` the other columns' (``shared_tails``), which
    repeat from call to call (the same agent calling the same tool under the same rule) and are kept by
    the audit log. ``Shape.encode`` takes the two texts in place of those six values.
    """
    return _SHARED_HEAD + call_text + tails[0], call_text + tails[1]


def shared_tails(agent: str, server: str, tool: str, effect: str | None, rule: str | None) -> tuple[str, str]:
    """The ``SHARED`` columns after the call id, encoded: what follows the id in ``shared``'s two texts."""
    texts = (
        encode_basestring(agent) if type(agent) is str else text(agent),
        encode_basestring(server) if type(server) is str else text(server),
        encode_basestring(tool) if type(tool) is str else text(tool),
        encode_basestring(effect) if type(effect) is str else text(effect),
        encode_basestring(rule) if type(rule) is str else text(rule),
    )
    return _SHARED_TAIL_LINE % texts, "," + ",".join(texts)


_SHARED_HEAD = f"{encode_basestring(SHARED[0])}:"
_SHARED_TAIL_LINE = "".join(f",{encode_basestring(name)}:%s" for name in SHARED[1:])


class Shape:
    """One kind of record with some columns fixed: its journal line and JSON as two templates, built once.

    ``encode`` fills in the ``time``, the ``SHARED`` columns (from ``shared``) and the other columns not
    fixed, in ``FIELDS`` order, each already encoded (``text``): the same bytes ``encode_values`` makes
    from the whole record, with no work for the fixed columns.
    """

    def __init__(self, fixed: dict[str, Any]) -> None:
        if not set(fixed) <= set(FIELDS) or set(fixed) & {"time", *SHARED}:
            raise ValueError(f"only columns outside time and {SHARED} can be fixed: {sorted(fixed)}")
        self.fixed = fixed
        self.open = tuple(name for name in FIELDS if name not in fixed and name not in SHARED)
        self._texts = {name: text(value) for name, value in fixed.items()}
        self._line, self._values = self._templates(self._texts, None)

    def filled(self, tails: tuple[str, str], texts: dict[str, str]) -> tuple[str, str]:
        """The two templates with the ``SHARED`` columns and some open columns filled in, for one kind of call.

        ``tails`` are the ``SHARED`` columns after the call id (``shared_tails``); ``texts`` are some open
        columns by name, each encoded by ``text``. What is left open, in ``FIELDS`` order: ``time``, the call
        id (encoded, without its name), and the open columns ``texts`` does not give.
        ``template % (time_text, call_text, *rest)`` is ``encode``'s line (before encoding to bytes) and JSON
        for the same values.
        """
        if not set(texts) <= set(self.open[1:]):
            raise ValueError(f"only the open columns after time can be filled: {sorted(texts)}")
        return self._templates({**self._texts, **texts}, tails)

    @staticmethod
    def _templates(known: dict[str, str], tails: tuple[str, str] | None) -> tuple[str, str]:
        line: list[str] = []
        values: list[str] = []
        for name in FIELDS:
            if name in SHARED:
                if name == SHARED[0]:
                    if tails is None:
                        line.append("%s")
                        values.append("%s")
                    else:
                        line.append(_SHARED_HEAD + "%s" + tails[0].replace("%", "%%"))
                        values.append("%s" + tails[1].replace("%", "%%"))
                continue
            part = "%s" if name not in known else known[name].replace("%", "%%")
            line.append(f"{encode_basestring(name)}:{part}")
            values.append(part)
        return "{" + ",".join(line) + "}\n", ",".join(values)

    def encode(self, shared_line: str, shared_json: str, time_text: str, *texts: str) -> tuple[bytes, str]:
        """The journal line and the JSON of a record of this shape (``encode_values``'s two results).

        ``texts`` are the open columns after ``time`` (``self.open[1:]``), each encoded by ``text``.

        Raises:
            UnicodeEncodeError: a value holds a lone surrogate (the line cannot be UTF-8).
        """
        return (
            (self._line % (time_text, shared_line, *texts)).encode(),
            self._values % (time_text, shared_json, *texts),
        )


@dataclass(frozen=True)
class Recovered:
    """What a journal file held: its whole records, oldest first, and how many lines were cut short."""

    records: tuple[AuditRecord, ...]
    torn: int


def decode(data: bytes) -> Recovered:
    """The records of a journal file's content; a line without its newline or not a whole record is torn."""
    lines = data.split(b"\n")
    # What follows the last newline was never finished (empty when the file ends with a newline).
    torn = 1 if lines[-1] else 0
    records: list[AuditRecord] = []
    for line in lines[:-1]:
        if not line:
            continue
        record = _record(line)
        if record is None:
            torn += 1
        else:
            records.append(record)
    return Recovered(tuple(records), torn)


def _record(line: bytes) -> AuditRecord | None:
    try:
        values: Any = json.loads(line)
        if not isinstance(values, dict) or set(values) != set(FIELDS):
            return None
        values["kind"] = RecordKind(values["kind"])
        if values["outcome"] is not None:
            values["outcome"] = CallOutcome(values["outcome"])
        if not isinstance(values["time"], int | float) or not isinstance(values["call_id"], str):
            return None
        return AuditRecord(id=0, **values)
    except (ValueError, TypeError):
        return None


def read(path: Path) -> bytes:
    """A journal file's content; empty when there is none. Never reads through a link.

    Raises:
        OSError: the file exists but cannot be read (or is a link).
    """
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _CLOEXEC | _BINARY)
    except FileNotFoundError:
        return b""
    with os.fdopen(fd, "rb") as file:
        return file.read()


def open_for_append(path: Path) -> int:
    """Open (creating, mode 0600) a journal file for appending; never through a link someone planted.

    Raises:
        OSError: it cannot be opened, or ``path`` is a link.
    """
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW | _CLOEXEC | _BINARY, JOURNAL_FILE_MODE)
    try:
        if not _is_regular(fd):
            raise OSError(f"{path} is not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _is_regular(fd: int) -> bool:
    return stat.S_ISREG(os.fstat(fd).st_mode)

"""``toolgate logs``: show the audit log, newest last, or follow it as the gateway writes.

Reads the SQLite file read-only, so it works while ``toolgate serve`` (or the tray app) is running.
Records go to stdout (a table, or one JSON object per line with ``--json``); explanations to stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sqlite3
import sys
import time
from collections.abc import Callable
from datetime import datetime

from gateway_core.audit import AuditQuery, AuditRecord, RecordKind, read_records
from gateway_core.cli.output import EXIT_OK, fail, result, say
from gateway_core.paths import Paths

DEFAULT_LIMIT = 50
# How often --follow looks for new records: quick enough to feel live, cheap for a read-only poll.
FOLLOW_POLL_S = 0.5
# --follow reads new records in pages of this size, so a burst between two polls is never cut short.
FOLLOW_PAGE = 500
_COLUMNS = (("TIME", 19), ("AGENT", 14), ("SERVER/TOOL", 30), ("RESULT", 14), ("RULE", 26), ("LATENCY", 9))


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``logs`` command to the ``toolgate`` command's subparsers.

    Args:
        subparsers: what ``ArgumentParser.add_subparsers()`` returned.
    """
    logs = subparsers.add_parser("logs", help="show the audit log (decisions and outcomes of tool calls)")
    logs.add_argument("--follow", "-f", action="store_true", help="keep printing new records until Ctrl+C")
    logs.add_argument("--agent", metavar="A", help="only this agent's records")
    logs.add_argument("--server", metavar="S", help="only this server's records")
    logs.add_argument("--tool", metavar="T", help="only this tool's records")
    logs.add_argument("--outcome", metavar="O", help="only outcomes that ended this way (ok, denied, timeout, …)")
    logs.add_argument("--limit", type=int, default=DEFAULT_LIMIT, metavar="N", help="show the last N records")
    logs.add_argument("--json", action="store_true", help="print one JSON object per record per line")
    logs.set_defaults(run=run_logs)


def run_logs(args: argparse.Namespace, paths: Paths) -> int:
    """Print the last records of the audit log, oldest first, and with ``--follow`` the new ones as they come.

    Args:
        args: the parsed ``logs`` arguments.
        paths: where the audit database is.

    Returns:
        The exit code: 0, also when there is no audit log yet or Ctrl+C ends ``--follow``; 1 if the file cannot be read.
    """
    path = paths.audit_db
    if not path.is_file():
        say(f"no audit log yet at {path}; it is created when `toolgate serve` starts")
        return EXIT_OK
    query = AuditQuery(agent=args.agent, server=args.server, tool=args.tool, outcome=args.outcome, limit=args.limit)
    show = _json_line if args.json else _table_line
    try:
        records = list(reversed(read_records(path, query)))
        if not args.json:
            result(_header())
        for record in records:
            result(show(record))
        if args.follow:
            _follow(paths, query, records[-1].id if records else _newest_id(paths), show)
    except KeyboardInterrupt:
        return EXIT_OK
    except (sqlite3.Error, FileNotFoundError) as exc:
        return fail(f"the audit log cannot be read: {exc} ({path})")
    return EXIT_OK


def _follow(paths: Paths, query: AuditQuery, last_id: int, show: Callable[[AuditRecord], str]) -> None:
    while True:
        sys.stdout.flush()
        time.sleep(FOLLOW_POLL_S)
        fresh: list[AuditRecord] = []
        before: int | None = None
        while True:
            page = read_records(
                paths.audit_db, dataclasses.replace(query, after_id=last_id, before_id=before, limit=FOLLOW_PAGE)
            )
            fresh.extend(page)
            if len(page) < FOLLOW_PAGE:
                break
            before = page[-1].id
        for record in reversed(fresh):
            result(show(record))
        if fresh:
            last_id = fresh[0].id


def _newest_id(paths: Paths) -> int:
    newest = read_records(paths.audit_db, AuditQuery(limit=1))
    return newest[0].id if newest else 0


def _header() -> str:
    return "  ".join(f"{title:<{width}}" for title, width in _COLUMNS) + "  ARGUMENTS"


def _table_line(record: AuditRecord) -> str:
    when = datetime.fromtimestamp(record.time).strftime("%Y-%m-%d %H:%M:%S")
    if record.kind is RecordKind.DECISION:
        ended = record.effect or ""
        latency = ""
    else:
        ended = str(record.outcome) + (f" ({record.answer})" if record.answer else "")
        latency = f"{record.latency_s * 1000:.0f} ms"
    cells = (when, record.agent, f"{record.server}/{record.tool}", ended, record.rule or "", latency)
    line = "  ".join(_fit(cell, width) for cell, (_, width) in zip(cells, _COLUMNS, strict=True))
    return f"{line}  {record.arguments}".rstrip()


def _json_line(record: AuditRecord) -> str:
    return json.dumps(dataclasses.asdict(record), ensure_ascii=False)


def _fit(text: str, width: int) -> str:
    return f"{text:<{width}}" if len(text) <= width else text[: width - 1] + "…"

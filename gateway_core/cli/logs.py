"""``toolgate logs``: show the audit log, newest last, or follow it as the gateway writes.

Reads the SQLite file read-only, so it works while ``toolgate serve`` (or the tray app) is running.
Records go to stdout (a table, or one JSON object per line with ``--json``); explanations to stderr.
The table fits 80 columns: agent and tool names are never cut (their columns are as wide as the
records shown need), the deciding rule gives way, marked with ``…``; ``--wide`` adds the arguments.
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
from gateway_core.audit.store import verify_chain
from gateway_core.cli.output import ERROR_PREFIX, EXIT_OK, fail, printable, result, say
from gateway_core.cli.table import GAP, TABLE_WIDTH, fit
from gateway_core.paths import Paths

DEFAULT_LIMIT = 50
EXIT_BROKEN = 1
EXIT_UNREADABLE = 2
# How often --follow looks for new records: quick enough to feel live, cheap for a read-only poll.
FOLLOW_POLL_S = 0.5
# --follow reads new records in pages of this size, so a burst between two polls is never cut short.
FOLLOW_PAGE = 500
HEADERS = ("TIME", "AGENT", "SERVER/TOOL", "RESULT", "LATENCY", "RULE")


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``logs`` command to the ``toolgate`` command's subparsers.

    Args:
        subparsers: what ``ArgumentParser.add_subparsers()`` returned.
    """
    logs = subparsers.add_parser(
        "logs",
        help="show the audit log (decisions and outcomes of tool calls), or check it was not edited",
        description="Show the audit log, or with `toolgate logs verify` check its hash chain: exit 0 when intact, "
        "1 when a record was edited, deleted or inserted (the first broken link is named), 2 when it cannot be read.",
    )
    logs.add_argument(
        "action", nargs="?", choices=["verify"], help="verify: check that no record was edited, deleted or inserted"
    )
    logs.add_argument("--follow", "-f", action="store_true", help="keep printing new records until Ctrl+C")
    logs.add_argument("--agent", metavar="A", help="only this agent's records")
    logs.add_argument("--server", metavar="S", help="only this server's records")
    logs.add_argument("--tool", metavar="T", help="only this tool's records")
    logs.add_argument("--outcome", metavar="O", help="only outcomes that ended this way (ok, denied, timeout, …)")
    logs.add_argument("--limit", type=int, default=DEFAULT_LIMIT, metavar="N", help="show the last N records")
    logs.add_argument("--json", action="store_true", help="print one JSON object per record per line")
    logs.add_argument("--wide", action="store_true", help="the full date, whole rules and the arguments (wider)")
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
    if getattr(args, "action", None) == "verify":
        return verify_logs(paths)
    query = AuditQuery(agent=args.agent, server=args.server, tool=args.tool, outcome=args.outcome, limit=args.limit)
    try:
        records = list(reversed(read_records(path, query)))
        table = _Table(records, wide=args.wide)
        show = _json_line if args.json else table.line
        if not args.json:
            result(table.header())
        for record in records:
            result(show(record))
        if args.follow:
            _follow(paths, query, records[-1].id if records else _newest_id(paths), show)
    except KeyboardInterrupt:
        return EXIT_OK
    except (sqlite3.Error, FileNotFoundError) as exc:
        return fail(f"the audit log cannot be read: {exc} ({path})")
    return EXIT_OK


def verify_logs(paths: Paths) -> int:
    """``toolgate logs verify``: walk the audit log's hash chain and say whether it holds.

    Returns:
        0 when intact; 1 when a link is broken (the first one is named on stderr); 2 when the log cannot be read.
    """
    path = paths.audit_db
    try:
        report = verify_chain(path)
    except (sqlite3.Error, OSError) as exc:
        say(f"{ERROR_PREFIX}the audit log cannot be read: {exc} ({path})")
        return EXIT_UNREADABLE
    uncovered = f"; {report.uncovered} older records predate the chain and are not covered" if report.uncovered else ""
    if report.problem is not None:
        checked = f"{report.checked} records checked before it"
        say(f"{ERROR_PREFIX}the audit log was changed: {report.problem} ({checked}){uncovered}")
        return EXIT_BROKEN
    result(f"The audit log is intact: {report.checked} records chained, none edited, deleted or inserted{uncovered}.")
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


class _Table:
    """The table's layout, set by the records shown first; records that come later (--follow) keep it."""

    def __init__(self, records: list[AuditRecord], *, wide: bool) -> None:
        self._wide = wide
        rows = [_cells(record, wide=wide) for record in records]
        # Every column but the rule is as wide as its widest cell: names are never cut.
        self._widths = [max([len(HEADERS[i]), *(len(row[i]) for row in rows)]) for i in range(len(HEADERS) - 1)]
        fixed = sum(self._widths) + len(GAP) * (len(HEADERS) - 1)
        widest_rule = max([len("RULE"), *(len(row[-1]) for row in rows)])
        self._rule_width = widest_rule if wide else max(min(widest_rule, TABLE_WIDTH - fixed), len("RULE"))

    def header(self) -> str:
        """The column titles."""
        return self._join((*HEADERS, "ARGUMENTS") if self._wide else HEADERS)

    def line(self, record: AuditRecord) -> str:
        """One record as a row."""
        return self._join((*_cells(record, wide=self._wide), record.arguments) if self._wide else _cells(record))

    def _join(self, cells: tuple[str, ...]) -> str:
        rule = len(self._widths)
        padded = [f"{cell:<{width}}" for cell, width in zip(cells[:rule], self._widths, strict=True)]
        padded.append(fit(cells[rule], self._rule_width))
        return printable(GAP.join([*padded, *cells[rule + 1 :]]).rstrip())


def _cells(record: AuditRecord, *, wide: bool = False) -> tuple[str, ...]:
    """TIME, AGENT, SERVER/TOOL, RESULT, LATENCY and RULE of one record."""
    when = datetime.fromtimestamp(record.time).strftime("%Y-%m-%d %H:%M:%S" if wide else "%m-%d %H:%M:%S")
    if record.kind is RecordKind.DECISION:
        ended = record.effect or ""
        latency = ""
    else:
        ended = str(record.outcome) + (f" ({record.answer})" if record.answer else "")
        latency = f"{record.latency_s * 1000:.0f} ms"
    return (when, record.agent, f"{record.server}/{record.tool}", ended, latency, record.rule or "")


def _json_line(record: AuditRecord) -> str:
    return json.dumps(dataclasses.asdict(record), ensure_ascii=False)

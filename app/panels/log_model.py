"""The Logs panel's table of calls: one row per call, merged from its decision and outcome audit records.

The model holds a bounded window of the audit log (``max_rows`` calls, newest first). It loads the
newest page when created or when the filter changes, older pages when the view scrolls to its end
(``fetchMore``), and newer pages again (``fetch_newer``) after scrolling back up from deep history.
Live records from the bridge go on top while the window shows the newest calls.
"""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Callable, Iterable
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt, Signal

from app.bridge import GatewayBridge
from app.common import EFFECT_COLOR, EFFECT_TEXT, format_duration, format_timestamp
from app.panels.flat_table import FlatTableModel
from app.panels.log_rows import (
    ANSWER_TEXT,
    OUTCOME_COLOR,
    OUTCOME_TEXT,
    RUNNING_TEXT,
    CallRow,
    LogFilter,
)
from gateway_core import AuditQuery, AuditRecord, RecordKind

# Calls kept in memory: enough to scroll through comfortably, small enough to stay bounded forever.
MAX_ROWS = 5000
# Records read per page from SQLite (a call is two records, so about half as many rows).
PAGE_SIZE = 500
# Calls whose other half (decision or outcome) is read per query, when the filter selected only one.
COMPLETION_BATCH = 400
# Live decisions kept to complete live rows whose outcome alone matched the filter.
RECENT_DECISIONS = 1000

_Index = QModelIndex | QPersistentModelIndex

COLUMNS = ("Time", "Agent", "Server", "Tool", "Decision", "Latency", "Outcome")
TIME, AGENT, SERVER, TOOL, DECISION, LATENCY, OUTCOME = range(len(COLUMNS))
CALL_ROLE = Qt.ItemDataRole.UserRole


class LogTableModel(FlatTableModel):
    """A bounded, live, filterable window of calls from the audit log, newest first.

    Args:
        bridge: the gateway bridge (its ``query_audit`` and ``audit_records_arrived``).
        parent: the Qt parent.
        max_rows: the most calls held at once.
        page_size: records read per page.
    """

    HEADERS = COLUMNS

    loading_changed = Signal(bool)
    """A page started or finished loading; carries whether one is loading."""
    load_failed = Signal(str)
    """The audit log could not be read; carries a sentence for the person."""
    at_newest_changed = Signal(bool)
    """Whether the window holds the newest calls (and so takes live ones) changed."""
    rows_added_at_top = Signal(int, bool)
    """Calls were put on top; carries how many and whether they are live (just made)."""

    def __init__(
        self,
        bridge: GatewayBridge,
        parent: Any = None,
        *,
        max_rows: int = MAX_ROWS,
        page_size: int = PAGE_SIZE,
    ) -> None:
        super().__init__(parent)
        if max_rows < page_size:
            raise ValueError(f"max_rows ({max_rows}) must hold at least a page ({page_size})")
        self._bridge = bridge
        self.max_rows = max_rows
        self._page_size = page_size
        self._filter = LogFilter()
        self._rows: list[CallRow] = []
        self._by_call: dict[str, CallRow] = {}
        self._recent_decisions: collections.OrderedDict[str, AuditRecord] = collections.OrderedDict()
        self._held: list[AuditRecord] = []
        self._generation = 0
        self._busy = False
        self._at_newest = True
        self._newest_id = 0  # every matching record up to this id is in (or below) the window
        self._oldest_id: int | None = None  # the next older page holds records below this id
        self._exhausted = False
        bridge.audit_records_arrived.connect(self._on_records)
        self.reload()

    # --- reading -----------------------------------------------------------------------------------

    @property
    def filter(self) -> LogFilter:
        """The filter in force."""
        return self._filter

    @property
    def loading(self) -> bool:
        """Whether a page is being read."""
        return self._busy

    @property
    def at_newest(self) -> bool:
        """Whether the window holds the newest calls; if not, live calls wait in SQLite."""
        return self._at_newest

    def call_at(self, row: int) -> CallRow:
        """The call shown in ``row``."""
        return self._rows[row]

    def row_count(self) -> int:
        """The rows held."""
        return len(self._rows)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """A cell's text, colour, tooltip, or (``CALL_ROLE``) the ``CallRow``."""
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        row = self._rows[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(row, column)
        if role == Qt.ItemDataRole.ForegroundRole:
            if column == DECISION and row.effect is not None:
                return EFFECT_COLOR[row.effect]
            if column == OUTCOME and row.outcome is not None and row.outcome.outcome is not None:
                return OUTCOME_COLOR.get(row.outcome.outcome)
        if role == Qt.ItemDataRole.ToolTipRole and column == DECISION:
            return row.rule
        if role == CALL_ROLE:
            return row
        return None

    def _text(self, row: CallRow, column: int) -> str:
        if column == TIME:
            return format_timestamp(row.first.time)
        if column == AGENT:
            agent = self._bridge.api.config.agents.get(row.first.agent)
            return agent.name if agent is not None else row.first.agent
        if column == SERVER:
            return row.first.server
        if column == TOOL:
            return row.first.tool
        if column == DECISION:
            text = EFFECT_TEXT[row.effect] if row.effect is not None else ""
            return f"{text} ({ANSWER_TEXT.get(row.answer, row.answer)})" if row.answer else text
        if column == LATENCY:
            return "" if row.outcome is None else format_duration(row.outcome.latency_s)
        if column == OUTCOME:
            if row.outcome is None or row.outcome.outcome is None:
                return RUNNING_TEXT
            return OUTCOME_TEXT[row.outcome.outcome]
        return ""

    # --- loading -----------------------------------------------------------------------------------

    def set_filter(self, log_filter: LogFilter) -> None:
        """Show only calls matching ``log_filter``, read again from the audit log."""
        if log_filter != self._filter:
            self._filter = log_filter
            self.reload()

    def reload(self) -> None:
        """Forget the window and read the newest page again."""
        self._generation += 1
        self.beginResetModel()
        self._rows.clear()
        self._by_call.clear()
        self._held.clear()
        self._newest_id, self._oldest_id, self._exhausted = 0, None, False
        self.endResetModel()
        self._set_at_newest(True)
        self._start(self._load_older)

    def canFetchMore(self, parent: _Index) -> bool:
        """Whether older calls may be read (none while a page is loading)."""
        return not parent.isValid() and not self._busy and not self._exhausted

    def fetchMore(self, parent: _Index) -> None:
        """Start reading the next older page."""
        if self.canFetchMore(parent):
            self._start(self._load_older)

    def fetch_newer(self) -> None:
        """Start reading the calls just newer than the window, when it does not hold the newest."""
        if not self._at_newest and not self._busy:
            self._start(self._load_newer)

    def _start(self, step: Callable[[int], Any]) -> None:
        self._busy = True
        self.loading_changed.emit(True)
        self._bridge.spawn(self._run(step, self._generation))

    async def _run(self, step: Callable[[int], Any], generation: int) -> None:
        try:
            await step(generation)
        except (sqlite3.Error, OSError) as exc:
            if generation == self._generation:
                self.load_failed.emit(f"The audit log cannot be read: {exc}")
        finally:
            if generation == self._generation:
                self._busy = False
                held, self._held = self._held, []
                self._add_live(held)
                self.loading_changed.emit(False)

    async def _query(self, **page: Any) -> list[AuditRecord]:
        return await self._bridge.api.query_audit(self._filter.query(**page))

    async def _load_older(self, generation: int) -> None:
        first_page = self._oldest_id is None
        page = await self._query(limit=self._page_size, before_id=self._oldest_id)
        if generation != self._generation:
            return
        if first_page and page:
            self._newest_id = page[0].id
        if page:
            self._oldest_id = page[-1].id
        self._exhausted = len(page) < self._page_size
        new_rows = self._append_older(page)
        await self._complete(generation, new_rows)

    async def _load_newer(self, generation: int) -> None:
        # Pages are read newest first, so the calls just above the window are found by id ranges of
        # one page each: such a range never holds more than a page, so nothing in it is skipped.
        newest = await self._bridge.api.query_audit(AuditQuery(limit=1))
        head = newest[0].id if newest else 0
        low = self._newest_id
        found: list[AuditRecord] = []
        while low < head and not found:
            high = min(low + self._page_size, head)
            found = await self._query(limit=self._page_size, after_id=low, before_id=high + 1)
            if generation != self._generation:
                return
            low = high
        self._newest_id = low
        new_rows = self._prepend(list(reversed(found)), live=False)
        if low >= head:
            self._set_at_newest(True)
        await self._complete(generation, new_rows)

    async def _complete(self, generation: int, rows: list[CallRow]) -> None:
        """Read the other half of calls whose decision or outcome alone matched the filter."""
        if not self._filter.drops_half_calls:
            return
        missing = [r.call_id for r in rows if r.decision is None or r.outcome is None]
        for start in range(0, len(missing), COMPLETION_BATCH):
            call_ids = tuple(missing[start : start + COMPLETION_BATCH])
            records = await self._bridge.api.query_audit(AuditQuery(call_ids=call_ids, limit=2 * len(call_ids)))
            if generation != self._generation:
                return
            changed = [
                row
                for record in records
                if (row := self._by_call.get(record.call_id)) is not None
                and getattr(row, record.kind.value) is None
                and row.add(record)
            ]
            self._rows_changed(changed)
            self._keep_time_order()

    # --- changing the window -----------------------------------------------------------------------

    def _on_records(self, records: list[AuditRecord]) -> None:
        if self._busy:
            self._held.extend(records)
        else:
            self._add_live(records)

    def _add_live(self, records: list[AuditRecord]) -> None:
        admitted: list[AuditRecord] = []
        for record in records:
            if record.call_id in self._by_call:
                admitted.append(record)
            elif not self._at_newest or record.id <= self._newest_id:
                continue  # read from SQLite when the window gets there
            elif self._filter.matches(record):
                admitted.append(record)
            elif record.kind is RecordKind.DECISION:
                self._recent_decisions[record.call_id] = record
                while len(self._recent_decisions) > RECENT_DECISIONS:
                    self._recent_decisions.popitem(last=False)
        if self._at_newest and records:
            self._newest_id = max(self._newest_id, records[-1].id)
        self._prepend(admitted, live=True)

    def _append_older(self, records: Iterable[AuditRecord]) -> list[CallRow]:
        new_rows, changed, _ = self._merge(records)
        self._rows_changed(changed)
        self._trim_top(len(self._rows) + len(new_rows) - self.max_rows)
        if new_rows:
            start = len(self._rows)
            self.beginInsertRows(QModelIndex(), start, start + len(new_rows) - 1)
            self._rows.extend(new_rows)
            self.endInsertRows()
        self._keep_time_order()
        return new_rows

    def _prepend(self, records: Iterable[AuditRecord], *, live: bool) -> list[CallRow]:
        """Put the calls of ``records`` (oldest first) on top, the newest first."""
        new_rows, changed, moved = self._merge(records)
        if live:
            for row in new_rows:
                if row.decision is None and (decision := self._recent_decisions.pop(row.call_id, None)):
                    row.add(decision)
        self._rows_changed(changed)
        self._trim_bottom(len(self._rows) + len(new_rows) - self.max_rows)
        if new_rows:
            self.beginInsertRows(QModelIndex(), 0, len(new_rows) - 1)
            self._rows[0:0] = reversed(new_rows)
            self.endInsertRows()
            self.rows_added_at_top.emit(len(new_rows), live)
        # Live calls come newest and decided first: only where they were put can the order break, and
        # where a call already shown got an earlier record (its decision after its outcome).
        self._keep_time_order(top=len(new_rows) + 1 if live and not moved else None)
        return new_rows

    def _merge(self, records: Iterable[AuditRecord]) -> tuple[list[CallRow], list[CallRow], bool]:
        """The calls new to the window, those in it that changed, and whether one of those got an earlier record.

        A call's earliest record is its place in the time order.
        """
        new_rows: list[CallRow] = []
        changed: dict[str, CallRow] = {}
        moved = False
        for record in records:
            row = self._by_call.get(record.call_id)
            if row is None:
                row = self._by_call[record.call_id] = CallRow(record.call_id)
                row.add(record)
                new_rows.append(row)
                continue
            first = row.first
            if row.add(record):
                changed[row.call_id] = row
                moved = moved or row.first is not first
        fresh = {row.call_id for row in new_rows}
        return new_rows, [row for call_id, row in changed.items() if call_id not in fresh], moved

    def _keep_time_order(self, top: int | None = None) -> None:
        """Keep the calls newest first by when each was decided, as the Time column shows them.

        Pages are read newest record first, so a call that ended after later calls (one that waited for an
        answer) is first met by its outcome; once its decision is known, it moves to its decision's place.
        ``top``: only the first ``top`` rows can be out of order (the rest were in order before).
        """
        checked = self._rows if top is None else self._rows[:top]
        if all(a.first.id >= b.first.id for a, b in zip(checked, checked[1:], strict=False)):
            return
        order = sorted(self._rows, key=lambda row: row.first.id, reverse=True)
        self.layoutAboutToBeChanged.emit()
        persistent = self.persistentIndexList()
        held = [self._rows[index.row()] if 0 <= index.row() < len(self._rows) else None for index in persistent]
        self._rows[:] = order
        position = {id(row): number for number, row in enumerate(order)}
        moved = [
            self.index(position[id(row)], index.column()) if row is not None else QModelIndex()
            for row, index in zip(held, persistent, strict=True)
        ]
        self.changePersistentIndexList(persistent, moved)
        self.layoutChanged.emit()

    def _rows_changed(self, rows: list[CallRow]) -> None:
        positions = [self._rows.index(row) for row in rows if self._by_call.get(row.call_id) is row]
        if positions:
            self.dataChanged.emit(self.index(min(positions), 0), self.index(max(positions), len(COLUMNS) - 1))

    def _trim_top(self, excess: int) -> None:
        if excess <= 0:
            return
        dropped = self._drop(0, excess)
        # Reading newer again starts below every dropped record (records seen twice merge harmlessly).
        self._newest_id = min(i for row in dropped for i in row.ids) - 1
        self._set_at_newest(False)

    def _trim_bottom(self, excess: int) -> None:
        if excess <= 0:
            return
        dropped = self._drop(len(self._rows) - excess, excess)
        self._oldest_id = max(i for row in dropped for i in row.ids) + 1
        self._exhausted = False

    def _drop(self, start: int, count: int) -> list[CallRow]:
        self.beginRemoveRows(QModelIndex(), start, start + count - 1)
        dropped = self._rows[start : start + count]
        del self._rows[start : start + count]
        for row in dropped:
            del self._by_call[row.call_id]
        self.endRemoveRows()
        return dropped

    def _set_at_newest(self, value: bool) -> None:
        if value != self._at_newest:
            self._at_newest = value
            self.at_newest_changed.emit(value)

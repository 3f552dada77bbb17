"""The Logs panel: the live table of calls from the audit log, and the gateway messages and stderr view.

The calls view filters by agent, server, outcome and text (read again from SQLite), shows the
selected call in a detail pane, can pause auto-scroll, and exports every call matching the filter.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.bridge import GatewayBridge
from app.common import InlineError
from app.palette import ReadableSelectionDelegate
from app.panels.empty_state import EmptyState
from app.panels.log_export import export_records, read_matching
from app.panels.log_model import AGENT, DECISION, LATENCY, OUTCOME, SERVER, TIME, TOOL, LogTableModel
from app.panels.log_rows import OUTCOME_TEXT, LogFilter, describe_call
from app.panels.messages import MessagesView
from gateway_core import CallOutcome

NO_CALLS_YET = (
    "No calls yet. Every call an agent makes through Toolgate appears here as it happens: "
    "who asked, which tool, what was decided and how it ended."
)
NO_CALLS_MATCH = "No calls match these filters."
# The widest text each fixed column usually holds (Tool stretches).
COLUMN_SAMPLES = {
    TIME: "2026-12-31 23:59:59",
    AGENT: "Claude Desktop",
    SERVER: "filesystem-2",
    DECISION: "Ask (allowed for this session)",
    LATENCY: "3 min 05 s",
    OUTCOME: "Server unavailable",
}
# Typing in the search field re-reads the log once the person pauses this long.
SEARCH_DELAY_MS = 300
EXPORT_NAME_FILTERS = ("JSON Lines (*.jsonl)", "CSV (*.csv)")


class CallsView(QWidget):
    """The table of calls with its filters, pause switch, export button and detail pane.

    Args:
        bridge: the gateway bridge.
        parent: the Qt parent.
        model: the calls model to show; by default a new ``LogTableModel`` over ``bridge``.
    """

    def __init__(
        self, bridge: GatewayBridge, parent: QWidget | None = None, *, model: LogTableModel | None = None
    ) -> None:
        super().__init__(parent)
        self._bridge = bridge
        self._export_dialog: QFileDialog | None = None
        self.model = model if model is not None else LogTableModel(bridge, self)

        self.agent = QComboBox()
        self.server = QComboBox()
        self.outcome = QComboBox()
        self.outcome.addItem("All outcomes", None)
        for outcome, text in OUTCOME_TEXT.items():
            self.outcome.addItem(text, outcome.value)
        self._fill_choices()
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search tool, arguments, reason")
        self.search.setClearButtonEnabled(True)
        self.search.setAccessibleName("Search calls")
        for combo, name in (
            (self.agent, "Agent filter"),
            (self.server, "Server filter"),
            (self.outcome, "Outcome filter"),
        ):
            combo.setAccessibleName(name)
        self._search_delay = QTimer(self, singleShot=True, interval=SEARCH_DELAY_MS)
        self._search_delay.timeout.connect(self.apply_filter)
        self.search.textChanged.connect(self._search_delay.start)
        for combo in (self.agent, self.server, self.outcome):
            combo.currentIndexChanged.connect(self.apply_filter)

        self.pause = QCheckBox("Pause auto-scroll")
        self.back_to_newest = QPushButton("&Back to newest")
        self.back_to_newest.setVisible(False)
        self.back_to_newest.clicked.connect(self.model.reload)
        self.export_button = QPushButton("E&xport…")
        self.export_button.setToolTip("Save every call matching the filters as JSON Lines or CSV")
        self.export_button.clicked.connect(self.choose_export_file)
        self.status = QLabel()
        self.error = InlineError()

        self.table = QTableView()
        self.table.setAccessibleName("Calls")
        self.table.setModel(self.model)
        self.table.setItemDelegate(ReadableSelectionDelegate(self.table))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(self.table.fontMetrics().height() + 6)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        # Columns get room by what they hold: the tool takes the spare width (not Outcome, at the end).
        header.setStretchLastSection(False)
        header.setSectionResizeMode(TOOL, QHeaderView.ResizeMode.Stretch)
        metrics = self.table.fontMetrics()
        for column, sample in COLUMN_SAMPLES.items():
            header.resizeSection(column, metrics.horizontalAdvance(sample) + 24)
        self.detail = QPlainTextEdit()
        self.detail.setAccessibleName("Selected call")
        self.detail.setReadOnly(True)
        self.detail.setPlaceholderText(
            "Select a call to see its arguments, the rule that decided, and its result's size."
        )

        filters = QHBoxLayout()
        for widget in (self.agent, self.server, self.outcome):
            filters.addWidget(widget)
        filters.addWidget(self.search, 1)
        actions = QHBoxLayout()
        for action in (self.pause, self.back_to_newest, self.export_button):
            actions.addWidget(action)
        actions.addWidget(self.status, 1)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.table)
        splitter.addWidget(self.detail)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)
        self._splitter = splitter
        self.empty = EmptyState(NO_CALLS_YET, [("&Clear filters", self.clear_filters)])
        layout = QVBoxLayout(self)
        layout.addLayout(filters)
        layout.addLayout(actions)
        layout.addWidget(self.error)
        layout.addWidget(splitter)
        layout.addWidget(self.empty, 1)
        for signal in (self.model.modelReset, self.model.rowsInserted, self.model.rowsRemoved):
            signal.connect(self._show_empty)
        self.model.loading_changed.connect(self._show_empty)
        self._show_empty()

        self.table.selectionModel().selectionChanged.connect(self._show_selected)
        self.table.verticalScrollBar().valueChanged.connect(self._scrolled)
        self.model.dataChanged.connect(self._show_selected)
        self.model.modelReset.connect(self._show_selected)
        self.model.rows_added_at_top.connect(self._keep_position)
        self.model.at_newest_changed.connect(lambda newest: self.back_to_newest.setVisible(not newest))
        self.model.loading_changed.connect(self._show_loading)
        self.model.load_failed.connect(self.error.show_message)
        bridge.agents_changed.connect(self._fill_choices)
        bridge.config_applied.connect(self._fill_choices)

    # --- filters -----------------------------------------------------------------------------------

    def current_filter(self) -> LogFilter:
        """The filter the controls describe."""
        return LogFilter(
            agent=self.agent.currentData(),
            server=self.server.currentData(),
            outcome=None if self.outcome.currentData() is None else CallOutcome(self.outcome.currentData()),
            text=self.search.text().strip(),
        )

    def apply_filter(self) -> None:
        """Show the calls matching the controls, read again from the audit log."""
        self._search_delay.stop()
        self.error.show_message("")
        self.model.set_filter(self.current_filter())

    def clear_filters(self) -> None:
        """Show every call again (all agents, servers and outcomes, no search text)."""
        for combo in (self.agent, self.server, self.outcome):
            combo.blockSignals(True)
            combo.setCurrentIndex(0)
            combo.blockSignals(False)
        self.search.blockSignals(True)
        self.search.clear()
        self.search.blockSignals(False)
        self.apply_filter()

    def _show_empty(self, *_: object) -> None:
        """An empty table says why: no calls yet, or none matching the filters (with a way out)."""
        filtered = self.current_filter() != LogFilter()
        empty = self.model.rowCount() == 0 and not self.model.loading
        self.empty.set_message(NO_CALLS_MATCH if filtered else NO_CALLS_YET)
        self.empty.buttons[0].setVisible(filtered)
        self.empty.setVisible(empty)
        self._splitter.setVisible(not empty)

    def _fill_choices(self) -> None:
        config = self._bridge.api.config
        agents = [(agent.name, agent_id) for agent_id, agent in config.agents.items()]
        _refill(self.agent, "All agents", agents)
        _refill(self.server, "All servers", [(name, name) for name in config.servers])

    # --- table and detail --------------------------------------------------------------------------

    def selected_row(self) -> int | None:
        """The selected call's row, if one is selected."""
        rows = self.table.selectionModel().selectedRows()
        return rows[0].row() if rows else None

    def _show_selected(self, *_: Any) -> None:
        row = self.selected_row()
        if row is None or row >= self.model.rowCount():
            self.detail.clear()
            return
        call = self.model.call_at(row)
        agent = self._bridge.api.config.agents.get(call.first.agent)
        self.detail.setPlainText(describe_call(call, agent.name if agent is not None else call.first.agent))

    def _scrolled(self, value: int) -> None:
        if value == self.table.verticalScrollBar().minimum() and not self.model.at_newest:
            self.model.fetch_newer()

    def _keep_position(self, count: int, live: bool) -> None:
        if live and not self.pause.isChecked():
            self.table.scrollToTop()
            return
        # The rows put above pushed what was in view down by ``count`` rows; follow them. The scroll
        # range is normally updated later, so update it first or the new value would be cut short.
        self.table.updateGeometries()
        bar = self.table.verticalScrollBar()
        bar.setValue(bar.value() + count)

    def _show_loading(self, loading: bool) -> None:
        if loading:
            self.status.setText("Loading…")
        elif self.status.text() == "Loading…":
            self.status.clear()

    # --- export ------------------------------------------------------------------------------------

    def choose_export_file(self) -> None:
        """Ask where to save the calls matching the filters (the export starts when a file is chosen)."""
        dialog = QFileDialog(self, "Export calls")
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setNameFilters(list(EXPORT_NAME_FILTERS))
        dialog.setDefaultSuffix("jsonl")
        dialog.selectFile("toolgate-calls.jsonl")
        dialog.filterSelected.connect(lambda chosen: dialog.setDefaultSuffix("csv" if "csv" in chosen else "jsonl"))
        dialog.fileSelected.connect(lambda path: self.start_export(Path(path)))
        dialog.finished.connect(dialog.deleteLater)
        self._export_dialog = dialog
        dialog.open()

    def start_export(self, path: Path) -> asyncio.Task[int | None]:
        """Start exporting the calls matching the filters to ``path``; the future gives how many records."""
        return self._bridge.spawn(self.export(path))

    async def export(self, path: Path) -> int | None:
        """Write every record matching the filters to ``path`` (CSV for ``.csv``, else JSON Lines).

        Returns:
            How many records were written, or None when it failed (the error is shown inline).
        """
        self.error.show_message("")
        self.status.setText(f"Exporting to {path.name}…")
        self.export_button.setEnabled(False)
        try:
            records = await read_matching(self._bridge.api.query_audit, self.model.filter.query())
            count = await asyncio.to_thread(export_records, records, path)
        except (OSError, sqlite3.Error) as exc:
            self.status.clear()
            self.error.show_message(f"Could not export to {path}: {exc}")
            return None
        finally:
            self.export_button.setEnabled(True)
        calls = len({record.call_id for record in records})
        # Each call has two records (its decision and its outcome): say both, as the table shows calls.
        self.status.setText(
            f"Exported {calls} call{'' if calls == 1 else 's'} ({count} records: decisions and outcomes) to {path}"
        )
        return count


class LogsPanel(QWidget):
    """The Logs panel: a "Calls" tab (the audit log) and a "Gateway messages" tab (messages and stderr).

    Args:
        bridge: the gateway bridge.
        parent: the Qt parent.
    """

    def __init__(self, bridge: GatewayBridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.calls = CallsView(bridge)
        self.messages = MessagesView(bridge)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.calls, "Calls")
        self.tabs.addTab(self.messages, "Gateway messages")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tabs)


def _refill(combo: QComboBox, everything: str, choices: list[tuple[str, str]]) -> None:
    """Replace ``combo``'s choices, keeping the current one when it is still there (without a change signal)."""
    current = combo.currentData()
    combo.blockSignals(True)
    try:
        combo.clear()
        combo.addItem(everything, None)
        for text, value in choices:
            combo.addItem(text, value)
        combo.setCurrentIndex(max(combo.findData(current), 0))
    finally:
        combo.blockSignals(False)
    if combo.currentData() != current:
        combo.currentIndexChanged.emit(combo.currentIndex())

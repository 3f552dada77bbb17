"""The "Changes" tab of a server's detail view: its tools waiting for review, each with a diff, and Accept.

A tool is listed when its server changed its definition since the person accepted it (calls to it ask
every agent until it is accepted) or when it is new on a server an agent may use whole. The diff is the
one ``toolgate tools changes`` prints; Accept pins exactly the definition shown (if the server changed
it again meanwhile, nothing is accepted and the view says so).
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QStringListModel, Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListView,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.bridge import GatewayBridge
from app.panels.diff_view import DiffHighlighter
from gateway_core import ChangeKind, PinError, ToolChange, definition_diff

NOTHING_TEXT = "No tool of this server waits for review."
SUMMARY_TEXT = (
    "Calls to a tool whose definition changed since you accepted it ask every agent until you accept the change. "
    "Read the diff before accepting: a description is what the agent's model reads, and annotations "
    "(read-only, destructive) are the server's own claims."
)


def change_label(change: ToolChange) -> str:
    """How a change is listed: the tool and what happened to it."""
    if change.kind is ChangeKind.NEW:
        return f"{change.tool} — new"
    return f"{change.tool} — {', '.join(change.fields)} changed"


class ToolReview(QWidget):
    """One server's tools waiting for review, the diff of the selected one, and Accept / Accept all."""

    count_changed = Signal(int)
    """How many of the shown server's tools wait for review (after each change of them)."""

    def __init__(self, bridge: GatewayBridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._bridge = bridge
        self._server: str | None = None
        self._changes: list[ToolChange] = []
        self.summary = QLabel(SUMMARY_TEXT)
        self.summary.setWordWrap(True)
        self.list_model = QStringListModel(self)
        self.list_view = QListView()
        self.list_view.setModel(self.list_model)
        self.diff_view = QPlainTextEdit()
        self.diff_view.setReadOnly(True)
        self.diff_view.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.diff_view.setPlaceholderText(NOTHING_TEXT)
        self._highlighter = DiffHighlighter(self.diff_view.document())
        self.problem_label = QLabel()
        self.problem_label.setWordWrap(True)
        self.problem_label.hide()
        self.accept_button = QPushButton("A&ccept this definition")
        self.accept_button.setToolTip("Pin the definition shown: the tool's rules decide again (toolgate tools accept)")
        self.accept_all_button = QPushButton("Accept a&ll")

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.list_view)
        split.addWidget(self.diff_view)
        split.setStretchFactor(1, 3)
        buttons = QHBoxLayout()
        buttons.addWidget(self.problem_label, 1)
        buttons.addWidget(self.accept_button)
        buttons.addWidget(self.accept_all_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(split, 1)
        layout.addLayout(buttons)

        self.list_view.selectionModel().currentRowChanged.connect(self._show_change)
        self.accept_button.clicked.connect(self._accept_selected)
        self.accept_all_button.clicked.connect(self._accept_all)
        bridge.tool_changes_changed.connect(self.refresh)
        self.show_server(None)

    @property
    def changes(self) -> list[ToolChange]:
        """The shown server's tools waiting for review, by name."""
        return list(self._changes)

    def show_server(self, name: str | None) -> None:
        """Show server ``name``'s tools waiting for review (``None``: nothing)."""
        self._server = name
        self.problem_label.hide()
        self.refresh()

    def refresh(self) -> None:
        """Read the changes again (keeping the selected tool selected where it still waits)."""
        selected = self._selected()
        server = self._server
        self._changes = [] if server is None else [c for c in self._bridge.api.tool_changes() if c.server == server]
        self.list_model.setStringList([change_label(change) for change in self._changes])
        names = [change.tool for change in self._changes]
        row = names.index(selected.tool) if selected is not None and selected.tool in names else 0
        if self._changes:
            self.list_view.setCurrentIndex(self.list_model.index(row))
        self._show_change(self.list_model.index(row) if self._changes else QModelIndex())
        self.accept_all_button.setEnabled(bool(self._changes))
        self.count_changed.emit(len(self._changes))

    def _selected(self) -> ToolChange | None:
        row = self.list_view.currentIndex().row()
        return self._changes[row] if 0 <= row < len(self._changes) else None

    def _show_change(self, current: QModelIndex) -> None:
        row = current.row() if current.isValid() else -1
        change = self._changes[row] if 0 <= row < len(self._changes) else None
        self.accept_button.setEnabled(change is not None)
        if change is None:
            self.diff_view.clear()
            return
        name = f"{change.server}/{change.tool}"
        self.diff_view.setPlainText("\n".join(definition_diff(name, change.old, change.new)))

    def _accept_selected(self) -> None:
        change = self._selected()
        if change is not None:
            self._accept(change.server, change.tool, change.fingerprint)

    def _accept_all(self) -> None:
        if self._server is not None and self._changes:
            self._accept(self._server, None, None)

    def _accept(self, server: str, tool: str | None, seen: str | None) -> None:
        try:
            self._bridge.api.accept_tools(server, tool, seen=seen)
        except PinError as exc:
            self.problem_label.setText(f"Nothing was accepted: {exc}.")
            self.problem_label.show()
            self.refresh()
            return
        self.problem_label.hide()

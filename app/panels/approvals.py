"""Approvals: the calls waiting for a person (oldest first), what they ask, and the recent answers."""

from __future__ import annotations

import collections
import time
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.bridge import GatewayBridge
from app.common import (
    InlineError,
    folded_arguments,
    format_duration,
    format_time,
    looked_at_text,
    timed_answer_button,
    wants,
)
from app.palette import ReadableSelectionDelegate
from app.panels.flat_table import FlatTableModel
from gateway_core import (
    Answer,
    ApprovalError,
    ApprovalRequest,
    Outcome,
    Resolution,
    ToolgateError,
    folder_suggestion,
)

# Recent answers kept in the panel (the audit log has all of them).
MAX_RECENT = 200
TICK_MS = 1000
ANSWER_BUTTONS = (
    (Answer.ALLOW_ONCE, "Allow &once"),
    (Answer.ALLOW_SESSION, "Allow this &session"),
    (Answer.ALLOW_ALWAYS, "&Always allow"),
    (Answer.DENY, "&Deny"),
    (Answer.DENY_ALWAYS, "Always de&ny"),
)
OUTCOME_TEXT = {
    Outcome.ALLOWED: "Allowed",
    Outcome.DENIED: "Denied",
    Outcome.TIMED_OUT: "Timed out (denied)",
    Outcome.WITHDRAWN: "Withdrawn by the agent",
}
ANSWER_TEXT = {
    **{answer: text.replace("&", "") for answer, text in ANSWER_BUTTONS},
    Answer.ALLOW_FOR: "Allow for a while",
    Answer.DENY_FOR: "Deny for a while",
}
_Index = QModelIndex | QPersistentModelIndex


def agent_name(bridge: GatewayBridge, agent_id: str) -> str:
    """The agent's display name, or its id when it has none (or was removed)."""
    agent = bridge.api.config.agents.get(agent_id)
    return agent.name if agent is not None else agent_id


def time_left(bridge: GatewayBridge, request: ApprovalRequest, now: float) -> str:
    """``"1:23"`` until the request is denied for want of an answer."""
    seconds = max(0, int(request.created_at + bridge.api.config.gateway.approval_timeout_s - now))
    return f"{seconds // 60}:{seconds % 60:02d}"


class PendingModel(FlatTableModel):
    """The waiting requests, oldest first."""

    AGENT, TOOL, SERVER, RULE, TIME_LEFT = range(5)
    HEADERS = ("Agent", "Tool", "Server", "Rule", "Time left")

    def __init__(self, bridge: GatewayBridge, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._bridge = bridge
        self._requests: list[ApprovalRequest] = bridge.api.pending_approvals()
        bridge.approval_requested.connect(self._add)
        bridge.approval_resolved.connect(self._remove)
        self._timer = QTimer(self)
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self._tick)
        self._timer.start()

    def row_count(self) -> int:
        """One row per waiting request."""
        return len(self._requests)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """The cell's text; the tooltip of the Rule column is the policy's reason."""
        if not index.isValid() or not 0 <= index.row() < len(self._requests):
            return None
        request = self._requests[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if column == self.AGENT:
                return agent_name(self._bridge, request.agent)
            if column == self.TOOL:
                return request.public_name
            if column == self.SERVER:
                return request.server
            if column == self.RULE:
                return request.rule_text
            if column == self.TIME_LEFT:
                return time_left(self._bridge, request, time.time())
        if role == Qt.ItemDataRole.ToolTipRole and column == self.RULE:
            return request.reason
        return None

    def request(self, row: int) -> ApprovalRequest | None:
        """The request on ``row``."""
        return self._requests[row] if 0 <= row < len(self._requests) else None

    def row_of(self, request_id: str) -> int:
        """The row of request ``request_id``, or -1."""
        return next((row for row, r in enumerate(self._requests) if r.id == request_id), -1)

    def _add(self, request: ApprovalRequest) -> None:
        if self.row_of(request.id) >= 0:
            return
        row = len(self._requests)
        self.beginInsertRows(QModelIndex(), row, row)
        self._requests.append(request)
        self.endInsertRows()

    def _remove(self, resolution: Resolution) -> None:
        row = self.row_of(resolution.request.id)
        if row < 0:
            return
        self.beginRemoveRows(QModelIndex(), row, row)
        del self._requests[row]
        self.endRemoveRows()

    def _tick(self) -> None:
        if self._requests:
            last = len(self._requests) - 1
            self.dataChanged.emit(self.index(0, self.TIME_LEFT), self.index(last, self.TIME_LEFT))


class RecentModel(FlatTableModel):
    """The last ``MAX_RECENT`` answered, timed-out or withdrawn requests, newest first."""

    TIME, AGENT, TOOL, OUTCOME, WAITED = range(5)
    HEADERS = ("Time", "Agent", "Tool", "Outcome", "Waited")

    def __init__(self, bridge: GatewayBridge, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._bridge = bridge
        self._resolutions: collections.deque[tuple[float, Resolution]] = collections.deque(maxlen=MAX_RECENT)
        bridge.approval_resolved.connect(self._add)

    def row_count(self) -> int:
        """One row per recent answer."""
        return len(self._resolutions)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """The cell's text."""
        if role != Qt.ItemDataRole.DisplayRole or not index.isValid() or index.row() >= len(self._resolutions):
            return None
        at, resolution = self._resolutions[index.row()]
        request = resolution.request
        return (
            format_time(at),
            agent_name(self._bridge, request.agent),
            request.public_name,
            outcome_text(resolution),
            format_duration(resolution.waited_s),
        )[index.column()]

    def _add(self, resolution: Resolution) -> None:
        if len(self._resolutions) == MAX_RECENT:
            self.beginRemoveRows(QModelIndex(), MAX_RECENT - 1, MAX_RECENT - 1)
            self._resolutions.pop()
            self.endRemoveRows()
        self.beginInsertRows(QModelIndex(), 0, 0)
        self._resolutions.appendleft((time.time(), resolution))
        self.endInsertRows()


def outcome_text(resolution: Resolution) -> str:
    """``"Allow once"``, ``"Always deny"``…, or how it ended without an answer."""
    if resolution.answer is not None:
        return ANSWER_TEXT[resolution.answer]
    return OUTCOME_TEXT.get(resolution.outcome, resolution.outcome.value)


class ApprovalsPanel(QWidget):
    """Pending requests with their details and answer buttons, and the recent answers.

    Args:
        bridge: the running gateway.
    """

    review_requested = Signal(str)
    """The person asked to review the changed definition the selected request is held for; carries its server."""

    def __init__(self, bridge: GatewayBridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._bridge = bridge
        self.pending = PendingModel(bridge, self)
        self.recent = RecentModel(bridge, self)
        self.pending_view = _table(self.pending)
        self.pending_view.setAccessibleName("Waiting for you")
        self.recent_view = _table(self.recent)
        self.recent_view.setAccessibleName("Recent answers")
        self.empty = QLabel("Nothing is waiting for you.")
        self.headline = QLabel()
        self.headline.setTextFormat(Qt.TextFormat.PlainText)
        self.headline.setWordWrap(True)
        self.rule = QLabel()
        self.rule.setTextFormat(Qt.TextFormat.PlainText)
        self.rule.setWordWrap(True)
        self.arguments = QPlainTextEdit()
        self.arguments.setAccessibleName("Arguments")
        self.arguments.setReadOnly(True)
        self.error = InlineError()
        self.buttons: dict[Answer, QPushButton] = {}
        self.allow_for_button = timed_answer_button("Allow &for…", lambda s: self.answer(Answer.ALLOW_FOR, for_s=s))
        self.deny_for_button = timed_answer_button("Deny fo&r…", lambda s: self.answer(Answer.DENY_FOR, for_s=s))
        self.buttons[Answer.ALLOW_FOR] = self.allow_for_button
        self.buttons[Answer.DENY_FOR] = self.deny_for_button
        # Two rows, allowing then refusing, as in the prompt: each button keeps its whole text at the window's
        # minimum size.
        allow_row, deny_row = QHBoxLayout(), QHBoxLayout()
        for answer, text in ANSWER_BUTTONS:
            button = QPushButton(text)
            button.clicked.connect(lambda _=False, a=answer: self.answer(a))
            self.buttons[answer] = button
            (deny_row if answer in (Answer.DENY, Answer.DENY_ALWAYS) else allow_row).addWidget(button)
            if answer is Answer.ALLOW_ALWAYS:
                allow_row.addWidget(self.allow_for_button)
        deny_row.addWidget(self.deny_for_button)
        # "Always allow when ARG is under FOLDER", pre-filled from the call's path argument, as in the prompt.
        self.allow_under_button = QPushButton()
        self.allow_under_button.clicked.connect(self._allow_under)
        self._suggestion: tuple[str, str] | None = None
        under_row = QHBoxLayout()
        under_row.addWidget(self.allow_under_button)
        under_row.addStretch(1)
        # A call held for review: the change is accepted at Servers ▸ server ▸ Changes, never by an answer here.
        self.review_button = QPushButton("Re&view change…")
        self.review_button.clicked.connect(self._review_change)
        deny_row.addWidget(self.review_button)
        allow_row.addStretch(1)
        deny_row.addStretch(1)
        button_row = QVBoxLayout()
        button_row.addLayout(allow_row)
        button_row.addLayout(under_row)
        button_row.addLayout(deny_row)

        self.detail = detail = QWidget()
        detail_layout = QVBoxLayout(detail)
        detail_layout.setContentsMargins(0, 0, 0, 0)
        detail_layout.addWidget(self.headline)
        detail_layout.addWidget(self.rule)
        detail_layout.addWidget(self.arguments, 1)
        detail_layout.addWidget(self.error)
        detail_layout.addLayout(button_row)
        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.addWidget(QLabel("<b>Waiting for you</b> (oldest first)"))
        top_layout.addWidget(self.empty)
        top_layout.addWidget(self.pending_view, 1)
        top_layout.addWidget(detail, 2)
        bottom = QWidget()
        bottom_layout = QVBoxLayout(bottom)
        bottom_layout.setContentsMargins(0, 0, 0, 0)
        bottom_layout.addWidget(QLabel("<b>Recent answers</b>"))
        bottom_layout.addWidget(self.recent_view)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(top)
        splitter.addWidget(bottom)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(splitter)

        self.pending_view.selectionModel().currentRowChanged.connect(lambda *_: self._show_selected())
        self.pending.rowsInserted.connect(self._after_change)
        self.pending.rowsRemoved.connect(self._after_change)
        self._after_change()

    def selected(self) -> ApprovalRequest | None:
        """The request whose details are shown."""
        return self.pending.request(self.pending_view.currentIndex().row())

    def select(self, request_id: str) -> None:
        """Show request ``request_id``'s details."""
        row = self.pending.row_of(request_id)
        if row >= 0:
            self.pending_view.setCurrentIndex(self.pending.index(row, 0))

    def answer(self, answer: Answer, *, for_s: float | None = None) -> None:
        """Answer the selected request (``for_s``: how long a timed answer holds)."""
        request = self.selected()
        if request is None:
            return
        try:
            self._bridge.api.answer_approval(request.id, answer, for_s=for_s)
        except ApprovalError as exc:
            self.error.show_message(str(exc))
            return
        self.error.show_message("")

    def _allow_under(self) -> None:
        request, suggestion = self.selected(), self._suggestion
        if request is None or suggestion is None:
            return
        try:
            self._bridge.api.allow_when_under(request.id, *suggestion)
        except ToolgateError as exc:
            self.error.show_message(str(exc))
            return
        self.error.show_message("")

    def _review_change(self) -> None:
        request = self.selected()
        if request is not None and request.held_for_review:
            self.review_requested.emit(request.server)

    def _after_change(self, *_: object) -> None:
        has_pending = self.pending.rowCount() > 0
        self.empty.setVisible(not has_pending)
        self.detail.setVisible(has_pending)
        self.pending_view.setVisible(has_pending)
        if has_pending and not self.pending_view.currentIndex().isValid():
            self.pending_view.setCurrentIndex(self.pending.index(0, 0))
        self._show_selected()

    def _show_selected(self) -> None:
        request = self.selected()
        for answer, button in self.buttons.items():
            button.setEnabled(request is not None)
            button.setVisible(request is None or request.can_be_always or answer.rule_effect is None)
        self.review_button.setVisible(request is not None and request.held_for_review)
        self._suggestion = (
            folder_suggestion(request.arguments) if request is not None and request.can_be_always else None
        )
        if self._suggestion is not None:
            argument, folder = (part.replace("&", "&&") for part in self._suggestion)
            self.allow_under_button.setText(f"Always allow &when {argument} is under {folder}")
        self.allow_under_button.setVisible(self._suggestion is not None)
        if request is not None:
            self.review_button.setToolTip(
                f"Open Servers ▸ {request.server} ▸ Changes to read the diff and accept it there; "
                "answering here answers this call only"
            )
        if request is None:
            self.headline.setText("")
            self.rule.setText("")
            self.arguments.setPlainText("")
            return
        name = agent_name(self._bridge, request.agent)
        self.headline.setText(f"{name} {wants(request)} (server {request.server})")
        self.rule.setText(f"Asked by the rule {request.rule_text}: {request.reason}{looked_at_text(request)}")
        self.arguments.setPlainText(folded_arguments(request.arguments))
        self.error.show_message("")


def _table(model: QAbstractTableModel) -> QTableView:
    view = QTableView()
    view.setModel(model)
    view.setItemDelegate(ReadableSelectionDelegate(view))
    view.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
    view.setSelectionMode(QTableView.SelectionMode.SingleSelection)
    view.verticalHeader().hide()
    view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    view.horizontalHeader().setStretchLastSection(True)
    view.setEditTriggers(QTableView.EditTrigger.NoEditTriggers)
    return view

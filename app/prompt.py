"""The approval prompt: one small always-on-top window asking about waiting calls, oldest first.

It is built once and reused: a new request updates its labels and shows it, others queue in the same
window ("1 of 3 waiting"). When the shown request ends elsewhere (the CLI, the Approvals panel, a
timeout, the agent withdrawing it) a short note replaces the buttons, then the next request shows or
the window hides itself.
"""

from __future__ import annotations

import logging
import math
import sys
import time

from PySide6.QtCore import QMargins, QPoint, QRect, QSize, Qt, QTimer, Signal
from PySide6.QtGui import (
    QCloseEvent,
    QFont,
    QFontDatabase,
    QGuiApplication,
    QHideEvent,
    QKeySequence,
    QResizeEvent,
    QShortcut,
)
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSystemTrayIcon,
    QVBoxLayout,
    QWidget,
)

from app.bridge import GatewayBridge
from app.common import InlineError, folded_arguments, looked_at_text, pretty_arguments, timed_answer_button, wants
from gateway_core import Answer, ApprovalRequest, Outcome, Resolution, ToolgateError, folder_suggestion

logger = logging.getLogger("toolgate.app")

TITLE = "Approval needed"  # Qt adds " — Toolgate" (the application display name)
# How long the "Withdrawn by the agent" / "Timed out — denied" note stays before the prompt moves on.
NOTE_S = 1.5
# Answers are ignored this long after a request appears, so a keystroke or click meant for another
# window (or a double click on the previous request) cannot answer it by accident.
ANSWER_DELAY_S = 0.4
SCREEN_MARGIN = 12
PROMPT_WIDTH = 560
NOTIFICATION_MS = 8000
# After showing the prompt, the window manager adds its frame and may place it; the prompt checks its
# place (frame included) again at these delays.
SETTLE_MS = (0, 150, 600)
# A new request that is not on screen this long after it arrived is announced through the tray.
NOTIFY_AFTER_MS = 1000

OUTCOME_NOTE = {
    Outcome.WITHDRAWN: "Withdrawn by the agent",
    Outcome.TIMED_OUT: "Timed out — denied",
    Outcome.ALLOWED: "Allowed elsewhere",
    Outcome.DENIED: "Denied elsewhere",
}


class ApprovalPrompt(QWidget):
    """Asks the person to allow or deny waiting calls, one at a time, in a single reused window.

    Enter allows once, Esc denies, and each button has an Alt+letter mnemonic. Focus starts on the
    window itself and the first Tab reaches the read-only arguments, so a stray Tab then Space answers
    nothing; Deny comes before the allowing answers in the Tab order. Use ``set_tray`` to place it next
    to the tray icon and to notify through the tray when the prompt cannot be shown; while the prompt
    is on screen no notification covers it.

    Args:
        bridge: the gateway bridge whose approval requests it shows and answers.
        parent: an optional parent widget.
    """

    shown = Signal(str)
    """A request became visible in the prompt; carries its id."""
    review_requested = Signal(str)
    """The person asked to review the changed definition the shown request is held for; carries its server."""

    def __init__(self, bridge: GatewayBridge, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Tool | Qt.WindowType.WindowStaysOnTopHint)
        self._bridge = bridge
        self._waiting: dict[str, ApprovalRequest] = {}
        self._current: ApprovalRequest | None = None
        self._answering: str | None = None
        self._armed = False
        self._full_arguments = ""
        self._tray: QSystemTrayIcon | None = None
        # The window manager's frame around the prompt, learnt once it has been shown (none before).
        self._frame_margins = QMargins()
        self._notified: set[str] = set()
        self.setWindowTitle(TITLE)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._build()
        self._tick = QTimer(self)
        self._tick.setInterval(1000)
        self._tick.timeout.connect(self._update_countdown)
        self._note_timer = QTimer(self)
        self._note_timer.setSingleShot(True)
        self._note_timer.timeout.connect(self._show_next)
        self._arm_timer = QTimer(self)
        self._arm_timer.setSingleShot(True)
        self._arm_timer.timeout.connect(self._arm)
        bridge.approval_requested.connect(self._on_requested)
        bridge.approval_resolved.connect(self._on_resolved)
        for request in bridge.api.pending_approvals():
            self._waiting[request.id] = request

    def _build(self) -> None:
        self.headline = QLabel()
        font = QFont(self.headline.font())
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.2)
        self.headline.setFont(font)
        self.details = QLabel()
        self.queue_label = QLabel()
        self.arguments_view = QPlainTextEdit()
        self.arguments_view.setReadOnly(True)
        # The first Tab comes here: Space only scrolls a read-only view, so no key answers by surprise.
        self.arguments_view.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.arguments_view.setTabChangesFocus(True)
        self.arguments_view.setAccessibleName("Arguments of the call")
        self.arguments_view.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.arguments_view.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.arguments_view.setMaximumHeight(180)
        self.show_all_button = QPushButton("S&how everything")
        self.show_all_button.setFlat(True)
        self.show_all_button.clicked.connect(self._show_full_arguments)
        self.rule_label = QLabel()
        self.reason_label = QLabel()
        self.countdown_label = QLabel()
        self.note_label = QLabel()
        self.error = InlineError()
        for label in (self.headline, self.details, self.queue_label, self.rule_label, self.reason_label):
            # Names and arguments come from agents and servers: never interpret them as rich text.
            label.setTextFormat(Qt.TextFormat.PlainText)
            label.setWordWrap(True)
        self.note_label.setTextFormat(Qt.TextFormat.PlainText)

        self.allow_once_button = QPushButton("Allow &once")
        self.allow_session_button = QPushButton("Allow this &session")
        self.allow_always_button = QPushButton("&Always allow")
        self.deny_button = QPushButton("&Deny")
        self.deny_always_button = QPushButton("Always de&ny")
        self.allow_for_button = timed_answer_button("Allow &for…", lambda s: self.answer(Answer.ALLOW_FOR, for_s=s))
        self.allow_under_button = QPushButton()
        self.allow_under_button.clicked.connect(self._allow_under)
        self._suggestion: tuple[str, str] | None = None
        # A call held for review: the change is accepted in the window (Servers ▸ server ▸ Changes), never here.
        self.review_button = QPushButton("Re&view change…")
        self.review_button.clicked.connect(self._review_change)
        self.deny_for_button = timed_answer_button("Deny fo&r…", lambda s: self.answer(Answer.DENY_FOR, for_s=s))
        self.allow_once_button.setDefault(True)
        self.allow_once_button.setToolTip("Enter")
        self.deny_button.setToolTip("Esc")
        self._answers = {
            self.allow_once_button: Answer.ALLOW_ONCE,
            self.allow_session_button: Answer.ALLOW_SESSION,
            self.allow_always_button: Answer.ALLOW_ALWAYS,
            self.deny_button: Answer.DENY,
            self.deny_always_button: Answer.DENY_ALWAYS,
        }
        for button in self._answers:
            button.clicked.connect(self._on_answer_clicked)
        allow_row, deny_row = QHBoxLayout(), QHBoxLayout()
        for button in (self.allow_once_button, self.allow_session_button, self.allow_for_button):
            allow_row.addWidget(button)
        allow_row.addWidget(self.allow_always_button)
        deny_row.addStretch(1)
        for button in (self.deny_button, self.deny_for_button, self.deny_always_button):
            deny_row.addWidget(button)
        under_row = QHBoxLayout()
        under_row.addWidget(self.allow_under_button)
        under_row.addWidget(self.review_button)
        under_row.addStretch(1)
        buttons = QVBoxLayout()
        buttons.addLayout(allow_row)
        buttons.addLayout(under_row)
        buttons.addLayout(deny_row)

        header = QHBoxLayout()
        header.addWidget(self.details, 1)
        header.addWidget(self.queue_label, 0, Qt.AlignmentFlag.AlignRight)
        layout = QVBoxLayout(self)
        layout.addWidget(self.headline)
        layout.addLayout(header)
        layout.addWidget(self.arguments_view)
        layout.addWidget(self.show_all_button, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.rule_label)
        layout.addWidget(self.reason_label)
        layout.addWidget(self.countdown_label)
        layout.addWidget(self.note_label)
        layout.addWidget(self.error)
        layout.addLayout(buttons)
        self.setFixedWidth(PROMPT_WIDTH)
        # Tab order: arguments, "Show everything", then Deny before the allowing answers.
        order = [
            self.arguments_view,
            self.show_all_button,
            self.deny_button,
            self.deny_always_button,
            self.allow_once_button,
            self.allow_session_button,
            self.allow_always_button,
        ]
        for first, second in zip(order, order[1:], strict=False):
            QWidget.setTabOrder(first, second)

        for key, slot in (("Return", self._allow_once), ("Enter", self._allow_once), ("Escape", self._deny)):
            QShortcut(QKeySequence(key), self).activated.connect(slot)

    # --- reading -----------------------------------------------------------------------------------

    @property
    def current(self) -> ApprovalRequest | None:
        """The request the prompt shows (or would show when opened), if any."""
        return self._current

    @property
    def waiting_count(self) -> int:
        """How many requests wait, the shown one included."""
        return len(self._waiting)

    @property
    def answerable(self) -> bool:
        """Whether an answer (button or key) is taken now: a request is shown, past the short delay."""
        return self._armed and self._current is not None and not self._note_timer.isActive()

    # --- actions -----------------------------------------------------------------------------------

    def set_tray(self, tray: QSystemTrayIcon | None) -> None:
        """Place the prompt next to ``tray`` and notify through it (when the platform supports messages)."""
        self._tray = tray
        if tray is not None:
            tray.messageClicked.connect(self.show_pending)

    def show_pending(self) -> None:
        """Show the oldest waiting request (e.g. after the person closed the prompt); hide when none waits."""
        if self._current is not None and self._current.id in self._waiting and not self._note_timer.isActive():
            if self.isVisible():
                self.raise_()
            self._present(self._current)
        else:
            self._show_next()

    def answer(self, answer: Answer, *, for_s: float | None = None) -> None:
        """Answer the shown request (``for_s``: how long a timed answer holds); ignored while nothing is answerable.

        Errors show inline.
        """
        request = self._current
        if request is None or not self.answerable:
            return
        self._answering = request.id
        try:
            self._bridge.api.answer_approval(request.id, answer, for_s=for_s)
        except ToolgateError as exc:
            self._answering = None
            self.error.show_message(str(exc))

    # --- events ------------------------------------------------------------------------------------

    def _on_answer_clicked(self) -> None:
        answer = self._answers.get(self.sender())  # type: ignore[call-overload]
        if answer is not None:
            self.answer(answer)

    def _allow_under(self) -> None:
        request, suggestion = self._current, self._suggestion
        if request is None or suggestion is None or not self.answerable:
            return
        self._answering = request.id
        try:
            self._bridge.api.allow_when_under(request.id, *suggestion)
        except ToolgateError as exc:
            self._answering = None
            self.error.show_message(str(exc))

    def _review_change(self) -> None:
        if self._current is not None and self._current.held_for_review:
            self.review_requested.emit(self._current.server)

    def _allow_once(self) -> None:
        self.answer(Answer.ALLOW_ONCE)

    def _deny(self) -> None:
        self.answer(Answer.DENY)

    def _on_requested(self, request: ApprovalRequest) -> None:
        self._waiting[request.id] = request
        if self._current is None and not self._note_timer.isActive():
            self._show(request)
        else:
            self._update_queue_label()
            if not self.isVisible() and self._current is not None and not self._note_timer.isActive():
                self._present(self._current)
        # No balloon while the prompt is on screen: only if it did not make it there (or was closed).
        QTimer.singleShot(NOTIFY_AFTER_MS, self._notify_if_unseen)

    def _on_resolved(self, resolution: Resolution) -> None:
        request_id = resolution.request.id
        self._waiting.pop(request_id, None)
        self._notified.discard(request_id)
        if self._current is None or request_id != self._current.id:
            self._update_queue_label()
            return
        if request_id == self._answering or not self.isVisible():
            self._answering = None
            self._show_next(present=self.isVisible())
            return
        self._tick.stop()
        self._set_buttons_enabled(False)
        self.countdown_label.hide()
        self.note_label.setText(OUTCOME_NOTE.get(resolution.outcome, "No longer waiting"))
        self.note_label.show()
        self._update_queue_label()
        self._note_timer.start(round(NOTE_S * 1000))

    def _show_next(self, *, present: bool = True) -> None:
        self._note_timer.stop()
        self._current = None
        if not self._waiting:
            self.hide()
            return
        oldest = min(self._waiting.values(), key=lambda r: r.created_at)
        self._show(oldest, present=present)

    def _show(self, request: ApprovalRequest, *, present: bool = True) -> None:
        self._current = request
        self.headline.setText(self._headline(request))
        self.setAccessibleDescription(self._headline(request))
        self.details.setText(f"Server: {request.server} · {request.kind} {request.tool}")
        # "Always" writes a rule for one tool; prompts and resources are decided for the whole server.
        for button in (self.allow_always_button, self.deny_always_button, self.allow_for_button, self.deny_for_button):
            button.setVisible(request.can_be_always)
        self._suggestion = folder_suggestion(request.arguments) if request.can_be_always else None
        if self._suggestion is not None:
            argument, folder = self._suggestion
            self.allow_under_button.setText(
                f"Always allow &when {argument.replace('&', '&&')} is under {folder.replace('&', '&&')}"
            )
        self.allow_under_button.setVisible(self._suggestion is not None)
        self.review_button.setVisible(request.held_for_review)
        self.review_button.setToolTip(
            f"Open Servers ▸ {request.server} ▸ Changes to read the diff and accept it there; "
            "answering here answers this call only"
        )
        self._full_arguments = pretty_arguments(request.arguments)
        folded = folded_arguments(request.arguments)
        self.arguments_view.setPlainText(folded)
        self.show_all_button.setVisible(folded != self._full_arguments)
        self.rule_label.setText(f"Rule: {request.rule_text}{looked_at_text(request)}")
        self.reason_label.setText(request.reason)
        self.note_label.hide()
        self.error.show_message("")
        self.countdown_label.show()
        self._update_countdown()
        self._update_queue_label()
        if present:
            self._present(request)

    def _present(self, request: ApprovalRequest) -> None:
        self._armed = False
        self._set_buttons_enabled(False)
        self._arm_timer.start(round(ANSWER_DELAY_S * 1000))
        self._tick.start()
        if not self.isVisible():
            self.setMinimumHeight(0)
            self.adjustSize()
            self.move(self._position())
            self.show()  # a newly shown window comes up on top; raise_() only for one already open
            # Focus on the window itself, not on a button: Space answers nothing; Tab reaches the arguments.
            self.setFocus()
            for delay in SETTLE_MS:
                QTimer.singleShot(delay, self._settle)
        else:
            # Keep still while the queue changes: never shrink or move while open; grow only as needed
            # (and then only as far as needed to stay inside the work area).
            height = max(self.height(), self.sizeHint().height())
            self.setMinimumHeight(height)
            self.resize(self.width(), height)
            self._keep_inside_work_area()
        self.activateWindow()
        self.shown.emit(request.id)

    def _settle(self) -> None:
        """Learn the window frame once it is known and keep the whole frame inside the work area."""
        if self.isVisible():
            frame, inner = self.frameGeometry(), self.geometry()
            self._frame_margins = QMargins(
                inner.left() - frame.left(),
                inner.top() - frame.top(),
                frame.right() - inner.right(),
                frame.bottom() - inner.bottom(),
            )
            self._keep_inside_work_area()

    def _notify_if_unseen(self) -> None:
        if self._current is None or self._current.id not in self._waiting:
            return
        if self.on_screen():
            logger.info("the approval prompt is on screen (%d waiting): no tray notification", len(self._waiting))
        else:
            logger.info("the approval prompt is not on screen: notifying through the tray")
            self._notify(self._current)

    def on_screen(self) -> bool:
        """Whether the prompt is shown and its window is exposed (not minimised or unmapped)."""
        handle = self.windowHandle()
        return self.isVisible() and handle is not None and handle.isExposed()

    def _keep_inside_work_area(self) -> None:
        screen = self.screen() or QGuiApplication.primaryScreen()
        frame = self.frameGeometry()
        if frame == self.geometry():  # the frame is not known (yet): assume the last one seen
            frame = self._with_frame(frame)
        target = fit_inside(frame, screen.availableGeometry())
        if target != frame.topLeft():
            self.move(target)

    def _with_frame(self, inner: QRect) -> QRect:
        return inner.marginsAdded(self._frame_margins)

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: D102 (Qt override)
        super().resizeEvent(event)
        # The layout grows the window when a longer request needs room: keep its buttons on screen.
        if self.isVisible():
            self._keep_inside_work_area()

    def _arm(self) -> None:
        self._armed = True
        self._set_buttons_enabled(True)

    def _update_countdown(self) -> None:
        if self._current is None:
            return
        deadline = self._current.created_at + self._bridge.api.config.gateway.approval_timeout_s
        remaining = max(0, math.ceil(deadline - time.time()))
        minutes, seconds = divmod(remaining, 60)
        self.countdown_label.setText(f"Denied automatically in {minutes}:{seconds:02d}")

    def _update_queue_label(self) -> None:
        count = len(self._waiting)
        if self._current is not None and self._current.id in self._waiting:
            self.queue_label.setText(f"1 of {count} waiting")
            self.queue_label.setVisible(count > 1)
        else:  # the shown request has ended and its note is up
            self.queue_label.setText(f"{count} more waiting")
            self.queue_label.setVisible(count > 0)

    def _set_buttons_enabled(self, enabled: bool) -> None:
        for button in (*self._answers, self.allow_for_button, self.deny_for_button, self.allow_under_button):
            button.setEnabled(enabled)

    def _show_full_arguments(self) -> None:
        self.arguments_view.setPlainText(self._full_arguments)
        self.show_all_button.hide()

    def _notify(self, request: ApprovalRequest) -> None:
        # Only when the prompt cannot be seen: a balloon over the prompt would cover its buttons.
        if self._tray is None or not self._tray.supportsMessages() or self.on_screen():
            return
        if request.id in self._notified:
            return
        self._notified.add(request.id)
        self._tray.showMessage(TITLE, self._headline(request), QSystemTrayIcon.MessageIcon.Information, NOTIFICATION_MS)

    def _headline(self, request: ApprovalRequest) -> str:
        agent = self._bridge.api.config.agents.get(request.agent)
        return f"{agent.name if agent else request.agent} {wants(request)}"

    def _position(self) -> QPoint:
        tray = self._tray.geometry() if self._tray is not None else QRect()
        tray_rect = tray if tray.isValid() and not tray.isEmpty() else None
        screen = QGuiApplication.screenAt(tray.center()) if tray_rect is not None else None
        screen = screen or self.screen() or QGuiApplication.primaryScreen()
        frame_size = self._with_frame(QRect(QPoint(0, 0), self.size())).size()
        return prompt_position(frame_size, screen.availableGeometry(), tray_rect, top=sys.platform == "darwin")

    def hideEvent(self, event: QHideEvent) -> None:  # noqa: D102 (Qt override)
        self._tick.stop()
        super().hideEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: D102 (Qt override)
        # Closing only hides the prompt: the calls keep waiting (and time out as denied).
        if self._note_timer.isActive():
            self._show_next(present=False)
        super().closeEvent(event)


def fit_inside(frame: QRect, available: QRect) -> QPoint:
    """Where a window's frame ``frame`` must move to lie inside ``available`` (its own place if it does).

    A window taller or wider than the work area keeps its top-left corner (title bar) inside it.
    """
    margin = SCREEN_MARGIN
    x, y = frame.x(), frame.y()
    if frame.right() > available.right() - margin:
        x = available.right() + 1 - frame.width() - margin
    if frame.bottom() > available.bottom() - margin:
        y = available.bottom() + 1 - frame.height() - margin
    return QPoint(max(x, available.left() + margin), max(y, available.top() + margin))


def prompt_position(size: QSize, available: QRect, tray: QRect | None, *, top: bool) -> QPoint:
    """Where the prompt's frame goes: beside the tray icon when its place is known, else in a screen corner.

    Args:
        size: the prompt's size with its window frame.
        available: the screen's available geometry (without panels and docks).
        tray: the tray icon's geometry, or ``None`` when unknown.
        top: use the top-right corner (macOS's menu bar) instead of the bottom-right one.
    """
    width, height, margin = size.width(), size.height(), SCREEN_MARGIN
    if tray is not None:
        x = tray.center().x() - width // 2
        below_middle = tray.center().y() > available.center().y()
        y = tray.top() - height - margin if below_middle else tray.bottom() + margin
    else:
        x = available.right() + 1 - width - margin
        y = available.top() + margin if top else available.bottom() + 1 - height - margin
    x = max(available.left() + margin, min(x, available.right() + 1 - width - margin))
    y = max(available.top() + margin, min(y, available.bottom() + 1 - height - margin))
    return QPoint(x, y)

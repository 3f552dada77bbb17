"""Undo right after an answer that wrote a rule: a small window beside the tray with the rule and **Undo**.

The tray's OS notifications carry no buttons that work on every platform, so the offer is Toolgate's own
small window, placed like the approval prompt (above it when the prompt is up) and gone after
``UNDO_S`` seconds. It follows the running configuration: a rule whose ``source`` is an answer it has not
seen yet — "always", timed or "always when under", given in the prompt, the Approvals panel or with
``toolgate approvals`` — brings it up. **Undo** takes back that answer's rules
(``GatewayApi.undo_answer``), putting back the rule it overwrote; the Agents panel's tree offers the same
later, from the rule's row.
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QPoint, QRect, Qt, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSystemTrayIcon, QVBoxLayout, QWidget

from app.bridge import GatewayBridge
from app.common import InlineError
from app.prompt import PROMPT_WIDTH, SCREEN_MARGIN, prompt_position
from gateway_core import Rule, ToolgateError

TITLE = "Rule added"  # Qt adds " — Toolgate"
# How long the offer stays; then the rule stays too (the Agents panel can still undo it).
UNDO_S = 15.0
# How long "Undone" stays before the window goes.
UNDONE_S = 2.0


class UndoToast(QWidget):
    """Offers to undo the answer that last wrote rules, for ``UNDO_S`` seconds.

    Attributes:
        message: what the answer wrote, e.g. "Cursor: fake/echo → allow (was: ask)".
        undo_button: takes the answer back.
        dismiss_button: keeps the rule and closes the window.
        error: why an undo did not work.

    Args:
        bridge: the running gateway.
        parent: an optional parent widget.
    """

    def __init__(self, bridge: GatewayBridge, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Tool | Qt.WindowType.WindowStaysOnTopHint)
        self._bridge = bridge
        self._tray: QSystemTrayIcon | None = None
        self._avoid: QWidget | None = None
        self._seen: set[tuple[str, str]] = set(self._answers())
        self._offered: tuple[str, str] | None = None
        self.setWindowTitle(TITLE)
        self.setAttribute(Qt.WidgetAttribute.WA_ShowWithoutActivating)
        self.message = QLabel()
        self.message.setTextFormat(Qt.TextFormat.PlainText)  # names come from agents and servers
        self.message.setWordWrap(True)
        self.undo_button = QPushButton("&Undo")
        self.undo_button.clicked.connect(self.undo)
        self.dismiss_button = QPushButton("&Keep")
        self.dismiss_button.clicked.connect(self.hide)
        self.error = InlineError()
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.dismiss_button)
        buttons.addWidget(self.undo_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.message)
        layout.addWidget(self.error)
        layout.addLayout(buttons)
        self.setFixedWidth(PROMPT_WIDTH)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.hide)
        bridge.config_applied.connect(self._on_config_applied)

    @property
    def offered(self) -> tuple[str, str] | None:
        """The (agent, answer id) whose rules the window offers to undo, while it is up."""
        return self._offered if self.isVisible() else None

    def set_tray(self, tray: QSystemTrayIcon | None, avoid: QWidget | None = None) -> None:
        """Place the window beside ``tray``, and above ``avoid`` (the approval prompt) while that is shown."""
        self._tray = tray
        self._avoid = avoid

    def undo(self) -> None:
        """Take back the offered answer's rules; a refusal (e.g. the rule already expired) is shown inline."""
        offered = self.offered
        if offered is None:
            return
        agent, answer = offered
        try:
            self._bridge.api.undo_answer(agent, answer)
        except ToolgateError as exc:
            self.error.show_message(str(exc))
            return
        self.error.show_message("")
        self.undo_button.setEnabled(False)
        self.dismiss_button.setEnabled(False)
        self.message.setText(
            f"Undone. {self._agent_name(agent)}: the rule is gone, and what it replaced applies again."
        )
        self._timer.start(round(UNDONE_S * 1000))

    def _answers(self) -> dict[tuple[str, str], list[Rule]]:
        """The rules written by answers, by (agent, answer id)."""
        answers: dict[tuple[str, str], list[Rule]] = {}
        for agent_id, agent in self._bridge.api.config.agents.items():
            for rule in agent.rules:
                if rule.source is not None and rule.source.answer is not None:  # not an import's rules
                    answers.setdefault((agent_id, rule.source.answer), []).append(rule)
        return answers

    def _on_config_applied(self) -> None:
        answers = self._answers()
        new = [key for key in answers if key not in self._seen]
        self._seen |= set(answers)
        if new:
            self._offer(new[-1], answers[new[-1]])
        elif self.offered is not None and self.offered not in answers and self.undo_button.isEnabled():
            self.hide()  # the rules went another way (expired, removed in the Agents panel)

    def _offer(self, key: tuple[str, str], rules: list[Rule]) -> None:
        agent, _ = key
        self._offered = key
        written = "; ".join(_described(rule) for rule in rules)
        self.message.setText(f"{self._agent_name(agent)}: {written}.")
        self.error.show_message("")
        self.undo_button.setEnabled(True)
        self.dismiss_button.setEnabled(True)
        self.adjustSize()
        self.move(self._position())
        self.show()
        self._timer.start(round(UNDO_S * 1000))

    def _agent_name(self, agent: str) -> str:
        entry = self._bridge.api.config.agents.get(agent)
        return entry.name if entry is not None else agent

    def _position(self) -> QPoint:
        tray = self._tray.geometry() if self._tray is not None else QRect()
        tray_rect = tray if tray.isValid() and not tray.isEmpty() else None
        screen = self.screen() or QGuiApplication.primaryScreen()
        available = screen.availableGeometry()
        size = self.frameGeometry().size() if self.isVisible() else self.sizeHint()
        size.setWidth(max(size.width(), PROMPT_WIDTH))
        position = prompt_position(size, available, tray_rect, top=sys.platform == "darwin")
        avoid = self._avoid
        if avoid is not None and avoid.isVisible() and avoid.frameGeometry().intersects(QRect(position, size)):
            above = avoid.frameGeometry().top() - size.height() - SCREEN_MARGIN
            below = avoid.frameGeometry().bottom() + SCREEN_MARGIN
            position.setY(above if above >= available.top() + SCREEN_MARGIN else below)
        return position


def _described(rule: Rule) -> str:
    """A rule an answer wrote, e.g. ``fake/echo → allow`` or ``… (was: ask)`` when it replaced one."""
    source = rule.source
    was = f" (was: {source.replaced.value})" if source is not None and source.replaced is not None else ""
    return f"{rule.text}{was}"

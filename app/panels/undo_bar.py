"""A notification that offers Undo for a while after a server or an agent was removed.

``UndoBar.offer(text, undo, done)`` shows ``text`` with **Undo** and **Dismiss**; Undo calls ``undo``
once and says ``done``, or why it could not be undone. The offer ends after ``UNDO_MS``, on Dismiss,
or when a new offer replaces it (what it would have restored is then dropped). Undo of an answer's rule
is ``app.undo_toast``'s.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget

from app.common import InlineError
from gateway_core import ToolgateError

# How long Undo is offered (what it restores is kept in memory until then).
UNDO_MS = 15_000


class UndoBar(QFrame):
    """A message with Undo and Dismiss, hidden while nothing can be undone."""

    undone = Signal(str)
    """Emitted with the offer's text after its Undo worked."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAccessibleName("Notification")
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.undo_button = QPushButton("&Undo")
        self.dismiss_button = QPushButton("Dismiss")
        self.error = InlineError()
        layout = QHBoxLayout(self)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.error, 1)
        layout.addWidget(self.undo_button)
        layout.addWidget(self.dismiss_button)
        self._undo: Callable[[], None] | None = None
        self._done = ""
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(UNDO_MS)
        self._timer.timeout.connect(self.dismiss)
        self.undo_button.clicked.connect(self.undo)
        self.dismiss_button.clicked.connect(self.dismiss)
        self.hide()

    @property
    def offering(self) -> bool:
        """Whether Undo is on offer now."""
        return self._undo is not None

    def offer(self, text: str, undo: Callable[[], None], done: str) -> None:
        """Show ``text`` and offer ``undo`` for ``UNDO_MS`` (a previous offer ends); ``done`` is said once undone."""
        self._undo = undo
        self._done = done
        self.label.setText(text)
        self.error.show_message("")
        self.undo_button.show()
        self._timer.start()
        self.show()

    def undo(self) -> None:
        """Restore what the offer took away; say so, or say why it could not be undone."""
        undo, self._undo = self._undo, None
        if undo is None:
            return
        self.undo_button.hide()
        self._timer.stop()
        text = self.label.text()
        try:
            undo()
        except ToolgateError as exc:
            self.label.setText("")
            self.error.show_message(f"Could not undo: {exc}")
            return
        self.label.setText(self._done)
        self._timer.start()  # the confirmation goes by itself
        self.undone.emit(text)

    def dismiss(self) -> None:
        """End the offer (what it would restore is dropped) and hide."""
        self._undo = None
        self._timer.stop()
        self.hide()

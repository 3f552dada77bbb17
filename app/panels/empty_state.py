"""What an empty list says instead of a blank table: what goes there, and buttons for the way to fill it."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget


class EmptyState(QWidget):
    """A centred message with action buttons, shown in place of an empty table.

    Attributes: ``message`` (the label) and ``buttons`` (in the order given).

    Args:
        message: what goes in the table and how it gets there.
        actions: (button text with its mnemonic, what it does) pairs.
    """

    def __init__(self, message: str, actions: Sequence[tuple[str, Callable[[], object]]] = ()) -> None:
        super().__init__()
        self.message = QLabel(message)
        self.message.setWordWrap(True)
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.buttons: list[QPushButton] = []
        row = QHBoxLayout()
        row.addStretch(1)
        for text, action in actions:
            button = QPushButton(text)
            button.clicked.connect(lambda *_, act=action: act())
            row.addWidget(button)
            self.buttons.append(button)
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        layout.addWidget(self.message)
        layout.addLayout(row)
        layout.addStretch(2)

    def set_message(self, message: str) -> None:
        """Say something else (e.g. "no calls match" rather than "no calls yet")."""
        self.message.setText(message)

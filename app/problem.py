"""The window shown when Toolgate cannot start: what is wrong, where to fix it, and Try again / Quit."""

from __future__ import annotations

import asyncio
from pathlib import Path

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QCloseEvent, QDesktopServices, QGuiApplication
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget


class ProblemWindow(QWidget):
    """Says why the gateway could not start; the person fixes it and tries again, or quits.

    Args:
        config_file: config.json, offered as "Open config folder".
    """

    def __init__(self, config_file: Path) -> None:
        super().__init__()
        self.setWindowTitle("Could not start")
        self._config_file = config_file
        self._answer: asyncio.Future[bool] | None = None
        self.heading = QLabel("<b>Toolgate could not start</b>")
        self.details = QLabel()
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.open_folder = QPushButton("Open config folder")
        self.retry = QPushButton("Try again")
        self.retry.setDefault(True)
        self.quit = QPushButton("Quit")
        buttons = QHBoxLayout()
        buttons.addWidget(self.open_folder)
        buttons.addStretch(1)
        buttons.addWidget(self.quit)
        buttons.addWidget(self.retry)
        layout = QVBoxLayout(self)
        layout.addWidget(self.heading)
        layout.addWidget(self.details)
        layout.addLayout(buttons)
        self.open_folder.clicked.connect(self._open_folder)
        self.retry.clicked.connect(lambda: self._resolve(True))
        self.quit.clicked.connect(lambda: self._resolve(False))
        self.resize(560, 220)

    async def ask_retry(self, problems: list[str]) -> bool:
        """Show ``problems``; returns True for Try again, False for Quit (or closing the window)."""
        self.details.setText(
            "\n".join(problems) + "\n\nFix this (Open config folder shows the file), then choose Try again."
        )
        self._answer = asyncio.get_running_loop().create_future()
        if not self.isVisible():
            self.adjustSize()
            screen = self.screen() or QGuiApplication.primaryScreen()
            self.move(screen.availableGeometry().center() - self.rect().center())  # not the top-left corner
        self.show()
        self.raise_()
        return await self._answer

    def _resolve(self, retry: bool) -> None:
        if self._answer is not None and not self._answer.done():
            self._answer.set_result(retry)

    def _open_folder(self) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(self._config_file.parent)))

    def closeEvent(self, event: QCloseEvent) -> None:
        """Closing the window means Quit."""
        self._resolve(False)
        super().closeEvent(event)

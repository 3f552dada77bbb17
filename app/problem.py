"""The window shown when Toolgate cannot start: what is wrong, where to fix it, and Try again / Quit."""

from __future__ import annotations

import asyncio
import re
import socket
from pathlib import Path

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QCloseEvent, QDesktopServices, QGuiApplication
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from gateway_core import ToolgateError, set_gateway_settings

_PORT_IN_USE = re.compile(r"^port (\d+) on (\S+) is already in use")
CONFIG_HINT = (
    "config.json cannot be used as it is. Choose Open config.json to fix it in your editor (Toolgate "
    "never rewrites a file it cannot read), then Try again."
)


def free_port(host: str) -> int:
    """A port nothing listens on at ``host`` now (the OS picks it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


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
        self.open_file = QPushButton("Open config.json")
        self.open_folder = QPushButton("Open config folder")
        self.use_port = QPushButton()
        self.use_port.hide()
        self._free_port: int | None = None
        self.retry = QPushButton("Try again")
        self.retry.setDefault(True)
        self.quit = QPushButton("Quit")
        buttons = QHBoxLayout()
        buttons.addWidget(self.open_file)
        buttons.addWidget(self.open_folder)
        buttons.addStretch(1)
        buttons.addWidget(self.use_port)
        buttons.addWidget(self.quit)
        buttons.addWidget(self.retry)
        layout = QVBoxLayout(self)
        layout.addWidget(self.heading)
        layout.addWidget(self.details)
        layout.addLayout(buttons)
        self.open_folder.clicked.connect(self._open_folder)
        self.open_file.clicked.connect(self._open_file)
        self.use_port.clicked.connect(self._use_free_port)
        self.retry.clicked.connect(lambda: self._resolve(True))
        self.quit.clicked.connect(lambda: self._resolve(False))
        self.resize(560, 220)

    async def ask_retry(self, problems: list[str]) -> bool:
        """Show ``problems``; returns True for Try again, False for Quit (or closing the window)."""
        self.details.setText(self._explain(problems))
        self._answer = asyncio.get_running_loop().create_future()
        if not self.isVisible():
            self.adjustSize()
            screen = self.screen() or QGuiApplication.primaryScreen()
            self.move(screen.availableGeometry().center() - self.rect().center())  # not the top-left corner
        self.show()
        self.raise_()
        return await self._answer

    def _explain(self, problems: list[str]) -> str:
        """The problems, and what to do about them here: the window's buttons, not command-line flags."""
        in_use = _PORT_IN_USE.match(problems[0]) if len(problems) == 1 else None
        self._free_port = None
        self.use_port.hide()
        if in_use is not None:
            port, host = int(in_use.group(1)), in_use.group(2)
            try:
                self._free_port = free_port(host)
            except OSError:
                self._free_port = None
            text = (
                f"Port {port} on {host} is already in use, by another Toolgate or another program.\n\n"
                "Quit that program and choose Try again"
            )
            if self._free_port is not None:
                self.use_port.setText(f"Use port {self._free_port}")
                self.use_port.show()
                text += (
                    f", or choose Use port {self._free_port}: Toolgate then serves there from now on, and IDEs "
                    f"connected to port {port} must be connected again (Agents → Connect…)"
                )
            return text + "."
        if any(problem.startswith("config.json") for problem in problems):
            return "\n".join(problems) + "\n\n" + CONFIG_HINT
        return "\n".join(problems) + "\n\nFix this, then choose Try again."

    def _use_free_port(self) -> None:
        if self._free_port is None:
            return
        try:
            set_gateway_settings(self._config_file, port=self._free_port)
        except ToolgateError as exc:
            self.details.setText(f"{self.details.text()}\n\nCould not change the port: {exc}")
            return
        self._resolve(True)

    def _open_file(self) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(self._config_file)))

    def _resolve(self, retry: bool) -> None:
        if self._answer is not None and not self._answer.done():
            self._answer.set_result(retry)

    def _open_folder(self) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(self._config_file.parent)))

    def closeEvent(self, event: QCloseEvent) -> None:
        """Closing the window means Quit."""
        self._resolve(False)
        super().closeEvent(event)

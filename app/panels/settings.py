"""Settings: port, allowed origins, approval timeout, theme, start at login; the servers' launch environment.

The launch environment is what every stdio server's environment starts from, resolved once when
Toolgate started: where its ``PATH`` came from and why, and the ``PATH`` itself (as ``toolgate doctor``
prints it). Each server's detail view says where its own command is found.
"""

from __future__ import annotations

import os

import anyio
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app import autostart
from app.bridge import GatewayBridge
from app.common import InlineError, StatusLine, ToneLabel
from app.icons import app_icon_file
from app.palette import Tone
from app.theme import THEME_TEXT, Theme, apply_theme, save_theme, saved_theme
from gateway_core import Clients, PathSource, ToolgateError
from gateway_core.clients.table import Client

MAX_APPROVAL_TIMEOUT_S = 24 * 3600


class SettingsPanel(QWidget):
    """Gateway settings (written to config.json) and the app's own preferences.

    Args:
        bridge: the running gateway.
    """

    def __init__(self, bridge: GatewayBridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._bridge = bridge
        self.port = QSpinBox()
        self.port.setAccessibleName("Port")
        self.port.setRange(0, 65535)
        self.port_note = QLabel()
        self.port_warning = ToneLabel(Tone.WARN)
        self.port_warning.setWordWrap(True)
        # Offered with the warning: rewrite the HTTP entries of the IDEs connected to the old port.
        self.update_ides_button = QPushButton("&Update them")
        self.update_ides_button.setToolTip("Write the new port into their Toolgate entries (a backup is kept)")
        self.update_ides_button.hide()
        self._http_clients: list[Client] = []
        self.origins = QPlainTextEdit()
        self.origins.setPlaceholderText("One origin per line, e.g. http://localhost:3000")
        self.origins.setMaximumHeight(90)
        self.timeout = QDoubleSpinBox()
        self.timeout.setRange(1, MAX_APPROVAL_TIMEOUT_S)
        self.timeout.setDecimals(0)
        self.timeout.setSuffix(" s")
        self.save = QPushButton("&Save")
        self.revert = QPushButton("Re&vert")
        self.error = InlineError()
        self.saved = StatusLine()
        self.theme = QComboBox()
        for theme, text in THEME_TEXT.items():
            self.theme.addItem(text, theme.value)
        self.start_at_login = QCheckBox("Start Toolgate when I log in")
        self.login_error = InlineError()
        self.launch_source = QLabel()
        self.launch_source.setWordWrap(True)
        self.launch_why = QLabel()
        self.launch_why.setWordWrap(True)
        self.launch_path = QPlainTextEdit()
        self.launch_path.setReadOnly(True)
        self.launch_path.setMaximumHeight(110)
        self.launch_added = QLabel()
        self.launch_added.setWordWrap(True)

        port_row = QHBoxLayout()
        port_row.addWidget(self.port)
        port_row.addWidget(self.port_note, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.saved, 1)
        buttons.addWidget(self.revert)
        buttons.addWidget(self.save)
        gateway_form = QFormLayout()
        gateway_form.addRow("Port", port_row)
        warning_row = QHBoxLayout()
        warning_row.addWidget(self.port_warning, 1)
        warning_row.addWidget(self.update_ides_button, 0, Qt.AlignmentFlag.AlignTop)
        gateway_form.addRow("", warning_row)
        gateway_form.addRow("Allowed origins", self.origins)
        gateway_form.addRow("Approval timeout", self.timeout)
        app_form = QFormLayout()
        app_form.addRow("Theme", self.theme)
        app_form.addRow("", self.start_at_login)
        app_form.addRow("", self.login_error)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("<h3>Gateway</h3>"))
        layout.addLayout(gateway_form)
        layout.addWidget(self.error)
        layout.addLayout(buttons)
        launch_form = QFormLayout()
        launch_form.addRow("PATH from", self.launch_source)
        launch_form.addRow("Why", self.launch_why)
        launch_form.addRow("PATH", self.launch_path)
        launch_form.addRow("", self.launch_added)
        layout.addWidget(QLabel("<h3>Servers' launch environment</h3>"))
        layout.addLayout(launch_form)
        layout.addWidget(QLabel("<h3>Application</h3>"))
        layout.addLayout(app_form)
        layout.addStretch(1)

        self.save.clicked.connect(self.save_gateway_settings)
        self.update_ides_button.clicked.connect(self.update_connected_ides)
        self.revert.clicked.connect(self.load)
        self.theme.currentIndexChanged.connect(self._theme_chosen)
        self.start_at_login.toggled.connect(self._start_at_login_toggled)
        bridge.config_applied.connect(self.load)
        self.load()
        self._show_launch()

    def _show_launch(self) -> None:
        """Where stdio servers' PATH came from, why, and the PATH one folder per line (resolved at start-up)."""
        launch = self._bridge.api.launch
        self.launch_source.setText(launch.source.value)
        self.launch_why.setText(launch.why)
        self.launch_path.setPlainText("\n".join(entry for entry in launch.path.split(os.pathsep) if entry))
        fallback = launch.source is PathSource.FALLBACK
        added = ", ".join(launch.added) if launch.added else "none of them exist"
        self.launch_added.setText(f"Well-known tool folders added: {added}" if fallback else "")
        self.launch_added.setVisible(fallback)

    def load(self) -> None:
        """Show the running settings (discarding unsaved edits)."""
        settings = self._bridge.api.config.gateway
        self.port.setValue(settings.port)
        self._update_port_note()
        self.origins.setPlainText("\n".join(settings.allowed_origins))
        self.timeout.setValue(settings.approval_timeout_s)
        self.error.show_message("")
        self.theme.blockSignals(True)
        self.theme.setCurrentIndex(self.theme.findData(saved_theme(self._bridge.paths.home).value))
        self.theme.blockSignals(False)
        self.start_at_login.blockSignals(True)
        self.start_at_login.setChecked(autostart.is_enabled())
        self.start_at_login.blockSignals(False)

    def save_gateway_settings(self) -> None:
        """Write the gateway settings to config.json and apply them (the port on the next start)."""
        old_port = self._bridge.api.config.gateway.port
        origins = [line.strip() for line in self.origins.toPlainText().splitlines() if line.strip()]
        try:
            self._bridge.api.set_gateway_settings(
                port=self.port.value(), allowed_origins=origins, approval_timeout_s=self.timeout.value()
            )
        except ToolgateError as exc:
            problems = getattr(exc, "problems", None) or [str(exc)]
            self.error.show_message("\n".join(problems))
            self.saved.setText("")
            return
        self.error.show_message("")
        self.saved.setText("Saved.")
        self._update_port_note()
        if self.port.value() != old_port:
            self.port_warning.setText(self._connected_ides_warning(self.port.value()))
            # Port 0 picks a free port at each start: no entry can name it in advance.
            self.update_ides_button.setVisible(bool(self._http_clients) and self.port.value() != 0)

    def _connected_ides_warning(self, new_port: int) -> str:
        """What to tell about IDEs whose config still points at the old port ("" when none is connected)."""
        try:
            installed = [item for item in Clients(self._bridge.paths).installed() if item.connected]
        except (OSError, ToolgateError, ValueError):
            installed = []
        connected = sorted({item.file.client.name for item in installed})
        # User files with an HTTP entry (project files get the shim, which finds the port by itself).
        http = {
            item.file.client.id: item.file.client
            for item in installed
            if item.file.scope == "user"
            and any(server.name == "toolgate" and server.url is not None for server in item.servers)
        }
        self._http_clients = sorted(http.values(), key=lambda client: client.name)
        if not connected:
            return ""
        running = self._bridge.endpoint_port
        where = f"port {running}" if running is not None else "the old port"
        return (
            f"{', '.join(connected)} {'is' if len(connected) == 1 else 'are'} connected to {where}. Once Toolgate "
            f"restarts on {new_port or 'a free port'}, connect {'it' if len(connected) == 1 else 'them'} again "
            "(Agents & permissions → Connect…) so HTTP entries use the new port; toolgate-shim entries "
            "find it by themselves."
        )

    def update_connected_ides(self) -> None:
        """Write the configured port into the HTTP entries of the IDEs connected to Toolgate (a backup first)."""
        clients, chosen = Clients(self._bridge.paths), list(self._http_clients)
        port = self._bridge.api.config.gateway.port
        self.update_ides_button.setEnabled(False)

        def update() -> None:
            for client in chosen:
                clients.apply(clients.connect_change(client.id, http=True), connecting=True)

        async def run() -> None:
            try:
                await anyio.to_thread.run_sync(update)
            except (OSError, ToolgateError, ValueError) as exc:
                self.error.show_message(f"Could not update every IDE: {exc}")
            else:
                names = ", ".join(client.name for client in chosen)
                self.port_warning.setText(
                    f"Updated {names} to port {port} (a backup of each file was kept). Restart "
                    f"{'it' if len(chosen) == 1 else 'them'}, or reload their MCP servers, once Toolgate runs on it."
                )
                self.update_ides_button.hide()
            finally:
                self.update_ides_button.setEnabled(True)

        self._bridge.spawn(run())

    def _update_port_note(self) -> None:
        running_port = self._bridge.endpoint_port
        configured = self._bridge.api.config.gateway.port
        if running_port is not None and running_port != configured and configured != 0:
            self.port_note.setText(f"Now serving on {running_port}; {configured} takes effect when Toolgate restarts.")
        else:
            self.port_note.setText("Changes take effect when Toolgate restarts.")

    def _theme_chosen(self) -> None:
        theme = Theme(self.theme.currentData())
        apply_theme(theme)
        save_theme(self._bridge.paths.home, theme)

    def _start_at_login_toggled(self, enabled: bool) -> None:
        try:
            if enabled:
                autostart.enable(autostart.login_command(), icon=app_icon_file())
            else:
                autostart.disable()
        except OSError as exc:
            self.login_error.show_message(f"Could not change start at login: {exc.strerror or exc}")
            self.start_at_login.blockSignals(True)
            self.start_at_login.setChecked(autostart.is_enabled())
            self.start_at_login.blockSignals(False)
            return
        self.login_error.show_message("")

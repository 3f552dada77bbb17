"""Connect… and Import… in the Agents panel: one IDE client at a time, previewed before anything is written.

Import shows which servers would be added (and which secrets move to the secret store), then adds
them. Connect shows the exact diff of the client's config file, then writes it (a backup first) and
creates the client's agent; Disconnect puts the file back. The work runs off the GUI thread (the
secret store may be slow); the pane shows the outcome or the error in place.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio.to_thread
from PySide6.QtCore import Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from app.bridge import GatewayBridge
from app.common import InlineError
from app.panels.diff_view import DiffHighlighter
from app.panels.server_paste import describe_planned
from gateway_core import CLIENTS, Clients, ToolgateError
from gateway_core.clients.importer import allowed_servers

# What can go wrong reading or writing a client's file, or config.json, or the secret store.
_EXPECTED = (ToolgateError, ValueError, KeyError, OSError)


class ClientsPane(QWidget):
    """Import a client's servers, or connect it to Toolgate (and disconnect it again).

    Attributes (for the panel and tests): ``client_box`` (the client), ``http_button`` /
    ``shim_button`` (the entry style), ``remove_box`` (take out servers Toolgate now provides),
    ``policy_box`` (Import: allow the client's agent the servers it had),
    ``preview`` (what would change), ``import_button``, ``connect_button``, ``disconnect_button``,
    ``error`` and ``result`` (the outcome); ``finished`` is emitted after each write.

    Args:
        bridge: the running gateway (its paths and secret store).
        mode: ``"import"`` or ``"connect"``.
    """

    finished = Signal()

    def __init__(self, bridge: GatewayBridge, mode: str) -> None:
        super().__init__()
        self._bridge = bridge
        self._mode = mode
        self._clients = Clients(bridge.paths, bridge.api.secret_store)
        self.client_box = QComboBox()
        installed = {item.file.client.id: item for item in self._clients.installed()}
        for row in CLIENTS:
            if mode == "connect" or row.id in installed:
                found = installed.get(row.id)
                suffix = " (connected)" if found and found.connected else "" if found else " (no config yet)"
                self.client_box.addItem(f"{row.name}{suffix}", row.id)
        # Connect starts on a client found on this machine (the first one), not the table's first row.
        found_here = [row.id for row in CLIENTS if row.id in installed]
        if found_here:
            self.client_box.setCurrentIndex(self.client_box.findData(found_here[0]))
        self.http_button = QRadioButton("HTTP with its token")
        self.shim_button = QRadioButton("toolgate-shim (stdio)")
        self.remove_box = QCheckBox("Take out the servers Toolgate now provides (so tools do not show twice)")
        self.policy_box = QCheckBox("Allow the client's agent the servers it had (the rest stays at its default)")
        self.preview = QPlainTextEdit()
        self.preview.setAccessibleName("Preview of the change")
        self.preview.setReadOnly(True)
        self.preview.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        # Tall enough for a client file's diff with its context (it was 7 lines), and coloured.
        self.preview.setMinimumHeight(self.preview.fontMetrics().lineSpacing() * 16)
        self.preview.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.highlighter = DiffHighlighter(self.preview.document())
        self.import_button = QPushButton("Im&port")
        self.connect_button = QPushButton("C&onnect")
        self.disconnect_button = QPushButton("Di&sconnect")
        self.error = InlineError()
        self.result = QLabel()
        self.result.setWordWrap(True)
        self._lay_out()
        self.client_box.currentIndexChanged.connect(self._client_changed)
        for widget in (self.http_button, self.shim_button, self.remove_box, self.policy_box):
            widget.toggled.connect(self.refresh_preview)
        self.import_button.clicked.connect(self.run_import)
        self.connect_button.clicked.connect(self.run_connect)
        self.disconnect_button.clicked.connect(self.run_disconnect)
        self._client_changed()

    def _lay_out(self) -> None:
        form = QFormLayout()
        form.addRow("Client", self.client_box)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        if self._mode == "connect":
            style = QHBoxLayout()
            style.addWidget(self.http_button)
            style.addWidget(self.shim_button)
            form.addRow("Entry", style)
            form.addRow("", self.remove_box)
            buttons.addWidget(self.disconnect_button)
            buttons.addWidget(self.connect_button)
        else:
            form.addRow("", self.policy_box)
            buttons.addWidget(self.import_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(form)
        layout.addWidget(self.preview, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.error)
        layout.addWidget(self.result)

    def client_id(self) -> str | None:
        """The chosen client's id."""
        value = self.client_box.currentData()
        return str(value) if value is not None else None

    def _client_changed(self) -> None:
        client_id = self.client_id()
        supports_http = any(row.id == client_id and row.supports_http for row in CLIENTS)
        self.http_button.setEnabled(supports_http)
        (self.http_button if supports_http else self.shim_button).setChecked(True)
        self.refresh_preview()

    def refresh_preview(self) -> None:
        """Show what the chosen action would change (nothing is written)."""
        client_id = self.client_id()
        self.error.show_message("")
        if client_id is None:
            self.preview.setPlainText("No MCP clients were found on this computer.")
            self.import_button.setEnabled(False)
            return
        try:
            text = self._import_preview(client_id) if self._mode == "import" else self._connect_preview(client_id)
        except _EXPECTED as exc:
            self.preview.setPlainText("")
            self.error.show_message(str(exc))
            return
        self.preview.setPlainText(text)

    def _import_preview(self, client_id: str) -> str:
        plan = self._clients.plan_import(client_id)
        lines = [describe_planned(name, plan) for name in plan.servers]
        lines += [f"Already in Toolgate as {name}: {server.name}" for server, name in plan.already]
        lines += [f"Skipped {server.name}: {reason}" for server, reason in plan.skipped]
        allowed = allowed_servers(plan, client_id)
        if self.policy_box.isChecked() and allowed:
            agent = "its agent" if client_id in self._bridge.api.config.agents else "a new agent"
            lines.append(f"Allow {agent} {client_id}: {', '.join(allowed)} (everything else stays at its default)")
        self.import_button.setEnabled(bool(plan.servers) or bool(plan.already))
        return "\n".join(lines) or "This client has no servers to import."

    def _connect_preview(self, client_id: str) -> str:
        change = self._clients.connect_change(client_id, **self._connect_options(), dry_run=True)
        return change.diff() or "Already connected: nothing would change."

    def _connect_options(self) -> dict[str, Any]:
        return {"http": self.http_button.isChecked(), "remove_imported": self.remove_box.isChecked()}

    def run_import(self) -> None:
        """Import the chosen client's servers."""
        client_id = self.client_id()
        if client_id is None:
            return
        plan = self._clients.plan_import(client_id)
        derive = self.policy_box.isChecked()

        def run_import() -> object:
            if plan.servers:
                self._clients.apply_import(plan)
            return self._clients.derive_policy(client_id, plan) if derive else None

        count = len(plan.servers)
        done = f"Imported {count} server{'' if count == 1 else 's'}."
        if derive and allowed_servers(plan, client_id):
            created = client_id not in self._bridge.api.config.agents
            done += f" {'Created agent' if created else 'Agent'} {client_id}, allowed the servers it had."
        self._run(run_import, done)

    def run_connect(self) -> None:
        """Create the client's agent and write Toolgate into its config (a backup first)."""
        client_id = self.client_id()
        if client_id is None:
            return
        options = self._connect_options()

        def connect() -> object:
            change = self._clients.connect_change(client_id, **options)
            return self._clients.apply(change, connecting=True)

        self._run(connect, "Connected. Restart the client (or reload its MCP servers) to use Toolgate.")

    def run_disconnect(self) -> None:
        """Put the client's config back as it was before Connect."""
        client_id = self.client_id()
        if client_id is None:
            return

        def disconnect() -> object:
            return self._clients.apply(self._clients.disconnect_change(client_id), connecting=False)

        self._run(disconnect, "Disconnected: its config file is as it was before.")

    def _run(self, work: Callable[[], object], done: str) -> None:
        self.error.show_message("")
        self.result.setText("")

        async def run() -> None:
            try:
                await anyio.to_thread.run_sync(work)
            except _EXPECTED as exc:
                self.error.show_message(str(exc))
                return
            self.result.setText(done)
            self.refresh_preview()
            self.finished.emit()

        self._bridge.spawn(run())

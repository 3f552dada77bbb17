"""The form that adds a server or edits one: fields per transport, each with its own inline error.

A form lives for one add or edit. Save checks the entry (``check_server_entry``), stores the values
marked secret, and writes the entry through ``bridge.api``; on any problem the form stays open with
everything typed and the message next to the field that caused it. It emits ``saved`` or ``cancelled``.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.bridge import GatewayBridge
from app.common import InlineError
from app.panels.server_values import KeyValueEditor, collect_values, parse_arguments
from gateway_core import ConfigError, SecretError, ServerConfig, ToolgateError, check_server_entry

TRANSPORTS = {"stdio": "stdio (a local command)", "http": "Streamable HTTP", "sse": "SSE (legacy)"}
# Every field check_server_entry may name; anything else is shown above the Save button.
FIELDS = ("name", "command", "args", "cwd", "env", "url", "headers", "enabled", "prefix", "timeout_s", "isolation")
DEFAULT_TIMEOUT_S: float = ServerConfig.model_fields["timeout_s"].default
DEFAULT_IDLE_TIMEOUT_S: float = ServerConfig.model_fields["idle_timeout_s"].default


class ServerForm(QWidget):
    """Add a server (``editing=None``) or change server ``editing``.

    Args:
        bridge: the gateway bridge.
        editing: the name of the server to change, or ``None`` to add one.
    """

    saved = Signal(str)
    """The entry was written and applied; carries the server's (possibly new) name."""
    cancelled = Signal()
    """The person left the form without saving."""

    def __init__(self, bridge: GatewayBridge, editing: str | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._bridge = bridge
        self.editing = editing
        self.errors: dict[str, InlineError] = {key: InlineError() for key in (*FIELDS, "")}

        self.title = QLabel(f"<b>Edit server “{editing}”</b>" if editing else "<b>Add a server</b>")
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("e.g. github")
        self.transport_box = QComboBox()
        for key, text in TRANSPORTS.items():
            self.transport_box.addItem(text, key)
        self.command_edit = QLineEdit()
        self.command_edit.setPlaceholderText("e.g. npx, uvx or /path/to/server")
        self.arguments_edit = QPlainTextEdit()
        self.arguments_edit.setPlaceholderText("one argument per line")
        self.arguments_edit.setTabChangesFocus(True)
        self.arguments_edit.setMaximumHeight(90)
        self.cwd_edit = QLineEdit()
        self.cwd_edit.setPlaceholderText("where the command runs (optional)")
        self.env_editor = KeyValueEditor("Add &variable", "NAME")
        self.url_edit = QLineEdit()
        self.url_edit.setPlaceholderText("https://example.com/mcp")
        self.headers_editor = KeyValueEditor("Add &header", "Header-Name")
        self.enabled_box = QCheckBox("Enabled")
        self.enabled_box.setChecked(True)
        self.prefix_edit = QLineEdit()
        self.prefix_edit.setPlaceholderText("<name>__")
        self.timeout_edit = QLineEdit()
        self.timeout_edit.setPlaceholderText(f"{DEFAULT_TIMEOUT_S:g}")
        self.per_agent_box = QCheckBox("A separate process for each agent")
        self.per_agent_box.setToolTip(
            "For filesystem- and git-style servers: each agent gets its own process, with its own "
            "workspace folders (roots) and state. It starts on the agent's first call and stops after "
            f"{DEFAULT_IDLE_TIMEOUT_S / 60:g} minutes unused."
        )
        self._idle_timeout_s = DEFAULT_IDLE_TIMEOUT_S
        self._oauth: dict[str, Any] | None = None  # config.json's "oauth" block, which the form keeps as it is
        self.save_button = QPushButton("&Save")
        self.save_button.setDefault(True)
        self.cancel_button = QPushButton("&Cancel")
        self._kept_empty_prefix = False

        self._forms: list[QFormLayout] = []  # the form and its transport pages' forms, labels aligned
        self._transport_pages = QStackedWidget()
        self._transport_pages.addWidget(self._stdio_page())
        self._transport_pages.addWidget(self._remote_page())
        self._layout_form()

        self.transport_box.currentIndexChanged.connect(self._show_transport_page)
        self.save_button.clicked.connect(self.save)
        self.cancel_button.clicked.connect(self.cancelled)
        if editing is not None:
            self._fill(editing)
        self._show_transport_page()

    # --- layout ------------------------------------------------------------------------------------

    def _field(self, widget: QWidget, key: str) -> QWidget:
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(widget)
        layout.addWidget(self.errors[key])
        return box

    def _stdio_page(self) -> QWidget:
        page = QWidget()
        form = QFormLayout(page)
        self._forms.append(form)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Command", self._field(self.command_edit, "command"))
        form.addRow("Arguments", self._field(self.arguments_edit, "args"))
        form.addRow("Working directory", self._field(self.cwd_edit, "cwd"))
        form.addRow("Environment", self._field(self.env_editor, "env"))
        return page

    def _remote_page(self) -> QWidget:
        page = QWidget()
        form = QFormLayout(page)
        self._forms.append(form)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("URL", self._field(self.url_edit, "url"))
        form.addRow("Headers", self._field(self.headers_editor, "headers"))
        return page

    def _layout_form(self) -> None:
        form = QFormLayout()
        form.addRow("Name", self._field(self.name_edit, "name"))
        form.addRow("Transport", self.transport_box)
        form.addRow(self._transport_pages)
        form.addRow("", self._field(self.enabled_box, "enabled"))
        form.addRow("Tool name prefix", self._field(self.prefix_edit, "prefix"))
        form.addRow("Call timeout (s)", self._field(self.timeout_edit, "timeout_s"))
        self._isolation_row = self._field(self.per_agent_box, "isolation")
        form.addRow("Isolation", self._isolation_row)
        self._isolation_label = form.labelForField(self._isolation_row)
        self._forms.append(form)
        self._align_labels()
        buttons = QHBoxLayout()
        buttons.addStretch()
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.save_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addLayout(form)
        layout.addWidget(self.errors[""])
        layout.addLayout(buttons)
        layout.addStretch()

    def _align_labels(self) -> None:
        """One label column for the form and its transport pages: every field starts at the same x."""
        labels = [
            label
            for form in self._forms
            for row in range(form.rowCount())
            if (item := form.itemAt(row, QFormLayout.ItemRole.LabelRole)) is not None
            and (label := item.widget()) is not None
        ]
        width = max(label.sizeHint().width() for label in labels)
        for label in labels:
            label.setMinimumWidth(width)
        # Each field is named after its label for screen readers (the label's buddy is the field's box).
        for form in self._forms:
            for row in range(form.rowCount()):
                label_item = form.itemAt(row, QFormLayout.ItemRole.LabelRole)
                field_item = form.itemAt(row, QFormLayout.ItemRole.FieldRole)
                label = label_item.widget() if label_item is not None else None
                box = field_item.widget() if field_item is not None else None
                if isinstance(label, QLabel) and label.text() and box is not None:
                    for field in box.findChildren(QWidget) if not box.accessibleName() else ():
                        if isinstance(field, QLineEdit | QPlainTextEdit | QComboBox) and not field.accessibleName():
                            field.setAccessibleName(label.text())
                    if isinstance(box, QLineEdit | QPlainTextEdit | QComboBox) and not box.accessibleName():
                        box.setAccessibleName(label.text())

    def _show_transport_page(self) -> None:
        stdio = self.transport() == "stdio"
        self._transport_pages.setCurrentIndex(0 if stdio else 1)
        # "A separate process for each agent" is about processes Toolgate starts: stdio servers only.
        shown = stdio or self.per_agent_box.isChecked()
        self._isolation_row.setVisible(shown)
        if self._isolation_label is not None:
            self._isolation_label.setVisible(shown)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: D102 (Qt override)
        if event.key() == Qt.Key.Key_Escape:  # Esc cancels, as Cancel does
            self.cancelled.emit()
            return
        super().keyPressEvent(event)

    def _fill(self, name: str) -> None:
        config = self._bridge.api.config.servers[name]
        self.name_edit.setText(name)
        self.transport_box.setCurrentIndex(list(TRANSPORTS).index(config.transport))
        self.command_edit.setText(config.command or "")
        self.arguments_edit.setPlainText("\n".join(config.args))
        self.cwd_edit.setText(config.cwd or "")
        self.env_editor.set_values(config.env)
        self.url_edit.setText(config.url or "")
        self.headers_editor.set_values(config.headers)
        self.enabled_box.setChecked(config.enabled)
        self.prefix_edit.setText(config.prefix or "")
        self._kept_empty_prefix = config.prefix == ""
        if config.timeout_s != DEFAULT_TIMEOUT_S:
            self.timeout_edit.setText(f"{config.timeout_s:g}")
        self.per_agent_box.setChecked(config.isolation == "per_agent")
        self._idle_timeout_s = config.idle_timeout_s
        self._oauth = None if config.oauth is None else config.oauth.model_dump(exclude_defaults=True)

    # --- saving ------------------------------------------------------------------------------------

    def transport(self) -> str:
        """The chosen transport: ``"stdio"``, ``"http"`` or ``"sse"``."""
        return str(self.transport_box.currentData())

    def save(self) -> None:
        """Check the entry, store its secrets, and write it; problems are shown next to their fields."""
        for error in self.errors.values():
            error.show_message("")
        name = self.name_edit.text().strip()
        entry, secrets, problems = self._entry(name)
        if name and name != self.editing and name in self._bridge.api.config.servers:
            problems["name"] = f"There is already a server named “{name}”; choose another name."
        checked = check_server_entry(name, entry)
        if {"command", "url"} & problems.keys():
            checked.pop("", None)  # it only says that neither "command" nor "url" is set
        problems = {**checked, **problems}
        if problems:
            self._show_problems(problems)
            return
        block = "env" if self.transport() == "stdio" else "headers"
        try:
            self._bridge.api.put_server(name, entry, replacing=self.editing, secrets=secrets)
        except SecretError as exc:
            self.errors[block].show_message(str(exc))
            return
        except ConfigError as exc:
            self.errors[""].show_message("\n".join(exc.problems))
            return
        except ToolgateError as exc:
            self.errors[""].show_message(str(exc))
            return
        self.saved.emit(name)

    def _entry(self, name: str) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
        """The entry in config.json's shape, the secrets to store, and the problems found here."""
        entry: dict[str, Any] = {}
        problems: dict[str, str] = {}
        transport = self.transport()
        if transport == "stdio":
            command = self.command_edit.text().strip()
            if command:
                entry["command"] = command
            else:
                problems["command"] = "Enter the command that starts the server."
            arguments = parse_arguments(self.arguments_edit.toPlainText())
            if arguments:
                entry["args"] = arguments
            collected = collect_values(name, self.env_editor.named_values(), "variable")
            block = "env"
            cwd = self.cwd_edit.text().strip()
        else:
            url = self.url_edit.text().strip()
            if url:
                entry["url"] = url
            else:
                problems["url"] = "Enter the server's URL."
            if transport == "sse":
                entry["type"] = "sse"
            if self._oauth is not None:
                entry["oauth"] = self._oauth
            collected = collect_values(name, self.headers_editor.named_values(), "header")
            block = "headers"
            cwd = ""
        if collected.values:
            entry[block] = collected.values
        if collected.problem:
            problems[block] = collected.problem
        if cwd:
            entry["cwd"] = cwd
        if not self.enabled_box.isChecked():
            entry["enabled"] = False
        prefix = self.prefix_edit.text().strip()
        if prefix or self._kept_empty_prefix:
            entry["prefix"] = prefix
        timeout = self.timeout_edit.text().strip()
        if timeout:
            try:
                entry["timeout_s"] = float(timeout)
            except ValueError:
                problems["timeout_s"] = "Enter a number of seconds, e.g. 60."
        if self.per_agent_box.isChecked():
            entry["isolation"] = "per_agent"
        if self._idle_timeout_s != DEFAULT_IDLE_TIMEOUT_S:
            entry["idle_timeout_s"] = self._idle_timeout_s  # set in config.json; the form keeps it
        return entry, collected.secrets, problems

    def _show_problems(self, problems: dict[str, str]) -> None:
        general = [message for key, message in problems.items() if key not in FIELDS]
        for key, message in problems.items():
            if key in FIELDS:
                self.errors[key].show_message(message)
        self.errors[""].show_message("\n".join(general))

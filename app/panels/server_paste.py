"""Adding servers by pasting the JSON a server's README publishes (``mcpServers`` / ``servers`` entries).

The text is read as you type (see ``gateway_core.clients.snippet``), planned with the importer's rules
(free names, secret-looking env and header values to the secret store, servers Toolgate already has
left out), checked against config.json as it would be after the change, and previewed in words. Add
then puts each server through the same checked edit as the Add form (``put_server``), which applies
it at once.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QFontDatabase, QKeyEvent
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget

from app.bridge import GatewayBridge
from app.common import InlineError
from gateway_core import ConfigError, ToolgateError, parse_config
from gateway_core.clients.importer import ImportPlan, plan_import
from gateway_core.clients.snippet import SnippetError, parse_snippet, placeholders

# The text is read again once typing pauses this long.
PARSE_DELAY_MS = 250
EXAMPLE = """{
  "mcpServers": {
    "github": {
      "command": "npx",
      "args": ["-y", "@modelcontextprotocol/server-github"],
      "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": "ghp_…"}
    }
  }
}"""
TRANSPORT_WORDS = {"stdio": "runs", "http": "Streamable HTTP at", "sse": "SSE at"}


class PasteServersForm(QWidget):
    """A box to paste server JSON into, what it would add, and Add / Cancel.

    Attributes (for the panel and tests): ``text`` (the paste box), ``preview`` (what would be added),
    ``error`` (why nothing can be added), ``add_button``, ``cancel_button``; ``plan`` is the current
    plan, or None.

    Args:
        bridge: the running gateway.
    """

    saved = Signal(str)
    """Servers were added; carries the first one's name."""
    cancelled = Signal()

    def __init__(self, bridge: GatewayBridge) -> None:
        super().__init__()
        self._bridge = bridge
        self.plan: ImportPlan | None = None
        heading = QLabel("<b>Add servers from JSON</b>")
        explain = QLabel(
            "Paste the configuration a server's README gives (its mcpServers or servers entries). "
            "Secret-looking values (tokens, keys, passwords) go to the secret store."
        )
        explain.setWordWrap(True)
        self.text = QPlainTextEdit()
        self.text.setPlaceholderText(EXAMPLE)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.text.setTabChangesFocus(True)
        self.text.setAccessibleName("Server JSON")
        self.preview = QLabel()
        self.preview.setWordWrap(True)
        self.preview.setTextFormat(Qt.TextFormat.PlainText)  # names and commands come from the paste
        self.preview.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error = InlineError()
        self.add_button = QPushButton("&Add")
        self.add_button.setDefault(True)
        self.cancel_button = QPushButton("Cancel")
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addWidget(heading)
        layout.addWidget(explain)
        layout.addWidget(self.text, 2)
        layout.addWidget(self.preview)
        layout.addWidget(self.error)
        layout.addLayout(buttons)
        layout.addStretch(1)

        self._delay = QTimer(self, singleShot=True, interval=PARSE_DELAY_MS)
        self._delay.timeout.connect(self.refresh)
        self.text.textChanged.connect(self._delay.start)
        self.add_button.clicked.connect(self.add)
        self.cancel_button.clicked.connect(self.cancelled.emit)
        self.refresh()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: D102 (Qt override)
        if event.key() == Qt.Key.Key_Escape:  # Esc cancels, from the paste box too
            self.cancelled.emit()
            return
        super().keyPressEvent(event)

    def refresh(self) -> None:
        """Read the pasted text again and show what it would add (or why it cannot)."""
        self._delay.stop()
        self.plan = None
        self.preview.setText("")
        self.error.show_message("")
        self.add_button.setEnabled(False)
        self.add_button.setText("&Add")
        text = self.text.toPlainText()
        if not text.strip():
            return
        try:
            servers, notes = parse_snippet(text)
        except SnippetError as exc:
            self.error.show_message(str(exc))
            return
        plan = plan_import(servers, self._bridge.api.config.servers)
        lines = [describe_planned(name, plan) for name in plan.servers]
        lines += [f"Already in Toolgate as {name}: {server.name} (not added again)" for server, name in plan.already]
        lines += [f"Skipped {server.name}: {reason}" for server, reason in plan.skipped]
        lines += notes
        self.preview.setText("\n".join(lines))
        if not plan.servers:
            return
        problems = self._check(plan)
        if problems:
            self.error.show_message("\n".join(problems))
            return
        self.plan = plan
        count = len(plan.servers)
        self.add_button.setText(f"&Add {count} server{'' if count == 1 else 's'}")
        self.add_button.setEnabled(True)

    def _check(self, plan: ImportPlan) -> list[str]:
        """The problems config.json would have with the plan's servers added (none: it can be added)."""
        path = self._bridge.config_path
        try:
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        except (OSError, ValueError) as exc:
            return [f"config.json cannot be read: {exc}"]
        servers = data.setdefault("servers", {})
        servers.update(plan.servers)
        try:
            parse_config(json.dumps(data))
        except ConfigError as exc:
            return list(exc.problems)
        return []

    def add(self) -> None:
        """Add the previewed servers (each through the checked config edit; applied at once)."""
        self.refresh()  # what is added is what the text says now
        plan = self.plan
        if plan is None:
            return
        added: list[str] = []
        for name, entry in plan.servers.items():
            secrets = {key: value for key, value in plan.secrets.items() if key.startswith(f"{name}.")}
            try:
                self._bridge.api.put_server(name, entry, secrets=secrets)
            except ToolgateError as exc:
                problems = getattr(exc, "problems", None) or [str(exc)]
                done = f"Added {', '.join(added)}; " if added else ""
                self.error.show_message(f"{done}{name} was not added: " + "; ".join(problems))
                self.refresh_after_partial()
                return
            added.append(name)
        self.saved.emit(added[0])

    def refresh_after_partial(self) -> None:
        """After some servers were added: show what is left to add (keeping the error in view)."""
        message = self.error.text()
        self.refresh()
        self.error.show_message(message)


def describe_planned(name: str, plan: ImportPlan) -> str:
    """One planned server in words: what it runs or reaches, and where its env and header values go."""
    entry = plan.servers[name]
    server = plan.sources[name][0]
    if server.url is not None:
        line = f"Add {name}: {TRANSPORT_WORDS[server.transport]} {server.url}"
    else:
        line = f"Add {name}: {TRANSPORT_WORDS['stdio']} {shlex.join([server.command or '', *server.args])}"
    secrets = [key.split(".", 1)[1] for key in plan.secrets if key.startswith(f"{name}.")]
    plain = [key for key in {**entry.get("env", {}), **entry.get("headers", {})} if key not in secrets]
    if secrets:
        line += f"\n    to the secret store: {', '.join(secrets)}"
    if plain:
        line += f"\n    kept in config.json: {', '.join(plain)}"
    unfilled = placeholders(server)
    if unfilled:
        line += f"\n    still a placeholder, set the real value with Edit… after adding: {', '.join(unfilled)}"
    return line

"""The server form's environment and headers editor, and how its rows become config values and secrets.

A value marked secret is stored in the secret store under ``<server>.<KEY>`` and written into
config.json only as a ``${secret:<server>.<KEY>}`` reference. An existing reference is shown masked
and kept for as long as the row stays secret and no new value is typed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLineEdit, QPushButton, QVBoxLayout, QWidget

from gateway_core import secret_name

SECRET_MASK = "••••••"
_WHOLE_REFERENCE = re.compile(r"\$\{secret:[A-Za-z0-9_.-]+\}")


def parse_arguments(text: str) -> list[str]:
    """One argument per line, kept exactly (spaces included); blank lines are skipped."""
    return [line for line in text.splitlines() if line.strip()]


@dataclass(frozen=True)
class NamedValue:
    """One row of an environment or headers editor.

    Attributes:
        key: the variable or header name.
        value: what was typed (empty when a stored secret is kept).
        secret: whether the value goes to the secret store.
        reference: the row's existing ``${secret:…}`` value, kept while ``secret`` holds and nothing is typed.
    """

    key: str
    value: str
    secret: bool
    reference: str | None = None


@dataclass
class CollectedValues:
    """What the rows of one editor amount to.

    Attributes:
        values: key to the value written into config.json (a reference for secrets).
        secrets: secret name to value, to store before the entry is saved.
        problem: what is wrong with the rows, for the editor's inline error; ``None`` when they are fine.
    """

    values: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    problem: str | None = None


def collect_values(server: str, rows: Iterable[NamedValue], what: str) -> CollectedValues:
    """Turn editor rows into config values and secrets to store.

    Args:
        server: the server's name (secret names start with it).
        rows: the editor's rows, in order.
        what: ``"variable"`` or ``"header"``, for the messages.
    """
    collected = CollectedValues()
    for row in rows:
        key = row.key.strip()
        if not key:
            if row.value or (row.secret and row.reference):
                collected.problem = f"Every {what} needs a name."
            continue
        if key in collected.values:
            collected.problem = f"The {what} {key!r} appears twice."
        elif row.secret and row.value:
            name = secret_name(server, key)
            collected.secrets[name] = row.value
            collected.values[key] = f"${{secret:{name}}}"
        elif row.secret and row.reference:
            collected.values[key] = row.reference
        elif row.secret:
            collected.problem = f"Type a value for the secret {what} {key!r}."
        else:
            collected.values[key] = row.value
    return collected


def row_from_config(key: str, value: str) -> NamedValue:
    """How a config value is shown: a whole ``${secret:…}`` reference becomes a masked secret row."""
    if _WHOLE_REFERENCE.fullmatch(value):
        return NamedValue(key, "", secret=True, reference=value)
    return NamedValue(key, value, secret=False)


class ValueRow(QWidget):
    """One key, value and "Secret" box; a secret value is typed and shown masked."""

    def __init__(self, row: NamedValue, key_hint: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.reference = row.reference
        self.key_edit = QLineEdit(row.key)
        self.key_edit.setPlaceholderText(key_hint)
        self.value_edit = QLineEdit(row.value)
        self.secret_box = QCheckBox("Secret")
        self.secret_box.setToolTip("Keep the value in the keychain; config.json only names it.")
        self.remove_button = QPushButton("Remove")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.key_edit, 2)
        layout.addWidget(self.value_edit, 3)
        layout.addWidget(self.secret_box)
        layout.addWidget(self.remove_button)
        self.secret_box.toggled.connect(self._show_secret_state)
        self.secret_box.setChecked(row.secret)
        self._show_secret_state(row.secret)

    def named_value(self) -> NamedValue:
        """What this row holds."""
        return NamedValue(self.key_edit.text(), self.value_edit.text(), self.secret_box.isChecked(), self.reference)

    def _show_secret_state(self, secret: bool) -> None:
        self.value_edit.setEchoMode(QLineEdit.EchoMode.Password if secret else QLineEdit.EchoMode.Normal)
        if secret and self.reference:
            self.value_edit.setPlaceholderText(f"{SECRET_MASK} (stored; type to replace)")
        else:
            self.value_edit.setPlaceholderText("value")


class KeyValueEditor(QWidget):
    """Rows of key, value and "Secret", with an add button: a server's environment or headers.

    Args:
        add_text: the add button's text (``"Add variable"``).
        key_hint: the key field's placeholder (``"NAME"``).
    """

    def __init__(self, add_text: str, key_hint: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._key_hint = key_hint
        self._rows: list[ValueRow] = []
        self._rows_layout = QVBoxLayout()
        self._rows_layout.setContentsMargins(0, 0, 0, 0)
        self.add_button = QPushButton(add_text)
        self.add_button.clicked.connect(lambda: self.add_row())
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self._rows_layout)
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addStretch()
        layout.addLayout(buttons)

    def add_row(self, row: NamedValue | None = None) -> ValueRow:
        """Add a row (empty by default) and return its widgets."""
        widget = ValueRow(row or NamedValue("", "", secret=False), self._key_hint, self)
        widget.remove_button.clicked.connect(lambda: self._remove_row(widget))
        self._rows.append(widget)
        self._rows_layout.addWidget(widget)
        return widget

    def set_values(self, values: dict[str, str]) -> None:
        """Show a config block (``env`` or ``headers``), secrets masked."""
        for key, value in values.items():
            self.add_row(row_from_config(key, value))

    def rows(self) -> list[ValueRow]:
        """The row widgets, in order."""
        return list(self._rows)

    def named_values(self) -> list[NamedValue]:
        """What the rows hold, in order."""
        return [row.named_value() for row in self._rows]

    def _remove_row(self, widget: ValueRow) -> None:
        self._rows.remove(widget)
        self._rows_layout.removeWidget(widget)
        widget.deleteLater()

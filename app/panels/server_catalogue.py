"""Servers → Catalogue…: well-known servers (``resources/catalogue.json``), each added with one click.

Pick a server on the left; the right side says what it does and what it needs, asks for its values
(a folder, a token: secret ones are masked and go to the secret store) and adds it through the same
checked edit as the Add form (``put_server``), under a free name.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.bridge import GatewayBridge
from app.catalogue import CatalogueError, CatalogueItem, load_catalogue
from app.common import InlineError
from gateway_core import ToolgateError


class CataloguePage(QWidget):
    """The catalogue's list, the chosen server's description and values, and Add / Cancel.

    Attributes (for the panel and tests): ``items`` (the catalogue), ``list`` (one row per item),
    ``name_edit``, ``fields`` (input id → its line edit), ``add_button``, ``cancel_button``, ``error``.

    Args:
        bridge: the running gateway.
        items: the catalogue (the built-in one by default).
    """

    saved = Signal(str)
    """A server was added; carries its name."""
    cancelled = Signal()

    def __init__(self, bridge: GatewayBridge, items: list[CatalogueItem] | None = None) -> None:
        super().__init__()
        self._bridge = bridge
        self.error = InlineError()
        try:
            self.items = items if items is not None else load_catalogue()
        except CatalogueError as exc:
            self.items = []
            self.error.show_message(str(exc))
        self.fields: dict[str, QLineEdit] = {}
        self.list = QListWidget()
        self.list.setAccessibleName("Well-known servers")
        for item in self.items:
            self.list.addItem(item.title)
        self.title = QLabel()
        self.description = QLabel()
        self.description.setWordWrap(True)
        self.needs = QLabel()
        self.homepage = QLabel()
        self.homepage.setOpenExternalLinks(True)
        self.homepage.setTextFormat(Qt.TextFormat.RichText)
        self.name_edit = QLineEdit()
        self.name_edit.setAccessibleName("Name in Toolgate")
        self._form = QFormLayout()
        self.add_button = QPushButton("&Add")
        self.add_button.setDefault(True)
        self.cancel_button = QPushButton("Cancel")

        detail = QWidget()
        detail_layout = QVBoxLayout(detail)
        detail_layout.addWidget(self.title)
        detail_layout.addWidget(self.description)
        detail_layout.addWidget(self.needs)
        detail_layout.addWidget(self.homepage)
        detail_layout.addLayout(self._form)
        detail_layout.addWidget(self.error)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.cancel_button)
        detail_layout.addLayout(buttons)
        detail_layout.addStretch(1)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.list)
        splitter.addWidget(detail)
        splitter.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("<b>Add a well-known server</b>"))
        layout.addWidget(splitter, 1)

        self.list.currentRowChanged.connect(self._show)
        self.add_button.clicked.connect(self.add)
        self.cancel_button.clicked.connect(self.cancelled.emit)
        self.name_edit.returnPressed.connect(self.add)
        if self.items:
            self.list.setCurrentRow(0)
        else:
            self.add_button.setEnabled(False)

    @property
    def current(self) -> CatalogueItem | None:
        """The chosen item."""
        row = self.list.currentRow()
        return self.items[row] if 0 <= row < len(self.items) else None

    def choose(self, item_id: str) -> None:
        """Choose the item ``item_id``."""
        self.list.setCurrentRow([item.id for item in self.items].index(item_id))

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: D102 (Qt override)
        if event.key() == Qt.Key.Key_Escape:  # Esc cancels
            self.cancelled.emit()
            return
        super().keyPressEvent(event)

    def _show(self) -> None:
        item = self.current
        if item is None:
            return
        self.error.show_message("")
        self.title.setText(f"<b>{item.title}</b>")
        self.description.setText(item.description)
        self.needs.setText(f"Needs: {item.needs}" if item.needs else "")
        self.homepage.setText(f'<a href="{item.homepage}">{item.homepage}</a>' if item.homepage else "")
        while self._form.rowCount():
            self._form.removeRow(0)
        self.name_edit = QLineEdit(self._free_name(item.id))
        self.name_edit.setAccessibleName("Name in Toolgate")
        self.name_edit.returnPressed.connect(self.add)
        self._form.addRow("&Name", self.name_edit)
        self.fields = {}
        for field in item.inputs:
            edit = QLineEdit()
            edit.setPlaceholderText(field.placeholder or ("required" if field.required else "optional"))
            edit.setAccessibleName(field.label)
            if field.secret:
                edit.setEchoMode(QLineEdit.EchoMode.Password)
                edit.setToolTip("Kept in the secret store; config.json holds only a reference")
            edit.returnPressed.connect(self.add)
            self.fields[field.id] = edit
            self._form.addRow(field.label + (" *" if field.required else ""), edit)
        self.add_button.setText(f"&Add {item.title}")

    def _free_name(self, wanted: str) -> str:
        taken = set(self._bridge.api.config.servers)
        name, counter = wanted, 1
        while name in taken:
            counter += 1
            name = f"{wanted}-{counter}"
        return name

    def add(self) -> None:
        """Add the chosen server with the values given (errors show inline; nothing is half-written)."""
        item = self.current
        if item is None:
            return
        name = self.name_edit.text().strip()
        values = {field_id: edit.text() for field_id, edit in self.fields.items()}
        try:
            entry, secrets = item.fill(values, name)
            self._bridge.api.put_server(name, entry, secrets=secrets)
        except (CatalogueError, ToolgateError) as exc:
            problems = getattr(exc, "problems", None) or [str(exc)]
            self.error.show_message("\n".join(problems))
            return
        self.saved.emit(name)

"""The Logs panel's second view: the gateway's own messages and the servers' stderr lines, live.

``MessageTableModel`` keeps the bridge's messages (at most ``MAX_MESSAGES``, oldest dropped);
``MessageFilter`` narrows them by kind and text; ``MessagesView`` shows them and follows new ones
while scrolled to the end.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from PySide6.QtCore import (
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.bridge import MAX_MESSAGES, GatewayBridge, GatewayMessage
from app.common import format_timestamp
from app.palette import ReadableSelectionDelegate, Tone, ToneMap
from app.panels.flat_table import FlatTableModel

_Index = QModelIndex | QPersistentModelIndex

COLUMNS = ("Time", "Level", "Source", "Message")
TIME, LEVEL, SOURCE, TEXT = range(len(COLUMNS))
STDERR = "STDERR"
# Log sources in words (longest prefix wins); the logger's own name stays in the tooltip.
SOURCE_NAMES = (
    ("gateway_core.downstream", "Servers"),
    ("gateway_core.frontend", "Agent connections"),
    ("gateway_core.approvals", "Approvals"),
    ("gateway_core.audit", "Call log"),
    ("gateway_core.secrets", "Secrets"),
    ("gateway_core.config", "Configuration"),
    ("gateway_core.launch", "Launch environment"),
    ("gateway_core.clients", "IDE clients"),
    ("gateway_core.policy", "Permissions"),
    ("gateway_core", "Gateway"),
    ("toolgate.app", "Toolgate app"),
    ("toolgate", "Toolgate"),
    ("uvicorn", "HTTP server"),
    ("mcp", "MCP library"),
    ("qasync", "Toolgate app"),
)


def source_name(message: GatewayMessage) -> str:
    """Where a message comes from, in words: a server's name for its stderr, else a part of Toolgate."""
    if message.level == STDERR:
        return message.source
    for prefix, name in SOURCE_NAMES:
        if message.source == prefix or message.source.startswith(prefix + "."):
            return name
    return message.source


_LEVEL_COLOR = ToneMap({"WARNING": Tone.WARN, "ERROR": Tone.BAD, "CRITICAL": Tone.BAD})


class MessageKind(Enum):
    """Which messages the view shows."""

    ALL = "All messages"
    PROBLEMS = "Warnings and errors"
    STDERR = "Server stderr only"
    GATEWAY = "Gateway messages only"

    def admits(self, message: GatewayMessage) -> bool:
        """Whether ``message`` is of this kind."""
        if self is MessageKind.PROBLEMS:
            return message.level in _LEVEL_COLOR
        if self is MessageKind.STDERR:
            return message.level == STDERR
        if self is MessageKind.GATEWAY:
            return message.level != STDERR
        return True


class MessageTableModel(FlatTableModel):
    """The gateway's messages and servers' stderr lines, oldest first, at most ``max_messages``.

    Args:
        bridge: the gateway bridge (its ``messages()`` and ``messages_logged``).
        parent: the Qt parent.
        max_messages: how many are kept; the oldest go first.
    """

    HEADERS = COLUMNS

    def __init__(self, bridge: GatewayBridge, parent: Any = None, *, max_messages: int = MAX_MESSAGES) -> None:
        super().__init__(parent)
        self.max_messages = max_messages
        self._messages: list[GatewayMessage] = bridge.messages()[-max_messages:]
        bridge.messages_logged.connect(self.add)

    def message_at(self, row: int) -> GatewayMessage:
        """The message in ``row``."""
        return self._messages[row]

    def add(self, messages: list[GatewayMessage]) -> None:
        """Append ``messages`` (oldest first) in one insertion, dropping the oldest beyond ``max_messages``."""
        messages = messages[-self.max_messages :]
        excess = len(self._messages) + len(messages) - self.max_messages
        if excess > 0:
            self.beginRemoveRows(QModelIndex(), 0, excess - 1)
            del self._messages[:excess]
            self.endRemoveRows()
        if not messages:
            return
        row = len(self._messages)
        self.beginInsertRows(QModelIndex(), row, row + len(messages) - 1)
        self._messages.extend(messages)
        self.endInsertRows()

    def row_count(self) -> int:
        """The rows held."""
        return len(self._messages)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """A cell's text, colour or tooltip."""
        if not index.isValid() or not 0 <= index.row() < len(self._messages):
            return None
        message = self._messages[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if column == TIME:
                return format_timestamp(message.time)
            if column == LEVEL:
                return "stderr" if message.level == STDERR else message.level.capitalize()
            if column == SOURCE:
                return source_name(message)
            if column == TEXT:
                return message.text
        if role == Qt.ItemDataRole.ForegroundRole and column == LEVEL:
            return _LEVEL_COLOR.get(message.level)
        if role == Qt.ItemDataRole.ToolTipRole and column == TEXT:
            return message.text
        if role == Qt.ItemDataRole.ToolTipRole and column == SOURCE:
            return message.source
        return None


class MessageFilter(QSortFilterProxyModel):
    """Shows the messages of one ``MessageKind`` whose source or text holds a search text."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._kind = MessageKind.ALL
        self._text = ""

    def set_kind(self, kind: MessageKind) -> None:
        """Show only messages of ``kind``."""
        self.beginFilterChange()
        self._kind = kind
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def set_text(self, text: str) -> None:
        """Show only messages whose source or text holds ``text`` (any case)."""
        self.beginFilterChange()
        self._text = text.strip().casefold()
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(self, source_row: int, source_parent: _Index) -> bool:
        """Whether the message in ``source_row`` passes the kind and the text."""
        model = self.sourceModel()
        if not isinstance(model, MessageTableModel) or source_parent.isValid():
            return False
        message = model.message_at(source_row)
        if not self._kind.admits(message):
            return False
        sources = f"{message.source} {source_name(message)}".casefold()
        return not self._text or self._text in message.text.casefold() or self._text in sources


class MessagesView(QWidget):
    """A table of gateway messages and stderr lines with a kind choice and a search field.

    Args:
        bridge: the gateway bridge.
        parent: the Qt parent.
    """

    def __init__(self, bridge: GatewayBridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = MessageTableModel(bridge, self)
        self.filtered = MessageFilter(self)
        self.filtered.setSourceModel(self.model)

        self.kind = QComboBox()
        for kind in MessageKind:
            self.kind.addItem(kind.value, kind)
        self.kind.currentIndexChanged.connect(lambda _: self.filtered.set_kind(self.kind.currentData()))
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search messages")
        self.search.setAccessibleName("Search messages")
        self.kind.setAccessibleName("Message kind filter")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self.filtered.set_text)

        self.table = QTableView()
        self.table.setAccessibleName("Messages")
        self.table.setModel(self.filtered)
        self.table.setItemDelegate(ReadableSelectionDelegate(self.table))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(self.table.fontMetrics().height() + 6)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)

        controls = QHBoxLayout()
        controls.addWidget(self.kind)
        controls.addWidget(self.search, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(controls)
        layout.addWidget(self.table)

        self._following = True
        self.filtered.rowsAboutToBeInserted.connect(self._note_position)
        self.filtered.rowsInserted.connect(self._follow)

    def _note_position(self, *_: Any) -> None:
        bar = self.table.verticalScrollBar()
        self._following = bar.value() >= bar.maximum()

    def _follow(self, *_: Any) -> None:
        if self._following:
            self.table.scrollToBottom()

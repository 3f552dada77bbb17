"""The Servers panel: every configured server with its state and counts, and the actions on them.

``ServerTableModel`` follows the bridge: a status change updates just that row, and rows are inserted
or removed when servers are added, removed or renamed. ``ServersPanel`` holds the table, the selected
server's ``ServerDetail`` and, while adding or editing, a ``ServerForm`` in place of the list.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.bridge import GatewayBridge
from app.common import DISABLED_TEXT, STATE_COLOR, STATE_TEXT, InlineError
from app.palette import ReadableSelectionDelegate
from app.panels.empty_state import EmptyState
from app.panels.server_advice import advice, gui_reason
from app.panels.server_catalogue import CataloguePage
from app.panels.server_detail import ServerDetail
from app.panels.server_form import ServerForm
from app.panels.server_history import history_text, last_error_text
from app.panels.server_paste import PasteServersForm
from app.panels.undo_bar import UNDO_MS, UndoBar
from gateway_core import SIGN_IN_TIMEOUT_S, ConfigError, RemovedServer, ServerState, ServerStatus, ToolgateError

TRANSPORT_TEXT = {"stdio": "stdio", "http": "Streamable HTTP", "sse": "SSE"}

_Index = QModelIndex | QPersistentModelIndex


class ServerTableModel(QAbstractTableModel):
    """One row per configured server, in config order: name, transport, state, counts, last error."""

    COLUMNS = ("Name", "Transport", "State", "Tools", "Resources", "Prompts", "Last error")
    NAME, TRANSPORT, STATE, TOOLS, RESOURCES, PROMPTS, LAST_ERROR = range(len(COLUMNS))

    def __init__(self, bridge: GatewayBridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._bridge = bridge
        self._statuses: list[ServerStatus] = bridge.api.statuses()
        bridge.server_status_changed.connect(self.update_server)
        bridge.config_applied.connect(self.sync)

    def server_name(self, row: int) -> str:
        """The name of the server in ``row``."""
        return self._statuses[row].name

    def row_of(self, name: str) -> int | None:
        """The row of server ``name``, or ``None`` when it is not listed."""
        return next((row for row, status in enumerate(self._statuses) if status.name == name), None)

    def update_server(self, name: str) -> None:
        """Show server ``name``'s new status: that row only, unless servers were added or removed."""
        row = self.row_of(name)
        status = self._bridge.status(name)
        if row is None or status is None:
            self.sync()
            return
        self._statuses[row] = status
        self.dataChanged.emit(self.index(row, 0), self.index(row, len(self.COLUMNS) - 1))

    def sync(self) -> None:
        """Match the rows to the configured servers: remove, insert, then refresh what is left."""
        statuses = self._bridge.api.statuses()
        wanted = [status.name for status in statuses]
        for row in reversed(range(len(self._statuses))):
            if self._statuses[row].name not in wanted:
                self.beginRemoveRows(QModelIndex(), row, row)
                del self._statuses[row]
                self.endRemoveRows()
        kept = [status.name for status in self._statuses]
        if kept != [name for name in wanted if name in kept]:
            self.beginResetModel()  # an edit of config.json reordered servers
            self._statuses = [status for status in statuses if status.name in kept]
            self.endResetModel()
        for row, status in enumerate(statuses):
            if row >= len(self._statuses) or self._statuses[row].name != status.name:
                self.beginInsertRows(QModelIndex(), row, row)
                self._statuses.insert(row, status)
                self.endInsertRows()
        self._statuses = statuses
        if statuses:
            self.dataChanged.emit(self.index(0, 0), self.index(len(statuses) - 1, len(self.COLUMNS) - 1))

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        """Number of servers (a table has no children)."""
        return 0 if parent.isValid() else len(self._statuses)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        """Number of columns."""
        return 0 if parent.isValid() else len(self.COLUMNS)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """Text, state colour, right-aligned counts, and the failure history as the last error's tooltip."""
        if not index.isValid():
            return None
        status, column = self._statuses[index.row()], index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(status, column)
        if role == Qt.ItemDataRole.ForegroundRole and column == self.STATE:
            return STATE_COLOR[ServerState.STOPPED if self._disabled(status) else status.state]
        if role == Qt.ItemDataRole.TextAlignmentRole and self.TOOLS <= column <= self.PROMPTS:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole and column == self.LAST_ERROR:
            return history_text(status) or None
        return None

    def _disabled(self, status: ServerStatus) -> bool:
        config = self._bridge.api.config.servers.get(status.name)
        return config is not None and not config.enabled

    def _text(self, status: ServerStatus, column: int) -> str:
        counts = {self.TOOLS: status.tools, self.RESOURCES: status.resources, self.PROMPTS: status.prompts}
        if column in counts:
            return str(counts[column])
        # Disabled is the person's choice, not a failure: said in State, and no "last error".
        disabled = self._disabled(status)
        return {
            self.NAME: status.name,
            self.TRANSPORT: TRANSPORT_TEXT.get(status.transport, status.transport),
            self.STATE: DISABLED_TEXT if disabled else STATE_TEXT[status.state],
            self.LAST_ERROR: "" if disabled else last_error_text(status),
        }[column]

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """Column titles."""
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.COLUMNS[section]
        return None


class ServersPanel(QWidget):
    """The Servers panel: table, actions (add, edit, remove, enable/disable, restart) and the detail view.

    Args:
        bridge: the gateway bridge.
        parent: the owning widget.
        import_servers: opens the import of an IDE's servers (offered while there are no servers).
    """

    def __init__(
        self,
        bridge: GatewayBridge,
        parent: QWidget | None = None,
        *,
        import_servers: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(parent)
        self._bridge = bridge
        self.form: ServerForm | None = None
        self.paste_form: PasteServersForm | None = None
        self.catalogue: CataloguePage | None = None
        self.confirm_box: QMessageBox | None = None
        self.undo_bar = UndoBar()

        self.model = ServerTableModel(bridge, self)
        self.table = QTableView()
        self.table.setAccessibleName("Servers")
        self.table.setModel(self.model)
        self.table.setItemDelegate(ReadableSelectionDelegate(self.table))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setStretchLastSection(True)
        self.detail = ServerDetail(bridge)
        self.add_button = QPushButton("&Add…")
        self.catalogue_button = QPushButton("Ca&talogue…")
        self.catalogue_button.setToolTip("Add a well-known server (the MCP reference servers and popular ones)")
        self.paste_button = QPushButton("&Paste JSON…")
        self.paste_button.setToolTip("Add servers from the JSON a server's README gives (mcpServers / servers)")
        self.edit_button = QPushButton("&Edit…")
        self.remove_button = QPushButton("Re&move")
        self.enable_button = QPushButton("&Disable")
        self.restart_button = QPushButton("&Restart")
        self.sign_in_button = QPushButton("&Sign in…")
        self.sign_in_button.setToolTip("Sign in to this remote server in your browser (as toolgate login NAME)")
        self.cancel_sign_in_button = QPushButton("Cancel si&gn-in")
        self.cancel_sign_in_button.setToolTip("Stop waiting for the browser (nothing is stored)")
        self.cancel_sign_in_button.hide()
        self.action_note = QLabel()
        self.action_note.setWordWrap(True)
        self.action_note.hide()
        self.action_error = InlineError()
        self._signing_in: str | None = None
        self._restarting: str | None = None
        self._sign_in_task: asyncio.Task[None] | None = None

        actions: list[tuple[str, Callable[[], object]]] = [
            ("&Add a server…", lambda: self.open_form(None)),
            ("&Paste JSON…", self.open_paste),
            ("&Browse the catalogue…", self.open_catalogue),
        ]
        if import_servers is not None:
            actions.append(("&Import from an IDE…", import_servers))
        self.empty = EmptyState(
            "No servers yet. Servers are the MCP servers Toolgate runs (or reaches over HTTP) and offers "
            "to your agents: add one, paste the JSON its README gives, pick a well-known one, or import the ones "
            "your IDEs already have.",
            actions,
        )
        self._pages = QStackedWidget()
        self._pages.addWidget(self._list_page())
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._pages)

        self.add_button.clicked.connect(lambda: self.open_form(None))
        self.paste_button.clicked.connect(self.open_paste)
        self.catalogue_button.clicked.connect(self.open_catalogue)
        self.edit_button.clicked.connect(lambda: self.open_form(self.selected_server()))
        self.remove_button.clicked.connect(self.ask_remove)
        self.enable_button.clicked.connect(self._toggle_enabled)
        self.restart_button.clicked.connect(self._restart)
        self.sign_in_button.clicked.connect(self._sign_in)
        self.cancel_sign_in_button.clicked.connect(self._cancel_sign_in)
        self.detail.sign_out_button.clicked.connect(self._sign_out)
        bridge.sign_in_finished.connect(self._sign_in_finished)
        bridge.server_status_changed.connect(self._status_changed)
        self.table.doubleClicked.connect(lambda _: self.open_form(self.selected_server()))
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)
        bridge.config_applied.connect(self._update_buttons)
        # Removing the selected row does not always emit selectionChanged.
        self.model.rowsRemoved.connect(self._update_buttons)
        self.model.modelReset.connect(self._update_buttons)
        for signal in (self.model.rowsInserted, self.model.rowsRemoved, self.model.modelReset):
            signal.connect(self._show_empty)
        self._update_buttons()
        self._show_empty()

    def _list_page(self) -> QWidget:
        buttons = QHBoxLayout()
        for button in (
            self.add_button,
            self.catalogue_button,
            self.paste_button,
            self.edit_button,
            self.remove_button,
            self.enable_button,
        ):
            buttons.addWidget(button)
        buttons.addWidget(self.restart_button)
        buttons.addWidget(self.sign_in_button)
        buttons.addWidget(self.cancel_sign_in_button)
        buttons.addStretch()
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.table)
        splitter.addWidget(self.detail)
        self._splitter = splitter
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.addLayout(buttons)
        layout.addWidget(self.undo_bar)
        layout.addWidget(self.action_note)
        layout.addWidget(self.action_error)
        layout.addWidget(splitter)
        layout.addWidget(self.empty, 1)
        return page

    def _show_empty(self, *_: object) -> None:
        empty = self.model.rowCount() == 0
        self.empty.setVisible(empty)
        self._splitter.setVisible(not empty)

    # --- selection ---------------------------------------------------------------------------------

    def selected_server(self) -> str | None:
        """The name of the selected server, if any."""
        rows = self.table.selectionModel().selectedRows()
        return self.model.server_name(rows[0].row()) if rows else None

    def select_server(self, name: str) -> None:
        """Select server ``name`` (and show it in the detail view)."""
        row = self.model.row_of(name)
        if row is not None:
            self.table.selectRow(row)

    def _selection_changed(self) -> None:
        self.action_error.show_message("")
        self._update_buttons()

    def _update_buttons(self) -> None:
        name = self.selected_server()
        config = self._bridge.api.config.servers.get(name) if name else None
        for button in (self.edit_button, self.remove_button, self.enable_button):
            button.setEnabled(config is not None)
        self.restart_button.setEnabled(config is not None and config.enabled)
        self.enable_button.setText("E&nable" if config is not None and not config.enabled else "&Disable")
        remote = config is not None and config.transport != "stdio"
        self.sign_in_button.setVisible(remote)
        self.sign_in_button.setEnabled(remote and config is not None and config.enabled and self._signing_in is None)
        status = self._bridge.status(name) if name else None
        needed = status is not None and status.state is ServerState.NEEDS_SIGN_IN
        self.sign_in_button.setDefault(needed)  # the thing to do next
        self.cancel_sign_in_button.setVisible(self._signing_in is not None)
        if name != self.detail.server:
            self.detail.show_server(name)

    # --- the form ----------------------------------------------------------------------------------

    def open_form(self, editing: str | None) -> ServerForm | None:
        """Show the form to add a server (``None``) or edit server ``editing``, in place of the list.

        Returns the form, or ``None`` when server ``editing`` is no longer configured.
        """
        if editing is not None and editing not in self._bridge.api.config.servers:
            self.action_error.show_message(f"There is no server “{editing}” any more.")
            return None
        self.close_form()
        self.form = ServerForm(self._bridge, editing)
        self.form.saved.connect(self._form_saved)
        self.form.cancelled.connect(self.close_form)
        self._pages.addWidget(self.form)
        self._pages.setCurrentWidget(self.form)
        self.form.name_edit.setFocus()
        return self.form

    def close_form(self) -> None:
        """Go back to the list (what was typed in the form is dropped)."""
        self._close_paste()
        if self.form is None:
            return
        self._pages.setCurrentIndex(0)
        self._pages.removeWidget(self.form)
        self.form.deleteLater()
        self.form = None

    def open_paste(self) -> PasteServersForm:
        """Show the box to add servers by pasting their JSON, in place of the list."""
        self.close_form()
        self.paste_form = PasteServersForm(self._bridge)
        self.paste_form.saved.connect(self._form_saved)
        self.paste_form.cancelled.connect(self.close_form)
        self._pages.addWidget(self.paste_form)
        self._pages.setCurrentWidget(self.paste_form)
        self.paste_form.text.setFocus()
        return self.paste_form

    def open_catalogue(self) -> CataloguePage:
        """Show the catalogue of well-known servers, in place of the list."""
        self.close_form()
        self.catalogue = CataloguePage(self._bridge)
        self.catalogue.saved.connect(self._form_saved)
        self.catalogue.cancelled.connect(self.close_form)
        self._pages.addWidget(self.catalogue)
        self._pages.setCurrentWidget(self.catalogue)
        self.catalogue.list.setFocus()
        return self.catalogue

    def _close_paste(self) -> None:
        for page in (self.paste_form, self.catalogue):
            if page is not None:
                self._pages.setCurrentIndex(0)
                self._pages.removeWidget(page)
                page.deleteLater()
        self.paste_form = None
        self.catalogue = None

    def _form_saved(self, name: str) -> None:
        self.close_form()
        self.select_server(name)

    # --- actions -----------------------------------------------------------------------------------

    def ask_remove(self) -> QMessageBox | None:
        """Ask (a standard question, Cancel by default) before removing the selected server; returns the question."""
        name = self.selected_server()
        if name is None:
            return None
        box = QMessageBox(
            QMessageBox.Icon.Question,
            f"Remove “{name}”?",
            f"Remove the server “{name}”?",
            QMessageBox.StandardButton.Cancel,
            self,
        )
        box.setInformativeText(
            "Its entry leaves config.json and its process stops; agents no longer see its tools. Agents' rules "
            "that name it and its secrets in the keychain stay. You can undo this for "
            f"{UNDO_MS // 1000} seconds."
        )
        remove = box.addButton("Remove", QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.setEscapeButton(QMessageBox.StandardButton.Cancel)
        box.buttonClicked.connect(lambda button: self._remove(name) if button is remove else None)
        box.finished.connect(lambda _: setattr(self, "confirm_box", None))
        self.confirm_box = box
        box.open()  # window-modal, and the event loop (the gateway) keeps running
        return box

    def _remove(self, name: str) -> None:
        self.undo_bar.dismiss()
        self.action_error.show_message("")
        try:
            removed = self._bridge.api.remove_server(name)
        except ConfigError as exc:
            self.action_error.show_message("\n".join(exc.problems))
            return
        except ToolgateError as exc:
            self.action_error.show_message(str(exc))
            return
        self.undo_bar.offer(
            f"Removed the server “{name}”.",
            lambda: self._put_back(removed),
            f"Put back the server “{name}”.",
        )

    def _put_back(self, removed: RemovedServer) -> None:
        self._bridge.api.put_back_server(removed)
        self.select_server(removed.name)

    def _toggle_enabled(self) -> None:
        name = self.selected_server()
        config = self._bridge.api.config.servers.get(name) if name else None
        if name is not None and config is not None:
            self._act(lambda: self._bridge.api.set_server_enabled(name, not config.enabled))
        self._update_buttons()

    def _restart(self) -> None:
        name = self.selected_server()
        if name is None:
            return
        self.action_error.show_message("")
        if not self._bridge.api.restart_server(name):
            self.action_error.show_message(f"“{name}” is disabled; enable it to start it.")
            return
        self._restarting = name
        self._note(f"Restarting “{name}”…")

    def _restart_progress(self, name: str) -> None:
        """Tell how a restart asked for ended: ready (with what it offers), or could not start and why."""
        status = self._bridge.status(name)
        if name != self._restarting or status is None:
            return
        if status.state is ServerState.READY:
            self._restarting = None
            self._note(f"“{name}” restarted and is ready: {status.tools} tools.")
        elif status.state in (ServerState.FAILED, ServerState.NEEDS_SIGN_IN):
            self._restarting = None
            self._note("")
            self.action_error.show_message(
                f"“{name}” could not start: {gui_reason(status.reason or 'unknown')}. {advice(status)}".strip()
            )

    def _sign_in(self) -> None:
        name = self.selected_server()
        if name is None or self._signing_in is not None:
            return
        self._signing_in = name
        self.action_error.show_message("")
        self._note(f"Signing in to “{name}” in your browser (waiting up to {SIGN_IN_TIMEOUT_S / 60:g} minutes)…")
        self._update_buttons()
        self._sign_in_task = self._bridge.start_sign_in(name)

    def _cancel_sign_in(self) -> None:
        """Stop waiting for the browser: the loopback redirect closes, nothing is stored, Sign in… works again."""
        name, task = self._signing_in, self._sign_in_task
        if name is None or task is None:
            return
        task.cancel()
        self._signing_in = self._sign_in_task = None
        self._note(f"Sign-in to “{name}” cancelled.")
        self._update_buttons()

    def _sign_out(self) -> None:
        name = self.detail.server
        if name is not None:
            self.action_error.show_message("")
            self._bridge.start_sign_out(name)

    def _sign_in_finished(self, name: str, problem: str) -> None:
        signing_in = self._signing_in == name
        if signing_in:
            self._signing_in = self._sign_in_task = None
        if problem:
            self._note("")
            self.action_error.show_message(f"“{name}”: {problem}")
        else:
            self._note(f"Signed in to “{name}”." if signing_in else f"Signed out of “{name}”.")
        self._update_buttons()

    def _status_changed(self, name: str) -> None:
        self._restart_progress(name)
        if name != self.selected_server():
            return
        self._update_buttons()
        status = self._bridge.status(name)
        needs = status is not None and status.state is ServerState.NEEDS_SIGN_IN and self._signing_in is None
        if status is not None and needs and self._bridge.api.sign_in_details(name) is None:
            # Offered at once, e.g. for a server just added by its URL (not while new tokens are being tried).
            where = f" at {status.sign_in_at}" if status.sign_in_at else ""
            self._note(f"“{name}” needs a sign-in{where}: click Sign in… to open your browser.")

    def _note(self, text: str) -> None:
        self.action_note.setText(text)
        self.action_note.setVisible(bool(text))

    def _act(self, action: Callable[[], None]) -> None:
        self.action_error.show_message("")
        try:
            action()
        except ConfigError as exc:
            self.action_error.show_message("\n".join(exc.problems))
        except ToolgateError as exc:
            self.action_error.show_message(str(exc))

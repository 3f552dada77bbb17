"""The Agents & permissions panel: the agents (add, rename, remove, tokens, IDE snippets) and their permissions.

Left, the agent list and its actions, each with inline fields or an inline confirmation (never a modal
dialog); right, the selected agent's ``PermissionsPane``. Every change goes through the bridge, so it
applies at once and is written to config.json (tokens to the secret store).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QItemSelectionModel, Qt
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QMenu,
    QPushButton,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.bridge import GatewayBridge
from app.common import InlineError, StatusLine, copy_text
from app.panels.agent_list import AgentListModel
from app.panels.clients import ClientsPane
from app.panels.empty_state import EmptyState
from app.panels.permission_tree import PermissionsPane
from app.panels.undo_bar import UNDO_MS, UndoBar
from app.snippets import http_snippet, shim_snippet
from gateway_core import AgentInfo, RemovedAgent, ToolgateError, shim_command

SHIM_MENU_TEXT = "Stdio (toolgate-shim)"
HTTP_MENU_TEXT = "HTTP"


class InlineForm(QWidget):
    """Fields (or a question) with a confirm and a Cancel button, and an inline error; shown in place.

    Args:
        action: the confirm button's text.
        fields: the widgets above the buttons.
    """

    def __init__(self, action: str, *fields: QWidget) -> None:
        super().__init__()
        self.confirm = QPushButton(action)
        self.cancel = QPushButton("Cancel")
        self.error = InlineError()
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.confirm)
        buttons.addWidget(self.cancel)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for field in fields:
            layout.addWidget(field)
        layout.addLayout(buttons)
        layout.addWidget(self.error)


class AgentsPanel(QWidget):
    """Agents on the left, the selected agent's permissions on the right.

    The widgets are attributes so the main window and tests can reach them: ``agent_list`` (with
    ``agents``, its ``AgentListModel``), the buttons ``add_button``, ``rename_button``,
    ``remove_button``, ``rotate_button``, ``copy_token_button``, ``copy_config_button`` (its menu has
    ``copy_shim_action`` and ``copy_http_action``), ``connect_clients_button`` and
    ``import_clients_button`` (they open ``clients_pane``, a ``ClientsPane``); the inline forms ``add_form`` (fields
    ``add_id``, ``add_name``), ``rename_form`` (``rename_name``) and ``confirm_form`` (the question in
    ``confirm_text``, for Remove and Rotate token); ``error`` and ``notice`` under the buttons; and
    ``permissions``, the ``PermissionsPane``.

    Args:
        bridge: the running gateway.
        parent: the Qt parent.
    """

    def __init__(self, bridge: GatewayBridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._bridge = bridge
        self._selected: str | None = None
        self._confirmed: Callable[[], None] | None = None

        self.agents = AgentListModel(bridge, self)
        self.agent_list = QListView()
        self.agent_list.setAccessibleName("Agents")
        self.agent_list.setModel(self.agents)
        self.agent_list.setSelectionMode(QListView.SelectionMode.SingleSelection)
        self.agent_list.selectionModel().currentChanged.connect(self._on_current_changed)
        self.agents.modelReset.connect(self._reselect)
        self.agents.refresh_failed.connect(self._show_error)

        self.add_button = QPushButton("A&dd…")
        self.rename_button = QPushButton("Re&name…")
        self.remove_button = QPushButton("Re&move")
        self.rotate_button = QPushButton("Ro&tate token")
        self.rotate_button.setToolTip("Give the agent a new token; the old one stops working")
        self.copy_token_button = QPushButton("Cop&y token")
        self.copy_config_button = QToolButton()
        self.copy_config_button.setText("Copy con&fig")
        self.copy_config_button.setToolTip("Copy a ready-made IDE configuration for this agent")
        self.copy_config_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.copy_config_button)
        self.copy_shim_action = menu.addAction(SHIM_MENU_TEXT)
        self.copy_http_action = menu.addAction(HTTP_MENU_TEXT)
        self.copy_config_button.setMenu(menu)
        self.connect_clients_button = QPushButton("&Connect…")
        self.connect_clients_button.setToolTip("Point an IDE at Toolgate as its own agent (and undo it)")
        self.import_clients_button = QPushButton("&Import…")
        self.import_clients_button.setToolTip("Import the MCP servers an IDE already has")
        self.clients_pane: ClientsPane | None = None
        self.clients_holder = QWidget()
        self.clients_close_button = QPushButton("C&lose")
        holder_layout = QVBoxLayout(self.clients_holder)
        holder_layout.setContentsMargins(0, 0, 0, 0)
        close_row = QHBoxLayout()
        close_row.addStretch(1)
        close_row.addWidget(self.clients_close_button)
        holder_layout.addLayout(close_row)
        self.clients_holder.hide()
        self.connect_clients_button.clicked.connect(lambda: self.open_clients("connect"))
        self.import_clients_button.clicked.connect(lambda: self.open_clients("import"))
        self.clients_close_button.clicked.connect(self.close_clients)
        self.add_button.clicked.connect(self._open_add)
        self.rename_button.clicked.connect(self._open_rename)
        self.remove_button.clicked.connect(self._ask_remove)
        self.rotate_button.clicked.connect(self._ask_rotate)
        self.copy_token_button.clicked.connect(self.copy_token)
        self.copy_shim_action.triggered.connect(self.copy_shim_config)
        self.copy_http_action.triggered.connect(self.copy_http_config)

        self.add_id = QLineEdit()
        self.add_id.setPlaceholderText("Agent id, e.g. cursor")
        self.add_id.setAccessibleName("Agent id")
        self.add_name = QLineEdit()
        self.add_name.setPlaceholderText("Display name (optional)")
        self.add_name.setAccessibleName("Display name")
        self.add_form = InlineForm("Add", self.add_id, self.add_name)
        self.add_form.confirm.clicked.connect(self._add)
        self.add_id.returnPressed.connect(self._add)
        self.add_name.returnPressed.connect(self._add)
        self.rename_name = QLineEdit()
        self.rename_name.setPlaceholderText("New display name")
        self.rename_name.setAccessibleName("New display name")
        self.rename_form = InlineForm("Save", self.rename_name)
        self.rename_form.confirm.clicked.connect(self._rename)
        self.rename_name.returnPressed.connect(self._rename)
        self.confirm_text = QLabel()
        self.confirm_text.setWordWrap(True)
        self.confirm_form = InlineForm("", self.confirm_text)
        self.confirm_form.confirm.clicked.connect(self._confirm)
        for form in (self.add_form, self.rename_form, self.confirm_form):
            form.cancel.clicked.connect(self._close_forms)
        self.error = InlineError()
        self.notice = StatusLine()
        self.undo_bar = UndoBar()

        self.permissions = PermissionsPane(bridge)
        self.empty = EmptyState(
            "No agents yet. An agent is an IDE or another MCP client that connects to Toolgate with its own "
            "token; you decide what each may do.",
            [("&Connect an IDE…", lambda: self.open_clients("connect")), ("A&dd by hand…", self._open_add)],
        )
        self._lay_out()
        self._close_forms()
        self._reselect()

    # --- selection -----------------------------------------------------------------------------------

    def selected_agent(self) -> AgentInfo | None:
        """The agent chosen in the list, or None."""
        return self.agents.agent(self.agent_list.currentIndex().row())

    def select_agent(self, agent_id: str) -> None:
        """Choose agent ``agent_id`` in the list (nothing happens for an unknown id)."""
        row = self.agents.row_of(agent_id)
        if row is not None:
            self.agent_list.selectionModel().setCurrentIndex(
                self.agents.index(row), QItemSelectionModel.SelectionFlag.ClearAndSelect
            )

    def _reselect(self) -> None:
        """After the list was reset: keep the chosen agent if it is still there, else choose the first."""
        if self._selected is not None and self.agents.row_of(self._selected) is not None:
            self.select_agent(self._selected)
        elif (first := self.agents.agent(0)) is not None:
            self.select_agent(first.id)
        self._on_current_changed()

    def _on_current_changed(self, *_: object) -> None:
        agent = self.selected_agent()
        agent_id = agent.id if agent is not None else None
        if agent_id != self._selected:
            self._close_forms()
            self.notice.clear()
            self.error.show_message("")
        self._selected = agent_id
        empty = self.agents.rowCount() == 0
        self.empty.setVisible(empty)
        self.agent_list.setVisible(not empty)
        for button in (self.rename_button, self.remove_button, self.rotate_button, self.copy_token_button):
            button.setEnabled(agent is not None)
        self.copy_config_button.setEnabled(agent is not None)
        if agent_id != self.permissions.model.agent_id:
            self.permissions.set_agent(agent_id)

    # --- actions ---------------------------------------------------------------------------------------

    def copy_token(self) -> None:
        """Put the selected agent's token on the clipboard."""
        token = self._token()
        if token is not None:
            copy_text(token)
            self._show_notice(f"The token of {self._selected} is on the clipboard.")

    def copy_shim_config(self) -> None:
        """Put a stdio IDE entry (``toolgate-shim --agent ID``) for the selected agent on the clipboard."""
        token = self._token()
        if token is not None and self._selected is not None:
            copy_text(shim_snippet(self._selected, token, shim_command()))
            self._show_notice("A stdio (toolgate-shim) config for your IDE is on the clipboard.")

    def copy_http_config(self) -> None:
        """Put an HTTP IDE entry (Toolgate's URL and the agent's token) on the clipboard."""
        url = self._bridge.endpoint_url
        if url is None:
            self._show_error("Toolgate is not accepting agents yet; try again once it has started.")
            return
        token = self._token()
        if token is not None and self._selected is not None:
            copy_text(http_snippet(self._selected, url, token))
            self._show_notice("An HTTP config for your IDE is on the clipboard.")

    def _token(self) -> str | None:
        if self._selected is None:
            return None
        try:
            token = self._bridge.api.agent_token(self._selected)
        except ToolgateError as exc:
            self._show_error(str(exc))
            return None
        if token is None:
            self._show_error(f"{self._selected} has no token; use Rotate token to make one.")
        return token

    def _open_add(self) -> None:
        self._close_forms()
        self.add_form.show()
        self.add_id.setFocus()

    def _add(self) -> None:
        agent_id = self.add_id.text().strip()
        try:
            self._bridge.add_agent(agent_id, self.add_name.text().strip() or None)
        except ToolgateError as exc:
            self.add_form.error.show_message(str(exc))
            return
        self._close_forms()
        self.select_agent(agent_id)
        self._show_notice(f"Added {agent_id}. Copy its token or an IDE config to connect it.")

    def _open_rename(self) -> None:
        agent = self.selected_agent()
        if agent is None:
            return
        self._close_forms()
        self.rename_name.setText(agent.name)
        self.rename_form.show()
        self.rename_name.setFocus()
        self.rename_name.selectAll()

    def _rename(self) -> None:
        if self._selected is None:
            return
        try:
            self._bridge.rename_agent(self._selected, self.rename_name.text())
        except ToolgateError as exc:
            self.rename_form.error.show_message(str(exc))
            return
        self._close_forms()

    def _ask_remove(self) -> None:
        agent = self.selected_agent()
        if agent is None:
            return
        agent_id = agent.id
        config = self._bridge.api.config.agents.get(agent_id)
        rules = len(config.rules) if config is not None else 0
        its_rules = {0: "", 1: ", its rule"}.get(rules, f", its {rules} rules")
        self._ask(
            f"Remove {agent_id}? Its entry{its_rules} and its token go, and the token stops working at once "
            f"(IDEs using it are refused). You can undo this for {UNDO_MS // 1000} seconds.",
            "Remove",
            lambda: self._remove(agent_id),
        )

    def _remove(self, agent_id: str) -> None:
        self.undo_bar.dismiss()
        removed = self._bridge.remove_agent(agent_id)
        self.notice.clear()
        self.undo_bar.offer(
            f"Removed {agent_id}, its rules and its token.",
            lambda: self._put_back(removed),
            f"Put back {agent_id} with its rules; its token works again.",
        )

    def _put_back(self, removed: RemovedAgent) -> None:
        self._bridge.put_back_agent(removed)
        self.select_agent(removed.agent_id)

    def _ask_rotate(self) -> None:
        agent_id = self._selected
        if agent_id is not None:
            self._ask(
                f"Give {agent_id} a new token? The old token stops working at once; IDEs using it must be updated.",
                "Rotate token",
                lambda: self._rotate(agent_id),
            )

    def _rotate(self, agent_id: str) -> None:
        self._bridge.rotate_token(agent_id)
        self._show_notice(f"{agent_id} has a new token; copy it (or an IDE config) into your IDE.")

    def _ask(self, question: str, action: str, confirmed: Callable[[], None]) -> None:
        self._close_forms()
        self.confirm_text.setText(question)
        self.confirm_form.confirm.setText(action)
        self._confirmed = confirmed
        self.confirm_form.show()

    def _confirm(self) -> None:
        confirmed = self._confirmed
        self._close_forms()
        if confirmed is None:
            return
        try:
            confirmed()
        except ToolgateError as exc:
            self._show_error(str(exc))

    # --- layout and messages -------------------------------------------------------------------------

    def _show_error(self, text: str) -> None:
        self.notice.clear()
        self.error.show_message(text)

    def _show_notice(self, text: str) -> None:
        self.error.show_message("")
        self.notice.setText(text)

    def open_clients(self, mode: str) -> ClientsPane:
        """Show the Connect (``"connect"``) or Import (``"import"``) pane under the panel."""
        self.close_clients()
        pane = ClientsPane(self._bridge, mode)
        layout = self.clients_holder.layout()
        assert isinstance(layout, QVBoxLayout)
        layout.insertWidget(0, pane)
        self.clients_pane = pane
        self.clients_holder.show()
        return pane

    def close_clients(self) -> None:
        """Hide the Connect or Import pane."""
        if self.clients_pane is not None:
            self.clients_pane.deleteLater()
            self.clients_pane = None
        self.clients_holder.hide()

    def _close_forms(self) -> None:
        self._confirmed = None
        for form in (self.add_form, self.rename_form, self.confirm_form):
            form.hide()
            form.error.show_message("")
        self.add_id.clear()
        self.add_name.clear()

    def _lay_out(self) -> None:
        buttons = QHBoxLayout()
        for button in (self.add_button, self.rename_button, self.remove_button):
            buttons.addWidget(button)
        token_buttons = QHBoxLayout()
        for token_button in (self.rotate_button, self.copy_token_button, self.copy_config_button):
            token_buttons.addWidget(token_button)
        client_buttons = QHBoxLayout()
        for button in (self.connect_clients_button, self.import_clients_button):
            client_buttons.addWidget(button)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(QLabel("Agents"))
        left_layout.addWidget(self.agent_list, 1)
        left_layout.addWidget(self.empty, 1)
        left_layout.addLayout(buttons)
        left_layout.addLayout(token_buttons)
        left_layout.addLayout(client_buttons)
        for widget in (self.add_form, self.rename_form, self.confirm_form, self.undo_bar, self.error, self.notice):
            left_layout.addWidget(widget)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(self.permissions)
        splitter.setStretchFactor(1, 3)
        splitter.setSizes([230, 770])  # the permissions (and their Why column) get the room
        layout = QVBoxLayout(self)
        layout.addWidget(splitter, 3)
        layout.addWidget(self.clients_holder, 2)

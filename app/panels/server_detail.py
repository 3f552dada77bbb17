"""The detail view of one server: its tools, resources and prompts, live stderr, and tools waiting for review.

A stdio server's view also says where its command is found and with which ``PATH`` (or why it is not
found), as ``toolgate doctor`` does, looked up again each time its state changes.

``ServerDetail.show_server`` picks the server; the view then follows the bridge: the tool list is
rebuilt only when the server's catalog changes, its names redrawn when the names agents see change,
and stderr lines are appended as they arrive (the view keeps the last ``MAX_STDERR_LINES``). A tool
or prompt whose public name is rewritten beyond the prefix shows that name first. The "Changes" tab
(``tool_review``) lists the server's changed definitions and new tools.
"""

from __future__ import annotations

import html
import json
import os
import time
from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, QStringListModel, Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListView,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.bridge import GatewayBridge, GatewayMessage
from app.common import DISABLED_TEXT, STATE_TEXT, InlineError, renamed_text, seen_as_text
from app.panels.server_advice import advice, gui_reason
from app.panels.server_history import failure_text, history_summary, separator, stderr_line, stderr_text
from app.panels.tool_review import ToolReview
from gateway_core import (
    Catalog,
    CommandCheck,
    LaunchEnvironment,
    NameKind,
    PublicName,
    ServerState,
    ServerStatus,
    SignInDetails,
)

# Bounds the stderr view's memory; the gateway keeps its own (shorter) tail per server.
MAX_STDERR_LINES = 2000

_Index = QModelIndex | QPersistentModelIndex


class ToolTableModel(QAbstractTableModel):
    """A server's tools as rows: name and the first line of the description (full text as tooltip).

    A tool whose public name is rewritten beyond the prefix is shown by that name first; the name's
    tooltip says what agents see and why.
    """

    COLUMNS = ("Name", "Description")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._tools: tuple[Any, ...] = ()
        self._names: tuple[PublicName | None, ...] = ()
        self._review: dict[str, str] = {}  # tool → "changed" or "new", for tools waiting for review

    def set_tools(self, tools: Sequence[Any], names: Sequence[PublicName | None]) -> None:
        """Show ``tools`` (the MCP ``Tool`` objects of a ``Catalog``) with how agents see each (``names``)."""
        self.beginResetModel()
        self._tools = tuple(tools)
        self._names = tuple(names)
        self.endResetModel()

    def set_names(self, names: Sequence[PublicName | None]) -> None:
        """How agents see each tool now, in the tools' order."""
        self._names = tuple(names)
        if self._tools:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self._tools) - 1, 0))

    def set_review(self, waiting: dict[str, str]) -> None:
        """Which tools wait for review: tool name → ``"changed"`` or ``"new"`` (shown after the name)."""
        self._review = dict(waiting)
        if self._tools:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self._tools) - 1, 0))

    def public_name(self, row: int) -> PublicName | None:
        """How agents see the tool in ``row``; None while it is not listed."""
        return self._names[row]

    def tool(self, row: int) -> Any:
        """The MCP ``Tool`` shown in ``row``."""
        return self._tools[row]

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        """Number of tools (a table has no children)."""
        return 0 if parent.isValid() else len(self._tools)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        """Number of columns."""
        return 0 if parent.isValid() else len(self.COLUMNS)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """Name or description for display; the whole description as tooltip."""
        if not index.isValid():
            return None
        tool, public = self._tools[index.row()], self._names[index.row()]
        description = tool.description or ""
        if role == Qt.ItemDataRole.DisplayRole and index.column() == 0:
            name = renamed_text(public) if public is not None and public.rewritten else tool.name
            waiting = self._review.get(tool.name)
            return name if waiting is None else f"{name} ({waiting}: see Changes)"
        if role == Qt.ItemDataRole.DisplayRole:
            return description.strip().split("\n", 1)[0]
        if role == Qt.ItemDataRole.ToolTipRole and index.column() == 0:
            return seen_as_text(public)
        if role == Qt.ItemDataRole.ToolTipRole and description:
            return description
        return None

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """Column titles."""
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.COLUMNS[section]
        return None


TASK_ONLY_NOTE = (
    "Runs only as a task (taskSupport: required), so it is listed only to agents that can create tasks: "
    "handshake-era agents that declared the tasks capability. 2026-07-28 agents never see it (Toolgate "
    "does not speak the tasks extension)."
)


def describe_sign_in(details: SignInDetails) -> str:
    """One line on a server's sign-in: issuer, granted scopes, when the access token expires (no token)."""
    parts = [f"Signed in at {details.issuer}" if details.issuer else "Signed in"]
    parts.append(f"scopes: {details.scope}" if details.scope else "no scopes stated")
    if details.expires_at is not None:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(details.expires_at))
        parts.append(f"access token expires {when} (refreshed automatically)")
    if details.wanted_scope:
        parts.append(f"the server asked for more ({details.wanted_scope}): sign in again to grant it")
    return " · ".join(parts)


def describe_command(check: CommandCheck, launch: LaunchEnvironment) -> tuple[str, str]:
    """One line on where a stdio server's command is found (or why it is not), and a tooltip with the ``PATH``."""
    where = "set in its env" if check.own_path else launch.source.value
    tooltip = f"PATH ({where}), searched in this order:\n" + "\n".join(check.path.split(os.pathsep))
    if check.found is None:
        return f"Cannot start: {check.problem}", tooltip
    how = " (a batch file, started through cmd.exe)" if check.batch else ""
    return f"Command {check.command} found at {check.found}{how} · PATH: {where}", tooltip


def describe_tool(tool: Any, public: PublicName | None) -> str:
    """The text shown for a selected tool: what agents call it and why, its description and its input schema."""
    schema = json.dumps(tool.input_schema, indent=2, ensure_ascii=False, sort_keys=False)
    parts = [f"Server calls it: {tool.name}\n{seen_as_text(public)}"]
    if tool.description:
        parts.append(tool.description.strip())
    if tool.execution is not None and tool.execution.task_support == "required":
        parts.append(TASK_ONLY_NOTE)
    parts.append(f"Input schema:\n{schema}")
    return "\n\n".join(parts)


def catalog_lines(catalog: Catalog, prompt_names: Sequence[PublicName | None]) -> list[str]:
    """One line per resource, resource template and prompt, for the "Resources and prompts" list.

    A prompt whose public name (``prompt_names``, in the prompts' order) is rewritten beyond the prefix
    is shown by that name first.
    """
    lines = [f"Resource: {r.uri}" + (f"  ({r.name})" if r.name else "") for r in catalog.resources]
    lines += [f"Resource template: {t.uri_template}" for t in catalog.resource_templates]
    for prompt, public in zip(catalog.prompts, prompt_names, strict=True):
        name = renamed_text(public) if public is not None and public.rewritten else prompt.name
        lines.append(f"Prompt: {name}" + (f"  ({prompt.description})" if prompt.description else ""))
    return lines


class ServerDetail(QWidget):
    """One server's tools with their input schemas, its resources and prompts, and its live stderr."""

    def __init__(self, bridge: GatewayBridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._bridge = bridge
        self._name: str | None = None
        self._catalog: Catalog | None = None

        self.title = QLabel()
        self.command_label = QLabel()
        self.command_label.setWordWrap(True)
        self.command_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.command_problem = InlineError()
        self.command_problem.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.history_label = QLabel()
        self.history_label.setWordWrap(True)
        self.history_label.setTextFormat(Qt.TextFormat.PlainText)
        self.history_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.advice_label = QLabel()
        self.advice_label.setWordWrap(True)
        self.advice_label.setTextFormat(Qt.TextFormat.PlainText)  # reasons quote what servers said
        self.advice_label.setAccessibleName("What to do")
        self._failures_shown = 0.0  # when the last failure the stderr view marks happened
        self.sign_in_label = QLabel()
        self.sign_in_label.setWordWrap(True)
        self.sign_out_button = QPushButton("Sign o&ut")
        self.sign_out_button.setToolTip("Revoke and delete the tokens (as toolgate logout NAME)")
        self.tools_model = ToolTableModel(self)
        self.tools_view = QTableView()
        self.tools_view.setAccessibleName("Tools")
        self.tools_view.setModel(self.tools_model)
        self.tools_view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.tools_view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tools_view.verticalHeader().hide()
        # Fixed row heights and no resize-to-contents keep a list of 1,000 tools instant.
        self.tools_view.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.tools_view.horizontalHeader().setStretchLastSection(True)
        self.tools_view.setColumnWidth(0, 200)
        self.schema_view = QPlainTextEdit()
        self.schema_view.setAccessibleName("Selected tool")
        self.schema_view.setReadOnly(True)
        self.schema_view.setPlaceholderText("Select a tool to see its description and input schema.")
        self.others_model = QStringListModel(self)
        self.others_view = QListView()
        self.others_view.setAccessibleName("Prompts and resources")
        self.others_view.setModel(self.others_model)
        self.others_view.setUniformItemSizes(True)
        self.stderr_view = QPlainTextEdit()
        self.stderr_view.setAccessibleName("Server stderr")
        self.stderr_view.setReadOnly(True)
        self.stderr_view.setMaximumBlockCount(MAX_STDERR_LINES)
        self.stderr_view.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.stderr_view.setPlaceholderText("Nothing written to stderr yet.")

        tools = QSplitter(Qt.Orientation.Horizontal)
        tools.addWidget(self.tools_view)
        tools.addWidget(self.schema_view)
        self.tabs = QTabWidget()
        self.tabs.addTab(tools, "Tools")
        self.tabs.addTab(self.others_view, "Resources and prompts")
        self.tabs.addTab(self.stderr_view, "Stderr")
        self.review = ToolReview(bridge)
        self.review.count_changed.connect(self._show_review_count)
        self.tabs.addTab(self.review, "Changes")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.command_label)
        layout.addWidget(self.command_problem)
        layout.addWidget(self.advice_label)
        layout.addWidget(self.history_label)
        sign_in = QHBoxLayout()
        sign_in.addWidget(self.sign_in_label, 1)
        sign_in.addWidget(self.sign_out_button)
        layout.addLayout(sign_in)
        layout.addWidget(self.tabs)

        self.tools_view.selectionModel().currentRowChanged.connect(self._show_tool)
        bridge.server_status_changed.connect(self._on_status_changed)
        bridge.names_changed.connect(self._show_names)
        bridge.messages_logged.connect(self._on_messages)
        self.show_server(None)

    @property
    def server(self) -> str | None:
        """The server shown, if any."""
        return self._name

    def show_server(self, name: str | None) -> None:
        """Show server ``name`` (``None``: nothing)."""
        self._name = name
        self._catalog = None
        self.review.show_server(name)
        status = self._bridge.status(name) if name else None
        failures = status.failures if status is not None else ()
        self._failures_shown = failures[-1].at if failures else 0.0
        lines = stderr_text(self._bridge.api.stderr_timed_lines(name), failures) if name else []
        self.stderr_view.setPlainText("\n".join(lines))
        self._refresh()

    def _refresh(self) -> None:
        status = self._bridge.status(self._name) if self._name else None
        self.tabs.setEnabled(status is not None)
        self._show_command(status)
        if status is None:
            self._show_sign_in(None)
            self.history_label.hide()
            self.advice_label.hide()
            self.title.setText("Select a server to see its tools and stderr.")
            self._show_catalog(Catalog())
            return
        info = " ".join(status.server_info.get(key, "") for key in ("name", "version")).strip()
        config = self._bridge.api.config.servers.get(status.name)
        state = DISABLED_TEXT if config is not None and not config.enabled else STATE_TEXT[status.state]
        facts = [state, f"protocol {status.protocol_version}" if status.protocol_version else ""]
        facts.append(f"reports itself as {info}" if info else "")
        facts_text = html.escape(" · ".join(fact for fact in facts if fact))  # server_info comes from the server
        self.title.setText(f"<b>{status.name}</b> — {facts_text}")
        self._show_history(status)
        self._show_sign_in(status)
        catalog = self._bridge.api.catalog(status.name)
        if catalog is not self._catalog:
            self._show_catalog(catalog)

    def _show_command(self, status: ServerStatus | None) -> None:
        """Where a stdio server's command is found and with which PATH, or why it cannot start."""
        check = self._bridge.api.check_command(status.name) if status is not None else None
        if check is None:
            self.command_label.hide()
            self.command_problem.show_message("")
            return
        text, tooltip = describe_command(check, self._bridge.api.launch)
        if check.found is None:
            self.command_label.hide()
            self.command_problem.show_message(text)
            self.command_problem.setToolTip(tooltip)
        else:
            self.command_problem.show_message("")
            self.command_label.setText(text)
            self.command_label.setToolTip(tooltip)
            self.command_label.show()

    def _show_history(self, status: ServerStatus) -> None:
        """What to do while it fails; how often it failed and the last failure (kept once it is ready again).

        New failures are also marked in the stderr view.
        """
        what_to_do = advice(status)
        self.advice_label.setVisible(bool(what_to_do))
        if what_to_do:
            self.advice_label.setText(f"{gui_reason(status.reason or '')} — {what_to_do}")
        summary = history_summary(status)
        self.history_label.setVisible(bool(summary))
        if summary:
            self.history_label.setText(f"{summary} Last: {failure_text(status.failures[-1])}")
        for failure in status.failures:
            if failure.at > self._failures_shown:
                self.stderr_view.appendPlainText(separator(failure))
                self._failures_shown = failure.at

    def _show_sign_in(self, status: ServerStatus | None) -> None:
        """Who the remote server was signed in with, what was granted and until when; or why none is."""
        details = None
        if status is not None and status.transport != "stdio":
            details = self._bridge.api.sign_in_details(status.name)
        self.sign_out_button.setVisible(details is not None)
        if details is None:
            needed = status is not None and status.state is ServerState.NEEDS_SIGN_IN
            where = f" at {status.sign_in_at}" if needed and status is not None and status.sign_in_at else ""
            self.sign_in_label.setText(f"Not signed in; its sign-in is{where} — use Sign in…" if needed else "")
            self.sign_in_label.setVisible(needed)
            return
        self.sign_in_label.setVisible(True)
        self.sign_in_label.setText(describe_sign_in(details))

    def _show_catalog(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self.tools_model.set_tools(catalog.tools, self._names(catalog.tools, NameKind.TOOL))
        self.schema_view.clear()
        self.others_model.setStringList(catalog_lines(catalog, self._names(catalog.prompts, NameKind.PROMPT)))
        self.tabs.setTabText(0, f"Tools ({len(catalog.tools)})")
        others = len(catalog.resources) + len(catalog.resource_templates) + len(catalog.prompts)
        self.tabs.setTabText(1, f"Resources and prompts ({others})")

    def _names(self, items: Sequence[Any], kind: NameKind) -> list[PublicName | None]:
        if self._name is None:
            return [None] * len(items)
        return [self._bridge.public_name(self._name, item.name, kind) for item in items]

    def _show_names(self) -> None:
        catalog = self._catalog
        if catalog is None:
            return
        self.tools_model.set_names(self._names(catalog.tools, NameKind.TOOL))
        self.others_model.setStringList(catalog_lines(catalog, self._names(catalog.prompts, NameKind.PROMPT)))
        self._show_tool(self.tools_view.currentIndex())

    def _show_tool(self, current: QModelIndex) -> None:
        if not current.isValid() or self._name is None:
            self.schema_view.clear()
            return
        row = current.row()
        self.schema_view.setPlainText(describe_tool(self.tools_model.tool(row), self.tools_model.public_name(row)))

    def _show_review_count(self, count: int) -> None:
        self.tabs.setTabText(self.tabs.indexOf(self.review), f"Changes ({count})" if count else "Changes")
        self.tools_model.set_review({change.tool: change.kind.value for change in self.review.changes})

    def _on_status_changed(self, name: str) -> None:
        if name == self._name:
            self._refresh()

    def _on_messages(self, messages: list[GatewayMessage]) -> None:
        lines = [stderr_line(m.time, m.text) for m in messages if m.level == "STDERR" and m.source == self._name]
        if lines:
            self.stderr_view.appendPlainText("\n".join(lines))

"""The permissions tree of one agent: configured servers, each with its tools, and what applies to each.

Rows follow the bridge: on every configuration change only the decisions are recomputed (cheap, the
agent's policy is compiled); when one server's tools change only that server's children are replaced;
when the names agents see change only the tools' names are redrawn; the model is reset only when
servers are added, removed or reordered. A tool is named as its server names it (rules match that
name); one whose public name is rewritten beyond the prefix shows that name first, and every tool's
tooltip says what agents see and why.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QAbstractItemModel, QModelIndex, QPersistentModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QColor

from app.bridge import GatewayBridge
from app.common import (
    EFFECT_COLOR,
    EFFECT_TEXT,
    STATE_COLOR,
    STATE_TEXT,
    format_remaining,
    renamed_text,
    seen_as_text,
)
from app.palette import Tone, ToneMap
from gateway_core import (
    Decision,
    Effect,
    HeldForReview,
    PublicName,
    Rule,
    ServerState,
    ServerStatus,
    ToolgateError,
    held_for_review,
    hints_text,
    literal_match,
    tool_hints,
)

NAME, SETTING, EFFECTIVE, WHY = range(4)
HEADERS = ("Name", "Setting", "Effective", "Why")
INHERIT_TEXT = "Inherit"
# What the Setting column offers, in order; None removes the rule so the decision is inherited.
SETTING_CHOICES: tuple[Effect | None, ...] = (None, Effect.ALLOW, Effect.ASK, Effect.DENY)
SETTING_TEXTS = tuple(INHERIT_TEXT if choice is None else EFFECT_TEXT[choice] for choice in SETTING_CHOICES)
HIDDEN_TEXT = "hidden from agent"
FILTER_ROLE = Qt.ItemDataRole.UserRole + 1
"""The text the search box matches: a server's name, or a tool's name and the name agents see."""
SETTING_ROLE = Qt.ItemDataRole.UserRole + 2
"""The position in ``SETTING_CHOICES`` of what is set here."""
EFFECT_ROLE = Qt.ItemDataRole.UserRole + 3
"""The effective decision's effect value (``"allow"``, ``"ask"``, ``"deny"``), or None without an agent."""
GRANT_ROLE = Qt.ItemDataRole.UserRole + 4
"""The expiry (POSIX timestamp) of the timed grant deciding the row, or None."""
HIDDEN_COLOR = ToneMap({True: Tone.MUTED})
# Timed grants' remaining time is redrawn (and expired ones stop deciding) this often.
GRANT_TICK_MS = 15_000
_SERVER_ID = 0  # internalId of server rows; a tool row's is its server's row + 1


@dataclass
class _ToolRow:
    name: str
    description: str
    public: PublicName | None = None
    hints: dict[str, bool] | None = None
    setting: Effect | None = None
    decision: Decision | None = None


@dataclass
class _ServerRow:
    name: str
    status: ServerStatus | None
    tools: list[_ToolRow] = field(default_factory=list)
    setting: Effect | None = None
    decision: Decision | None = None


class PermissionsModel(QAbstractItemModel):
    """Servers → tools for one agent, with the rule set here, the effective decision and why.

    Editing the Setting column writes the agent's rule for exactly ``server/*`` or ``server/tool``
    (Inherit removes it) through ``bridge.api``, so it applies at once and survives a restart.

    Args:
        bridge: the running gateway.
        parent: the Qt parent.
    """

    edit_failed = Signal(str)
    """A change of the Setting column was refused; carries the message for the person."""

    def __init__(self, bridge: GatewayBridge, parent: Any = None) -> None:
        super().__init__(parent)
        self._bridge = bridge
        self._agent_id: str | None = None
        self._servers: list[_ServerRow] = self._build()
        bridge.config_applied.connect(self.refresh)
        bridge.server_status_changed.connect(self.refresh_server)
        bridge.names_changed.connect(self.refresh_names)
        bridge.tool_changes_changed.connect(self._decide_all)
        self._grant_timer = QTimer(self)
        self._grant_timer.setInterval(GRANT_TICK_MS)
        self._grant_timer.timeout.connect(self.refresh_grants)
        self._grant_timer.start()

    # --- what it shows -----------------------------------------------------------------------------

    @property
    def agent_id(self) -> str | None:
        """The agent whose permissions are shown, or None."""
        return self._agent_id

    def set_agent(self, agent_id: str | None) -> None:
        """Show agent ``agent_id``'s permissions (None: names only)."""
        self._agent_id = agent_id
        self._decide_all()

    def refresh(self) -> None:
        """Follow the running configuration: servers, their tools, and the agent's rules."""
        names = list(self._bridge.api.config.servers)
        if names != [server.name for server in self._servers]:
            self.beginResetModel()
            self._servers = self._build()
            self.endResetModel()
            return
        statuses = {status.name: status for status in self._bridge.api.statuses()}
        for row, server in enumerate(self._servers):
            self._update_server(row, server, statuses.get(server.name))
        self._decide_all()

    def refresh_server(self, name: str) -> None:
        """Follow server ``name``'s state and tools (its catalog)."""
        row = next((i for i, server in enumerate(self._servers) if server.name == name), None)
        if row is None or name not in self._bridge.api.config.servers:
            self.refresh()
            return
        self._update_server(row, self._servers[row], self._bridge.status(name))

    def refresh_names(self) -> None:
        """Follow the names agents see (prefixes, rewritten names, clashes between servers)."""
        for row, server in enumerate(self._servers):
            parent = self.index(row, NAME)
            for position, tool in enumerate(server.tools):
                public = self._bridge.public_name(server.name, tool.name)
                if public != tool.public:
                    tool.public = public
                    self.dataChanged.emit(self.index(position, NAME, parent), self.index(position, NAME, parent))

    def refresh_grants(self) -> None:
        """Redraw the time left on timed grants; a grant that has expired no longer decides."""
        self._decide_all()
        for row, server in enumerate(self._servers):
            parent = self.index(row, NAME)
            if _grant(server.decision) is not None:
                self.dataChanged.emit(self.index(row, EFFECTIVE), self.index(row, WHY))
            for position, tool in enumerate(server.tools):
                if _grant(tool.decision) is not None:
                    self.dataChanged.emit(self.index(position, EFFECTIVE, parent), self.index(position, WHY, parent))

    # --- editing -----------------------------------------------------------------------------------

    def grant_at(self, index: QModelIndex | QPersistentModelIndex) -> str | None:
        """The ``match`` of the timed grant that decides the row at ``index``, if one does."""
        server, tool = self._rows(index)
        if server is None:
            return None
        row: _ServerRow | _ToolRow = server if tool is None else tool
        rule = _grant(row.decision)
        return None if rule is None else rule.match

    def answer_at(self, index: QModelIndex | QPersistentModelIndex) -> Rule | None:
        """The rule deciding the row at ``index`` when an approval answer wrote it (its ``source`` names the answer)."""
        server, tool = self._rows(index)
        if server is None:
            return None
        row: _ServerRow | _ToolRow = server if tool is None else tool
        rule = row.decision.rule if row.decision is not None else None
        return rule if rule is not None and rule.source is not None and rule.source.answer is not None else None

    def undo_answer(self, index: QModelIndex | QPersistentModelIndex) -> None:
        """Take back the answer that wrote the rule deciding the row at ``index`` (putting back what it replaced).

        Raises:
            ToolgateError: the change was refused.
        """
        rule = self.answer_at(index)
        if (
            rule is not None
            and rule.source is not None
            and rule.source.answer is not None
            and self._agent_id is not None
        ):
            self._bridge.api.undo_answer(self._agent_id, rule.source.answer)

    def remove_grant(self, index: QModelIndex | QPersistentModelIndex) -> None:
        """End the timed grant deciding the row at ``index`` now (the rule it overrode applies again).

        Raises:
            ToolgateError: the change was refused.
        """
        match = self.grant_at(index)
        if match is not None and self._agent_id is not None:
            self._bridge.api.remove_timed_rules(self._agent_id, match)

    def match_for(self, index: QModelIndex | QPersistentModelIndex) -> str | None:
        """The rule ``match`` a row's Setting edits: ``server/*`` or ``server/tool``."""
        server, tool = self._rows(index)
        return None if server is None else _match(server, tool)

    def set_setting(self, index: QModelIndex | QPersistentModelIndex, effect: Effect | None) -> None:
        """Set the agent's rule for the row at ``index`` (None removes it).

        Raises:
            ToolgateError: the change was refused (e.g. ``ConfigError``, ``AgentError``).
        """
        match = self.match_for(index)
        if match is None or self._agent_id is None:
            return
        self._bridge.api.set_agent_rule(self._agent_id, match, effect)

    def setData(
        self, index: QModelIndex | QPersistentModelIndex, value: Any, role: int = Qt.ItemDataRole.EditRole
    ) -> bool:
        """Set the Setting column from a ``SETTING_CHOICES`` position, its text, an ``Effect`` or None."""
        if role != Qt.ItemDataRole.EditRole or index.column() != SETTING or self._agent_id is None:
            return False
        try:
            effect = _choice(value)
        except ValueError:
            return False
        try:
            self.set_setting(index, effect)
        except ToolgateError as exc:
            self.edit_failed.emit(str(exc))
            return False
        return True

    # --- the item model ------------------------------------------------------------------------------

    def index(self, row: int, column: int, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> QModelIndex:  # noqa: B008
        """The index of a server (top level) or of a tool (under its server)."""
        if not self.hasIndex(row, column, parent):
            return QModelIndex()
        if not parent.isValid():
            return self.createIndex(row, column, _SERVER_ID)
        if parent.internalId() == _SERVER_ID:
            return self.createIndex(row, column, parent.row() + 1)
        return QModelIndex()

    def parent(self, child: QModelIndex | QPersistentModelIndex | None = None) -> Any:
        """A tool's server; nothing for a server (without ``child``: the QObject parent)."""
        if child is None:
            return super().parent()
        if not child.isValid() or child.internalId() == _SERVER_ID:
            return QModelIndex()
        return self.createIndex(child.internalId() - 1, 0, _SERVER_ID)

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        """Servers at the top; a server's tools under it; nothing under a tool."""
        if not parent.isValid():
            return len(self._servers)
        if parent.column() != NAME or parent.internalId() != _SERVER_ID:
            return 0
        return len(self._servers[parent.row()].tools)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        """Name, Setting, Effective, Why."""
        return len(HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """The column titles."""
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole and 0 <= section < 4:
            return HEADERS[section]
        return None

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        """Every row is selectable; the Setting column is editable while an agent is shown."""
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        if index.column() == SETTING and self._agent_id is not None:
            flags |= Qt.ItemFlag.ItemIsEditable
        return flags

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """What each cell shows; see the module's role constants for the extra roles."""
        server, tool = self._rows(index)
        if server is None:
            return None
        row: _ServerRow | _ToolRow = server if tool is None else tool
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(server, tool, column)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(server, tool, column)
        if role == Qt.ItemDataRole.ForegroundRole:
            return self._foreground(server, tool, column)
        if role == FILTER_ROLE:
            return server.name if tool is None else f"{tool.name} {tool.public.name if tool.public else ''}"
        if role == SETTING_ROLE:
            return SETTING_CHOICES.index(row.setting)
        if role == EFFECT_ROLE:
            return row.decision.effect.value if row.decision is not None else None
        if role == GRANT_ROLE:
            grant = _grant(row.decision)
            return None if grant is None else grant.expires_at
        return None

    # --- internals -----------------------------------------------------------------------------------

    def _rows(self, index: QModelIndex | QPersistentModelIndex) -> tuple[_ServerRow | None, _ToolRow | None]:
        if not index.isValid() or index.model() is not self:
            return None, None
        if index.internalId() == _SERVER_ID:
            return self._servers[index.row()], None
        server = self._servers[index.internalId() - 1]
        return server, server.tools[index.row()]

    def _display(self, server: _ServerRow, tool: _ToolRow | None, column: int) -> str | None:
        row: _ServerRow | _ToolRow = server if tool is None else tool
        if column == NAME:
            state = server.status.state if server.status is not None else ServerState.STOPPED
            if tool is None and state is not ServerState.READY:
                return f"{server.name} — {STATE_TEXT[state]}"
            if tool is not None and tool.public is not None and tool.public.rewritten:
                return renamed_text(tool.public)
            return row.name
        if row.decision is None:
            return None
        if column == SETTING:
            return SETTING_TEXTS[SETTING_CHOICES.index(row.setting)]
        if column == EFFECTIVE:
            text = EFFECT_TEXT[row.decision.effect]
            grant = _grant(row.decision)
            if grant is not None and grant.expires_at is not None and not isinstance(row.decision, HeldForReview):
                text = f"{text} · {format_remaining(grant.expires_at - time.time())} left"
            return f"{text} ({HIDDEN_TEXT})" if tool is not None and row.decision.effect is Effect.DENY else text
        return _why(row.decision, _match(server, tool))

    def _tooltip(self, server: _ServerRow, tool: _ToolRow | None, column: int) -> str | None:
        row: _ServerRow | _ToolRow = server if tool is None else tool
        if column == NAME and tool is not None:
            hidden = tool.decision is not None and tool.decision.effect is Effect.DENY
            note = f"\n\nHidden from {self._agent_id}'s tools/list." if hidden else ""
            annotations = (
                f"\n\nAnnotations, as the server states them (a server may misstate them): {hints_text(tool.hints)}"
                if tool.hints
                else ""
            )
            return f"{tool.description or 'No description.'}{annotations}\n\n{seen_as_text(tool.public)}{note}"
        if column == NAME:
            status = server.status
            if status is None:
                return None
            return f"{STATE_TEXT[status.state]}: {status.reason}" if status.reason else STATE_TEXT[status.state]
        if column == SETTING and row.decision is not None:
            return f"The rule for {_match(server, tool)} (Inherit removes it)"
        return row.decision.reason if row.decision is not None and column in (EFFECTIVE, WHY) else None

    def _foreground(self, server: _ServerRow, tool: _ToolRow | None, column: int) -> QColor | None:
        row: _ServerRow | _ToolRow = server if tool is None else tool
        if column == EFFECTIVE and row.decision is not None:
            return EFFECT_COLOR[row.decision.effect]
        if (
            column == NAME
            and tool is None
            and server.status is not None
            and server.status.state is not ServerState.READY
        ):
            return STATE_COLOR[server.status.state]
        if column == NAME and tool is not None and tool.decision is not None and tool.decision.effect is Effect.DENY:
            return HIDDEN_COLOR[True]
        return None

    def _build(self) -> list[_ServerRow]:
        statuses = {status.name: status for status in self._bridge.api.statuses()}
        servers = [
            _ServerRow(name, statuses.get(name), self._tool_rows(name)) for name in self._bridge.api.config.servers
        ]
        self._decide(servers)
        return servers

    def _tool_rows(self, server: str) -> list[_ToolRow]:
        return [
            _ToolRow(
                tool.name,
                tool.description or "",
                self._bridge.public_name(server, tool.name),
                tool_hints(tool.annotations.model_dump(by_alias=True, exclude_none=True) if tool.annotations else None),
            )
            for tool in self._bridge.api.catalog(server).tools
        ]

    def _update_server(self, row: int, server: _ServerRow, status: ServerStatus | None) -> None:
        if status != server.status:
            server.status = status
            self.dataChanged.emit(self.index(row, NAME), self.index(row, NAME))
        tools = self._tool_rows(server.name)
        if [(t.name, t.description, t.hints) for t in tools] == [
            (t.name, t.description, t.hints) for t in server.tools
        ]:
            return
        parent = self.index(row, NAME)
        if server.tools:
            self.beginRemoveRows(parent, 0, len(server.tools) - 1)
            server.tools = []
            self.endRemoveRows()
        if tools:
            self._decide([_ServerRow(server.name, status, tools)])
            self.beginInsertRows(parent, 0, len(tools) - 1)
            server.tools = tools
            self.endInsertRows()

    def _decide_all(self) -> None:
        before = [(s.setting, s.decision, [(t.setting, t.decision) for t in s.tools]) for s in self._servers]
        self._decide(self._servers)
        for row, (server, old) in enumerate(zip(self._servers, before, strict=True)):
            if (server.setting, server.decision, [(t.setting, t.decision) for t in server.tools]) == old:
                continue
            parent = self.index(row, NAME)
            self.dataChanged.emit(parent, self.index(row, WHY))
            if server.tools:
                self.dataChanged.emit(self.index(0, NAME, parent), self.index(len(server.tools) - 1, WHY, parent))

    def _decide(self, servers: list[_ServerRow]) -> None:
        agent_id = self._agent_id
        agent = self._bridge.api.config.agents.get(agent_id) if agent_id is not None else None
        if agent is None or agent_id is None:
            for server in servers:
                server.setting, server.decision = None, None
                for tool in server.tools:
                    tool.setting, tool.decision = None, None
            return
        policy = self._bridge.api.policy(agent_id)
        now = time.time()
        # A tool whose definition changed since it was accepted asks, as the gateway's guard decides it.
        changes = {(change.server, change.tool): change for change in self._bridge.api.tool_changes()}
        set_here: dict[str, Effect] = {}
        for rule in agent.rules:
            if rule.narrowed:
                continue  # timed or conditional: shown in Effective and Why; Setting is the plain rule
            set_here.setdefault(rule.match, rule.effect)  # the first rule for a match is the one edits change
        for server in servers:
            server.setting = set_here.get(f"{server.name}/*")
            server.decision = policy.evaluate_server(server.name, now=now)
            for tool in server.tools:
                tool.setting = set_here.get(literal_match(server.name, tool.name))
                decision = policy.evaluate(server.name, tool.name, now=now, annotations=tool.hints, listing=True)
                tool.decision = held_for_review(decision, changes.get((server.name, tool.name)))


def _grant(decision: Decision | None) -> Rule | None:
    """The timed rule that made ``decision``, if one did."""
    rule = decision.rule if decision is not None else None
    return rule if rule is not None and rule.expires is not None else None


def _match(server: _ServerRow, tool: _ToolRow | None) -> str:
    return f"{server.name}/*" if tool is None else literal_match(server.name, tool.name)


def _why(decision: Decision, match: str) -> str:
    """Whether the decision comes from the rule set here, a broader rule, the default, or a changed definition.

    Short, so the column is not cut at the window's default size (the effect is in the Effective column,
    the full sentence in the tooltip).
    """
    if isinstance(decision, HeldForReview):
        return decision.rule_text  # as the prompt and the audit log say it: changed definition → ask (RULE)
    if decision.rule is None:
        return "Agent's default"
    if decision.rule.annotations is not None:
        return f"From rule {decision.rule.match} for tools marked {hints_text(decision.rule.annotations)}"
    if decision.rule.match == match:
        return "Set here"
    return f"From rule {decision.rule.match}"


def _choice(value: Any) -> Effect | None:
    """A Setting value from a ``SETTING_CHOICES`` position, its text, an ``Effect`` or None."""
    if value is None or isinstance(value, Effect):
        return value
    if isinstance(value, int) and 0 <= value < len(SETTING_CHOICES):
        return SETTING_CHOICES[value]
    if isinstance(value, str) and value in SETTING_TEXTS:
        return SETTING_CHOICES[SETTING_TEXTS.index(value)]
    if isinstance(value, str) and value in set(Effect):
        return Effect(value)
    raise ValueError(f"not a setting: {value!r}")

"""The list of agents the Agents panel shows, following the bridge as agents come, go and get renamed."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, Qt, Signal

from app.bridge import GatewayBridge
from gateway_core import AgentInfo, ToolgateError

AGENT_ID_ROLE = Qt.ItemDataRole.UserRole + 1
"""The agent's id."""


class AgentListModel(QAbstractListModel):
    """One row per agent (``bridge.api.agents()``, config order), showing its name.

    It refreshes itself on ``agents_changed`` and ``config_applied``; the model is reset only when
    agents are added or removed, a rename only changes its row.

    Args:
        bridge: the running gateway.
        parent: the Qt parent.
    """

    refresh_failed = Signal(str)
    """The agents could not be read (config.json or the secret store); the last list stays."""

    def __init__(self, bridge: GatewayBridge, parent: Any = None) -> None:
        super().__init__(parent)
        self._bridge = bridge
        self._agents: list[AgentInfo] = []
        self.refresh()
        bridge.agents_changed.connect(self.refresh)
        bridge.config_applied.connect(self.refresh)

    def refresh(self) -> None:
        """Read the agents again."""
        try:
            agents = self._bridge.api.agents()
        except ToolgateError as exc:
            self.refresh_failed.emit(str(exc))
            return
        if [a.id for a in agents] != [a.id for a in self._agents]:
            self.beginResetModel()
            self._agents = agents
            self.endResetModel()
            return
        old, self._agents = self._agents, agents
        for row, (before, after) in enumerate(zip(old, agents, strict=True)):
            if before != after:
                self.dataChanged.emit(self.index(row), self.index(row))

    def agent(self, row: int) -> AgentInfo | None:
        """The agent on ``row``, or None."""
        return self._agents[row] if 0 <= row < len(self._agents) else None

    def row_of(self, agent_id: str) -> int | None:
        """The row of agent ``agent_id``, or None when there is no such agent."""
        return next((row for row, agent in enumerate(self._agents) if agent.id == agent_id), None)

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        """How many agents there are (nothing under an agent)."""
        return 0 if parent.isValid() else len(self._agents)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """The agent's name (with its id when they differ); the tooltip says whether it has a token."""
        agent = self.agent(index.row()) if index.isValid() else None
        if agent is None:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return agent.name if agent.name == agent.id else f"{agent.name} ({agent.id})"
        if role == Qt.ItemDataRole.ToolTipRole:
            token = "has a token" if agent.has_token else "has no token: use Rotate token to make one"
            return f"Agent id {agent.id}; {token}"
        if role == AGENT_ID_ROLE:
            return agent.id
        return None

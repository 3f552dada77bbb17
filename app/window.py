"""The dashboard: one window with a sidebar of panels.

Overview, Servers, Agents & permissions, Approvals, Logs, Settings.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QSize
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QHBoxLayout, QListWidget, QListWidgetItem, QMainWindow, QStackedWidget, QWidget

from app.bridge import GatewayBridge
from app.icons import app_icon
from app.panels.agents import AgentsPanel
from app.panels.approvals import ApprovalsPanel
from app.panels.logs import LogsPanel
from app.panels.overview import OverviewPanel
from app.panels.servers import ServersPanel
from app.panels.settings import SettingsPanel

# Sidebar order: key, label.
PANELS = (
    ("overview", "Overview"),
    ("servers", "Servers"),
    ("agents", "Agents & permissions"),
    ("approvals", "Approvals"),
    ("logs", "Logs"),
    ("settings", "Settings"),
)


class MainWindow(QMainWindow):
    """The dashboard window.

    Args:
        bridge: the running gateway.
        hide_to_tray: asked when the window is closed; ``True`` hides it to the tray, ``False`` quits.
        quit_app: stops the gateway and ends the app.
    """

    def __init__(
        self, bridge: GatewayBridge, *, hide_to_tray: Callable[[], bool], quit_app: Callable[[], None]
    ) -> None:
        super().__init__()
        self._bridge = bridge
        self._hide_to_tray = hide_to_tray
        self._quit_app = quit_app
        self._quitting = False
        self.setWindowTitle("Toolgate")
        self.setWindowIcon(app_icon())
        self.panels: dict[str, QWidget] = {
            "overview": OverviewPanel(
                bridge, show_panel=self.show_panel, open_clients=self.open_clients, add_server=self.add_server
            ),
            "servers": ServersPanel(bridge, import_servers=lambda: self.open_clients("import")),
            "agents": AgentsPanel(bridge),
            "approvals": ApprovalsPanel(bridge),
            "logs": LogsPanel(bridge),
            "settings": SettingsPanel(bridge),
        }
        self.sidebar = QListWidget()
        self.sidebar.setFixedWidth(190)
        self.sidebar.setIconSize(QSize(16, 16))
        self.stack = QStackedWidget()
        for key, label in PANELS:
            item = QListWidgetItem(label)
            item.setData(0x0100, key)  # Qt.UserRole
            self.sidebar.addItem(item)
            self.stack.addWidget(self.panels[key])
        self.sidebar.currentRowChanged.connect(self.stack.setCurrentIndex)
        self.sidebar.setCurrentRow(0)
        central = QWidget()
        layout = QHBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.sidebar)
        layout.addWidget(self.stack, 1)
        self.setCentralWidget(central)
        self.resize(1100, 700)
        for signal in (bridge.approval_requested, bridge.approval_resolved):
            signal.connect(self._update_approvals_label)

    def show_panel(self, key: str) -> None:
        """Switch to panel ``key`` (``"servers"``, ``"approvals"``…)."""
        keys = [k for k, _ in PANELS]
        self.sidebar.setCurrentRow(keys.index(key))

    def open_clients(self, mode: str) -> None:
        """Show the Agents panel with its Import (``"import"``) or Connect (``"connect"``) pane open."""
        self.show_panel("agents")
        agents = self.panels["agents"]
        assert isinstance(agents, AgentsPanel)
        agents.open_clients(mode)

    def add_server(self) -> None:
        """Show the Servers panel with its Add form open."""
        self.show_panel("servers")
        servers = self.panels["servers"]
        assert isinstance(servers, ServersPanel)
        servers.open_form(None)

    def current_panel(self) -> str:
        """The key of the panel on show."""
        return PANELS[self.sidebar.currentRow()][0]

    def bring_to_front(self, panel: str | None = None) -> None:
        """Show the window (from the tray or a second launch), optionally on ``panel``."""
        if panel is not None:
            self.show_panel(panel)
        self.showNormal()
        self.raise_()
        self.activateWindow()

    def close_for_quit(self) -> None:
        """Close for good (the app is quitting), without asking whether to hide to the tray."""
        self._quitting = True
        self.close()

    def closeEvent(self, event: QCloseEvent) -> None:
        """Closing hides to the tray when one is there now; otherwise it quits Toolgate."""
        if self._quitting:
            event.accept()
            return
        event.ignore()
        if self._hide_to_tray():
            self.hide()
        else:
            self._quit_app()

    def _update_approvals_label(self, *_: object) -> None:
        count = len(self._bridge.api.pending_approvals())
        item = self.sidebar.item([k for k, _ in PANELS].index("approvals"))
        item.setText(f"Approvals ({count})" if count else "Approvals")

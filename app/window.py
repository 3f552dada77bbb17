"""The dashboard: one window with a sidebar of panels.

Overview, Servers, Agents & permissions, Approvals, Logs, Settings. At start-up the window is shown
before the gateway exists, saying Toolgate is starting; the panels (and everything they import) are
built once the gateway is (``attach``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QByteArray, QSize, Qt
from PySide6.QtGui import QCloseEvent, QGuiApplication, QKeySequence, QShortcut, QShowEvent
from PySide6.QtWidgets import QLabel, QListWidget, QListWidgetItem, QMainWindow, QSplitter, QStackedWidget, QWidget

from app.icons import app_icon
from app.theme import gui_settings

if TYPE_CHECKING:
    from app.bridge import GatewayBridge
    from gateway_core import Paths

# Sidebar order: key, label.
PANELS = (
    ("overview", "Overview"),
    ("servers", "Servers"),
    ("agents", "Agents & permissions"),
    ("approvals", "Approvals"),
    ("logs", "Logs"),
    ("settings", "Settings"),
)
GEOMETRY_KEY = "window/geometry"
TOLD_TRAY_KEY = "window/told_keeps_running"
MINIMUM_SIZE = QSize(760, 480)  # below this, buttons and columns would be cut
STARTING = "Starting Toolgate…"
logger = logging.getLogger("toolgate.app")
KEEPS_RUNNING = "Toolgate keeps running in the tray, so agents stay connected. Quit it from the tray menu."


class MainWindow(QMainWindow):
    """The dashboard window.

    Args:
        bridge: the running gateway; ``None`` while it is starting (then ``paths`` is needed, and the
            window says Toolgate is starting until ``attach`` gives it the gateway).
        hide_to_tray: asked when the window is closed; ``True`` hides it to the tray, ``False`` quits.
        quit_app: stops the gateway and ends the app.
        notify: shows an OS notification (title, text); the first close to the tray says Toolgate keeps running.
        paths: Toolgate's folders (where the window's size and place are kept); by default the bridge's.
    """

    def __init__(
        self,
        bridge: GatewayBridge | None,
        *,
        hide_to_tray: Callable[[], bool],
        quit_app: Callable[[], None],
        notify: Callable[[str, str], None] | None = None,
        paths: Paths | None = None,
    ) -> None:
        super().__init__()
        if paths is None:
            if bridge is None:
                raise ValueError("a window without a gateway needs Toolgate's paths")
            paths = bridge.paths
        self._paths = paths
        self._bridge: GatewayBridge | None = None
        self._hide_to_tray = hide_to_tray
        self._quit_app = quit_app
        self._notify = notify
        self._quitting = False
        self._shown_once = False
        self.setWindowTitle("Toolgate")
        self.setWindowIcon(app_icon())
        self.panels: dict[str, QWidget] = {}
        self.sidebar = QListWidget()
        self.sidebar.setIconSize(QSize(16, 16))
        self.sidebar.setAccessibleName("Panels")
        self.stack = QStackedWidget()
        for key, label in PANELS:
            item = QListWidgetItem(label)
            item.setData(0x0100, key)  # Qt.UserRole
            self.sidebar.addItem(item)
        self.starting: QLabel | None = QLabel(STARTING)
        self.starting.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.stack.addWidget(self.starting)
        self.sidebar.currentRowChanged.connect(self._show_row)
        self.sidebar.setCurrentRow(0)
        # The sidebar is as wide as its longest label and can be dragged narrower, down to nothing
        # (the panels stay reachable with Ctrl+1…6); its handle brings it back.
        longest = max(self.sidebar.fontMetrics().horizontalAdvance(f"{label} (99)") for _, label in PANELS)
        central = QSplitter()
        central.addWidget(self.sidebar)
        central.addWidget(self.stack)
        central.setCollapsible(0, True)
        central.setCollapsible(1, False)
        central.setStretchFactor(1, 1)
        central.setSizes([longest + 24, 1000])
        self.splitter = central
        for number, (key, _) in enumerate(PANELS, start=1):
            shortcut = QShortcut(QKeySequence(f"Ctrl+{number}"), self)
            shortcut.activated.connect(lambda key=key: self.show_panel(key))
        self.setCentralWidget(central)
        self.setMinimumSize(MINIMUM_SIZE)
        self.resize(1100, 700)
        self._restore_geometry()
        if bridge is not None:
            self.attach(bridge)

    def attach(self, bridge: GatewayBridge) -> None:
        """Build the panels on the running gateway, in place of the words saying Toolgate is starting."""
        from app.panels.agents import AgentsPanel
        from app.panels.approvals import ApprovalsPanel
        from app.panels.logs import LogsPanel
        from app.panels.overview import OverviewPanel
        from app.panels.servers import ServersPanel
        from app.panels.settings import SettingsPanel

        self._bridge = bridge
        self.panels = {
            "overview": OverviewPanel(
                bridge, show_panel=self.show_panel, open_clients=self.open_clients, add_server=self.add_server
            ),
            "servers": ServersPanel(bridge, import_servers=lambda: self.open_clients("import")),
            "agents": AgentsPanel(bridge),
            "approvals": ApprovalsPanel(bridge),
            "logs": LogsPanel(bridge),
            "settings": SettingsPanel(bridge),
        }
        for key, _ in PANELS:
            self.stack.addWidget(self.panels[key])
        if self.starting is not None:
            self.stack.removeWidget(self.starting)
            self.starting.deleteLater()
            self.starting = None
        self._show_row(self.sidebar.currentRow())
        for signal in (bridge.approval_requested, bridge.approval_resolved):
            signal.connect(self._update_approvals_label)
        approvals = self.panels["approvals"]
        assert isinstance(approvals, ApprovalsPanel)
        approvals.review_requested.connect(self.show_changes)

    def _show_row(self, row: int) -> None:
        if self.panels:
            self.stack.setCurrentWidget(self.panels[PANELS[row][0]])

    def show_panel(self, key: str) -> None:
        """Switch to panel ``key`` (``"servers"``, ``"approvals"``…)."""
        keys = [k for k, _ in PANELS]
        self.sidebar.setCurrentRow(keys.index(key))

    def open_clients(self, mode: str) -> None:
        """Show the Agents panel with its Import (``"import"``) or Connect (``"connect"``) pane open."""
        self.show_panel("agents")
        from app.panels.agents import AgentsPanel

        agents = self.panels["agents"]
        assert isinstance(agents, AgentsPanel)
        agents.open_clients(mode)

    def add_server(self) -> None:
        """Show the Servers panel with its Add form open."""
        from app.panels.servers import ServersPanel

        self.show_panel("servers")
        servers = self.panels["servers"]
        assert isinstance(servers, ServersPanel)
        servers.open_form(None)

    def show_changes(self, server: str) -> None:
        """Bring the window to the front at Servers ▸ ``server`` ▸ Changes (its tools waiting for review)."""
        from app.panels.servers import ServersPanel

        self.bring_to_front("servers")
        servers = self.panels["servers"]
        assert isinstance(servers, ServersPanel)
        servers.select_server(server)
        servers.detail.tabs.setCurrentWidget(servers.detail.review)

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
        self.save_geometry()
        if self._quitting:
            event.accept()
            return
        event.ignore()
        if self._hide_to_tray():
            self.hide()
            self._say_it_keeps_running()
        else:
            self._quit_app()

    def save_geometry(self) -> None:
        """Remember the window's size and place (in gui.ini) for the next start."""
        settings = gui_settings(self._paths.home)
        settings.setValue(GEOMETRY_KEY, self.saveGeometry())
        settings.sync()

    def _restore_geometry(self) -> None:
        saved = gui_settings(self._paths.home).value(GEOMETRY_KEY)
        if isinstance(saved, QByteArray) and self.restoreGeometry(saved):
            # A screen that is gone (a laptop off its monitor) must not leave the window out of sight.
            if QGuiApplication.screenAt(self.geometry().center()) is None:
                self.resize(1100, 700)
                self.move(0, 0)

    def _say_it_keeps_running(self) -> None:
        settings = gui_settings(self._paths.home)
        if self._notify is None or settings.value(TOLD_TRAY_KEY, False) in (True, "true"):
            return
        settings.setValue(TOLD_TRAY_KEY, True)
        settings.sync()
        self._notify("Toolgate", KEEPS_RUNNING)

    def showEvent(self, event: QShowEvent) -> None:
        """The first time, say in the log that the window is shown (how long start-up took to show it)."""
        super().showEvent(event)
        if not self._shown_once:
            self._shown_once = True
            logger.info("Toolgate's window is shown")

    def _update_approvals_label(self, *_: object) -> None:
        assert self._bridge is not None  # connected only once the gateway is attached
        count = len(self._bridge.api.pending_approvals())
        item = self.sidebar.item([k for k, _ in PANELS].index("approvals"))
        item.setText(f"Approvals ({count})" if count else "Approvals")

"""The tray icon and its menu: Toolgate's state at a glance and its everyday actions.

The menu is built once and kept up to date from the bridge's signals. Where there is no system tray
(e.g. offscreen, some Linux desktops) ``tray_icon`` is ``None``; the menu, the state and the tooltip
still follow the gateway, so the same actions can be offered elsewhere and tested.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence

from PySide6.QtCore import QObject, SignalInstance
from PySide6.QtGui import QAction, QIcon
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from app import autostart, desktop_notify
from app.bridge import GatewayBridge
from app.common import STATE_TEXT, copy_text
from app.icons import TrayState, app_icon, app_icon_file, template_tray_icon, tray_icon
from app.tray_platform import conventions
from gateway_core import ChangeKind, ServerState, ServerStatus

logger = logging.getLogger("toolgate.app")

APP_NAME = "Toolgate"
NOTIFICATION_MS = 8000

__all__ = ["TrayController", "TrayState", "tray_state", "tray_summary"]


def tray_state(statuses: Sequence[ServerStatus], paused: bool, pending_count: int) -> TrayState:
    """What the tray icon shows; the first that holds wins.

    1. Approvals are waiting (the person has something to do).
    2. Paused (every call is refused).
    3. Some server failed.
    4. Some server is starting.
    5. Running.
    """
    states = {status.state for status in statuses}
    if pending_count > 0:
        return TrayState.APPROVALS_WAITING
    if paused:
        return TrayState.PAUSED
    if ServerState.FAILED in states:
        return TrayState.FAILED
    if ServerState.STARTING in states:
        return TrayState.STARTING
    return TrayState.RUNNING


def tray_summary(statuses: Sequence[ServerStatus], paused: bool, pending_count: int) -> str:
    """The one-line tooltip, e.g. ``Toolgate — 3 servers ready, 1 failed · 2 approvals waiting``."""
    counts = {state: sum(1 for s in statuses if s.state is state) for state in ServerState}
    if paused:
        summary = "paused"
    elif not statuses:
        summary = "no servers"
    else:
        ready = counts[ServerState.READY]
        parts = [f"{ready} server{'' if ready == 1 else 's'} ready"]
        parts += [
            f"{counts[state]} {STATE_TEXT[state].lower()}"
            for state in (ServerState.NEEDS_SIGN_IN, ServerState.FAILED, ServerState.STARTING)
            if counts[state]
        ]
        summary = ", ".join(parts)
    if pending_count:
        summary += f" · {pending_count} approval{'' if pending_count == 1 else 's'} waiting"
    return f"{APP_NAME} — {summary}"


class TrayController(QObject):
    """Owns the tray icon (when the platform has a tray) and its menu.

    Args:
        bridge: the gateway bridge.
        open_dashboard: shows the main window (left click, "Open Toolgate").
        open_approvals: shows the waiting approvals ("Pending approvals (N)").
        quit_app: quits Toolgate ("Quit").
        platform: whose tray conventions to follow (``sys.platform``'s by default; tests choose).
    """

    def __init__(
        self,
        bridge: GatewayBridge,
        open_dashboard: Callable[[], None],
        open_approvals: Callable[[], None],
        quit_app: Callable[[], None],
        *,
        platform: str = sys.platform,
    ) -> None:
        super().__init__()
        self._bridge = bridge
        self._open_dashboard = open_dashboard
        self.conventions = conventions(platform)
        """This platform's tray conventions (``tray_platform``): icon kind, clicks, notifications."""
        icon_for = template_tray_icon if self.conventions.template_icon else tray_icon
        self._icons = {state: icon_for(state) for state in TrayState}
        self._server_menus: dict[str, QMenu] = {}
        self._server_names: list[str] | None = None  # None until the submenu is first built
        self._closed = False
        self._sign_in_announced: set[str] = set()  # servers told about since they were last ready
        self._changes_announced: set[tuple[str, str, str]] = set()  # (server, tool, fingerprint) told about
        self.notifications: list[tuple[str, str]] = []
        """Every notification shown (or that would be, where the platform shows none), oldest first."""
        self.state = TrayState.STARTING
        self.tooltip = APP_NAME
        self.menu = QMenu()
        self._build_menu(open_dashboard, open_approvals, quit_app)
        self.tray_icon: QSystemTrayIcon | None = None
        if QSystemTrayIcon.isSystemTrayAvailable():
            self.tray_icon = QSystemTrayIcon(self._icons[self.state], self)
            self.tray_icon.setContextMenu(self.menu)
            self.tray_icon.activated.connect(self.activate)
        for signal in self._signals():
            signal.connect(self.refresh)
        bridge.tool_changes_changed.connect(self._announce_tool_changes)
        self.refresh()
        self._announce_tool_changes()
        if self.tray_icon is not None:
            self.tray_icon.show()

    def _build_menu(
        self, open_dashboard: Callable[[], None], open_approvals: Callable[[], None], quit_app: Callable[[], None]
    ) -> None:
        menu = self.menu
        self.open_action = menu.addAction("Open Toolgate")
        self.open_action.triggered.connect(_without_arguments(open_dashboard))
        self.pending_action = menu.addAction("Pending approvals (0)")
        self.pending_action.triggered.connect(_without_arguments(open_approvals))
        self.pause_action = menu.addAction("Pause all agents")
        self.pause_action.triggered.connect(self._toggle_pause)
        menu.addSeparator()
        self.servers_menu = menu.addMenu("Servers")
        self.copy_endpoint_action = menu.addAction("Copy endpoint URL")
        self.copy_endpoint_action.triggered.connect(self._copy_endpoint)
        menu.addSeparator()
        self.start_at_login_action = menu.addAction("Start at login")
        self.start_at_login_action.setCheckable(True)
        self.start_at_login_action.setChecked(self._autostart_enabled())
        self.start_at_login_action.triggered.connect(self._set_start_at_login)
        # Settings can change it too: read it again whenever the menu opens.
        menu.aboutToShow.connect(self._sync_start_at_login)
        menu.addSeparator()
        self.quit_action = menu.addAction("Quit")
        self.quit_action.triggered.connect(_without_arguments(quit_app))

    # --- keeping up with the gateway ---------------------------------------------------------------

    def _signals(self) -> tuple[SignalInstance, ...]:
        bridge = self._bridge
        return (
            bridge.server_status_changed,
            bridge.config_applied,
            bridge.approval_requested,
            bridge.approval_resolved,
            bridge.paused_changed,
            bridge.endpoint_ready,
            bridge.gateway_ready,
            bridge.stopped,
        )

    def refresh(self, *_: object) -> None:
        """Bring the icon, tooltip and menu up to date with the gateway."""
        bridge = self._bridge
        statuses = bridge.api.statuses()
        pending = len(bridge.api.pending_approvals())
        paused = bridge.api.paused
        self.state = tray_state(statuses, paused, pending)
        self.tooltip = tray_summary(statuses, paused, pending)
        self.pending_action.setText(f"Pending approvals ({pending})")
        self.pending_action.setEnabled(pending > 0)
        self.pause_action.setText("Resume" if paused else "Pause all agents")
        self.copy_endpoint_action.setEnabled(bridge.endpoint_url is not None)
        self._refresh_servers(statuses)
        self._announce_sign_ins(statuses)
        if self.tray_icon is not None:
            self.tray_icon.setIcon(self._icons[self.state])
            self.tray_icon.setToolTip(self.tooltip)

    def _refresh_servers(self, statuses: Sequence[ServerStatus]) -> None:
        names = [s.name for s in statuses]
        if names != self._server_names:
            self._server_names = names
            self.servers_menu.clear()
            self._server_menus = {}
            for status in statuses:
                submenu = self.servers_menu.addMenu(status.name)
                restart = submenu.addAction("Restart")
                restart.setData(status.name)
                restart.triggered.connect(self._restart_server)
                self._server_menus[status.name] = submenu
            if not statuses:
                self.servers_menu.addAction("No servers").setEnabled(False)
        servers = self._bridge.api.config.servers
        for status in statuses:
            submenu = self._server_menus[status.name]
            submenu.setTitle(f"{status.name} — {STATE_TEXT[status.state]}")
            entry = servers.get(status.name)
            submenu.actions()[0].setEnabled(entry is not None and entry.enabled)

    def _announce_sign_ins(self, statuses: Sequence[ServerStatus]) -> None:
        """One notification when a server comes to need a sign-in; none again until it has been ready."""
        for status in statuses:
            if status.state is ServerState.READY:
                self._sign_in_announced.discard(status.name)
            elif status.state is ServerState.NEEDS_SIGN_IN and status.name not in self._sign_in_announced:
                self._sign_in_announced.add(status.name)
                where = f" at {status.sign_in_at}" if status.sign_in_at else ""
                self.notify(
                    f"{status.name} needs a sign-in",
                    f"Sign in{where}: Open Toolgate ▸ Servers ▸ Sign in…, or run toolgate login {status.name}.",
                )
        self._sign_in_announced &= {status.name for status in statuses}

    def _announce_tool_changes(self) -> None:
        """One notification for each tool definition that changed (or each new tool), the first time it is seen."""
        changes = self._bridge.api.tool_changes()
        for change in changes:
            key = (change.server, change.tool, change.fingerprint)
            if key in self._changes_announced:
                continue
            self._changes_announced.add(key)
            name = f"{change.server}/{change.tool}"
            if change.kind is ChangeKind.NEW:
                self.notify(f"New tool: {name}", "Agents may call it unasked. Review it in Servers ▸ Changes.")
            else:
                self.notify(
                    f"{name} changed",
                    f"Its {', '.join(change.fields)} changed since you accepted it, so every call asks until you "
                    "review it: Servers ▸ Changes, or toolgate tools changes.",
                )
        self._changes_announced &= {(c.server, c.tool, c.fingerprint) for c in changes}

    def close(self) -> None:
        """Remove the tray icon and stop following the gateway (at Quit); closing again does nothing."""
        if self._closed:
            return
        self._closed = True
        for signal in self._signals():
            signal.disconnect(self.refresh)
        self._bridge.tool_changes_changed.disconnect(self._announce_tool_changes)
        if self.tray_icon is not None:
            self.tray_icon.hide()

    def server_menu(self, name: str) -> QMenu:
        """The "Servers ▸" submenu of server ``name``."""
        return self._server_menus[name]

    # --- actions -----------------------------------------------------------------------------------

    def notify(self, title: str, text: str) -> None:
        """Show an OS notification from the tray icon, where the platform supports it.

        Without a tray icon (a Linux desktop without a tray), the desktop's notification service shows it.
        """
        self.notifications.append((title, text))
        if self.tray_icon is None:
            desktop_notify.send(title, text, timeout_ms=NOTIFICATION_MS)
            return
        if not self.tray_icon.supportsMessages():
            return
        if self.conventions.app_icon_in_notifications:
            self.tray_icon.showMessage(title, text, app_icon(), NOTIFICATION_MS)
        else:
            self.tray_icon.showMessage(title, text, QSystemTrayIcon.MessageIcon.Information, NOTIFICATION_MS)

    def icon_for(self, state: TrayState) -> QIcon:
        """The icon the tray shows for ``state`` on this platform."""
        return self._icons[state]

    def activate(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        """What a click on the icon does: open the window where the platform does that (see ``tray_platform``).

        On macOS a click opens the menu (the system does), whose first item opens the window.
        """
        if reason in self.conventions.opens_window_on:
            self._open_dashboard()

    def _restart_server(self) -> None:
        action = self.sender()
        if isinstance(action, QAction):
            self._bridge.api.restart_server(str(action.data()))

    def _toggle_pause(self) -> None:
        if self._bridge.api.paused:
            self._bridge.resume()
        else:
            self._bridge.pause()

    def _copy_endpoint(self) -> None:
        url = self._bridge.endpoint_url
        if url is not None:
            copy_text(url)
            # The menu closes at once: say it worked, and what to do with it.
            self.notify(
                "Endpoint URL copied",
                f"{url} is on the clipboard. An agent also needs its token: Agents → Connect… sets up both.",
            )

    def _autostart_enabled(self) -> bool:
        try:
            return autostart.is_enabled()
        except OSError:
            logger.exception("could not read whether Toolgate starts at login")
            return False

    def _sync_start_at_login(self) -> None:
        self.start_at_login_action.setChecked(self._autostart_enabled())

    def _set_start_at_login(self, checked: bool) -> None:
        try:
            if checked:
                autostart.enable(autostart.login_command(), icon=app_icon_file())
            else:
                autostart.disable()
        except OSError as exc:
            logger.exception("could not change whether Toolgate starts at login")
            self.start_at_login_action.setChecked(not checked)
            self.notify(APP_NAME, f"Could not change Start at login: {exc.strerror or exc}")


def _without_arguments(callback: Callable[[], None]) -> Callable[..., None]:
    # QAction.triggered carries `checked`; a callback with an optional parameter must not receive it.
    return lambda *_: callback()

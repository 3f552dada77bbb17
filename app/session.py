"""One run of the tray app: show the window, start the gateway (or say why it cannot), and quit in bounded time.

The window is shown first, saying Toolgate is starting, before the gateway and the panels are even
imported (the MCP SDK alone takes most of a second of CPU): they are loaded on a worker thread while
the window is up, then the panels fill it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QSystemTrayIcon

from app.window import MainWindow

if TYPE_CHECKING:  # the gateway and the widgets built on it are loaded once the window shows
    from app.bridge import GatewayBridge
    from app.prompt import ApprovalPrompt
    from app.single_instance import InstanceServer
    from app.tray import TrayController
    from app.undo_toast import UndoToast
    from gateway_core import Config, InstanceLock, LaunchEnvironment, Paths, SecretStore

logger = logging.getLogger("toolgate.app")

# Quit waits this long for the gateway's own bounded shutdown before cancelling it outright.
QUIT_TIMEOUT_S = 15.0


@dataclass
class _Started:
    config: Config
    store: SecretStore
    lock: InstanceLock
    sock: socket.socket


def load_gateway() -> None:
    """Import everything of the gateway the app uses (for a worker thread, while the window shows)."""
    gateway_core = importlib.import_module("gateway_core")
    for name in gateway_core.__all__:
        getattr(gateway_core, name)


class AppSession:
    """The tray app from start to Quit.

    Args:
        paths: Toolgate's folders.
        background: started at login: stay in the tray instead of opening the window (when a tray exists).
        launch: the environment stdio servers start with, being resolved already (it reads the login
            shell); resolved here, off the loop, when None.
        when_ready: called once, the first time every server has had its first start attempt (the
            entry point leaves start-up's objects out of later garbage collections there).
    """

    def __init__(
        self,
        paths: Paths,
        *,
        background: bool = False,
        launch: concurrent.futures.Future[LaunchEnvironment] | None = None,
        when_ready: Callable[[], object] | None = None,
    ) -> None:
        self.paths = paths
        self.background = background
        self._launch = launch
        self._when_ready = when_ready
        self.bridge: GatewayBridge | None = None
        self.window: MainWindow | None = None
        self.tray: TrayController | None = None
        self.prompt: ApprovalPrompt | None = None
        self.undo_toast: UndoToast | None = None
        self._run_task: asyncio.Future[None] | None = None
        self._quitting = False
        self._quit_requested = False

    async def run(self) -> int:
        """Run until Quit; returns the exit code (1 when the person gave up on a start-up problem)."""
        if not self.background:
            self.window = MainWindow(
                None, paths=self.paths, hide_to_tray=self._hide_to_tray, quit_app=self.quit, notify=self._notify
            )
            self.window.show()
            await asyncio.sleep(0)  # one pass of Qt's event loop: the window is painted before the gateway loads
        await asyncio.get_running_loop().run_in_executor(None, load_gateway)
        started = await self._start()
        if started is None:
            if self.window is not None:
                self.window.close_for_quit()
            return 1
        from app.single_instance import InstanceServer

        with started.lock, started.sock:
            instance = InstanceServer(self.paths)
            try:
                await self._serve(started, instance)
            finally:
                instance.close()
        logger.info("Toolgate quit")
        return 0

    async def _start(self) -> _Started | None:
        """Take what the gateway needs; on a problem show it and let the person retry or quit."""
        from app.problem import ProblemWindow
        from gateway_core import ConfigError, InstanceError, SecretError

        problem_window: ProblemWindow | None = None
        try:
            while True:
                try:
                    return self._try_start()
                except (ConfigError, InstanceError, SecretError) as exc:
                    problems = exc.problems if isinstance(exc, ConfigError) else [str(exc)]
                    logger.error("Toolgate could not start: %s", "; ".join(problems))
                    problem_window = problem_window or ProblemWindow(self.paths.config_file)
                    if not await problem_window.ask_retry(problems):
                        return None
        finally:
            if problem_window is not None:
                problem_window.close()
                problem_window.deleteLater()

    def _try_start(self) -> _Started:
        from gateway_core import InstanceLock, bind, ensure_config, load_config, open_secret_store

        config_path, created = ensure_config(self.paths)
        if created:
            logger.info("created a default config with no servers at %s", config_path)
        config = load_config(config_path)
        store = open_secret_store(self.paths)
        lock = InstanceLock(self.paths)
        lock.acquire()
        try:
            sock = bind(config.gateway.host, config.gateway.port)
        except BaseException:
            lock.release()
            raise
        return _Started(config, store, lock, sock)

    async def _serve(self, started: _Started, instance: InstanceServer) -> None:
        from app.bridge import GatewayBridge
        from app.prompt import ApprovalPrompt
        from app.tray import TrayController
        from app.undo_toast import UndoToast
        from gateway_core import LocalGateway, resolve_launch_environment

        # Reading the login shell may take seconds: off the loop, once, before any server starts.
        launch: LaunchEnvironment = await (
            asyncio.wrap_future(self._launch)
            if self._launch is not None
            else asyncio.get_running_loop().run_in_executor(None, lambda: resolve_launch_environment(gui=True))
        )
        logger.info("stdio servers get the PATH of %s (%s)", launch.source.value, launch.why)
        api = LocalGateway(
            started.config,
            config_path=self.paths.config_file,
            paths=self.paths,
            store=started.store,
            launch=launch,
        )
        bridge = GatewayBridge(api, paths=self.paths)
        self.bridge = bridge
        if self.window is None:
            self.window = MainWindow(bridge, hide_to_tray=self._hide_to_tray, quit_app=self.quit, notify=self._notify)
        else:
            self.window.attach(bridge)
        self.tray = TrayController(
            bridge,
            open_dashboard=self.window.bring_to_front,
            open_approvals=self._open_approvals,
            quit_app=self.quit,
        )
        self.prompt = ApprovalPrompt(bridge)
        self.prompt.set_tray(self.tray.tray_icon)
        self.prompt.review_requested.connect(self.window.show_changes)
        self.undo_toast = UndoToast(bridge)
        self.undo_toast.set_tray(self.tray.tray_icon, avoid=self.prompt)
        instance.show_requested.connect(self._show_for_second_launch)
        bridge.gateway_ready.connect(self._announce_ready)
        if (not self.background or self.tray.tray_icon is None) and not self._quit_requested:
            self.window.show()
        run = asyncio.ensure_future(bridge.run(started.sock))
        self._run_task = run
        if self._quit_requested:  # Quit (or SIGTERM) came while Toolgate was starting
            self.quit()
        try:
            await run
        except asyncio.CancelledError:
            if not self._quitting:
                raise
            logger.warning("the gateway did not stop within %.0f s; it was cancelled", QUIT_TIMEOUT_S)
        finally:
            self.prompt.close()
            self.undo_toast.close()
            self.window.close_for_quit()
            if self.tray is not None:
                self.tray.close()

    def _open_approvals(self) -> None:
        if self.window is not None:
            self.window.bring_to_front("approvals")
        if self.prompt is not None:
            self.prompt.show_pending()

    def _show_for_second_launch(self) -> None:
        logger.info("Toolgate was launched again: bringing its window to the front")
        if self.window is not None:
            self.window.bring_to_front()

    def _announce_ready(self) -> None:
        tray = "shown" if self.tray is not None and self.tray.tray_icon is not None else "not available here"
        logger.info("Toolgate is ready at %s (tray icon %s)", self.bridge.endpoint_url if self.bridge else "?", tray)
        when_ready, self._when_ready = self._when_ready, None
        if when_ready is not None:
            when_ready()

    def _notify(self, title: str, text: str) -> None:
        if self.tray is not None:
            self.tray.notify(title, text)

    def _hide_to_tray(self) -> bool:
        """Decided at close time: hide to the tray only when a tray icon is really there now."""
        icon = self.tray.tray_icon if self.tray is not None else None
        return icon is not None and icon.isVisible() and QSystemTrayIcon.isSystemTrayAvailable()

    def quit(self) -> None:
        """Stop the gateway (bounded) and end the app."""
        if self._quitting:
            return
        if self.bridge is None:  # still starting: quit once the gateway runs (the problem window has its own Quit)
            self._quit_requested = True
            if self.window is not None:
                self.window.hide()  # at once: the start may take seconds yet, and the window must not linger
            return
        self._quitting = True
        logger.info("quitting: stopping the gateway")
        self.bridge.stop()
        loop = asyncio.get_event_loop()
        loop.call_later(QUIT_TIMEOUT_S, self._force_quit)

    def _force_quit(self) -> None:
        if self._run_task is not None and not self._run_task.done():
            self._run_task.cancel()

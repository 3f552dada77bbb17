"""``toolgate``: the tray app's composition root. With arguments it is the command line (``toolgate serve`` …).

Builds everything once, in order: logging, the QApplication, the single-instance check, the window
(saying Toolgate is starting), then, with the gateway's modules loaded on a worker thread, the config,
the secret store, the instance lock and the port, the bridge (and its gateway), the window's panels,
the tray and the approval prompt, and runs them all on one event loop, Qt's and asyncio's
(``loop.new_app_loop``), until Quit. Where there is no display it says so in one line and runs the
gateway headless instead.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import logging.handlers
import os
import signal
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from gateway_core import Paths
from gateway_core.completion_names import print_names

# Printed where no display exists; the rest of the line says what happens instead.
NO_DISPLAY = "No display found (DISPLAY and WAYLAND_DISPLAY are not set)"
# Said when the window cannot run safely with the installed Qt binding (see app.qt_binding).
WINDOWLESS = (
    "Running the gateway without its window, as `toolgate serve` would; answer approvals with `toolgate approvals`."
)
BACKGROUND_FLAG = "--background"
LOG_FILE_BYTES = 2_000_000

logger = logging.getLogger("toolgate.app")
T = TypeVar("T")


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``toolgate``: the tray app without arguments (or with ``--background``), else the CLI."""
    args = list(sys.argv[1:] if argv is None else argv)
    if print_names(args):  # what Tab asks for, answered before the command line is loaded
        return 0
    if args and args != [BACKGROUND_FLAG]:
        from gateway_core.cli import main as cli_main

        return cli_main(args)
    paths = Paths.from_env()
    if not display_available(os.environ, sys.platform):
        _say(f"{NO_DISPLAY}: running the gateway headless, as `toolgate serve` would.")
        return _serve_headless(paths)
    from app.import_check import lighten

    lighten()  # before the window's and the gateway's modules are imported after PySide6
    from app.qt_binding import binding_problem

    if (problem := binding_problem()) is not None:
        configure_logging(paths.state_dir / "toolgate.log")
        logger.error("%s %s", problem, WINDOWLESS)
        return _serve_headless(paths)
    code = run_gui(paths, background=bool(args))
    from gateway_core.serve import exit_at_once  # not before: the window shows before the gateway loads

    # By now the gateway has stopped, the audit log is closed, the lock released and every setting saved
    # (each is synced when written); what is left is freeing Qt's and thousands of modules' objects.
    exit_at_once(code)


def _serve_headless(paths: Paths) -> int:
    from gateway_core.serve import exit_at_once, serve

    exit_at_once(serve(paths, None, None))


def display_available(environ: Mapping[str, str], platform: str) -> bool:
    """Whether a GUI can start.

    Always on macOS and Windows; elsewhere an X11 or Wayland display, or a Qt platform chosen
    explicitly (``QT_QPA_PLATFORM=offscreen`` for tests).
    """
    if platform == "darwin" or platform.startswith("win"):
        return True
    return any(environ.get(name) for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"))


def run_gui(paths: Paths, *, background: bool = False) -> int:
    """Start the tray app; returns the process exit code once it has quit."""
    configure_logging(paths.state_dir / "toolgate.log")
    # Reading the login shell (what stdio servers' PATH comes from) takes a shell's start-up, often most
    # of a second: it runs in another process while Qt, the window and the gateway are loaded here.
    from gateway_core import resolve_launch_environment

    launch = _in_background(functools.partial(resolve_launch_environment, gui=True))

    from PySide6.QtWidgets import QApplication

    from app.loop import new_app_loop, run_to_end
    from app.single_instance import ask_running_instance_to_show

    QApplication.setApplicationName("Toolgate")
    QApplication.setApplicationDisplayName("Toolgate")
    QApplication.setOrganizationName("Toolgate")
    qt_app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "toolgate"])
    assert isinstance(qt_app, QApplication)
    qt_app.setQuitOnLastWindowClosed(False)
    from app.icons import app_icon

    qt_app.setWindowIcon(app_icon())
    if ask_running_instance_to_show(paths):
        _say("Toolgate is already running; its window was brought to the front.")
        return 0
    from app.theme import apply_theme, saved_theme

    apply_theme(saved_theme(paths.home))
    loop = new_app_loop(qt_app)
    asyncio.set_event_loop(loop)
    from app.session import AppSession
    from gateway_core.heap import freeze_start_up

    session = AppSession(paths, background=background, launch=launch, when_ready=freeze_start_up)
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, session.quit)
        except (NotImplementedError, RuntimeError):  # Windows: no loop signal handlers
            signal.signal(sig, lambda *_: loop.call_soon_threadsafe(session.quit))
    try:
        return run_to_end(loop, session.run())
    finally:
        asyncio.set_event_loop(None)


def _in_background(work: Callable[[], T]) -> concurrent.futures.Future[T]:
    """``work()`` run on a thread of its own; its result (or exception) in the future returned."""
    future: concurrent.futures.Future[T] = concurrent.futures.Future()

    def run() -> None:
        try:
            future.set_result(work())
        except BaseException as exc:  # handed over whole to whoever awaits the future
            future.set_exception(exc)

    threading.Thread(target=run, name="toolgate-launch-environment", daemon=True).start()
    return future


def configure_logging(log_file: Path) -> None:
    """Log to a rotating file in the state folder, and to stderr when there is one.

    Frozen windowed builds have no stderr.
    """
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        file_handler = logging.handlers.RotatingFileHandler(
            log_file, maxBytes=LOG_FILE_BYTES, backupCount=2, encoding="utf-8"
        )
    except OSError as exc:
        _say(f"Toolgate cannot write its log file {log_file}: {exc.strerror or exc}")
    else:
        file_handler.setFormatter(formatter)
        root.addHandler(file_handler)
    if sys.stderr is not None:
        stream_handler = logging.StreamHandler(sys.stderr)
        stream_handler.setFormatter(formatter)
        root.addHandler(stream_handler)


def _say(message: str) -> None:
    if sys.stderr is not None:
        print(message, file=sys.stderr, flush=True)

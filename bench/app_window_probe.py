"""Run the tray app (``python -m app``) from the working directory, saying on stderr when its window shows.

The line ``PROBE window shown`` is written once the first main window has been shown and Qt has
handled what showing it queued (its first paint), for any version of the app: `QMainWindow.show` is
wrapped before the app starts. bench/app_startup.py runs it with the checkout to measure as working
directory, so an earlier commit unpacked elsewhere is measured the same way.
"""

from __future__ import annotations

import os
import runpy
import sys

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QMainWindow

sys.path.insert(0, os.getcwd())  # the checkout to measure, not this script's folder
show = QMainWindow.show
said = False


def show_and_say(self: QMainWindow) -> None:
    global said
    show(self)
    if not said:
        said = True
        QTimer.singleShot(0, lambda: print("PROBE window shown", file=sys.stderr, flush=True))


QMainWindow.show = show_and_say  # type: ignore[method-assign]
runpy.run_module("app", run_name="__main__", alter_sys=True)

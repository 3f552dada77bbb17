"""Widget tests run offscreen on the app's event loop; see ``harness.py``."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest
from PySide6.QtCore import QCoreApplication, QEvent
from PySide6.QtWidgets import QApplication

from app.loop import new_app_loop
from tests.app.harness import current


@pytest.fixture(autouse=True)
def delete_widgets_between_tests(qapp: QApplication) -> Iterator[None]:
    """Destroy every window a test left behind before the next test starts, at one known point.

    Left to Python's garbage collector, a test's widgets and models would be destroyed in the middle
    of a later test, in whatever order the collector picks.
    """
    yield
    for widget in QApplication.topLevelWidgets():
        widget.close()
        widget.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    gc.collect()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


@pytest.fixture
def qloop(qapp: QApplication) -> Iterator[asyncio.AbstractEventLoop]:
    """The app's event loop on this platform (``new_app_loop``) over pytest-qt's QApplication, closed after the test."""
    qapp.setQuitOnLastWindowClosed(False)  # as the app does: hiding the last window must not stop the loop
    with current(new_app_loop(qapp)) as loop:
        yield loop

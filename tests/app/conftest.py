"""Widget tests run offscreen on a qasync loop; see ``harness.py``."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest
from PySide6.QtCore import QCoreApplication, QEvent
from PySide6.QtWidgets import QApplication

from app.loop import QtEventLoop


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
def qloop(qapp: QApplication) -> Iterator[QtEventLoop]:
    """A qasync event loop over pytest-qt's QApplication, closed after the test."""
    qapp.setQuitOnLastWindowClosed(False)  # as the app does: hiding the last window must not stop the loop
    loop = QtEventLoop(qapp)
    asyncio.set_event_loop(loop)
    try:
        yield loop
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        asyncio.set_event_loop(None)

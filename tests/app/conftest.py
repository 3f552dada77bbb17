"""Widget tests run offscreen on a qasync loop; see ``harness.py``."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from PySide6.QtWidgets import QApplication

from app.loop import QtEventLoop


@pytest.fixture
def qloop(qapp: QApplication) -> Iterator[QtEventLoop]:
    """A qasync event loop over pytest-qt's QApplication, closed after the test."""
    loop = QtEventLoop(qapp)
    asyncio.set_event_loop(loop)
    try:
        yield loop
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        asyncio.set_event_loop(None)

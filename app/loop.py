"""The asyncio event loop that runs inside Qt's (qasync), made safe for everything the gateway does.

``run_to_end`` runs the app's main coroutine on it and ends it the way ``asyncio.run`` ends a loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

os.environ.setdefault("QT_API", "pyside6")  # qasync picks its Qt binding from this at import

import qasync

logger = logging.getLogger("toolgate.app")
T = TypeVar("T")

# Tasks still running when the app's main coroutine returns get this long to finish being cancelled.
LEFTOVER_TASKS_TIMEOUT_S = 5.0
# Qt timers take a signed 32-bit count of milliseconds (about 24.8 days).
MAX_TIMER_S = (2**31 - 1) / 1000


class QtEventLoop(qasync.QEventLoop):  # type: ignore[misc]
    """qasync's loop, accepting delays longer than a Qt timer can hold.

    ``anyio.sleep_forever()`` schedules a callback after ``math.inf`` seconds, which qasync turns
    into an ``OverflowError``; a long delay is instead carried in steps a Qt timer can hold.
    """

    def _add_callback(self, handle: asyncio.Handle, delay: float = 0) -> asyncio.Handle:
        if delay <= MAX_TIMER_S:
            return super()._add_callback(handle, delay)  # type: ignore[no-any-return]

        def relay(*_: Any) -> None:
            if not handle.cancelled():
                self._add_callback(handle, delay - MAX_TIMER_S)

        super()._add_callback(asyncio.Handle(relay, (), self), MAX_TIMER_S)
        return handle


def run_to_end(loop: asyncio.AbstractEventLoop, main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` on ``loop``, then end the loop as ``asyncio.run`` would and close it.

    Tasks still pending when ``main`` returns (a library's watcher, say) are cancelled and awaited,
    bounded, so Quit never destroys a pending task.
    """
    try:
        return loop.run_until_complete(main)
    finally:
        try:
            _cancel_leftover_tasks(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


def _cancel_leftover_tasks(loop: asyncio.AbstractEventLoop) -> None:
    leftovers = asyncio.all_tasks(loop)
    if not leftovers:
        return
    for task in leftovers:
        task.cancel()
    _, pending = loop.run_until_complete(asyncio.wait(leftovers, timeout=LEFTOVER_TASKS_TIMEOUT_S))
    for task in pending:
        logger.warning("a task did not stop within %.0f s of Quit: %r", LEFTOVER_TASKS_TIMEOUT_S, task)
    for task in leftovers - pending:
        if not task.cancelled() and task.exception() is not None:
            loop.call_exception_handler(
                {"message": "a task failed while Toolgate quit", "exception": task.exception(), "task": task}
            )

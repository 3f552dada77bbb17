"""The asyncio event loop that runs inside Qt's (qasync), made safe for everything the gateway does.

``run_to_end`` runs the app's main coroutine on it and ends it the way ``asyncio.run`` ends a loop.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

os.environ.setdefault("QT_API", "pyside6")  # qasync picks its Qt binding from this at import

import qasync
from PySide6.QtCore import QObject, QTimer, QTimerEvent

logger = logging.getLogger("toolgate.app")
T = TypeVar("T")

# Tasks still running when the app's main coroutine returns get this long to finish being cancelled.
LEFTOVER_TASKS_TIMEOUT_S = 5.0
# Qt timers take a signed 32-bit count of milliseconds (about 24.8 days).
MAX_TIMER_S = (2**31 - 1) / 1000


class _LoopTimers(QObject):
    """The loop's delayed callbacks, one Qt timer each; ``stop`` kills every timer still pending, at once.

    qasync's own only marks itself stopped and kills each timer when it next fires, so timers outlive
    a closed loop; when the loop is then freed on another thread (the last reference dropped by a
    worker thread), Qt cannot stop them from there and a timer left registered fires into freed
    memory later.
    """

    def __init__(self) -> None:
        super().__init__()
        self._handles: dict[int, asyncio.Handle] = {}

    def add_callback(self, handle: asyncio.Handle, delay: float = 0) -> asyncio.Handle:
        self._handles[self.startTimer(int(max(0, delay) * 1000))] = handle
        return handle

    def timerEvent(self, event: QTimerEvent) -> None:
        timer_id = event.timerId()
        self.killTimer(timer_id)
        handle = self._handles.pop(timer_id, None)
        if handle is not None and not handle._cancelled:
            handle._run()

    def stop(self) -> None:
        for timer_id in self._handles:
            self.killTimer(timer_id)
        self._handles.clear()

    def set_debug(self, enabled: bool) -> None:
        """Debug timing of callbacks (qasync's) is not kept; asyncio's debug mode still works for the rest."""


class QtEventLoop(qasync.QEventLoop):  # type: ignore[misc]
    """qasync's loop, with callbacks run in batches and delays longer than a Qt timer can hold.

    qasync starts a Qt timer for every callback, ``call_soon`` included, so every ``await`` that
    resumes a task cost a timer started, fired and killed (about three times asyncio's cost per
    await). Here ``call_soon`` appends to a queue, as asyncio's loop does, and one zero-delay timer
    runs everything queued by the time it fires; callbacks queued meanwhile wait for the next one,
    so Qt's own events (sockets, the window) are handled between batches as before.

    ``anyio.sleep_forever()`` schedules a callback after ``math.inf`` seconds, which qasync turns
    into an ``OverflowError``; a long delay is instead carried in steps a Qt timer can hold.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._ready: collections.deque[asyncio.Handle] = collections.deque()
        # Fires once per pass of Qt's event loop while callbacks are queued; stopped when none are.
        self._batches = QTimer()
        self._batches.setInterval(0)
        self._batches.timeout.connect(self._run_batch)
        super().__init__(*args, **kwargs)
        self._timer = _LoopTimers()

    def call_soon(self, callback: Callable[..., object], *args: Any, context: Any = None) -> asyncio.Handle:
        """Queue ``callback(*args)`` to run in the loop's next batch."""
        self._check_closed()
        handle = asyncio.Handle(callback, args, self, context=context)
        self._ready.append(handle)
        if not self._batches.isActive():
            self._batches.start()
        return handle

    def _run_batch(self) -> None:
        ready = self._ready
        for _ in range(len(ready)):  # those queued by now; the rest run in the next batch
            if not ready:  # emptied by a nested pass of Qt's loop (a callback that ran one)
                break
            handle = ready.popleft()
            if not handle._cancelled:
                handle._run()
        if not ready:
            self._batches.stop()

    def close(self) -> None:
        """Close the loop (see qasync); callbacks still queued are dropped, as qasync drops its timers."""
        self._batches.stop()
        self._ready.clear()
        super().close()

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

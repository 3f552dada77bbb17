"""The asyncio event loop that runs inside Qt's (qasync), made safe for everything the gateway does.

The app runs on it on macOS and Windows; on Linux it runs on asyncio's own loop (``selector_loop.py``):
``new_app_loop`` makes the one for this platform. ``run_to_end`` runs the app's main coroutine on either
and ends it the way ``asyncio.run`` ends a loop.
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

os.environ.setdefault("QT_API", "pyside6")  # qasync picks its Qt binding from this at import

from asyncio.events import _get_running_loop, _set_running_loop

import qasync
from PySide6.QtCore import QCoreApplication, QSocketNotifier, Qt, QTimer

logger = logging.getLogger("toolgate.app")
T = TypeVar("T")

# Set to "qt", the app runs on Qt's loop (``QtEventLoop``) on Linux too, as it does on macOS and Windows.
APP_LOOP_VARIABLE = "TOOLGATE_APP_LOOP"
# Tasks still running when the app's main coroutine returns get this long to finish being cancelled.
LEFTOVER_TASKS_TIMEOUT_S = 5.0
# Qt timers take a signed 32-bit count of milliseconds (about 24.8 days).
MAX_TIMER_MS = 2**31 - 1
# A delayed callback this close to its time runs now (asyncio's loop allows its clock's resolution).
CLOCK_RESOLUTION_S = time.get_clock_info("monotonic").resolution


class _LoopTimers:
    """The loop's delayed callbacks: a heap by due time, as asyncio keeps them, and one Qt timer for the first.

    ``stop`` stops that timer and drops every callback still pending, at once.

    qasync started a Qt timer per delayed callback and left a cancelled one to fire anyway (uvicorn
    schedules and cancels a keep-alive timeout on every request), and rounded delays down to whole
    milliseconds on a coarse timer, so a callback could run before its time. Its timers also outlived
    a closed loop: freed on another thread, a timer left registered fired into freed memory later.
    """

    def __init__(self, run_due: Callable[[list[asyncio.TimerHandle]], None]) -> None:
        self._heap: list[asyncio.TimerHandle] = []
        self._run_due = run_due
        self._due = math.inf  # when the Qt timer is set to fire
        self._qt_timer = QTimer()
        self._qt_timer.setSingleShot(True)
        self._qt_timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._qt_timer.timeout.connect(self._fire)

    def add(self, handle: asyncio.TimerHandle) -> None:
        heapq.heappush(self._heap, handle)
        handle._scheduled = True  # type: ignore[attr-defined]
        if handle.when() < self._due:
            self._set_timer()

    def _set_timer(self) -> None:
        heap = self._heap
        while heap and heap[0]._cancelled:
            heapq.heappop(heap)._scheduled = False  # type: ignore[attr-defined]
        if not heap:
            self._due = math.inf
            self._qt_timer.stop()
            return
        self._due = heap[0].when()
        wait_ms = min(max((self._due - time.monotonic()) * 1000, 0), MAX_TIMER_MS)  # longer: taken in steps
        self._qt_timer.start(math.ceil(wait_ms))  # never before its time

    def _fire(self) -> None:
        heap = self._heap
        now = time.monotonic() + CLOCK_RESOLUTION_S
        due = []
        while heap and heap[0].when() <= now:
            handle = heapq.heappop(heap)
            handle._scheduled = False  # type: ignore[attr-defined]
            if not handle._cancelled:
                due.append(handle)
        self._set_timer()  # before running them: one may run a nested pass of Qt's loop
        if due:
            self._run_due(due)

    def stop(self) -> None:
        self._qt_timer.stop()
        self._due = math.inf
        self._heap.clear()

    def set_debug(self, enabled: bool) -> None:
        """Debug timing of callbacks (qasync's) is not kept; asyncio's debug mode still works for the rest."""


class _Watch:
    """A file descriptor watched for one kind of readiness: its Qt notifier and the callback it runs."""

    __slots__ = ("fileobj", "handle", "notifier")

    def __init__(self, fileobj: Any, notifier: QSocketNotifier, handle: asyncio.Handle) -> None:
        self.fileobj = fileobj
        self.notifier = notifier
        self.handle = handle


def _keep(_: object) -> None:
    """Holds a retired notifier until the next batch (see ``QtEventLoop._unwatch``)."""


class QtEventLoop(qasync.QEventLoop):  # type: ignore[misc]
    """qasync's loop, with callbacks run in batches and delays longer than a Qt timer can hold.

    qasync starts a Qt timer for every callback, ``call_soon`` included, so every ``await`` that
    resumes a task cost a timer started, fired and killed (about three times asyncio's cost per
    await). Here ``call_soon`` appends to a queue, as asyncio's loop does, and one zero-delay timer
    runs everything queued by the time it fires; callbacks queued meanwhile wait for the next one,
    so Qt's own events (sockets, the window) are handled between batches as before.

    A file descriptor's readiness runs its callback in the pass of Qt's loop that saw it, as asyncio's
    loop runs it in the iteration that polled it. qasync instead disabled the socket notifier on every
    wake-up, queued the callback for the next pass and enabled the notifier again after it (two
    registrations with Qt's dispatcher and a pass of Qt's loop per read, on every socket and pipe).
    The notifier stays enabled while its callback is registered; removing it disables it at once.

    ``anyio.sleep_forever()`` schedules a callback after ``math.inf`` seconds, which qasync turns
    into an ``OverflowError``; a long delay is instead carried in steps a Qt timer can hold.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._ready: collections.deque[asyncio.Handle] = collections.deque()
        # Watched file descriptors by number (asyncio's self-pipe is added while qasync's __init__ runs).
        self._readers: dict[int, _Watch] = {}
        self._writers: dict[int, _Watch] = {}
        # Fires once per pass of Qt's event loop while callbacks are queued; stopped when none are.
        self._batches = QTimer()
        self._batches.setInterval(0)
        self._batches.timeout.connect(self._run_batch)
        super().__init__(*args, **kwargs)
        self._timer = _LoopTimers(self._run_due)

    def call_soon(self, callback: Callable[..., object], *args: Any, context: Any = None) -> asyncio.Handle:
        """Queue ``callback(*args)`` to run in the loop's next batch."""
        self._check_closed()
        handle = asyncio.Handle(callback, args, self, context=context)
        self._ready.append(handle)
        if not self._batches.isActive():
            self._batches.start()
        return handle

    def _run_batch(self) -> None:
        if _get_running_loop() is None:
            self._outside_run_forever(self._run_batch)
            return
        ready = self._ready
        for _ in range(len(ready)):  # those queued by now; the rest run in the next batch
            if not ready:  # emptied by a nested pass of Qt's loop (a callback that ran one)
                break
            handle = ready.popleft()
            if not handle._cancelled:
                handle._run()
        if not ready:
            self._batches.stop()

    def _outside_run_forever(self, run: Callable[..., None], *args: Any) -> None:
        self._enter()
        try:
            run(*args)
        finally:
            _set_running_loop(None)

    def _enter(self) -> None:
        """Make this the running loop while Qt runs its callbacks outside ``run_forever``.

        qasync ends ``run_until_complete`` with one more pass of Qt's loop, after ``run_forever`` has
        returned: a task resumed there must still find its loop (anyio asks for it: sse-starlette's
        shutdown watcher failed with "Not currently running on any asynchronous event loop" at Quit).
        """
        _set_running_loop(self)

    def close(self) -> None:
        """Close the loop (see qasync); callbacks still queued are dropped, as qasync drops its timers.

        Every notifier still watching a file descriptor is disabled and freed here, on the loop's thread.
        """
        if self.is_running():
            raise RuntimeError("Cannot close a running event loop")
        if self.is_closed():
            return
        super().close()  # removes asyncio's self-pipe reader on the way
        for watches in (self._readers, self._writers):
            for watch in watches.values():
                self._disable(watch)
            watches.clear()
        self._batches.stop()
        self._ready.clear()

    # --- file descriptors -------------------------------------------------------------------------

    def _add_reader(self, fd: Any, callback: Callable[..., object], *args: Any) -> asyncio.Handle:
        return self._watch(self._readers, QSocketNotifier.Type.Read, fd, callback, args)

    def _remove_reader(self, fd: Any) -> bool:
        return self._unwatch(self._readers, fd)

    def _add_writer(self, fd: Any, callback: Callable[..., object], *args: Any) -> asyncio.Handle:
        return self._watch(self._writers, QSocketNotifier.Type.Write, fd, callback, args)

    def _remove_writer(self, fd: Any) -> bool:
        return self._unwatch(self._writers, fd)

    def _watch(
        self,
        watches: dict[int, _Watch],
        kind: QSocketNotifier.Type,
        fd: Any,
        callback: Callable[..., object],
        args: tuple[Any, ...],
    ) -> asyncio.Handle:
        self._check_closed()
        handle = asyncio.Handle(callback, args, self, None)
        fileno = int(qasync._fileno(fd))
        watch = watches.get(fileno)
        if watch is not None:  # the same descriptor again: the new callback replaces the old one
            watch.handle.cancel()
            watch.handle = handle
            watch.fileobj = fd
            return handle
        notifier = QSocketNotifier(fileno, kind)
        watch = watches[fileno] = _Watch(fd, notifier, handle)
        # The plain-number overload of the signal: Python gets an int, not a QSocketDescriptor, per wake-up.
        notifier.activated["int"].connect(lambda _fd: self._on_ready(watches, fileno, watch))  # type: ignore[index]
        notifier.setEnabled(True)
        return handle

    def _on_ready(self, watches: dict[int, _Watch], fileno: int, watch: _Watch) -> None:
        if watches.get(fileno) is not watch:  # removed earlier in this pass: Qt had already seen it ready
            return
        handle = watch.handle
        if handle._cancelled:
            self._unwatch(watches, fileno)
            return
        if _get_running_loop() is None:
            self._outside_run_forever(handle._run)
        else:
            handle._run()

    def _unwatch(self, watches: dict[int, _Watch], fd: Any) -> bool:
        if self.is_closed():
            return False
        watch = watches.pop(self._find(watches, fd), None)
        if watch is None:
            return False
        self._disable(watch)
        # Its readiness may be what Qt is delivering right now: the notifier is freed in the next batch.
        self.call_soon(_keep, watch.notifier)
        watch.handle.cancel()
        return True

    @staticmethod
    def _find(watches: dict[int, _Watch], fd: Any) -> int:
        """The number ``fd`` was watched under, also when ``fd`` is a file object closed since."""
        try:
            fileno = int(qasync._fileno(fd))
        except ValueError:
            fileno = -1
        if fileno >= 0:
            return fileno
        return next((number for number, watch in watches.items() if watch.fileobj is fd), -1)

    @staticmethod
    def _disable(watch: _Watch) -> None:
        watch.notifier.setEnabled(False)
        watch.notifier.activated["int"].disconnect()  # type: ignore[index]

    # --- delayed callbacks --------------------------------------------------------------------------

    def call_later(
        self, delay: float, callback: Callable[..., object], *args: Any, context: Any = None
    ) -> asyncio.TimerHandle:
        """Run ``callback(*args)`` ``delay`` seconds from now, not before (``math.inf``: never, as asyncio)."""
        return self.call_at(self.time() + delay, callback, *args, context=context)

    def call_at(
        self, when: float, callback: Callable[..., object], *args: Any, context: Any = None
    ) -> asyncio.TimerHandle:
        """Run ``callback(*args)`` once the loop's clock (``time.monotonic``) reaches ``when``."""
        self._check_closed()
        handle = asyncio.TimerHandle(when, callback, args, self, context)
        self._timer.add(handle)
        return handle

    def _add_callback(self, handle: asyncio.Handle, delay: float = 0) -> asyncio.Handle:
        """Where asyncio hands in a signal's handler (qasync too): queued for the next batch."""
        if delay > 0:
            return self.call_later(delay, handle._run)
        self._ready.append(handle)
        if not self._batches.isActive():
            self._batches.start()
        return handle

    def _run_due(self, due: list[asyncio.TimerHandle]) -> None:
        if _get_running_loop() is None:
            self._outside_run_forever(self._run_due, due)
            return
        for handle in due:
            if not handle._cancelled:
                handle._run()


def new_app_loop(qt_app: QCoreApplication) -> asyncio.AbstractEventLoop:
    """The event loop the tray app runs on, made on Qt's thread once ``qt_app`` exists.

    On Linux, asyncio's own (``selector_loop.SelectorQtLoop``), which runs passes of Qt's loop while it
    waits; elsewhere, or with ``TOOLGATE_APP_LOOP=qt``, Qt's loop with asyncio's running in it (``QtEventLoop``).
    """
    if sys.platform.startswith("linux") and os.environ.get(APP_LOOP_VARIABLE, "") != "qt":
        from app.selector_loop import SelectorQtLoop

        return SelectorQtLoop()
    return QtEventLoop(qt_app)


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

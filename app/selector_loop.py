"""The tray app's event loop on Linux: asyncio's own loop, which lets Qt handle its events while it waits.

``toolgate serve`` runs the gateway on asyncio's selector loop. The tray app ran it on Qt's loop (qasync,
``loop.py``): every file descriptor a Qt socket notifier and every wake-up a call from Qt into Python,
which cost the app a fifth to a third more CPU per call than ``serve`` at the same load. Here the gateway runs on
the very loop ``serve`` runs on, and Qt's events are handled in passes of Qt's loop that asyncio's loop
runs:

* When asyncio has nothing to run and has been busy, it first waits for its sockets and pipes itself,
  at most ``WAIT_BEFORE_QT_S`` (an agent's next request, a server's answer usually come within it).
* Otherwise it waits in Qt: a pass of Qt's loop that blocks until an event comes, Qt's own (the window,
  the tray, a Qt timer) or asyncio's. asyncio's whole selector is one descriptor Qt watches (an epoll
  descriptor is readable while any descriptor in it is ready), and a Qt timer ends the wait when
  asyncio's next delayed callback is due.
* However busy asyncio is, Qt gets a pass at least every ``QT_PASS_EVERY_S``, so the window stays live.
* What asyncio's callbacks ``deleteLater()`` is deleted at the start of Qt's next pass (Qt's loop
  deletes only what was deleted later inside its own passes, and here nothing runs ``exec()``).
* A Qt loop run inside one of those passes (a button's menu, a modal dialog runs its own) runs asyncio's
  passes itself until it ends, so the gateway keeps serving while a menu is open. A Qt loop started by
  asyncio's own code (a callback that opened a modal dialog) stops the gateway until it ends: the app
  opens its dialogs with ``open()``, never ``exec()``.

The loop is asyncio's, so everything about it is asyncio's: the order callbacks run in, delays, signal
handlers, subprocesses, ``call_soon_threadsafe``. macOS and Windows keep Qt's loop (``loop.QtEventLoop``):
Windows' asyncio loop has no descriptor to watch, and a kqueue descriptor in Qt's macOS dispatcher was
not tried.
"""

from __future__ import annotations

import asyncio
import heapq
import math
import selectors
import threading
import time
from typing import Any

from PySide6.QtCore import QCoreApplication, QEvent, QEventLoop, QSocketNotifier, Qt, QThread, QTimer

# While it has been busy, asyncio waits this long for its own descriptors before waiting in Qt.
WAIT_BEFORE_QT_S = 0.002
# However busy asyncio is, Qt handles its events at least this often.
QT_PASS_EVERY_S = 0.01
# Qt timers take a signed 32-bit count of milliseconds (about 24.8 days); longer waits are taken in steps.
MAX_TIMER_MS = 2**31 - 1

_WAIT = QEventLoop.ProcessEventsFlag.WaitForMoreEvents
_ALL = QEventLoop.ProcessEventsFlag.AllEvents
_DEFERRED_DELETE = QEvent.Type.DeferredDelete


_asyncio_pass = asyncio.SelectorEventLoop._run_once  # type: ignore[attr-defined]


def _timer_ms(delay: float) -> int:
    """A Qt timer's milliseconds for ``delay`` seconds: never before its time, longer waits taken in steps."""
    return min(math.ceil(delay * 1000), MAX_TIMER_MS)


class _WaitingSelector(selectors.DefaultSelector):  # epoll on Linux
    """asyncio's selector, which never blocks asyncio's own pass: the loop waits beforehand (``wait``).

    What ``wait`` saw is what the pass's ``select`` gets, so no descriptor is polled twice.
    """

    _seen: list[tuple[selectors.SelectorKey, int]] | None = None

    def wait(self, timeout: float) -> bool:
        """Wait at most ``timeout`` seconds for a descriptor to be ready; whether one is."""
        seen = super().select(timeout)
        self._seen = seen or None
        return bool(seen)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        """What ``wait`` saw, if it saw something; else what is ready now (never waiting)."""
        seen = self._seen
        if seen is not None:
            self._seen = None
            return seen
        return super().select(0)


class _QtParts:
    """The loop's Qt objects: a notifier on asyncio's selector and two timers, made and freed on the loop's thread."""

    def __init__(self, fileno: int, woke: Any) -> None:
        self.thread = QThread.currentThread()
        self.selector = QSocketNotifier(fileno, QSocketNotifier.Type.Read)
        self.selector.activated["int"].connect(woke)  # type: ignore[index]  # an int per wake-up, not a QSocketDescriptor
        self.selector.setEnabled(True)
        self.due = QTimer()  # asyncio's next delayed callback
        self.due.setSingleShot(True)
        self.due.setTimerType(Qt.TimerType.PreciseTimer)
        self.due.timeout.connect(woke)
        self.soon = QTimer()  # callbacks ready to run, in a Qt loop run inside asyncio's wait
        self.soon.setSingleShot(True)
        self.soon.setInterval(0)
        self.soon.timeout.connect(woke)

    def stop(self) -> None:
        self.selector.setEnabled(False)
        self.selector.activated["int"].disconnect()  # type: ignore[index]
        self.due.stop()
        self.soon.stop()


class SelectorQtLoop(asyncio.SelectorEventLoop):
    """asyncio's selector loop, running passes of Qt's loop while it waits (see the module docstring).

    Make it on the thread Qt's application runs on, once the application exists.
    """

    def __init__(self) -> None:
        self._waiting = _WaitingSelector()
        super().__init__(self._waiting)
        self._qt: _QtParts | None = _QtParts(self._waiting.fileno(), self._qt_woke)
        self._busy = False  # the last pass ran something: asyncio waits for its descriptors before Qt
        self._in_pass = False  # asyncio's pass runs inside a Qt loop run inside Qt's pass (and must not nest)
        self._qt_level: int | None = None  # Qt's loop level while asyncio waits in a pass of Qt's loop
        self._last_qt_pass = time.monotonic()

    def _run_once(self) -> None:
        """One pass of asyncio's loop, after waiting for something to do (in Qt, unless busy)."""
        if time.monotonic() - self._last_qt_pass >= QT_PASS_EVERY_S:
            self._qt_pass(_ALL)
        if not self._ready and not self._stopping:  # type: ignore[attr-defined]
            if not (self._busy and self._waiting.wait(self._until_due(WAIT_BEFORE_QT_S))):
                self._wait_in_qt()
        self._busy = bool(self._ready or self._waiting._seen)  # type: ignore[attr-defined]
        _asyncio_pass(self)  # (a Qt loop its callbacks start runs no pass of asyncio's: ``_qt_level`` is None)

    def _wait_in_qt(self) -> None:
        """A pass of Qt's loop that waits for an event: Qt's, a descriptor of asyncio's, or its next delay's end."""
        assert self._qt is not None
        delay = self._until_due(math.inf)
        if delay <= 0:
            return
        if delay != math.inf:
            self._qt.due.start(_timer_ms(delay))
        try:
            self._qt_pass(_WAIT)
        finally:
            self._qt.due.stop()

    def _qt_pass(self, flags: QEventLoop.ProcessEventsFlag) -> None:
        assert self._qt is not None
        self._qt_level = self._qt.thread.loopLevel()
        self._call_soon = self._call_soon_from_qt
        self.call_at = self._call_at_from_qt  # type: ignore[method-assign,assignment]
        try:
            # Qt deletes what its own events' handlers ``deleteLater()`` in its passes; what asyncio's
            # callbacks did (outside any pass of Qt's loop: nothing runs ``exec()``) is deleted here. What
            # that schedules (a ``destroyed`` handler setting an event) ends the wait below at once.
            QCoreApplication.sendPostedEvents(None, _DEFERRED_DELETE)
            QCoreApplication.processEvents(flags)
        finally:
            del self._call_soon, self.call_at  # asyncio's own again
            self._qt_level = None
            self._last_qt_pass = time.monotonic()

    def _until_due(self, longest: float) -> float:
        """Seconds until the next delayed callback is due (not below 0), at most ``longest``."""
        scheduled: list[asyncio.TimerHandle] = self._scheduled  # type: ignore[attr-defined]
        while scheduled and scheduled[0]._cancelled:  # as asyncio's pass drops them
            self._timer_cancelled_count -= 1  # type: ignore[attr-defined]
            heapq.heappop(scheduled)._scheduled = False  # type: ignore[attr-defined]
        if not scheduled:
            return longest
        return max(0.0, min(longest, scheduled[0].when() - self.time()))

    def _qt_woke(self, *_: Any) -> None:
        """Qt saw asyncio's selector ready, its next delay end, or a callback scheduled by a Qt event.

        In asyncio's own wait that ends the pass of Qt's loop; in a Qt loop run inside it (a menu's, a
        dialog's), asyncio's pass runs from here.
        """
        level = self._qt_level
        qt = self._qt
        if level is None or qt is None or self._in_pass or self._stopping:  # type: ignore[attr-defined]
            return
        if qt.thread.loopLevel() <= level:
            return
        self._in_pass = True
        try:
            _asyncio_pass(self)
        finally:
            self._in_pass = False
        if self._ready:  # type: ignore[attr-defined]
            qt.soon.start()
        else:
            delay = self._until_due(math.inf)
            if delay != math.inf:
                qt.due.start(_timer_ms(delay))

    # While Qt's loop runs inside asyncio's wait, what Qt's events schedule goes through these.

    def _call_soon_from_qt(self, callback: Any, args: Any, context: Any) -> asyncio.Handle:
        handle: asyncio.Handle = super()._call_soon(callback, args, context)  # type: ignore[misc]
        self._from_qt()
        return handle

    def _call_at_from_qt(self, when: float, callback: Any, *args: Any, context: Any = None) -> asyncio.TimerHandle:
        handle = super().call_at(when, callback, *args, context=context)
        self._from_qt()
        return handle

    def _from_qt(self) -> None:
        """A Qt event scheduled a callback: should it go on to run a Qt loop of its own, asyncio's pass runs there.

        Otherwise asyncio's pass runs it once Qt's is over, as it would anyway. (``call_soon_threadsafe``
        from another thread wakes the loop through its selector.)
        """
        on_loop_thread = threading.get_ident() == self._thread_id  # type: ignore[attr-defined]
        if self._qt is not None and not self._in_pass and on_loop_thread:
            self._qt.soon.start()

    def close(self) -> None:
        """Close the loop as asyncio does; Qt stops watching its selector first, and its timers stop, on this thread."""
        if self.is_running():
            raise RuntimeError("Cannot close a running event loop")
        if self.is_closed():
            return
        if self._qt is not None:
            self._qt.stop()
            self._qt = None
        super().close()

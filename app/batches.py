"""Items for the widgets, handed over in lists at most a few times a second."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

from PySide6.QtCore import QObject, QTimer

T = TypeVar("T")


class Batches(Generic[T]):
    """Hands the items ``add``-ed to ``deliver`` in lists, in order, at most once every ``interval_s``.

    The first items after a quiet spell go at once; items added within ``interval_s`` of a delivery
    wait and go together at its end; ``flush`` hands over what waits now. None is left out or repeated.

    Under load the gateway announces calls and stderr lines many times a second, and every delivery
    re-lays out and repaints the widgets that show them: per item, that was most of what the tray app
    spent beyond ``toolgate serve``.

    Args:
        deliver: called on the Qt thread with the items waiting, oldest first (never an empty list).
        interval_s: the least time between two deliveries.
        parent: owns the timer (deliveries stop with it).
    """

    def __init__(self, deliver: Callable[[list[T]], object], interval_s: float, parent: QObject) -> None:
        self._deliver = deliver
        self._interval_s = interval_s
        self._waiting: list[T] = []
        self._delivered = -math.inf  # when the last delivery was (time.monotonic())
        self._timer = QTimer(parent)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.flush)

    def add(self, items: Iterable[T]) -> None:
        """Deliver ``items`` now if the last delivery is ``interval_s`` old, else with the next one."""
        self._waiting.extend(items)
        if self._timer.isActive():  # a delivery is due: these go with it
            return
        wait_s = self._delivered + self._interval_s - time.monotonic()
        if wait_s <= 0:
            self.flush()
        else:
            self._timer.start(math.ceil(wait_s * 1000))

    def flush(self) -> None:
        """Deliver every item waiting now, if any."""
        self._timer.stop()
        items, self._waiting = self._waiting, []
        if items:
            self._delivered = time.monotonic()
            self._deliver(items)

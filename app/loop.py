"""The asyncio event loop that runs inside Qt's (qasync), made safe for everything the gateway does."""

from __future__ import annotations

import asyncio
import os
from typing import Any

os.environ.setdefault("QT_API", "pyside6")  # qasync picks its Qt binding from this at import

import qasync

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

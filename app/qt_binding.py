"""Whether the installed Qt binding keeps Python's reference counts, checked once before the window starts.

PySide6 6.12.0 on Python 3.11 returns ``None`` from every void method (``QTimer.start``,
``QLabel.setText``, ``QSocketNotifier.setEnabled`` …) without a reference of its own, so each call takes
one of ``None``'s. The event loop alone makes dozens of such calls per tool call, so after a few thousand
calls (or half an hour idle) CPython frees ``None`` and aborts: "none_dealloc: deallocating None".
From Python 3.12 ``None`` is immortal (PEP 683) and the defect does no harm.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

# Enough calls to tell a reference taken per call from the few that unrelated work may move.
PROBE_CALLS = 1000


def stolen_none_references(call: Callable[[], object] | None = None, calls: int = PROBE_CALLS) -> int:
    """How many of ``None``'s references ``calls`` void Qt calls took; about 0 on a sound binding.

    Args:
        call: the void call to make, ``QObject.setObjectName`` on a fresh object by default.
        calls: how many times to make it.
    """
    if sys.version_info >= (3, 12):
        return 0  # None is immortal: nothing a binding does to its count can free it
    if call is None:
        from PySide6.QtCore import QObject

        probe = QObject()
        call = lambda: probe.setObjectName("toolgate-probe")  # noqa: E731
    call()  # the first call may cache things that hold None
    before = sys.getrefcount(None)
    for _ in range(calls):
        call()
    return before - sys.getrefcount(None)


def binding_problem(call: Callable[[], object] | None = None) -> str | None:
    """Why the window cannot run safely with this Qt binding, or None when it can."""
    stolen = stolen_none_references(call)
    if stolen < PROBE_CALLS // 2:
        return None
    from PySide6 import __version__ as pyside_version

    python = ".".join(map(str, sys.version_info[:3]))
    return (
        f"PySide6 {pyside_version} on Python {python} has a defect that crashes Toolgate's window after a few "
        f"thousand calls (every Qt call takes a reference to None: {stolen} in {PROBE_CALLS} calls). "
        "Install PySide6 below 6.12 (pip install 'PySide6-Essentials<6.12') or run Toolgate with Python 3.12 "
        "or newer."
    )

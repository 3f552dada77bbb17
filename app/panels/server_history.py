"""How a server's failures are told: the last one in the table, its history in the detail, and in its stderr.

A server that crashed after it was ready and came back keeps its failures (``ServerStatus.failures``);
these functions put them in words: when (a time today, a date otherwise), what happened (crashed
while ready, or could not start) and why, and separators that mark each failure between the stderr
lines written before and after it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

from app.panels.server_advice import advice, gui_reason
from gateway_core import Failure, ServerState, ServerStatus


def when_text(at: float, now: float | None = None) -> str:
    """``21:30:05`` for a time today, ``2026-12-01 21:30:05`` for an earlier day (local time)."""
    now = time.time() if now is None else now
    same_day = time.localtime(at)[:3] == time.localtime(now)[:3]
    return time.strftime("%H:%M:%S" if same_day else "%Y-%m-%d %H:%M:%S", time.localtime(at))


def failure_text(failure: Failure, now: float | None = None) -> str:
    """``Crashed at 21:30:05: the server process exited with code 3`` (or ``Could not start at …``)."""
    what = "Crashed" if failure.after_ready else "Could not start"
    when = when_text(failure.at, now)
    if failure.times > 1 and failure.last_at is not None:
        when += f" and {times(failure.times - 1)} more until {when_text(failure.last_at, now)}"
    return f"{what} at {when}: {gui_reason(failure.reason)}"


def times(count: int) -> str:
    """``once``, ``twice``, ``3 times``."""
    return {1: "once", 2: "twice"}.get(count, f"{count} times")


def history_summary(status: ServerStatus) -> str:
    """One line on how often the server failed and was restarted; empty when it never failed."""
    if not status.failures:
        return ""
    crashed = status.crashes
    not_started = sum(failure.times for failure in status.failures) - crashed
    parts = []
    if crashed:
        parts.append(f"crashed {times(crashed)}")
    if not_started:
        parts.append(f"could not start {times(not_started)}")
    text = " and ".join(parts)
    if status.restarts:
        text += f"; restarted {times(status.restarts)}"
    return text[0].upper() + text[1:] + "."


def last_error_text(status: ServerStatus) -> str:
    """The table's "Last error": the reason now, else the last failure with its time (it is ready again)."""
    if status.state is ServerState.FAILED or (status.reason and status.state is not ServerState.STOPPED):
        return gui_reason(status.reason or "")
    if status.failures:
        return f"{failure_text(status.failures[-1])} (restarted {times(status.restarts)})"
    return gui_reason(status.reason or "")


def history_text(status: ServerStatus) -> str:
    """What to do now (when failing), then the summary and each recorded failure, newest last (the table's tooltip)."""
    lines = [gui_reason(status.reason or "")] if status.reason and not status.failures else []
    if what_to_do := advice(status):
        lines.append(f"What to do: {what_to_do}")
    if status.failures:
        lines += [history_summary(status), *(failure_text(failure) for failure in status.failures)]
    return "\n".join(lines)


def separator(failure: Failure) -> str:
    """The line the stderr view shows where a failure happened."""
    restarted = "restarted" if failure.after_ready else "tried again"
    return f"──── {failure_text(failure)} — {restarted} ────"


def stderr_line(at: float, text: str) -> str:
    """One stderr line with its time."""
    return f"{time.strftime('%H:%M:%S', time.localtime(at))}  {text}"


def stderr_text(lines: Iterable[tuple[float, str]], failures: Sequence[Failure]) -> list[str]:
    """The stderr view's lines: each line with its time, and a separator where each failure happened."""
    pending = sorted(failures, key=lambda failure: failure.at)
    shown: list[str] = []
    for at, text in lines:
        while pending and pending[0].at <= at:
            shown.append(separator(pending.pop(0)))
        shown.append(stderr_line(at, text))
    shown.extend(separator(failure) for failure in pending)
    return shown

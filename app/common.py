"""Small pieces the panels share: how states, effects, times and public names are shown, copying, inline errors."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from PySide6.QtCore import QEvent, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QLabel, QMenu, QPushButton, QWidget

from app.palette import Tone, ToneMap, tone_color
from gateway_core import ApprovalRequest, Effect, PublicName, ServerState, until_tomorrow

STATE_TEXT = {
    ServerState.STARTING: "Starting",
    ServerState.READY: "Ready",
    ServerState.NEEDS_SIGN_IN: "Needs sign-in",
    ServerState.FAILED: "Failed",
    ServerState.STOPPED: "Stopped",
}
# A server the person disabled (it is stopped, and that is no failure).
DISABLED_TEXT = "Disabled"
EFFECT_TEXT = {Effect.ALLOW: "Allow", Effect.ASK: "Ask", Effect.DENY: "Deny"}
# Colours for the palette in use (see app.palette), always next to the state in words.
STATE_COLOR = ToneMap(
    {
        ServerState.STARTING: Tone.WARN,
        ServerState.READY: Tone.GOOD,
        ServerState.NEEDS_SIGN_IN: Tone.INFO,
        ServerState.FAILED: Tone.BAD,
        ServerState.STOPPED: Tone.MUTED,
    }
)
# Argument strings longer than this are folded (and lists longer than FOLD_ITEMS); the prompt can unfold.
FOLD_CHARS = 400
FOLD_ITEMS = 50
EFFECT_COLOR = ToneMap({Effect.ALLOW: Tone.GOOD, Effect.ASK: Tone.WARN, Effect.DENY: Tone.BAD})


# The durations a timed answer offers; None is "until tomorrow" (the next local midnight).
GRANT_CHOICES: tuple[tuple[str, float | None], ...] = (
    ("For 15 minutes", 15 * 60.0),
    ("For 1 hour", 3600.0),
    ("Until tomorrow", None),
)


def grant_seconds(choice: float | None) -> float:
    """A ``GRANT_CHOICES`` duration in seconds, "until tomorrow" counted from now."""
    return until_tomorrow(datetime.now().astimezone()) if choice is None else choice


def timed_answer_button(text: str, on_choice: Callable[[float], None]) -> QPushButton:
    """A button whose menu offers ``GRANT_CHOICES``; picking one calls ``on_choice`` with its seconds."""
    button = QPushButton(text)
    menu = QMenu(button)
    for label, choice in GRANT_CHOICES:
        menu.addAction(label).triggered.connect(lambda _=False, c=choice: on_choice(grant_seconds(c)))
    button.setMenu(menu)
    return button


def looked_at_text(request: ApprovalRequest) -> str:
    """`` (the rules looked at: path, mode)`` when policy conditions looked at the call's arguments, else empty."""
    if not request.looked_at:
        return ""
    return f" (the rules looked at: {', '.join(request.looked_at)})"


def format_remaining(seconds: float) -> str:
    """Time left on a grant: ``45 s``, ``14 min``, ``2 h 05 min``."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    hours, rest = divmod(seconds, 3600)
    return f"{hours} h {rest // 60:02d} min"


def format_time(epoch_s: float) -> str:
    """A local wall-clock time for tables: ``14:03:27`` today, ``2026-11-20 14:03`` before."""
    local = time.localtime(epoch_s)
    if time.strftime("%Y-%m-%d", local) == time.strftime("%Y-%m-%d"):
        return time.strftime("%H:%M:%S", local)
    return time.strftime("%Y-%m-%d %H:%M", local)


def format_timestamp(epoch_s: float) -> str:
    """A local date and time for logs, where rows of several days sit together: ``2026-11-20 14:03:27``."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch_s))


def format_duration(seconds: float) -> str:
    """``850 ms``, ``2.4 s`` or ``3 min 05 s``."""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes} min {rest:02d} s"


def renamed_text(public: PublicName) -> str:
    """A rewritten name as a list shows it: ``gh__create_issue — server calls it “create issue”``."""
    return f"{public.name} — server calls it “{public.upstream_name}”"


def seen_as_text(public: PublicName | None) -> str:
    """What agents see for a tool or prompt, and why, as one sentence for a tooltip or a detail view."""
    if public is None:
        return "Agents are not shown it now (its server is not ready, or its name is being updated)."
    if not public.renamings:
        return f"Agents see it as {public.name}, the server's own name."
    return f"Agents see it as {public.name}: {public.reason}."


def copy_text(text: str) -> None:
    """Put ``text`` on the clipboard."""
    QGuiApplication.clipboard().setText(text)


# A passing status line ("Saved.", "The token is on the clipboard.") clears itself after this long.
STATUS_MS = 6000


class StatusLine(QLabel):
    """A one-line status that clears itself after ``STATUS_MS`` (errors stay: use ``InlineError``)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self._expiry = QTimer(self, singleShot=True)
        self._expiry.timeout.connect(self.clear)

    def setText(self, text: str) -> None:
        """Show ``text`` for a while (an empty text clears at once)."""
        super().setText(text)
        if text:
            self._expiry.start(STATUS_MS)
        else:
            self._expiry.stop()


class ToneLabel(QLabel):
    """A label in a status colour that follows the theme (e.g. red for errors, readable on both)."""

    def __init__(self, tone: Tone, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._tone = tone
        self._recolor()

    def event(self, event: QEvent) -> bool:  # noqa: D102 (Qt override)
        if event.type() == QEvent.Type.ApplicationPaletteChange:  # the theme changed
            self._recolor()
        return super().event(event)

    def _recolor(self) -> None:
        self.setStyleSheet(f"color: {tone_color(self._tone).name()};")


class InlineError(ToneLabel):
    """A message in the error colour shown next to what caused it; hidden while empty."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(Tone.BAD, parent)
        self.setWordWrap(True)
        self.setTextInteractionFlags(self.textInteractionFlags())
        self.hide()

    def show_message(self, text: str) -> None:
        """Show ``text``, or hide the label when it is empty."""
        self.setText(text)
        self.setVisible(bool(text))


def fold(value: Any) -> Any:
    """``value`` with long strings and lists shortened, each saying how much was left out."""
    if isinstance(value, str) and len(value) > FOLD_CHARS:
        return f"{value[:FOLD_CHARS]}… ({len(value) - FOLD_CHARS:,} more characters)"
    if isinstance(value, dict):
        return {key: fold(item) for key, item in value.items()}
    if isinstance(value, list):
        items = [fold(item) for item in value[:FOLD_ITEMS]]
        if len(value) > FOLD_ITEMS:
            items.append(f"… ({len(value) - FOLD_ITEMS:,} more items)")
        return items
    return value


def wants(request: ApprovalRequest) -> str:
    """What an approval request's agent wants, as the end of a sentence: "wants to run github__create_issue"."""
    if request.kind == "prompt":
        return f"wants the prompt {request.public_name}"
    if request.kind == "resource":
        return f"wants to read {request.public_name}"
    if request.kind == "subscription":
        return f"wants updates of {request.public_name}"
    if request.kind == "completion":
        return f"wants completions for {request.public_name}"
    return f"wants to run {request.public_name}"


def pretty_arguments(arguments: Any) -> str:
    """A call's arguments as indented JSON, or ``(no arguments)``."""
    return json.dumps(arguments, indent=2, ensure_ascii=False, default=str) if arguments else "(no arguments)"


def folded_arguments(arguments: Any) -> str:
    """A call's arguments as indented JSON with long values folded (each says how much was left out)."""
    return pretty_arguments(fold(arguments))

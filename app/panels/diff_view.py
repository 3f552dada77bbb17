"""Colouring a unified diff in a text box: added lines green, removed lines red, hunk headers muted.

The colours follow the theme (``app.palette``), and the ``+`` / ``-`` at the start of each line still
says it without colour.
"""

from __future__ import annotations

from PySide6.QtGui import QSyntaxHighlighter, QTextCharFormat, QTextDocument

from app.palette import Tone, tone_color


class DiffHighlighter(QSyntaxHighlighter):
    """Colours the lines of a unified diff in ``document``."""

    def __init__(self, document: QTextDocument) -> None:
        super().__init__(document)

    def highlightBlock(self, text: str) -> None:  # noqa: D102 (Qt override)
        tone = line_tone(text)
        if tone is not None:
            fmt = QTextCharFormat()
            fmt.setForeground(tone_color(tone))
            self.setFormat(0, len(text), fmt)


def line_tone(line: str) -> Tone | None:
    """The colour of one diff line: added, removed, a hunk or file header, or none (context)."""
    if line.startswith(("+++", "---", "@@")):
        return Tone.MUTED
    if line.startswith("+"):
        return Tone.GOOD
    if line.startswith("-"):
        return Tone.BAD
    return None

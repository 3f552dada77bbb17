"""Light and dark palettes, and the status colours that read on both (WCAG AA, 4.5:1 for text).

Qt's colour-scheme request does nothing where the platform ignores it (many Linux desktops), so the
app ships both palettes and applies them itself (``app.theme``). Status colours are looked up for the
palette in use each time they are drawn: ``STATE_COLOR[state]`` and the like are ``ToneMap``s, so a
theme change recolours every table on its next repaint. Colour is never the only signal: every
coloured cell also says its state in words.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from enum import Enum
from typing import TypeVar

from PySide6.QtCore import QModelIndex, QPersistentModelIndex
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

K = TypeVar("K")


class Tone(Enum):
    """What a coloured text means."""

    GOOD = "good"
    WARN = "warn"
    BAD = "bad"
    INFO = "info"
    MUTED = "muted"


# Each passes 4.5:1 on its palette's Base and Window colours (and on the alternate rows).
LIGHT_TONES = {
    Tone.GOOD: "#1b7340",
    Tone.WARN: "#8a5a00",
    Tone.BAD: "#b3261e",
    Tone.INFO: "#1d5fb4",
    Tone.MUTED: "#5c5c5c",
}
DARK_TONES = {
    Tone.GOOD: "#6fd49a",
    Tone.WARN: "#e8b84a",
    Tone.BAD: "#ff8a80",
    Tone.INFO: "#8cc4ff",
    Tone.MUTED: "#ababab",
}


# Selected rows: white text on these passes 4.5:1 (the style's own #308cc6 gives 3.7:1, the old dark 4.2:1).
LIGHT_SELECTION = "#2a6fc9"
DARK_SELECTION = "#2f6bc4"
SELECTED_TEXT = "#ffffff"
AA_TEXT = 4.5


def is_dark(palette: QPalette | None = None) -> bool:
    """Whether ``palette`` (the application's by default) has a dark background."""
    palette = palette or QGuiApplication.palette()
    return palette.color(QPalette.ColorRole.Window).lightness() < 128


def tone_color(tone: Tone, palette: QPalette | None = None) -> QColor:
    """The colour of ``tone`` for ``palette`` (the application's by default)."""
    return QColor((DARK_TONES if is_dark(palette) else LIGHT_TONES)[tone])


class ToneMap(Mapping[K, QColor]):
    """A mapping to colours that follows the palette: ``STATE_COLOR[ServerState.READY]`` is green for now."""

    def __init__(self, tones: Mapping[K, Tone]) -> None:
        self.tones = dict(tones)

    def __getitem__(self, key: K) -> QColor:
        return tone_color(self.tones[key])

    def __iter__(self) -> Iterator[K]:
        return iter(self.tones)

    def __len__(self) -> int:
        return len(self.tones)


def _palette(colors: Mapping[QPalette.ColorRole, str], disabled: str) -> QPalette:
    palette = QPalette()
    for role, value in colors.items():
        palette.setColor(role, QColor(value))
    for role in (
        QPalette.ColorRole.WindowText,
        QPalette.ColorRole.Text,
        QPalette.ColorRole.ButtonText,
        QPalette.ColorRole.HighlightedText,
    ):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor(disabled))
    return palette


R = QPalette.ColorRole


def light_palette() -> QPalette:
    """Toolgate's light palette."""
    return _palette(
        {
            R.Window: "#efefef",
            R.WindowText: "#1a1a1a",
            R.Base: "#ffffff",
            R.AlternateBase: "#f7f7f7",
            R.Text: "#1a1a1a",
            R.Button: "#e8e8e8",
            R.ButtonText: "#1a1a1a",
            R.BrightText: "#ffffff",
            R.Light: "#ffffff",
            R.Midlight: "#f4f4f4",
            R.Mid: "#b8b8b8",
            R.Dark: "#9f9f9f",
            R.Shadow: "#767676",
            R.Highlight: LIGHT_SELECTION,
            R.HighlightedText: "#ffffff",
            R.ToolTipBase: "#ffffdc",
            R.ToolTipText: "#1a1a1a",
            R.Link: "#1d5fb4",
            R.LinkVisited: "#6a3fb4",
            R.PlaceholderText: "#6b6b6b",
        },
        disabled="#8a8a8a",
    )


def dark_palette() -> QPalette:
    """Toolgate's dark palette."""
    return _palette(
        {
            R.Window: "#2d2d2d",
            R.WindowText: "#e6e6e6",
            R.Base: "#1e1e1e",
            R.AlternateBase: "#262626",
            R.Text: "#e6e6e6",
            R.Button: "#353535",
            R.ButtonText: "#e6e6e6",
            R.BrightText: "#ffffff",
            R.Light: "#4a4a4a",
            R.Midlight: "#3e3e3e",
            R.Mid: "#262626",
            R.Dark: "#1a1a1a",
            R.Shadow: "#0d0d0d",
            R.Highlight: DARK_SELECTION,
            R.HighlightedText: "#ffffff",
            R.ToolTipBase: "#353535",
            R.ToolTipText: "#e6e6e6",
            R.Link: "#8cc4ff",
            R.LinkVisited: "#c9a8ff",
            R.PlaceholderText: "#9a9a9a",
        },
        disabled="#7a7a7a",
    )


def contrast_ratio(first: QColor, second: QColor) -> float:
    """WCAG 2 contrast ratio of two colours (1 to 21)."""

    def luminance(color: QColor) -> float:
        def channel(value: float) -> float:
            return value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4

        return 0.2126 * channel(color.redF()) + 0.7152 * channel(color.greenF()) + 0.0722 * channel(color.blueF())

    high, low = sorted((luminance(first), luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def readable_selection(palette: QPalette) -> QPalette:
    """``palette`` with a selection colour its selected text reads on (4.5:1), in every colour group.

    A style's own palette ("Follow the OS") may select rows in a blue that white text fails on; such a
    highlight is replaced by Toolgate's own for a light or dark palette.
    """
    palette = QPalette(palette)
    selection = QColor(DARK_SELECTION if is_dark(palette) else LIGHT_SELECTION)
    for group in (QPalette.ColorGroup.Active, QPalette.ColorGroup.Inactive):
        highlight = palette.color(group, QPalette.ColorRole.Highlight)
        text = palette.color(group, QPalette.ColorRole.HighlightedText)
        if contrast_ratio(highlight, text) < AA_TEXT:
            palette.setColor(group, QPalette.ColorRole.Highlight, selection)
            palette.setColor(group, QPalette.ColorRole.HighlightedText, QColor(SELECTED_TEXT))
    return palette


class ReadableSelectionDelegate(QStyledItemDelegate):
    """Draws a selected row's text in the selected-text colour, whatever status colour the cell has.

    Fusion already does; styles that keep an item's own foreground on the selection would draw an
    amber "Ask" on the blue selection (about 1.2:1). Views whose cells have status colours use this.
    """

    def initStyleOption(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> None:
        """As the base class, then the selected-text colour as the text colour of a selected cell."""
        super().initStyleOption(option, index)
        if option.state & QStyle.StateFlag.State_Selected:
            palette = QPalette(option.palette)  # a copy: set it back whole
            for group in (QPalette.ColorGroup.Active, QPalette.ColorGroup.Inactive):
                selected = palette.color(group, QPalette.ColorRole.HighlightedText)
                palette.setColor(group, QPalette.ColorRole.Text, selected)
            option.palette = palette

"""Light, dark, or whatever the OS uses: the person's choice, kept in gui.ini beside config.json.

Qt's colour-scheme request is made (platforms that honour it restyle their native widgets), and the
app's own light or dark palette (``app.palette``) is applied too, since many Linux desktops ignore the
request. Following the OS uses the style's own palette while the OS says light (or nothing), the dark
palette when it says dark, and follows changes while the app runs.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication

from app.palette import dark_palette, light_palette, readable_selection

THEME_KEY = "appearance/theme"


class Theme(StrEnum):
    """The colour scheme the app uses."""

    FOLLOW_OS = "follow_os"
    LIGHT = "light"
    DARK = "dark"


THEME_TEXT = {Theme.FOLLOW_OS: "Follow the OS", Theme.LIGHT: "Light", Theme.DARK: "Dark"}


def gui_settings(home: Path) -> QSettings:
    """The GUI's own preferences (not gateway configuration), in ``<home>/gui.ini``."""
    return QSettings(str(home / "gui.ini"), QSettings.Format.IniFormat)


def saved_theme(home: Path) -> Theme:
    """The saved choice; Follow the OS when none (or an unknown one) is saved."""
    value = gui_settings(home).value(THEME_KEY, Theme.FOLLOW_OS.value)
    try:
        return Theme(str(value))
    except ValueError:
        return Theme.FOLLOW_OS


_following: list[Theme] = []  # the theme in use, once apply_theme has run (to follow OS changes)


def apply_theme(theme: Theme) -> None:
    """Use ``theme`` from now on (Qt repaints every window)."""
    hints = QGuiApplication.styleHints()
    if not _following:
        hints.colorSchemeChanged.connect(_os_scheme_changed)
    _following[:] = [theme]
    if theme is Theme.FOLLOW_OS:
        hints.unsetColorScheme()
    else:
        hints.setColorScheme(Qt.ColorScheme.Light if theme is Theme.LIGHT else Qt.ColorScheme.Dark)
    _apply_palette(theme)


def _apply_palette(theme: Theme) -> None:
    os_dark = QGuiApplication.styleHints().colorScheme() is Qt.ColorScheme.Dark
    if theme is Theme.DARK or (theme is Theme.FOLLOW_OS and os_dark):
        QApplication.setPalette(dark_palette())
    elif theme is Theme.LIGHT:
        QApplication.setPalette(light_palette())
    else:
        style = QApplication.style()
        QApplication.setPalette(readable_selection(style.standardPalette()) if style is not None else light_palette())


def _os_scheme_changed(*_: object) -> None:
    if _following and _following[0] is Theme.FOLLOW_OS:
        _apply_palette(Theme.FOLLOW_OS)


def save_theme(home: Path, theme: Theme) -> None:
    """Remember ``theme`` for the next start."""
    settings = gui_settings(home)
    settings.setValue(THEME_KEY, theme.value)
    settings.sync()

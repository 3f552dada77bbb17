"""Light, dark, or whatever the OS uses: the person's choice, kept in gui.ini beside config.json."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QGuiApplication

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


def apply_theme(theme: Theme) -> None:
    """Use ``theme`` from now on (Qt repaints every window)."""
    hints = QGuiApplication.styleHints()
    if theme is Theme.FOLLOW_OS:
        hints.unsetColorScheme()
    else:
        hints.setColorScheme(Qt.ColorScheme.Light if theme is Theme.LIGHT else Qt.ColorScheme.Dark)


def save_theme(home: Path, theme: Theme) -> None:
    """Remember ``theme`` for the next start."""
    settings = gui_settings(home)
    settings.setValue(THEME_KEY, theme.value)
    settings.sync()

"""Each platform's tray conventions, chosen in one place so tests can check the choice for every platform.

- **macOS**: the menu-bar icon is a *template* image (black and transparent; macOS tints it for a light
  or dark menu bar and for a highlighted item), 18 pt tall (18 and 36 px). A click opens the menu,
  whose first item opens the window, as menu-bar apps do.
- **Windows**: the notification area draws 16 px icons scaled by the display setting (100–300 %: 16,
  20, 24, 32, 40, 48 px), each provided so none is blurred by scaling. A left click opens the window
  and so does a double-click; the right click opens the menu. Notifications show Toolgate's icon, and
  their length is Windows' own setting (the duration asked for is ignored there).
- **Linux and others**: 16–24 px slots (22 px is common in panels), at 1x and 2x. A left click opens
  the window; the right click opens the menu.

Nothing here runs only on one platform: ``conventions(platform)`` takes the platform's name, so the
choice for each is tested here; the behaviour on the real macOS and Windows trays is not.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from PySide6.QtWidgets import QSystemTrayIcon

Reason = QSystemTrayIcon.ActivationReason


@dataclass(frozen=True)
class TrayConventions:
    """How the tray icon looks and answers clicks on one platform.

    Attributes:
        template_icon: a monochrome template image the system tints (macOS), instead of the coloured icon.
        opens_window_on: the activation reasons that open the window (others are the platform's, e.g. the menu).
        icon_sizes: pixel sizes the tray may draw the icon at (each scale the platform offers).
        app_icon_in_notifications: notifications carry Toolgate's icon rather than a generic "information" one.
    """

    template_icon: bool
    opens_window_on: frozenset[QSystemTrayIcon.ActivationReason]
    icon_sizes: tuple[int, ...]
    app_icon_in_notifications: bool


MAC = TrayConventions(
    template_icon=True,
    opens_window_on=frozenset(),  # a click opens the menu; "Open Toolgate" is its first item
    icon_sizes=(18, 36),
    app_icon_in_notifications=False,  # macOS shows the app's icon by itself
)
WINDOWS = TrayConventions(
    template_icon=False,
    opens_window_on=frozenset({Reason.Trigger, Reason.DoubleClick}),
    icon_sizes=(16, 20, 24, 32, 40, 48),
    app_icon_in_notifications=True,
)
LINUX = TrayConventions(
    template_icon=False,
    opens_window_on=frozenset({Reason.Trigger}),
    icon_sizes=(16, 22, 24, 32, 44, 48),
    app_icon_in_notifications=False,
)


def conventions(platform: str = sys.platform) -> TrayConventions:
    """The tray conventions of ``platform`` (a ``sys.platform`` value; this machine's by default)."""
    if platform == "darwin":
        return MAC
    if platform in ("win32", "cygwin"):
        return WINDOWS
    return LINUX

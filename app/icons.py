"""Toolgate's icons: the app icon and one tray icon per ``TrayState``.

They are loaded from the PNGs that ``resources/render_icons.py`` makes from the SVG sources, in the
source tree or in a frozen bundle. When the files are missing the same glyph is drawn with QPainter,
so the app never runs without an icon. Build icons after the QApplication exists.
"""

from __future__ import annotations

import enum
import sys
from pathlib import Path

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPainterPath, QPen, QPixmap

APP_ICON_NAME = "toolgate"
APP_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
# Every size a tray draws at some scale (Windows 100-300 %: 16-48; Linux panels 22/44; macOS 18/36 are
# drawn as template images, ``template_tray_icon``), so none is blurred by scaling a neighbour.
TRAY_SIZES = (16, 20, 22, 24, 32, 40, 44, 48, 64)
TEMPLATE_SIZES = (16, 18, 32, 36)
# Where the rendered files sit, under the source tree's root or a PyInstaller bundle's root.
RENDERED_PARTS = ("resources", "icons", "rendered")

GLYPH_BLUE = QColor("#285e8e")
GLYPH_GREY = QColor("#6b7280")
OUTLINE = QColor("#ffffff")
BADGE_RED = QColor("#d0453a")
BADGE_AMBER = QColor("#e8a317")


class TrayState(enum.Enum):
    """What the tray icon shows at a glance; the value names its icon file (``tray-<value>-<size>.png``)."""

    STARTING = "starting"
    RUNNING = "running"
    FAILED = "failed"
    PAUSED = "paused"
    APPROVALS_WAITING = "approvals"


def rendered_dir() -> Path | None:
    """The folder holding the rendered icons (a frozen bundle's first), or ``None`` when there is none."""
    roots = []
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        roots.append(Path(bundle))
    roots.append(Path(__file__).resolve().parent.parent)
    for root in roots:
        folder = root.joinpath(*RENDERED_PARTS)
        if folder.is_dir():
            return folder
    return None


def app_icon_file(size: int = 256) -> Path | None:
    """The app icon's PNG of ``size`` pixels (e.g. for a ``.desktop`` file), if it is there."""
    folder = rendered_dir()
    path = folder / f"{APP_ICON_NAME}-{size}.png" if folder is not None else None
    return path if path is not None and path.is_file() else None


def app_icon() -> QIcon:
    """Toolgate's application and window icon."""
    return _load(APP_ICON_NAME, APP_SIZES) or _drawn(None, APP_SIZES)


def tray_icon(state: TrayState) -> QIcon:
    """The tray icon for ``state``."""
    return _load(f"tray-{state.value}", TRAY_SIZES) or _drawn(state, TRAY_SIZES)


def template_tray_icon(state: TrayState) -> QIcon:
    """The tray icon for ``state`` as a template image (macOS): black on transparent, marked as a mask.

    The system tints a template to suit the menu bar (light, dark, highlighted). Its state shows in the
    shape, not colour: an outline while starting, pause bars, a ring badge for a failure, a dot badge
    for waiting approvals.
    """
    icon = QIcon()
    for size in TEMPLATE_SIZES:
        icon.addPixmap(_draw_glyph(state, size, template=True))
    icon.setIsMask(True)
    return icon


def _load(name: str, sizes: tuple[int, ...]) -> QIcon | None:
    folder = rendered_dir()
    if folder is None:
        return None
    icon = QIcon()
    for size in sizes:
        path = folder / f"{name}-{size}.png"
        if path.is_file():
            icon.addFile(str(path))
    return None if icon.isNull() else icon


def _drawn(state: TrayState | None, sizes: tuple[int, ...]) -> QIcon:
    icon = QIcon()
    for size in sizes:
        icon.addPixmap(_draw_glyph(state, size))
    return icon


def _draw_glyph(state: TrayState | None, size: int, *, template: bool = False) -> QPixmap:
    """The SVGs' glyph in code: a shield with a doorway, on the same 32-unit grid (``template``: in black)."""
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.scale(size / 32, size / 32)
    shield = QPainterPath(QPointF(16, 2.5))
    shield.lineTo(27, 6.2)
    shield.lineTo(27, 15.5)
    shield.cubicTo(27, 22.2, 22.6, 27.2, 16, 29.5)
    shield.cubicTo(9.4, 27.2, 5, 22.2, 5, 15.5)
    shield.lineTo(5, 6.2)
    shield.closeSubpath()
    door = QPainterPath(QPointF(12.6, 24))
    door.lineTo(12.6, 17.2)
    door.arcTo(QRectF(12.6, 13.8, 6.8, 6.8), 180, -180)
    door.lineTo(19.4, 24)
    door.closeSubpath()
    if template:
        _draw_template(painter, state, shield, door)
    elif state is TrayState.STARTING:
        painter.strokePath(shield, QPen(OUTLINE, 4.6))
        painter.strokePath(shield, QPen(GLYPH_BLUE, 2.2))
        painter.fillPath(door, GLYPH_BLUE)
    else:
        painter.setPen(QPen(OUTLINE, 1.6))
        painter.setBrush(GLYPH_GREY if state is TrayState.PAUSED else GLYPH_BLUE)
        painter.drawPath(shield)
        if state is TrayState.PAUSED:
            painter.fillRect(QRectF(11.6, 11, 3.2, 11), OUTLINE)
            painter.fillRect(QRectF(17.2, 11, 3.2, 11), OUTLINE)
        else:
            painter.fillPath(door, OUTLINE)
        if state is TrayState.FAILED:
            painter.setBrush(BADGE_RED)
            painter.drawEllipse(QPointF(25, 25), 5.6, 5.6)
        elif state is TrayState.APPROVALS_WAITING:
            painter.setBrush(BADGE_AMBER)
            painter.drawEllipse(QPointF(24.8, 7.2), 6.2, 6.2)
    painter.end()
    return pixmap


def _draw_template(painter: QPainter, state: TrayState | None, shield: QPainterPath, door: QPainterPath) -> None:
    """The glyph in black, its details cut out (transparent), so that the system can tint it."""
    black = QColor("#000000")
    if state is TrayState.STARTING:
        painter.strokePath(shield, QPen(black, 2.2))
        painter.fillPath(door, black)
        return
    painter.fillPath(shield, black)
    painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_Clear)
    if state is TrayState.PAUSED:
        painter.fillRect(QRectF(11.6, 11, 3.2, 11), black)
        painter.fillRect(QRectF(17.2, 11, 3.2, 11), black)
    else:
        painter.fillPath(door, black)
    badge = {TrayState.FAILED: QPointF(25, 25), TrayState.APPROVALS_WAITING: QPointF(24.8, 7.2)}.get(state)  # type: ignore[arg-type]
    if badge is not None:
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(black)
        painter.drawEllipse(badge, 7.4, 7.4)  # a gap around the badge
        painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_SourceOver)
        if state is TrayState.FAILED:  # a ring: failed
            painter.strokePath(_circle(badge, 4.2), QPen(black, 2.4))
        else:  # a dot: waiting for you
            painter.fillPath(_circle(badge, 5.2), black)


def _circle(center: QPointF, radius: float) -> QPainterPath:
    path = QPainterPath()
    path.addEllipse(center, radius, radius)
    return path

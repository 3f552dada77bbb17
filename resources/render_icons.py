"""Render Toolgate's SVG icons into the PNG, ICO and ICNS files the app and the installers use.

Run it after changing an SVG in ``resources/icons`` and commit the output:

    .venv/bin/python resources/render_icons.py

The SVGs are drawn with Qt's ``QSvgRenderer``; the ICO and ICNS containers are written here in plain
Python, each holding PNG-compressed images (supported since Windows Vista and macOS 10.7).
"""

from __future__ import annotations

import os
import struct
import sys
from pathlib import Path

ICONS = Path(__file__).resolve().parent / "icons"
RENDERED = ICONS / "rendered"
APP_SOURCE = "toolgate"
TRAY_SOURCES = ("tray-running", "tray-failed", "tray-paused", "tray-approvals", "tray-starting")
APP_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
# Tray icons are never drawn large; each size a tray uses at some scale is rendered (Windows 100-300 %:
# 16, 20, 24, 32, 40, 48; Linux panels 22 and 44), and 64 px covers a 16 px slot at 4x.
TRAY_SIZES = (16, 20, 22, 24, 32, 40, 44, 48, 64)
# An ICO entry's size is one byte (0 meaning 256), so 256 px is the largest it can hold; 20 and 40 are
# Windows' small icon at 125 % and 250 %.
ICO_SIZES = (16, 20, 24, 32, 40, 48, 64, 128, 256)
# The PNG chunk types of an ICNS file and their pixel sizes (ic11-ic14 are the retina 2x variants).
ICNS_CHUNKS = (
    (b"ic07", 128),
    (b"ic08", 256),
    (b"ic09", 512),
    (b"ic10", 1024),
    (b"ic11", 32),
    (b"ic12", 64),
    (b"ic13", 256),
    (b"ic14", 512),
)
ICO_HEADER = struct.Struct("<HHH")
ICO_ENTRY = struct.Struct("<BBBBHHII")
ICNS_HEADER = struct.Struct(">4sI")


def render_png(svg: Path, size: int) -> bytes:
    """Draw ``svg`` into a transparent ``size`` x ``size`` image and return it PNG-encoded."""
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QRectF
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise ValueError(f"{svg} is not an SVG Qt can draw")
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(0)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter, QRectF(0, 0, size, size))
    painter.end()
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    buffer.close()
    return bytes(data.data())


def ico_bytes(pngs: dict[int, bytes]) -> bytes:
    """A Windows ICO file holding one PNG-compressed image per size (``{size: png}``, sizes up to 256)."""
    sizes = sorted(pngs)
    offset = ICO_HEADER.size + ICO_ENTRY.size * len(sizes)
    entries, images = [], []
    for size in sizes:
        png = pngs[size]
        side = 0 if size == 256 else size
        entries.append(ICO_ENTRY.pack(side, side, 0, 0, 1, 32, len(png), offset))
        images.append(png)
        offset += len(png)
    return ICO_HEADER.pack(0, 1, len(sizes)) + b"".join(entries) + b"".join(images)


def icns_bytes(chunks: list[tuple[bytes, bytes]]) -> bytes:
    """A macOS ICNS file of ``(type, png)`` chunks; each length counts its own 8-byte header."""
    body = b"".join(ICNS_HEADER.pack(kind, ICNS_HEADER.size + len(png)) + png for kind, png in chunks)
    return ICNS_HEADER.pack(b"icns", ICNS_HEADER.size + len(body)) + body


def render_all(out_dir: Path = RENDERED, sources: Path = ICONS) -> list[Path]:
    """Write every PNG size of every icon, plus ``toolgate.ico`` and ``toolgate.icns``, into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def write(name: str, data: bytes) -> None:
        path = out_dir / name
        path.write_bytes(data)
        written.append(path)

    app_svg = sources / f"{APP_SOURCE}.svg"
    app_pngs = {size: render_png(app_svg, size) for size in {*APP_SIZES, *ICO_SIZES, *(s for _, s in ICNS_CHUNKS)}}
    for size in APP_SIZES:
        write(f"{APP_SOURCE}-{size}.png", app_pngs[size])
    for name in TRAY_SOURCES:
        for size in TRAY_SIZES:
            write(f"{name}-{size}.png", render_png(sources / f"{name}.svg", size))
    write(f"{APP_SOURCE}.ico", ico_bytes({size: app_pngs[size] for size in ICO_SIZES}))
    write(f"{APP_SOURCE}.icns", icns_bytes([(kind, app_pngs[size]) for kind, size in ICNS_CHUNKS]))
    return written


def main() -> int:
    """Render everything into ``resources/icons/rendered``."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QGuiApplication

    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    written = render_all()
    sys.stdout.write(f"wrote {len(written)} files to {RENDERED}\n")
    del app
    return 0


if __name__ == "__main__":
    sys.exit(main())

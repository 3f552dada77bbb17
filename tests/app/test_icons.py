import importlib.util
import struct
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication

from app import icons
from app.icons import TrayState

RESOURCES = Path(__file__).resolve().parents[2] / "resources"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def load_render_icons():
    spec = importlib.util.spec_from_file_location("render_icons", RESOURCES / "render_icons.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def png_size(png: bytes) -> tuple[int, int]:
    assert png.startswith(PNG_SIGNATURE)
    return struct.unpack(">II", png[16:24])


def ico_images(data: bytes) -> dict[int, bytes]:
    reserved, kind, count = struct.unpack_from("<HHH", data)
    assert (reserved, kind) == (0, 1)
    images = {}
    for index in range(count):
        width, height, _, _, planes, bits, size, offset = struct.unpack_from("<BBBBHHII", data, 6 + 16 * index)
        assert width == height and (planes, bits) == (1, 32)
        images[width or 256] = data[offset : offset + size]
    return images


def icns_chunks(data: bytes) -> dict[bytes, bytes]:
    magic, length = struct.unpack_from(">4sI", data)
    assert magic == b"icns" and length == len(data)
    chunks, position = {}, 8
    while position < len(data):
        kind, chunk_length = struct.unpack_from(">4sI", data, position)
        chunks[kind] = data[position + 8 : position + chunk_length]
        position += chunk_length
    assert position == len(data)
    return chunks


def check_containers(folder: Path, render_icons) -> None:
    ico = ico_images((folder / "toolgate.ico").read_bytes())
    assert sorted(ico) == sorted(render_icons.ICO_SIZES)
    for size, png in ico.items():
        assert png_size(png) == (size, size)
    chunks = icns_chunks((folder / "toolgate.icns").read_bytes())
    assert set(chunks) == {kind for kind, _ in render_icons.ICNS_CHUNKS}
    for kind, size in render_icons.ICNS_CHUNKS:
        assert png_size(chunks[kind]) == (size, size)


def test_every_tray_state_has_an_icon_from_the_rendered_files(qapp: QApplication):
    assert icons.rendered_dir() == RESOURCES / "icons" / "rendered"
    for state in TrayState:
        icon = icons.tray_icon(state)
        assert not icon.isNull()
        assert not icon.pixmap(16, 16).isNull()
    assert not icons.app_icon().isNull()
    assert icons.app_icon_file() == RESOURCES / "icons" / "rendered" / "toolgate-256.png"


def test_without_the_rendered_files_every_icon_is_drawn_instead(qapp: QApplication, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(icons, "rendered_dir", lambda: None)
    for state in TrayState:
        image = icons.tray_icon(state).pixmap(32, 32).toImage()
        assert not image.isNull()
        assert image.pixelColor(16, 3).alpha() > 200  # the shield's top edge is painted
    assert not icons.app_icon().isNull()
    assert icons.app_icon_file() is None


def test_a_frozen_bundle_s_icons_are_preferred(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    bundled = tmp_path.joinpath("resources", "icons", "rendered")
    bundled.mkdir(parents=True)
    monkeypatch.setattr("sys._MEIPASS", str(tmp_path), raising=False)
    assert icons.rendered_dir() == bundled


def test_every_svg_source_has_its_rendered_pngs_and_the_ico_and_icns_are_well_formed():
    render_icons = load_render_icons()
    rendered = RESOURCES / "icons" / "rendered"
    for size in render_icons.APP_SIZES:
        assert png_size((rendered / f"toolgate-{size}.png").read_bytes()) == (size, size)
    for state in TrayState:
        assert (RESOURCES / "icons" / f"tray-{state.value}.svg").is_file()
        for size in render_icons.TRAY_SIZES:
            assert png_size((rendered / f"tray-{state.value}-{size}.png").read_bytes()) == (size, size)
    check_containers(rendered, render_icons)


def test_render_icons_writes_every_file_from_the_svgs(qapp: QApplication, tmp_path: Path):
    render_icons = load_render_icons()
    written = render_icons.render_all(tmp_path)
    committed = {path.name for path in (RESOURCES / "icons" / "rendered").iterdir()}
    assert {path.name for path in written} == committed
    check_containers(tmp_path, render_icons)
    image_data = (tmp_path / "tray-failed-32.png").read_bytes()
    assert png_size(image_data) == (32, 32)

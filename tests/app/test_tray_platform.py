"""The tray follows each platform's conventions: which icon, which sizes, what a click does, notification icons.

The choice is made per platform name, so all three are checked here; this machine is Linux, so how the
real macOS menu bar and Windows notification area draw and answer is not run here.
"""

import pytest
from PySide6.QtCore import QSize
from PySide6.QtWidgets import QSystemTrayIcon

from app.icons import TEMPLATE_SIZES, TrayState, template_tray_icon, tray_icon
from app.tray import TrayController
from app.tray_platform import LINUX, MAC, WINDOWS, conventions
from tests.app.harness import run_async, running_bridge

Reason = QSystemTrayIcon.ActivationReason
PLATFORMS = {"darwin": MAC, "win32": WINDOWS, "linux": LINUX, "freebsd14": LINUX}


@pytest.mark.parametrize(("platform", "expected"), PLATFORMS.items())
def test_each_platform_gets_its_own_conventions(platform, expected):
    assert conventions(platform) is expected


def test_macos_uses_a_template_icon_and_a_click_opens_the_menu_not_the_window():
    assert MAC.template_icon
    assert not MAC.opens_window_on


def test_windows_opens_the_window_on_a_click_or_double_click_and_notifies_with_the_app_icon():
    assert not WINDOWS.template_icon
    assert WINDOWS.opens_window_on == {Reason.Trigger, Reason.DoubleClick}
    assert WINDOWS.app_icon_in_notifications
    assert {16, 20, 24, 32, 40, 48} <= set(WINDOWS.icon_sizes)  # 100, 125, 150, 200, 250, 300 %


def test_linux_opens_the_window_on_a_click():
    assert LINUX.opens_window_on == {Reason.Trigger}
    assert not LINUX.template_icon


@pytest.mark.parametrize("convention", [WINDOWS, LINUX], ids=["windows", "linux"])
def test_the_coloured_tray_icon_has_an_exact_image_for_every_size_and_scale_the_platform_draws(qapp, convention):
    for state in TrayState:
        available = {size.width() for size in tray_icon(state).availableSizes()}
        missing = set(convention.icon_sizes) - available
        assert not missing, f"{state.value}: no {sorted(missing)} px image, so it would be scaled and blurred"


def test_the_macos_template_icon_is_black_on_transparent_marked_as_a_mask_at_1x_and_2x(qapp):
    assert set(MAC.icon_sizes) <= set(TEMPLATE_SIZES)
    shapes = set()
    for state in TrayState:
        icon = template_tray_icon(state)
        assert icon.isMask()
        assert set(MAC.icon_sizes) <= {size.width() for size in icon.availableSizes()}
        image = icon.pixmap(QSize(36, 36)).toImage()
        opaque = 0
        for x in range(image.width()):
            for y in range(image.height()):
                color = image.pixelColor(x, y)
                if color.alpha():
                    assert (color.red(), color.green(), color.blue()) == (0, 0, 0), (state, x, y, color.name())
                    opaque += 1
        assert opaque > 100, state
        shapes.add(bytes(image.constBits()))
    assert len(shapes) == len(TrayState)  # each state has its own shape, as colour cannot tell them apart


@pytest.mark.parametrize(
    ("platform", "opens_on"),
    [
        ("darwin", set()),
        ("win32", {Reason.Trigger, Reason.DoubleClick}),
        ("linux", {Reason.Trigger}),
    ],
)
def test_a_click_on_the_tray_icon_does_what_the_platform_expects(qloop, platform, opens_on):
    async def scenario():
        async with running_bridge({}) as bridge:
            opened = []
            tray = TrayController(
                bridge,
                open_dashboard=lambda: opened.append("window"),
                open_approvals=lambda: None,
                quit_app=lambda: None,
                platform=platform,
            )
            for reason in (Reason.Trigger, Reason.DoubleClick, Reason.MiddleClick, Reason.Context):
                opened.clear()
                tray.activate(reason)
                assert bool(opened) == (reason in opens_on), (platform, reason)
            assert tray.icon_for(TrayState.RUNNING).isMask() == (platform == "darwin")
            tray.close()

    run_async(qloop, scenario())

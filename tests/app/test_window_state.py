"""The window remembers its place, says once that Toolgate keeps running, and the Overview's Resume and Copy."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSize, Qt

from app.panels import overview as overview_module
from app.panels.overview import OverviewPanel
from app.window import KEEPS_RUNNING, MINIMUM_SIZE, MainWindow
from tests.app.harness import eventually, run_async, running_bridge


def make_window(bridge, qtbot, **options) -> MainWindow:
    window = MainWindow(bridge, hide_to_tray=lambda: True, quit_app=lambda: None, **options)
    qtbot.addWidget(window)
    return window


def test_the_window_remembers_its_size_and_keeps_a_minimum_size(qloop, qtbot):
    async def scenario():
        async with running_bridge({}) as bridge:
            window = make_window(bridge, qtbot)
            window.show()
            window.resize(600, 380)
            assert window.width() >= MINIMUM_SIZE.width() and window.height() >= MINIMUM_SIZE.height()
            window.resize(780, 700)
            window.close()  # hides to the tray, remembering the size
            again = make_window(bridge, qtbot)
            assert again.size() == QSize(780, 700)

    run_async(qloop, scenario())


def test_the_first_close_to_the_tray_says_toolgate_keeps_running_and_later_ones_do_not(qloop, qtbot):
    async def scenario():
        async with running_bridge({}) as bridge:
            said = []
            window = make_window(bridge, qtbot, notify=lambda title, text: said.append(text))
            for _ in range(2):
                window.show()
                window.close()
                assert not window.isVisible()
            make_window(bridge, qtbot, notify=lambda title, text: said.append(text)).close()  # the next start
            assert said == [KEEPS_RUNNING]

    run_async(qloop, scenario())


def test_the_overview_offers_resume_where_it_says_paused(qloop, qtbot):
    async def scenario():
        async with running_bridge({}) as bridge:
            panel = OverviewPanel(bridge, show_panel=lambda _: None)
            qtbot.addWidget(panel)
            panel.show()
            assert not panel.resume.isVisible()
            bridge.pause()
            assert panel.state.text().startswith("Paused") and panel.resume.isVisible()
            panel.resume.click()
            assert not bridge.api.paused and not panel.resume.isVisible()

    run_async(qloop, scenario())


def test_copy_says_copied_for_a_moment(qloop, qtbot, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(overview_module, "COPIED_MS", 50)

    async def scenario():
        async with running_bridge({}) as bridge:
            panel = OverviewPanel(bridge, show_panel=lambda _: None)
            qtbot.addWidget(panel)
            width = panel.copy_endpoint.sizeHint().width()
            panel.copy_endpoint.click()
            assert panel.copy_endpoint.text() == "Copied ✓"
            assert panel.copy_endpoint.sizeHint().width() == width  # it does not grow under the pointer
            await eventually(lambda: panel.copy_endpoint.text() == "C&opy", "the button to read Copy again")

    run_async(qloop, scenario())


def test_the_sidebar_fits_its_labels_can_collapse_and_ctrl_numbers_still_switch_panels(qloop, qtbot):
    async def scenario():
        async with running_bridge({}) as bridge:
            window = make_window(bridge, qtbot)
            window.show()
            metrics = window.sidebar.fontMetrics()
            assert window.sidebar.width() >= metrics.horizontalAdvance("Agents & permissions")
            window.splitter.setSizes([0, window.width()])
            assert window.sidebar.width() == 0 and window.stack.width() > 0
            window.activateWindow()  # shortcuts work in the active window
            await eventually(window.isActiveWindow, "the window to be active")
            qtbot.keyClick(window, Qt.Key.Key_3, Qt.KeyboardModifier.ControlModifier)
            assert window.current_panel() == "agents"

    run_async(qloop, scenario())

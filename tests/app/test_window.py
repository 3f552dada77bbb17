"""The dashboard window as a whole: every panel populated from a real gateway, closing, overview, settings."""

from __future__ import annotations

import json

import pytest
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QToolButton,
    QWidget,
)

from app import autostart
from app.panels.overview import OverviewPanel
from app.panels.settings import SettingsPanel
from app.theme import Theme, saved_theme
from app.window import MINIMUM_SIZE, PANELS, MainWindow
from gateway_core import Answer, AuditQuery, load_config
from tests.app.harness import connected_agent, ended_call, eventually, run_async, running_bridge, wait_signal
from tests.fakes.launch import FAKE_TOOL_COUNT
from tests.integration.harness import stdio_fake


def make_window(bridge, qtbot, *, hide_to_tray=lambda: False, quit_app=lambda: None):
    window = MainWindow(bridge, hide_to_tray=hide_to_tray, quit_app=quit_app)
    qtbot.addWidget(window)
    return window


def test_the_window_opens_with_each_panel_populated(qloop, qtbot):
    async def scenario():
        servers = {"fake": stdio_fake(), "broken": {"command": "/nonexistent/toolgate-test-server"}}
        async with connected_agent("cursor", {"default": "allow"}, servers=servers) as (bridge, cursor):
            await cursor.client.call_tool("fake__echo", {"text": "hello"})
            window = make_window(bridge, qtbot)
            window.show()
            assert [window.sidebar.item(i).text() for i in range(window.sidebar.count())] == [
                label for _, label in PANELS
            ]
            overview = window.panels["overview"]
            assert overview.endpoint.text() == bridge.endpoint_url
            assert "1 server failed (broken)" in overview.state.text()
            assert overview.tools.text() == str(FAKE_TOOL_COUNT)
            await eventually(lambda: overview.calls.text() == "1", "the call to be counted")
            assert window.panels["servers"].model.rowCount() == 2
            assert window.panels["agents"].agents.rowCount() == 1
            logs = window.panels["logs"]
            await eventually(lambda: logs.calls.model.rowCount() >= 1, "the call in the log")
            for key, _ in PANELS:
                window.show_panel(key)
                assert window.current_panel() == key
                assert window.stack.currentWidget() is window.panels[key]

    run_async(qloop, scenario())


def test_a_window_shown_before_the_gateway_says_toolgate_is_starting_then_fills_on_the_panel_picked_meanwhile(
    qloop, qtbot
):
    async def scenario():
        async with running_bridge({}) as bridge:
            window = MainWindow(None, paths=bridge.paths, hide_to_tray=lambda: False, quit_app=lambda: None)
            qtbot.addWidget(window)
            window.show()
            assert window.panels == {}
            assert window.stack.currentWidget() is window.starting
            assert window.starting.text() == "Starting Toolgate…"
            assert [window.sidebar.item(i).text() for i in range(window.sidebar.count())] == [
                label for _, label in PANELS
            ]
            window.show_panel("servers")
            assert window.stack.currentWidget() is window.starting
            window.attach(bridge)
            assert window.starting is None
            assert window.stack.count() == len(PANELS)
            assert window.current_panel() == "servers"
            assert window.stack.currentWidget() is window.panels["servers"]
            window.show_panel("overview")
            assert window.panels["overview"].endpoint.text() == bridge.endpoint_url

    run_async(qloop, scenario())


def test_a_window_without_a_gateway_needs_toolgates_paths():
    with pytest.raises(ValueError, match="paths"):
        MainWindow(None, hide_to_tray=lambda: False, quit_app=lambda: None)


def test_closing_the_window_quits_when_there_is_no_tray_and_hides_when_there_is(qloop, qtbot):
    async def scenario():
        async with running_bridge({}) as bridge:
            quits = []
            tray_there = [False]
            window = make_window(bridge, qtbot, hide_to_tray=lambda: tray_there[0], quit_app=lambda: quits.append(1))
            window.show()
            window.close()
            assert quits == [1]
            assert window.isVisible()
            tray_there[0] = True
            window.close()
            assert quits == [1]
            assert not window.isVisible()
            window.bring_to_front("logs")
            assert window.isVisible()
            assert window.current_panel() == "logs"
            window.close_for_quit()
            assert not window.isVisible()
            assert quits == [1]

    run_async(qloop, scenario())


def test_the_overview_warns_that_secrets_are_not_encrypted_with_the_file_fallback(qloop, qtbot):
    async def scenario():
        async with running_bridge({}) as bridge:
            assert bridge.api.secret_store.encrypted is False  # the tests force keyring's fail backend
            overview = OverviewPanel(bridge, show_panel=lambda _: None)
            qtbot.addWidget(overview)
            assert "Secrets are not encrypted on this system" in overview.warnings.text()
            assert not overview.warnings.isHidden()

    run_async(qloop, scenario())


def test_the_overview_shows_a_rejected_config_edit_and_pending_approvals(qloop, qtbot):
    async def scenario():
        # A 2026 agent: see test_a_withdrawn_request_leaves_the_list_and_shows_in_recent_answers.
        async with connected_agent("a", {"default": "ask"}, mode="2026-07-28") as (bridge, agent):
            shown = []
            overview = OverviewPanel(bridge, show_panel=shown.append)
            qtbot.addWidget(overview)
            rejected = wait_signal(bridge.config_rejected)
            bridge.config_path.write_text("{ broken")
            await rejected
            assert "was not applied" in overview.warnings.text()
            call = agent.start_call("fake__echo", {"text": "x"})
            await wait_signal(bridge.approval_requested)
            assert overview.pending.text() == "1"
            overview.review.click()
            assert shown == ["approvals"]
            await call.withdraw()

    run_async(qloop, scenario())


def test_settings_are_saved_to_config_json_and_applied(qloop, qtbot):
    async def scenario():
        async with running_bridge({}) as bridge:
            panel = SettingsPanel(bridge)
            qtbot.addWidget(panel)
            panel.origins.setPlainText("http://localhost:3000\n\n  https://app.example  \n")
            panel.timeout.setValue(45)
            panel.save.click()
            assert panel.error.isHidden()
            assert bridge.api.config.gateway.allowed_origins == ("http://localhost:3000", "https://app.example")
            assert bridge.api.config.gateway.approval_timeout_s == 45
            assert load_config(bridge.config_path).gateway.approval_timeout_s == 45
            assert "take effect when Toolgate restarts" in panel.port_note.text()

    run_async(qloop, scenario())


def test_a_settings_edit_the_config_refuses_is_shown_and_nothing_is_written(qloop, qtbot):
    async def scenario():
        async with running_bridge({}) as bridge:
            panel = SettingsPanel(bridge)
            qtbot.addWidget(panel)
            raw = json.loads(bridge.config_path.read_text())
            raw["gateway"]["host"] = 5  # an outside edit the panel does not know about
            bridge.config_path.write_text(json.dumps(raw))
            before = bridge.config_path.read_bytes()
            panel.save.click()
            assert not panel.error.isHidden()
            assert "gateway.host" in panel.error.text()
            assert bridge.config_path.read_bytes() == before

    run_async(qloop, scenario())


def test_the_theme_choice_is_remembered(qloop, qtbot):
    async def scenario():
        async with running_bridge({}) as bridge:
            panel = SettingsPanel(bridge)
            qtbot.addWidget(panel)
            panel.theme.setCurrentIndex(panel.theme.findData(Theme.DARK.value))
            assert saved_theme(bridge.paths.home) is Theme.DARK
            panel.theme.setCurrentIndex(panel.theme.findData(Theme.FOLLOW_OS.value))
            assert saved_theme(bridge.paths.home) is Theme.FOLLOW_OS

    run_async(qloop, scenario())


def test_start_at_login_writes_and_removes_the_autostart_entry(qloop, qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path))

    async def scenario():
        async with running_bridge({}) as bridge:
            panel = SettingsPanel(bridge)
            qtbot.addWidget(panel)
            assert not panel.start_at_login.isChecked()
            panel.start_at_login.setChecked(True)
            assert autostart.is_enabled()
            panel.start_at_login.setChecked(False)
            assert not autostart.is_enabled()
            assert panel.login_error.isHidden()

    run_async(qloop, scenario())


def test_calls_in_the_last_hour_count_only_finished_calls(qloop, qtbot):
    async def scenario():
        async with connected_agent("a", {"default": "allow"}) as (bridge, agent):
            overview = OverviewPanel(bridge, show_panel=lambda _: None)
            qtbot.addWidget(overview)
            for _ in range(3):
                await agent.client.call_tool("fake__echo", {"text": "x"})
            await eventually(lambda: overview.calls.text() == "3", "three calls counted")
            assert len(await bridge.api.query_audit(AuditQuery())) == 6  # a decision and an outcome each
            overview.recount_calls()
            await eventually(lambda: overview.calls.text() == "3", "the recount to agree")

    run_async(qloop, scenario())


def mnemonic(text: str) -> str | None:
    """The letter after a single ``&`` in a button's text (``&&`` is a literal ampersand)."""
    plain = text.replace("&&", "")
    at = plain.find("&")
    return plain[at + 1].casefold() if 0 <= at < len(plain) - 1 else None


def visible_buttons(window: QWidget) -> list[QAbstractButton]:
    """The push and tool buttons with text that ``window`` shows now (check boxes and radio buttons aside)."""
    return [
        button
        for button in window.findChildren(QAbstractButton)
        if isinstance(button, QPushButton | QToolButton) and button.text() and button.isVisibleTo(window)
    ]


def test_every_button_the_window_shows_has_a_mnemonic_of_its_own(qloop, qtbot):
    async def scenario():
        servers = {"fake": stdio_fake(), "off": stdio_fake(enabled=False)}
        async with connected_agent("cursor", {"default": "ask"}, servers=servers) as (bridge, cursor):
            window = make_window(bridge, qtbot)
            window.show()
            call = cursor.start_call("fake__echo", {"text": "waiting"})
            await eventually(lambda: bridge.api.pending_approvals(), "a request in the Approvals panel")
            views = {key: lambda key=key: window.show_panel(key) for key, _ in PANELS}
            views["servers"] = lambda: (window.show_panel("servers"), window.panels["servers"].select_server("fake"))
            views["servers, disabled one"] = lambda: window.panels["servers"].select_server("off")
            views["servers, add form"] = lambda: window.add_server()
            views["agents, import"] = lambda: window.open_clients("import")
            views["agents, connect"] = lambda: window.open_clients("connect")
            missing: dict[str, list[str]] = {}
            shared: dict[str, list[str]] = {}
            for view, show in views.items():
                show()
                buttons = visible_buttons(window)
                letters = [mnemonic(button.text()) for button in buttons]
                named = list(zip(buttons, letters, strict=True))
                missing[view] = [button.text() for button, letter in named if letter is None]
                shared[view] = [button.text() for button, letter in named if letter and letters.count(letter) > 1]
            bridge.api.answer_approval(bridge.api.pending_approvals()[0].id, Answer.DENY)
            await call.result()

        assert missing == {view: [] for view in views}
        assert shared == {view: [] for view in views}

    run_async(qloop, scenario())


def unnamed_inputs(window: QWidget) -> list[str]:
    """The inputs, tables and lists ``window`` shows with neither an accessible name nor a label for them."""
    buddies = {id(label.buddy()) for label in window.findChildren(QLabel) if label.buddy() is not None}
    kinds = (QLineEdit, QComboBox, QPlainTextEdit, QAbstractSpinBox, QAbstractItemView)
    return [
        f"{type(widget).__name__} {getattr(widget, 'placeholderText', str)()!r}".strip()
        for widget in window.findChildren(QWidget)
        if isinstance(widget, kinds)
        and widget.isVisibleTo(window)
        and not widget.accessibleName()
        and id(widget) not in buddies
        and not isinstance(widget.parent(), QComboBox | QAbstractSpinBox)  # a combo's or spin box's own editor
        and not isinstance(widget, QHeaderView)  # a table's header: its column titles name it
    ]


def test_every_input_table_and_list_the_window_shows_has_a_name_for_screen_readers(qloop, qtbot):
    async def scenario():
        async with connected_agent("cursor", {"default": "ask"}, servers={"fake": stdio_fake()}) as (bridge, _):
            window = make_window(bridge, qtbot)
            window.show()
            views = {key: lambda key=key: window.show_panel(key) for key, _ in PANELS}
            views["servers"] = lambda: (window.show_panel("servers"), window.panels["servers"].select_server("fake"))
            views["servers, add form"] = lambda: window.add_server()
            views["agents, import"] = lambda: window.open_clients("import")
            unnamed = {}
            for view, show in views.items():
                show()
                unnamed[view] = unnamed_inputs(window)

        assert unnamed == {view: [] for view in views}

    run_async(qloop, scenario())


def test_at_the_minimum_size_no_button_the_window_shows_is_cut(qloop, qtbot):
    async def scenario():
        async with connected_agent("cursor", {"default": "ask"}, servers={"fake": stdio_fake()}) as (bridge, cursor):
            window = make_window(bridge, qtbot)
            window.show()
            window.resize(MINIMUM_SIZE)
            call = cursor.start_call("fake__echo", {"text": "waiting"})
            await eventually(lambda: bridge.api.pending_approvals(), "a request in the Approvals panel")
            views = {key: lambda key=key: window.show_panel(key) for key, _ in PANELS}
            views["servers"] = lambda: (window.show_panel("servers"), window.panels["servers"].select_server("fake"))
            views["agents, connect"] = lambda: window.open_clients("connect")
            cut: dict[str, list[str]] = {}
            for view, show in views.items():
                show()
                QApplication.processEvents()
                cut[view] = [
                    button.text()
                    for button in visible_buttons(window)
                    if button.width() < button.minimumSizeHint().width()  # narrower than its text needs
                ]
            bridge.api.answer_approval(bridge.api.pending_approvals()[0].id, Answer.DENY)
            await call.result()

        assert window.size() == MINIMUM_SIZE
        assert cut == {view: [] for view in views}

    run_async(qloop, scenario())


def test_calls_in_the_last_hour_leave_out_those_older_and_count_those_recorded_out_of_order(qloop, qtbot):
    async def scenario():
        async with running_bridge({}) as bridge:
            overview = OverviewPanel(bridge, show_panel=lambda _: None)
            qtbot.addWidget(overview)
            overview.recount_calls()
            await eventually(lambda: overview.calls.text() == "0", "the empty audit log counted")
            bridge.audit_records_arrived.emit([ended_call(3700), ended_call(10), ended_call(20)])
            assert overview.calls.text() == "2"
            bridge.audit_records_arrived.emit([ended_call(30), ended_call(3601), ended_call(1)])
            assert overview.calls.text() == "4"

    run_async(qloop, scenario())

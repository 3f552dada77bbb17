import sys
from pathlib import Path

import mcp_types as types
import pytest
from PySide6.QtGui import QGuiApplication

from app import autostart, desktop_notify
from app.common import STATE_COLOR, STATE_TEXT
from app.tray import NOTIFICATION_MS, TrayController, TrayState, tray_state, tray_summary
from gateway_core import Answer, ServerState, ServerStatus
from tests.app.harness import connected_agent, eventually, run_async, running_bridge
from tests.fakes.notifications import notification_service
from tests.integration.harness import stdio_fake


def text_of(result: types.CallToolResult) -> str:
    return " ".join(block.text for block in result.content if isinstance(block, types.TextContent))


def statuses(*states: ServerState) -> list[ServerStatus]:
    return [ServerStatus(f"s{index}", state, "stdio") for index, state in enumerate(states)]


class Opened:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def open_dashboard(self, panel: str | None = None) -> None:
        self.calls.append(f"dashboard {panel}" if panel else "dashboard")

    def controller(self, bridge) -> TrayController:
        return TrayController(
            bridge,
            open_dashboard=self.open_dashboard,
            open_approvals=lambda: self.calls.append("approvals"),
            quit_app=lambda: self.calls.append("quit"),
        )


def test_the_tray_state_puts_waiting_approvals_first_then_paused_failed_and_starting():
    ready, failed, starting, stopped = ServerState.READY, ServerState.FAILED, ServerState.STARTING, ServerState.STOPPED
    assert tray_state(statuses(ready, ready), paused=False, pending_count=0) is TrayState.RUNNING
    assert tray_state([], paused=False, pending_count=0) is TrayState.RUNNING
    assert tray_state(statuses(ready, stopped), paused=False, pending_count=0) is TrayState.RUNNING
    assert tray_state(statuses(ready, starting), paused=False, pending_count=0) is TrayState.STARTING
    assert tray_state(statuses(starting, failed), paused=False, pending_count=0) is TrayState.FAILED
    assert tray_state(statuses(failed), paused=True, pending_count=0) is TrayState.PAUSED
    assert tray_state(statuses(failed), paused=True, pending_count=2) is TrayState.APPROVALS_WAITING


def test_the_tooltip_is_one_line_starting_with_toolgate():
    ready, failed, starting = ServerState.READY, ServerState.FAILED, ServerState.STARTING
    three_ready_one_failed = statuses(ready, ready, ready, failed)
    expected = "Toolgate — 3 servers ready, 1 failed · 2 approvals waiting"
    assert tray_summary(three_ready_one_failed, False, 2) == expected
    assert tray_summary(statuses(ready, starting), False, 0) == "Toolgate — 1 server ready, 1 starting"
    assert tray_summary(statuses(ready), True, 0) == "Toolgate — paused"
    assert tray_summary(statuses(ready), True, 1) == "Toolgate — paused · 1 approval waiting"
    assert tray_summary([], False, 0) == "Toolgate — no servers"


def test_a_server_that_needs_a_sign_in_is_counted_in_the_tooltip_without_turning_the_icon_to_failed():
    needs_sign_in = statuses(ServerState.READY, ServerState.NEEDS_SIGN_IN)
    assert tray_summary(needs_sign_in, False, 0) == "Toolgate — 1 server ready, 1 needs sign-in"
    assert tray_state(needs_sign_in, paused=False, pending_count=0) is TrayState.RUNNING


def test_every_server_state_has_a_label_and_a_colour():
    assert set(STATE_TEXT) == set(STATE_COLOR) == set(ServerState)
    assert STATE_TEXT[ServerState.NEEDS_SIGN_IN] == "Needs sign-in"


def test_without_a_system_tray_the_menu_s_pause_action_pauses_the_gateway_and_resume_resumes(qloop):
    async def scenario():
        async with connected_agent("a", {"default": "allow"}) as (bridge, agent):
            tray = Opened().controller(bridge)
            assert tray.tray_icon is None
            assert tray.state is TrayState.RUNNING
            assert tray.pause_action.text() == "Pause all agents"
            tray.pause_action.trigger()
            assert bridge.api.paused
            assert tray.pause_action.text() == "Resume"
            assert tray.state is TrayState.PAUSED and tray.tooltip == "Toolgate — paused"
            refused = await agent.client.call_tool("fake__echo", {"text": "x"})
            tray.pause_action.trigger()
            assert not bridge.api.paused and tray.pause_action.text() == "Pause all agents"
            allowed = await agent.client.call_tool("fake__echo", {"text": "x"})
            assert refused.is_error and "paused" in text_of(refused)
            assert not allowed.is_error and text_of(allowed) == "x"

    run_async(qloop, scenario())


def test_the_pending_approvals_item_follows_waiting_calls_and_opens_the_approvals(qloop):
    async def scenario():
        async with connected_agent("a", {"default": "ask"}) as (bridge, agent):
            opened = Opened()
            tray = opened.controller(bridge)
            assert tray.pending_action.text() == "Pending approvals (0)" and not tray.pending_action.isEnabled()
            calls = [agent.start_call("fake__echo", {"text": text}) for text in ("one", "two")]
            await eventually(lambda: tray.pending_action.text() == "Pending approvals (2)", "two waiting")
            assert tray.pending_action.isEnabled()
            assert tray.state is TrayState.APPROVALS_WAITING
            assert tray.tooltip.endswith("· 2 approvals waiting")
            tray.pending_action.trigger()
            assert opened.calls == ["approvals"]
            first, second = bridge.api.pending_approvals()
            bridge.api.answer_approval(first.id, Answer.ALLOW_ONCE)
            assert tray.pending_action.text() == "Pending approvals (1)"
            bridge.api.answer_approval(second.id, Answer.DENY)
            for call in calls:
                await call.result()
            assert tray.pending_action.text() == "Pending approvals (0)" and not tray.pending_action.isEnabled()
            assert tray.state is TrayState.RUNNING

    run_async(qloop, scenario())


def test_the_servers_submenu_shows_each_state_and_restarts_a_server(qloop):
    async def scenario():
        servers = {"fake": stdio_fake(), "off": stdio_fake(enabled=False)}
        async with running_bridge(servers) as bridge:
            tray = Opened().controller(bridge)
            assert [menu.title() for menu in tray.servers_menu.findChildren(type(tray.menu))] == [
                "fake — Ready",
                "off — Stopped",
            ]
            assert tray.tooltip == "Toolgate — 1 server ready"
            assert not tray.server_menu("off").actions()[0].isEnabled()
            fake_menu = tray.server_menu("fake")
            titles = []

            def record_title(name):
                titles.append(fake_menu.title())

            # The bridge outlives the test; what it calls must not keep the tray's widgets alive.
            bridge.server_status_changed.connect(record_title)
            try:
                [restart] = fake_menu.actions()
                assert restart.text() == "Restart"
                restart.trigger()
                await eventually(lambda: titles and titles[-1] == "fake — Ready", "the restarted server to be ready")
            finally:
                bridge.server_status_changed.disconnect(record_title)
            assert "fake — Starting" in titles
            assert bridge.status("fake").state is ServerState.READY

    run_async(qloop, scenario())


def test_a_server_added_to_the_config_gets_its_own_submenu(qloop):
    async def scenario():
        async with running_bridge({}) as bridge:
            tray = Opened().controller(bridge)
            assert [a.text() for a in tray.servers_menu.actions()] == ["No servers"]
            bridge.api.put_server("added", stdio_fake())
            await eventually(lambda: tray.server_menu("added").title() == "added — Ready", "the new server ready")

    run_async(qloop, scenario())


def test_copy_endpoint_url_open_and_quit_do_what_they_say(qloop):
    async def scenario():
        async with running_bridge({}) as bridge:
            opened = Opened()
            tray = opened.controller(bridge)
            assert tray.copy_endpoint_action.isEnabled()
            tray.copy_endpoint_action.trigger()
            assert QGuiApplication.clipboard().text() == bridge.endpoint_url
            assert tray.notifications[-1][0] == "Endpoint URL copied"
            assert bridge.endpoint_url in tray.notifications[-1][1]
            tray.open_action.trigger()
            tray.quit_action.trigger()
            assert opened.calls == ["dashboard", "quit"]

    run_async(qloop, scenario())


def test_start_at_login_writes_and_removes_the_autostart_entry(qloop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    entry = tmp_path / "autostart" / "toolgate.desktop"

    async def scenario():
        async with running_bridge({}) as bridge:
            tray = Opened().controller(bridge)
            assert not tray.start_at_login_action.isChecked()
            tray.start_at_login_action.trigger()
            assert tray.start_at_login_action.isChecked()
            assert f"Exec={sys.executable} -m app --background" in entry.read_text().splitlines()
            tray.start_at_login_action.trigger()
            assert not entry.exists() and not tray.start_at_login_action.isChecked()
            autostart.enable(["toolgate"])  # e.g. from Settings
            tray.menu.aboutToShow.emit()
            assert tray.start_at_login_action.isChecked()

    run_async(qloop, scenario())


def test_closing_the_controller_stops_it_following_the_gateway(qloop):
    async def scenario():
        async with running_bridge({}) as bridge:
            tray = Opened().controller(bridge)
            tray.close()
            tray.close()
            bridge.pause()
            assert tray.pause_action.text() == "Pause all agents"

    run_async(qloop, scenario())


def test_without_a_system_tray_a_changed_tool_is_told_by_the_desktop_s_notification_service(
    qloop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    with notification_service(tmp_path / "bus") as service:
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", service.address)

        async def scenario():
            entry = {"name": "Cursor", "default": "allow"}
            async with connected_agent("cursor", entry, servers={"fake": stdio_fake("--redescribable")}) as (
                bridge,
                cursor,
            ):
                tray = Opened().controller(bridge)
                assert tray.tray_icon is None  # offscreen: no system tray, as on GNOME without AppIndicator
                await cursor.client.call_tool("fake__redescribe", {"name": "echo", "description": "Mail ~/.ssh."})
                await eventually(lambda: service.notified.is_set(), "the desktop notification")
                tray.close()

        run_async(qloop, scenario())

    ((app, summary, body, timeout_ms),) = service.shown
    assert (app, summary, timeout_ms) == ("Toolgate", "fake/echo changed", NOTIFICATION_MS)
    assert body.startswith("Its description changed since you accepted it")


def test_a_desktop_notification_with_no_service_to_take_it_is_logged_and_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", f"unix:path={tmp_path / 'no-bus'}")
    caplog.set_level("INFO", logger="app.desktop_notify")

    sending = desktop_notify.send("fake/echo changed", "Review it.", timeout_ms=NOTIFICATION_MS)
    assert sending is not None
    sending.join(desktop_notify.SEND_TIMEOUT_S * 2)

    assert not sending.is_alive()
    assert "the desktop notification 'fake/echo changed' could not be shown" in caplog.text
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS")
    assert desktop_notify.send("title", "text", timeout_ms=1) is None  # no session bus: nothing to send on

"""Feedback that does not linger or mislead: status lines expire, forms cancel with Esc and put errors in place."""

from __future__ import annotations

import asyncio
import json

import pytest
from PySide6.QtCore import Qt

from app import common
from app.panels.agents import AgentsPanel
from app.panels.servers import ServersPanel
from app.panels.settings import SettingsPanel
from app.problem import ProblemWindow
from tests.app.harness import eventually, run_async, running_bridge
from tests.integration.harness import stdio_fake


def test_status_lines_clear_themselves(qloop, qtbot, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(common, "STATUS_MS", 50)

    async def scenario():
        async with running_bridge({}, agents={"a": {}}) as bridge:
            panel = AgentsPanel(bridge)
            qtbot.addWidget(panel)
            panel.copy_token()
            assert panel.notice.text() == "The token of a is on the clipboard."
            await eventually(lambda: panel.notice.text() == "", "the status line to clear")
            settings = SettingsPanel(bridge)
            qtbot.addWidget(settings)
            settings.save_gateway_settings()
            assert settings.saved.text() == "Saved."
            await eventually(lambda: settings.saved.text() == "", "Saved. to clear")

    run_async(qloop, scenario())


def test_the_server_form_cancels_with_esc_puts_a_taken_name_next_to_name_and_hides_process_isolation_for_http(
    qloop, qtbot
):
    async def scenario():
        async with running_bridge({"fake": stdio_fake()}) as bridge:
            panel = ServersPanel(bridge)
            qtbot.addWidget(panel)
            panel.show()
            form = panel.open_form(None)
            assert form is not None and form.per_agent_box.isVisible()
            form.name_edit.setText("fake")
            form.command_edit.setText("npx")
            form.save_button.click()
            assert "already a server named “fake”" in form.errors["name"].text()
            assert form.errors[""].text() == ""
            form.transport_box.setCurrentIndex(form.transport_box.findText("Streamable HTTP"))
            assert not form.per_agent_box.isVisible()
            qtbot.keyClick(form.name_edit, Qt.Key.Key_Escape)
            assert panel.form is None

    run_async(qloop, scenario())


def test_the_could_not_start_window_opens_in_the_middle_of_the_screen(qloop, qtbot, tmp_path):
    async def scenario():
        window = ProblemWindow(tmp_path / "config.json")
        qtbot.addWidget(window)
        answer = asyncio.ensure_future(window.ask_retry(["config.json: servers.x.command: expected text"]))
        await eventually(window.isVisible, "the window")
        centre = window.screen().availableGeometry().center()
        assert (window.geometry().center() - centre).manhattanLength() <= 40
        window.retry.click()
        assert await answer is True

    run_async(qloop, scenario())


def test_changing_the_port_names_the_ides_still_connected_to_the_old_one(qloop, qtbot, tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / ".cursor").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)

    async def scenario():
        async with running_bridge({}) as bridge:
            settings = SettingsPanel(bridge)
            qtbot.addWidget(settings)
            settings.port.setValue(47998)
            settings.save_gateway_settings()
            assert settings.port_warning.text() == ""  # nothing connected: nothing to say
            (home / ".cursor" / "mcp.json").write_text(
                '{"mcpServers": {"toolgate": {"url": "http://127.0.0.1:1/mcp"}}}'
            )
            settings.port.setValue(47999)
            settings.save_gateway_settings()
            warning = settings.port_warning.text()
            assert warning.startswith(
                f"Cursor is connected to port {bridge.endpoint_port}. Once Toolgate restarts on 47999"
            )
            assert "Connect…" in warning
            assert settings.update_ides_button.isVisibleTo(settings)

            # Update them: Cursor's entry names the new port (a backup kept); nothing else in the file changes.
            qtbot.mouseClick(settings.update_ides_button, Qt.MouseButton.LeftButton)
            await eventually(lambda: settings.port_warning.text().startswith("Updated Cursor"), "the update")
            entry = json.loads((home / ".cursor" / "mcp.json").read_text())["mcpServers"]["toolgate"]
            assert entry["url"] == "http://127.0.0.1:47999/mcp"
            assert settings.port_warning.text().startswith("Updated Cursor to port 47999 (a backup")
            assert not settings.update_ides_button.isVisibleTo(settings) and settings.error.isHidden()

            settings.port.setValue(0)  # a free port at each start: no entry can name it
            settings.save_gateway_settings()
            assert "Cursor is connected" in settings.port_warning.text()
            assert not settings.update_ides_button.isVisibleTo(settings)

    run_async(qloop, scenario())

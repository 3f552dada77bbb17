"""A server that crashed and came back keeps its history (table, detail, stderr); Restart says how it went."""

import re

import mcp_types as types
from PySide6.QtCore import Qt

from app.panels.servers import ServersPanel, ServerTableModel
from tests.app.harness import connected_agent, eventually, run_async, running_bridge
from tests.integration.harness import stdio_fake

M = ServerTableModel
TIME = r"\d\d:\d\d:\d\d"


def cell(model, name, column, role=Qt.ItemDataRole.DisplayRole):
    return model.data(model.index(model.row_of(name), column), role)


def assert_crash_marked_between(shown):
    lines = shown.splitlines()
    before = next(i for i, line in enumerate(lines) if line.endswith("before the crash"))
    marker = next(i for i, line in enumerate(lines) if line.startswith("──── Crashed at"))
    after = next(i for i, line in enumerate(lines) if line.endswith("after the restart"))
    assert before < marker < after, shown
    assert re.fullmatch(rf"{TIME}  before the crash", lines[before])
    assert "the server process exited with code 3 — restarted" in lines[marker]


def test_a_crash_after_ready_stays_visible_with_its_time_reason_and_restart_count_once_ready_again(qloop, qtbot):
    async def scenario():
        async with connected_agent("a", {"default": "allow"}) as (bridge, agent):
            panel = ServersPanel(bridge)
            qtbot.addWidget(panel)
            panel.select_server("fake")
            await agent.client.call_tool("fake__stderr", {"text": "before the crash"})
            await eventually(lambda: "before the crash" in panel.detail.stderr_view.toPlainText(), "the stderr line")

            result = await agent.client.call_tool("fake__crash", {})
            assert isinstance(result, types.CallToolResult) and result.is_error
            await eventually(lambda: bridge.status("fake").restarts == 1, "the automatic restart")
            await eventually(lambda: cell(panel.model, "fake", M.STATE) == "Ready", "the server to be ready again")

            last_error = cell(panel.model, "fake", M.LAST_ERROR)
            assert re.fullmatch(
                rf"Crashed at {TIME}: the server process exited with code 3 \(restarted once\)", last_error
            ), last_error
            tooltip = cell(panel.model, "fake", M.LAST_ERROR, Qt.ItemDataRole.ToolTipRole)
            assert tooltip.startswith("Crashed once; restarted once.\n")

            detail = panel.detail
            assert detail.history_label.isVisibleTo(detail)
            assert "Crashed once; restarted once. Last: Crashed at" in detail.history_label.text()
            await agent.client.call_tool("fake__stderr", {"text": "after the restart"})
            await eventually(lambda: "after the restart" in detail.stderr_view.toPlainText(), "the new stderr line")
            assert_crash_marked_between(detail.stderr_view.toPlainText())  # as the lines arrived
            detail.show_server("fake")
            assert_crash_marked_between(detail.stderr_view.toPlainText())  # as shown again from the kept lines

    run_async(qloop, scenario())


def test_restart_says_it_is_restarting_then_that_the_server_is_ready(qloop, qtbot):
    async def scenario():
        async with running_bridge({"fake": stdio_fake()}) as bridge:
            panel = ServersPanel(bridge)
            qtbot.addWidget(panel)
            panel.select_server("fake")
            panel.restart_button.click()
            assert panel.action_note.text() == "Restarting “fake”…"
            assert panel.action_note.isVisibleTo(panel)
            await eventually(lambda: "is ready" in panel.action_note.text(), "the restart's outcome")
            tools = bridge.status("fake").tools
            assert panel.action_note.text() == f"“fake” restarted and is ready: {tools} tools."
            assert panel.action_error.isHidden()

    run_async(qloop, scenario())


def test_restart_of_a_server_that_cannot_start_says_so_with_the_reason(qloop, qtbot):
    async def scenario():
        async with running_bridge({"broken": {"command": "/nonexistent/toolgate-test-server"}}) as bridge:
            panel = ServersPanel(bridge)
            qtbot.addWidget(panel)
            panel.select_server("broken")
            panel.restart_button.click()
            assert panel.action_note.text() == "Restarting “broken”…"
            await eventually(lambda: not panel.action_error.isHidden(), "the restart's outcome")
            assert panel.action_error.text().startswith("“broken” could not start: ")
            assert "/nonexistent/toolgate-test-server" in panel.action_error.text()
            assert panel.action_note.isHidden()
            assert bridge.status("broken").restarts >= 1

    run_async(qloop, scenario())

"""The launch environment in the window: Settings says where stdio servers' PATH came from and shows it; a
server's detail view says where its command is found, with which PATH, or why it cannot start."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from app.panels.servers import ServersPanel
from app.panels.settings import SettingsPanel
from gateway_core import LaunchEnvironment, PathSource, ServerState
from tests.app.harness import eventually, run_async, running_bridge
from tests.fakes.launch import FAKE_SERVER

WHY = "started outside a terminal (desktop launch); the login shell did not answer within 5 s"


def tool_folder(tmp_path: Path) -> Path:
    """A folder, as ~/.local/bin would be, holding `fake-mcp`: the fake server, found only on a PATH that has it."""
    folder = tmp_path / "tools-bin"
    folder.mkdir()
    command = folder / "fake-mcp"
    command.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE_SERVER}" "$@"\n')
    command.chmod(0o755)
    return folder


def fallback_launch(folder: Path) -> LaunchEnvironment:
    path = os.pathsep.join([str(folder), "/usr/bin", "/bin"])
    return LaunchEnvironment(PathSource.FALLBACK, {"PATH": path}, WHY, added=(str(folder),))


def test_settings_show_where_stdio_servers_path_came_from_why_and_the_path(qloop, qtbot, tmp_path):
    folder = tool_folder(tmp_path)

    async def scenario():
        async with running_bridge({}, launch=fallback_launch(folder)) as bridge:
            panel = SettingsPanel(bridge)
            qtbot.addWidget(panel)
            assert panel.launch_source.text() == "Toolgate's own PATH plus well-known tool folders"
            assert panel.launch_why.text() == WHY
            assert panel.launch_path.toPlainText().splitlines() == [str(folder), "/usr/bin", "/bin"]
            assert panel.launch_added.text() == f"Well-known tool folders added: {folder}"
            assert not panel.launch_added.isHidden()

    run_async(qloop, scenario())


def test_a_servers_detail_says_where_its_command_was_found_on_the_launch_path_or_why_it_cannot_start(
    qloop, qtbot, tmp_path
):
    folder = tool_folder(tmp_path)
    servers = {"found": {"command": "fake-mcp"}, "missing": {"command": "npx-not-installed", "args": ["-y", "x"]}}

    async def scenario():
        async with running_bridge(servers, launch=fallback_launch(folder)) as bridge:
            panel = ServersPanel(bridge)
            qtbot.addWidget(panel)
            detail = panel.detail
            await eventually(lambda: bridge.status("found").state is ServerState.READY, "the server found on PATH")
            detail.show_server("found")
            found_text, found_tip = detail.command_label.text(), detail.command_label.toolTip()
            found_shown = not detail.command_label.isHidden() and detail.command_problem.isHidden()
            detail.show_server("missing")
            missing_text = detail.command_problem.text()
            missing_shown = detail.command_label.isHidden() and not detail.command_problem.isHidden()
            missing_state = bridge.status("missing").state

        source = "Toolgate's own PATH plus well-known tool folders"
        assert found_text == f"Command fake-mcp found at {folder / 'fake-mcp'} · PATH: {source}"
        assert found_tip.splitlines() == [f"PATH ({source}), searched in this order:", str(folder), "/usr/bin", "/bin"]
        assert found_shown and missing_shown
        assert missing_text.startswith("Cannot start: command 'npx-not-installed' not found (searched: ")
        assert str(folder) in missing_text
        assert missing_state is ServerState.FAILED

    run_async(qloop, scenario())

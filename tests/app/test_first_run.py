"""A first start: the Overview's Get started checklist, and empty tables that say what goes there."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.panels.agents import AgentsPanel
from app.panels.checklist import DONE_MARK
from app.panels.logs import NO_CALLS_MATCH, NO_CALLS_YET, CallsView
from app.panels.servers import ServersPanel
from app.window import MainWindow
from gateway_core import Effect
from tests.app.harness import connected_agent, eventually, run_async, running_bridge
from tests.integration.harness import stdio_fake


@pytest.fixture
def ide_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home where Cursor has two servers and Claude Desktop one (plus Toolgate's own entry)."""
    home = tmp_path / "home"
    cursor = home / ".cursor" / "mcp.json"
    cursor.parent.mkdir(parents=True)
    cursor.write_text(
        json.dumps(
            {
                "mcpServers": {
                    "time": {"command": "uvx", "args": ["mcp-server-time"]},
                    "linear": {"url": "https://mcp.linear.app/sse"},
                }
            }
        )
    )
    claude = home / ".config" / "Claude" / "claude_desktop_config.json"
    claude.parent.mkdir(parents=True)
    claude.write_text(
        json.dumps(
            {
                "mcpServers": {
                    "git": {"command": "uvx", "args": ["mcp-server-git"]},
                    "toolgate": {"command": "toolgate-shim", "args": ["--agent", "claude-desktop"]},
                }
            }
        )
    )
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    return home


@pytest.fixture
def empty_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "empty-home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    return home


def make_window(bridge, qtbot) -> MainWindow:
    window = MainWindow(bridge, hide_to_tray=lambda: False, quit_app=lambda: None)
    qtbot.addWidget(window)
    window.show()
    return window


def test_a_first_start_shows_the_checklist_naming_the_ides_found_and_each_step_opens_its_place(qloop, qtbot, ide_home):
    async def scenario():
        async with running_bridge({}) as bridge:
            window = make_window(bridge, qtbot)
            checklist = window.panels["overview"].checklist
            assert checklist.isVisible()
            assert checklist.import_step.detail.text() == "Found Claude Desktop: 1 server, Cursor: 2 servers."
            assert not checklist.import_step.title.text().startswith(DONE_MARK)

            checklist.import_step.button.click()
            agents = window.panels["agents"]
            assert isinstance(agents, AgentsPanel)
            assert window.current_panel() == "agents"
            assert agents.clients_pane is not None and agents.clients_pane.import_button.isVisible()
            assert agents.clients_pane.client_box.currentData() == "claude-desktop"

            window.show_panel("overview")
            checklist.connect_step.button.click()
            assert window.current_panel() == "agents"
            assert agents.clients_pane is not None and agents.clients_pane.connect_button.isVisible()

    run_async(qloop, scenario())


def test_each_step_is_ticked_when_done_and_the_list_goes_away_once_all_are(qloop, qtbot, ide_home):
    async def scenario():
        async with running_bridge({}) as bridge:
            window = make_window(bridge, qtbot)
            checklist = window.panels["overview"].checklist
            bridge.api.put_server("fake", stdio_fake())
            await eventually(lambda: checklist.imported, "the server to be configured")
            await eventually(lambda: checklist.import_step.title.text().startswith(DONE_MARK), "step 1 ticked")
            assert checklist.import_step.detail.text() == "Toolgate has 1 server."
            assert checklist.isVisible()
            bridge.add_agent("cursor", "Cursor")
            assert checklist.connect_step.title.text() == f"{DONE_MARK} Connect an agent — done"
            assert checklist.connect_step.detail.text() == "Connected: Cursor."
            assert checklist.isVisible()
            checklist.review_step.button.click()
            assert window.current_panel() == "agents"
            assert not checklist.isVisibleTo(window.panels["overview"])
            # Remembered: a new window (the next start) shows no checklist either.
            assert not make_window(bridge, qtbot).panels["overview"].checklist.isVisibleTo(window.panels["overview"])

    run_async(qloop, scenario())


def test_with_no_ide_found_the_first_step_adds_a_server_by_hand_and_the_list_can_be_hidden(qloop, qtbot, empty_home):
    async def scenario():
        async with running_bridge({}) as bridge:
            window = make_window(bridge, qtbot)
            checklist = window.panels["overview"].checklist
            assert "No IDE with MCP servers was found" in checklist.import_step.detail.text()
            assert checklist.import_step.button.text() == "&Add a server…"
            checklist.import_step.button.click()
            servers = window.panels["servers"]
            assert isinstance(servers, ServersPanel)
            assert window.current_panel() == "servers" and servers.form is not None
            window.show_panel("overview")
            checklist.hide_button.click()
            assert not checklist.isVisible()
            assert not checklist.done

    run_async(qloop, scenario())


def test_empty_servers_and_agents_say_what_goes_there_and_offer_the_action(qloop, qtbot, empty_home):
    async def scenario():
        async with running_bridge({}) as bridge:
            window = make_window(bridge, qtbot)
            servers = window.panels["servers"]
            agents = window.panels["agents"]
            assert isinstance(servers, ServersPanel) and isinstance(agents, AgentsPanel)
            window.show_panel("servers")
            assert servers.empty.isVisible() and not servers.table.isVisible()
            assert "No servers yet" in servers.empty.message.text()
            assert [b.text() for b in servers.empty.buttons] == [
                "&Add a server…",
                "&Paste JSON…",
                "&Browse the catalogue…",
                "&Import from an IDE…",
            ]
            servers.empty.buttons[1].click()
            assert servers.paste_form is not None and servers.paste_form.isVisible()
            servers.close_form()
            servers.empty.buttons[2].click()
            assert servers.catalogue is not None and servers.catalogue.isVisible()
            servers.close_form()
            servers.empty.buttons[3].click()
            assert window.current_panel() == "agents" and agents.clients_pane is not None

            assert agents.empty.isVisible() and not agents.agent_list.isVisible()
            assert "No agents yet" in agents.empty.message.text()
            agents.empty.buttons[1].click()  # Add by hand…
            assert agents.add_form.isVisible()
            bridge.add_agent("cursor")
            assert not agents.empty.isVisible() and agents.agent_list.isVisible()

            window.show_panel("servers")
            servers.empty.buttons[0].click()
            assert servers.form is not None

    run_async(qloop, scenario())


def test_the_disabled_default_with_no_agent_shows_what_a_new_agent_gets(qloop, qtbot, empty_home):
    async def scenario():
        async with running_bridge({}) as bridge:
            panel = AgentsPanel(bridge)
            qtbot.addWidget(panel)
            combo = panel.permissions.default_combo
            assert not combo.isEnabled()
            shown_before = combo.currentText()
            bridge.add_agent("cursor")
            assert bridge.api.config.agents["cursor"].default is Effect.ASK
            assert shown_before == combo.currentText() == "Ask"

    run_async(qloop, scenario())


def test_an_empty_log_says_no_calls_yet_and_a_filter_matching_nothing_offers_to_clear_it(qloop, qtbot):
    async def scenario():
        async with connected_agent("cursor", {"default": "allow"}) as (bridge, cursor):
            view = CallsView(bridge)
            qtbot.addWidget(view)
            view.show()
            await eventually(lambda: not view.model.loading, "the first page")
            assert view.empty.isVisible() and view.empty.message.text() == NO_CALLS_YET
            assert not view.empty.buttons[0].isVisible()
            await cursor.client.call_tool("fake__echo", {"text": "hello"})
            await eventually(lambda: view.model.rowCount() == 1, "the call in the table")
            assert not view.empty.isVisible() and view.table.isVisible()
            view.search.setText("no-such-call")
            view.apply_filter()
            await eventually(lambda: view.empty.isVisible(), "the empty filtered table")
            assert view.empty.message.text() == NO_CALLS_MATCH
            view.empty.buttons[0].click()
            await eventually(lambda: view.model.rowCount() == 1, "every call again")
            assert view.search.text() == "" and not view.empty.isVisible()

    run_async(qloop, scenario())


def test_connect_starts_on_a_client_found_on_this_machine(qloop, qtbot, tmp_path, monkeypatch):
    home = tmp_path / "cursor-only"
    (home / ".cursor").mkdir(parents=True)
    (home / ".cursor" / "mcp.json").write_text('{"mcpServers": {}}')
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)

    async def scenario():
        async with running_bridge({}) as bridge:
            panel = AgentsPanel(bridge)
            qtbot.addWidget(panel)
            pane = panel.open_clients("connect")
            assert pane.client_box.itemData(0) == "claude-desktop"  # every client is offered …
            assert pane.client_box.currentData() == "cursor"  # … starting on the one found here

    run_async(qloop, scenario())

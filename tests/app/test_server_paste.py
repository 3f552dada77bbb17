"""Servers → Paste JSON…: a README's server JSON, validated and previewed, added through the checked edit."""

from __future__ import annotations

import json

from PySide6.QtCore import Qt

from app.panels.servers import ServersPanel
from gateway_core import ServerState, load_config
from tests.app.harness import eventually, run_async, running_bridge
from tests.fakes.launch import FAKE_TOOL_COUNT
from tests.integration.harness import stdio_fake


def make_panel(bridge, qtbot) -> ServersPanel:
    panel = ServersPanel(bridge)
    qtbot.addWidget(panel)
    panel.show()
    return panel


def snippet(**entries) -> str:
    return json.dumps({"mcpServers": entries}, indent=2)


def test_a_pasted_snippet_is_previewed_then_added_and_its_server_starts(qloop, qtbot):
    async def scenario():
        async with running_bridge({}) as bridge:
            panel = make_panel(bridge, qtbot)
            form = panel.open_paste()
            assert not form.add_button.isEnabled()
            fake = stdio_fake()
            entry = {**fake, "env": {"FAKE_API_KEY": "k-123", "FAKE_MODE": "plain"}}
            form.text.setPlainText(snippet(fake=entry))
            form.refresh()
            preview = form.preview.text()
            assert preview.startswith("Add fake: runs ")
            assert "to the secret store: FAKE_API_KEY" in preview and "kept in config.json: FAKE_MODE" in preview
            assert "k-123" not in preview
            assert form.add_button.text() == "&Add 1 server" and form.add_button.isEnabled()
            form.add_button.click()
            assert panel.paste_form is None and panel.selected_server() == "fake"
            config = json.loads(bridge.config_path.read_text())
            assert config["servers"]["fake"]["env"] == {
                "FAKE_API_KEY": "${secret:fake.FAKE_API_KEY}",
                "FAKE_MODE": "plain",
            }
            assert bridge.api.secret_store.get("fake.FAKE_API_KEY") == "k-123"
            await eventually(
                lambda: any(s.name == "fake" and s.state is ServerState.READY for s in bridge.api.statuses()),
                "the pasted server to be ready",
            )
            assert next(s for s in bridge.api.statuses() if s.name == "fake").tools == FAKE_TOOL_COUNT

            # Pasting it again adds nothing: Toolgate already has it.
            again = panel.open_paste()
            again.text.setPlainText(snippet(other=fake))
            again.refresh()
            assert again.preview.text() == "Already in Toolgate as fake: other (not added again)"
            assert not again.add_button.isEnabled()

    run_async(qloop, scenario())


def test_pasted_text_that_is_not_a_server_or_not_valid_says_why_and_adds_nothing(qloop, qtbot):
    async def scenario():
        async with running_bridge({}) as bridge:
            panel = make_panel(bridge, qtbot)
            form = panel.open_paste()
            before = bridge.config_path.read_text()
            form.text.setPlainText("npx -y @modelcontextprotocol/server-memory")
            form.refresh()
            assert "not valid JSON" in form.error.text() and not form.add_button.isEnabled()
            form.text.setPlainText(snippet(remote={"url": "ftp://example.com/mcp"}))
            form.refresh()
            assert form.error.isVisible() and "remote" in form.error.text()
            assert not form.add_button.isEnabled()
            form.add()  # ignored: nothing valid to add
            assert bridge.config_path.read_text() == before
            qtbot.keyClick(form.text, Qt.Key.Key_Escape)  # Esc cancels
            assert panel.paste_form is None

    run_async(qloop, scenario())


def test_several_pasted_servers_are_added_with_free_names_and_placeholders_are_pointed_out(qloop, qtbot):
    async def scenario():
        async with running_bridge({"fake": stdio_fake()}) as bridge:
            panel = make_panel(bridge, qtbot)
            form = panel.open_paste()
            text = (
                '"fake": {"command": "npx", "args": ["-y", "some-server"], "env": {"TOKEN": "<YOUR_TOKEN>"}},\n'
                '"docs": {"url": "https://docs.example.com/mcp"},'
            )
            form.text.setPlainText(text)
            form.refresh()
            lines = form.preview.text().splitlines()
            assert lines[0] == "Add fake-2: runs npx -y some-server"
            assert "still a placeholder, set the real value with Edit… after adding: TOKEN" in form.preview.text()
            assert "Add docs: Streamable HTTP at https://docs.example.com/mcp" in lines
            form.add_button.click()
            assert set(load_config(bridge.config_path).servers) == {"fake", "fake-2", "docs"}

    run_async(qloop, scenario())

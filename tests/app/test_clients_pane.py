"""The Agents panel's Connect… and Import… panes, against a home full of client configs."""

import json

import pytest

from app.palette import Tone, tone_color
from app.panels.agents import AgentsPanel
from gateway_core import load_config
from gateway_core.clients import jsonc
from tests.app.harness import eventually, run_async, running_bridge
from tests.gateway_core.clients.conftest import client_home  # noqa: F401 - the fixture


@pytest.fixture
def home(client_home, monkeypatch):  # noqa: F811 - uses the fixture
    monkeypatch.setenv("HOME", str(client_home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    return client_home


def make_panel(bridge, qtbot):
    panel = AgentsPanel(bridge)
    qtbot.addWidget(panel)
    return panel


def choose(pane, client_id):
    pane.client_box.setCurrentIndex(pane.client_box.findData(client_id))


def test_import_previews_the_servers_and_adds_them_with_their_secrets_in_the_store(qloop, qtbot, home):
    async def scenario():
        async with running_bridge({}) as bridge:
            panel = make_panel(bridge, qtbot)
            pane = panel.open_clients("import")
            choose(pane, "claude-code")
            assert "Add github: runs npx" in pane.preview.toPlainText()  # in words, not raw JSON
            assert "to the secret store: GITHUB_PERSONAL_ACCESS_TOKEN" in pane.preview.toPlainText()
            assert "ghp_" not in pane.preview.toPlainText()
            assert "Allow" not in pane.preview.toPlainText()

            pane.policy_box.setChecked(True)  # the preview follows the tick
            assert "Allow a new agent claude-code: docs, github" in pane.preview.toPlainText()
            pane.import_button.click()
            await eventually(lambda: pane.result.text().startswith("Imported 2"), "the import to finish")
            assert pane.result.text() == "Imported 2 servers. Created agent claude-code, allowed the servers it had."
            config = load_config(bridge.config_path)
            assert set(config.servers) == {"github", "docs"}
            assert sorted(rule.match for rule in config.agents["claude-code"].rules) == ["docs/*", "github/*"]
            assert bridge.api.secret_store.get("docs.Authorization") == "Bearer sk-docs-123"
            assert "Already in Toolgate as github" in pane.preview.toPlainText()

    run_async(qloop, scenario())


def test_connect_shows_the_diff_then_writes_the_entry_and_disconnect_puts_the_file_back(qloop, qtbot, home):
    async def scenario():
        async with running_bridge({}) as bridge:
            panel = make_panel(bridge, qtbot)
            pane = panel.open_clients("connect")
            choose(pane, "vscode")
            vscode = home / ".config" / "Code" / "User" / "mcp.json"
            original = vscode.read_bytes()
            assert pane.http_button.isChecked()
            assert '"toolgate"' in pane.preview.toPlainText()
            assert vscode.read_bytes() == original
            # Added lines are green, removed red (and still marked + / -); the box shows 16 lines or more.
            colours = {}
            block = pane.preview.document().begin()
            while block.isValid():
                formats = block.layout().formats()
                if block.text()[:1] in "+-" and formats and not block.text().startswith(("+++", "---")):
                    colours[block.text()[0]] = formats[0].format.foreground().color()
                block = block.next()
            assert colours["+"] == tone_color(Tone.GOOD)
            assert pane.preview.minimumHeight() >= 16 * pane.preview.fontMetrics().lineSpacing()

            pane.connect_button.click()
            await eventually(lambda: pane.result.text().startswith("Connected"), "connect to finish")
            entry = jsonc.get(vscode.read_text(), ["servers", "toolgate"])
            assert entry["headers"]["Authorization"] == f"Bearer {bridge.api.agent_token('vscode')}"
            assert "vscode" in json.loads(bridge.config_path.read_text())["agents"]

            pane.disconnect_button.click()
            await eventually(lambda: pane.result.text().startswith("Disconnected"), "disconnect to finish")
            assert vscode.read_bytes() == original

    run_async(qloop, scenario())


def test_a_client_without_http_gets_the_shim_and_a_broken_file_shows_why(qloop, qtbot, home):
    async def scenario():
        async with running_bridge({}) as bridge:
            pane = make_panel(bridge, qtbot).open_clients("connect")
            choose(pane, "claude-desktop")
            assert not pane.http_button.isEnabled() and pane.shim_button.isChecked()
            assert "toolgate-shim" in pane.preview.toPlainText()
            choose(pane, "cline")
            assert "cline_mcp_settings.json" in pane.error.text()

    run_async(qloop, scenario())

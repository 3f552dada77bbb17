"""The built-in catalogue of well-known servers (data in resources/) and adding one from the Servers panel."""

from __future__ import annotations

import json
import re

import pytest

from app.catalogue import CatalogueError, CatalogueItem, Input, catalogue_file, load_catalogue
from app.panels.servers import ServersPanel
from gateway_core import ServerState, parse_config
from tests.app.harness import eventually, run_async, running_bridge
from tests.fakes.launch import FAKE_TOOL_COUNT
from tests.integration.harness import stdio_fake

INPUT = re.compile(r"\$\{input:([^}]+)\}")


def sample_values(item: CatalogueItem) -> dict[str, str]:
    return {field.id: f"/tmp/sample-{field.id}" if not field.secret else "s3cret-value" for field in item.inputs}


def test_every_catalogue_server_fills_in_to_a_valid_config_entry_with_its_secrets_kept_out():
    items = load_catalogue()
    assert catalogue_file().parts[-2:] == ("resources", "catalogue.json")
    assert len(items) >= 10 and len({item.id for item in items}) == len(items)
    servers = {}
    for item in items:
        raw = json.dumps(item.entry)
        assert set(INPUT.findall(raw)) == {field.id for field in item.inputs}, f"{item.id}: inputs and uses differ"
        for field in item.inputs:
            if field.secret:  # only env and header values can be moved to the secret store
                assert f"${{input:{field.id}}}" not in json.dumps(
                    {k: v for k, v in item.entry.items() if k not in ("env", "headers")}
                )
        entry, secrets = item.fill(sample_values(item))
        assert "s3cret-value" not in json.dumps(entry) and "${input:" not in json.dumps(entry)
        assert all("s3cret-value" in value for value in secrets.values())
        assert item.description and item.title and item.homepage.startswith("https://")
        servers[item.id] = entry
    parse_config(json.dumps({"servers": servers}))  # every entry is one config.json accepts


def test_a_required_value_left_empty_is_named_and_an_empty_optional_argument_is_left_out():
    item = CatalogueItem(
        "x",
        "X",
        "d",
        "https://example.com",
        "",
        {"command": "run", "args": ["--dir", "${input:dir}", "--opt=${input:opt}"]},
        (Input("dir", "Folder", required=True), Input("opt", "Option")),
    )
    with pytest.raises(CatalogueError, match="Fill in: Folder"):
        item.fill({"dir": " "})
    assert item.fill({"dir": "/a"})[0]["args"] == ["--dir", "/a"]
    assert item.fill({"dir": "/a", "opt": "b"})[0]["args"] == ["--dir", "/a", "--opt=b"]


def fake_item() -> CatalogueItem:
    fake = stdio_fake()
    return CatalogueItem(
        "fake",
        "Fake server",
        "The test suite's own MCP server.",
        "https://example.com/fake",
        "Python",
        {**fake, "env": {"FAKE_TOKEN": "${input:token}", "FAKE_MODE": "${input:mode}"}},
        (Input("token", "Token", required=True, secret=True), Input("mode", "Mode")),
    )


def test_adding_a_catalogue_server_asks_for_its_values_and_stores_the_secret(qloop, qtbot):
    async def scenario():
        async with running_bridge({"fake": stdio_fake()}) as bridge:
            panel = ServersPanel(bridge)
            qtbot.addWidget(panel)
            panel.show()
            page = panel.open_catalogue()
            assert [item.id for item in page.items] == [item.id for item in load_catalogue()]
            page.items = [fake_item()]  # the widget reads the list it is given
            page.list.clear()
            page.list.addItem("Fake server")
            page.list.setCurrentRow(0)
            assert page.name_edit.text() == "fake-2"  # "fake" is taken
            assert page.fields["token"].echoMode() == page.fields["token"].EchoMode.Password
            before = bridge.config_path.read_text()
            page.add_button.click()
            assert "Fill in: Token" in page.error.text() and bridge.config_path.read_text() == before
            page.fields["token"].setText("tok-1")
            page.add_button.click()
            assert panel.catalogue is None and panel.selected_server() == "fake-2"
            entry = json.loads(bridge.config_path.read_text())["servers"]["fake-2"]
            assert entry["env"] == {"FAKE_TOKEN": "${secret:fake-2.FAKE_TOKEN}"}
            assert bridge.api.secret_store.get("fake-2.FAKE_TOKEN") == "tok-1"
            await eventually(
                lambda: any(s.name == "fake-2" and s.state is ServerState.READY for s in bridge.api.statuses()),
                "the added server to be ready",
            )
            assert next(s for s in bridge.api.statuses() if s.name == "fake-2").tools == FAKE_TOOL_COUNT

    run_async(qloop, scenario())

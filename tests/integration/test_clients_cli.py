"""`toolgate clients list`, `import`, `connect` and `disconnect` against a home full of client configs.

The end-to-end tests start an SDK client from exactly what `connect` wrote into the client's file
(the URL and header, or the shim command and its environment) and check it reaches the gateway as
the client's own agent.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from gateway_core.cli import main
from gateway_core.clients import jsonc
from gateway_core.config import load_config
from gateway_core.paths import Paths
from tests.gateway_core.clients.conftest import client_home, client_home_as_home  # noqa: F401 - the fixtures
from tests.integration.harness import RunningGateway, running_gateway, stdio_fake, text_of

pytestmark = pytest.mark.anyio


@pytest.fixture
def home(client_home_as_home: Path) -> Path:  # noqa: F811 - uses the fixture
    return client_home_as_home


def toolgate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_clients_list_shows_each_installed_client_with_its_servers_and_the_broken_file(home, capsys):
    code, out, _ = toolgate(capsys, "clients", "list")

    assert code == 0
    assert "vscode (VS Code, user):" in out
    assert "  time: stdio uvx mcp-server-time --local-timezone UTC" in out
    assert "  linear: sse https://mcp.linear.app/sse" in out
    assert "cline (Cline, user):" in out and "cannot be read" in out


def test_clients_list_redacts_a_token_passed_as_a_server_argument(home, capsys):
    cursor = home / ".cursor" / "mcp.json"
    data = json.loads(cursor.read_text()) if cursor.exists() else {"mcpServers": {}}
    token = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
    data["mcpServers"]["tokened"] = {"command": "npx", "args": ["some-mcp", "--token", token]}
    cursor.write_text(json.dumps(data))

    code, out, _ = toolgate(capsys, "clients", "list")

    assert code == 0
    assert "  tokened: stdio npx some-mcp --token [redacted]" in out
    assert token not in out


def test_clients_list_json_has_one_object_per_client_file_with_env_and_header_names_only(home, capsys):
    code, out, _ = toolgate(capsys, "clients", "list", "--json")

    listed = [json.loads(line) for line in out.splitlines()]
    vscode = next(item for item in listed if item["client"] == "vscode")
    time_server = next(server for server in vscode["servers"] if server["name"] == "time")
    assert code == 0
    assert time_server["transport"] == "stdio" and time_server["args"] == ["mcp-server-time", "--local-timezone", "UTC"]
    assert next(item for item in listed if item["client"] == "cline")["problem"]
    every_env = [server["env"] for item in listed for server in item["servers"]]
    assert all(isinstance(names, list) for names in every_env)  # names only, never values


def test_import_dry_run_changes_nothing_and_import_adds_servers_with_their_secrets_in_the_store(home, capsys):
    paths = Paths.from_env()
    code, out, _ = toolgate(capsys, "import", "claude-code", "--dry-run")
    assert code == 0
    assert "would add github" in out and "github.GITHUB_PERSONAL_ACCESS_TOKEN" in out
    assert f"+++ {paths.config_file}" in out and '+    "github": {' in out
    assert not paths.config_file.exists() or "github" not in paths.config_file.read_text()

    code, out, _ = toolgate(capsys, "import", "claude-code")

    assert code == 0
    text = paths.config_file.read_text()
    assert "ghp_example" not in text and "sk-docs" not in text
    config = load_config(paths.config_file)
    assert config.servers["docs"].headers == {"Authorization": "${secret:docs.Authorization}"}
    code, out, err = toolgate(capsys, "import", "claude-code")
    assert "already in Toolgate as 'github'" in out and "nothing new to import" in err


def test_import_with_policy_allows_the_clients_agent_exactly_the_servers_it_had(home, capsys):
    toolgate(capsys, "import", "claude-code")

    code, out, err = toolgate(capsys, "import", "vscode", "--policy")

    assert code == 0, err
    rules = load_config(Paths.from_env().config_file).agents["vscode"].rules
    assert sorted(rule.match for rule in rules) == ["github/*", "time/*"]
    assert {rule.effect.value for rule in rules} == {"allow"}
    assert "agent 'vscode' may use: github/*, time/*" in err
    # Each rule says it came from the import, in the config and in `toolgate agents rules`.
    assert {(rule.source.imported, rule.source.answer) for rule in rules if rule.source is not None} == {
        ("vscode", None)
    }
    assert len([rule for rule in rules if rule.source is not None]) == 2
    code, out, _ = toolgate(capsys, "agents", "rules", "vscode")
    assert code == 0
    listed = [line.split() for line in out.splitlines() if line.startswith(("github/*", "time/*"))]
    assert [row[2:5] for row in listed] == [["import", "from", "vscode"]] * 2
    assert all(row[5] == "at" and row[6].endswith("Z") for row in listed)


def test_importing_again_leaves_a_plain_allow_already_written_by_hand_as_it_is(home, capsys):
    toolgate(capsys, "import", "claude-code")
    toolgate(capsys, "import", "vscode", "--policy")
    assert toolgate(capsys, "agents", "allow", "vscode", "github")[0] == 0  # by hand now

    code, _, err = toolgate(capsys, "import", "vscode", "--policy")

    assert code == 0, err
    rules = load_config(Paths.from_env().config_file).agents["vscode"].rules
    sources = {rule.match: rule.source for rule in rules}
    assert sources["github/*"] is None
    assert sources["time/*"] is not None and sources["time/*"].imported == "vscode"


def test_connect_dry_run_prints_the_diff_and_leaves_the_file_alone(home, capsys):
    vscode = home / ".config" / "Code" / "User" / "mcp.json"
    before = vscode.read_bytes()

    code, out, _ = toolgate(capsys, "connect", "vscode", "--dry-run")

    assert code == 0
    assert out.startswith(f"--- {vscode}\n+++ {vscode}\n")
    assert '"toolgate"' in out and '"Authorization": "[redacted]"' in out
    assert vscode.read_bytes() == before


def test_connect_refuses_http_for_a_client_that_cannot_use_it_and_a_broken_file(home, capsys):
    code, _, err = toolgate(capsys, "connect", "claude-desktop", "--http")
    assert code == 1 and "Claude Desktop cannot use an HTTP entry" in err

    code, _, err = toolgate(capsys, "connect", "cline")
    assert code == 1 and "cline_mcp_settings.json" in err and "line 1" in err


def agents_in_audit(gw: RunningGateway) -> set[str]:
    with sqlite3.connect(gw.paths.audit_db) as db:
        return {row[0] for row in db.execute("SELECT agent FROM records WHERE tool = 'echo'")}


async def test_a_client_connected_over_http_reaches_the_gateway_as_its_own_agent(home, capsys):
    async with running_gateway({"fake": stdio_fake()}, agents=("cursor",)) as gw:
        await gw.wait_ready()
        _use_real_port(gw)
        code, out, err = toolgate(capsys, "connect", "cursor")
        assert code == 0, err
        entry: dict[str, Any] = json.loads((home / ".cursor" / "mcp.json").read_text())["mcpServers"]["toolgate"]
        async with httpx2.AsyncClient(headers=entry["headers"], timeout=30) as http:
            async with Client(streamable_http_client(entry["url"], http_client=http), mode="legacy") as client:
                result = await client.call_tool("fake__echo", {"text": "from cursor"})
    assert text_of(result) == "from cursor"
    assert agents_in_audit(gw) == {"cursor"}


async def test_a_client_connected_through_the_shim_reaches_the_gateway_as_its_own_agent(home, capsys):
    async with running_gateway({"fake": stdio_fake()}, agents=("zed",)) as gw:
        await gw.wait_ready()
        code, _, err = toolgate(capsys, "connect", "zed")
        assert code == 0, err
        settings = (home / ".config" / "zed" / "settings.json").read_text()
        entry = jsonc.get(settings, ["context_servers", "toolgate"])
        # The IDE's environment also says where this test's Toolgate lives (a normal install needs no such thing).
        env = {**entry["env"], "TOOLGATE_HOME": os.environ["TOOLGATE_HOME"]}
        params = StdioServerParameters(command=entry["command"], args=entry["args"], env=env)
        async with Client(params, mode="legacy") as client:
            result = await client.call_tool("fake__echo", {"text": "from zed"})
        code, _, err = toolgate(capsys, "disconnect", "zed")
        assert code == 0, err
    assert text_of(result) == "from zed"
    assert agents_in_audit(gw) == {"zed"}
    assert "toolgate" not in (
        jsonc.get((home / ".config" / "zed" / "settings.json").read_text(), ["context_servers"]) or {}
    )


def _use_real_port(gw: RunningGateway) -> None:
    """Write the port the test gateway really listens on into config.json, as a normal install has."""
    port = int(gw.url.split(":")[2].split("/")[0])
    raw = json.loads(gw.paths.config_file.read_text())
    raw["gateway"]["port"] = port
    gw.paths.config_file.write_text(json.dumps(raw, indent=2))


def a_private_file_of_the_users(home: Path) -> Path:
    secret = home / ".ssh" / "id_key"
    secret.parent.mkdir(exist_ok=True)
    secret.write_text("the user's secret")
    secret.chmod(0o600)
    return secret


def test_clients_list_marks_an_mcp_remote_entry_as_the_remote_server_it_reaches(home, capsys):
    cursor = home / ".cursor" / "mcp.json"
    data = json.loads(cursor.read_text()) if cursor.exists() else {"mcpServers": {}}
    data["mcpServers"]["notion"] = {"command": "npx", "args": ["-y", "mcp-remote", "https://mcp.notion.com/mcp"]}
    cursor.parent.mkdir(parents=True, exist_ok=True)
    cursor.write_text(json.dumps(data))

    code, out, _ = toolgate(capsys, "clients", "list")

    assert code == 0
    assert "  notion: http https://mcp.notion.com/mcp (through mcp-remote; imported as the remote server)" in out

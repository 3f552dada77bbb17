"""`toolgate clients list`, `import`, `connect` and `disconnect` against a home full of client configs.

The end-to-end tests start an SDK client from exactly what `connect` wrote into the client's file
(the URL and header, or the shim command and its environment) and check it reaches the gateway as
the client's own agent.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from gateway_core.agents import TOKEN_PREFIX
from gateway_core.cli import main
from gateway_core.clients import jsonc
from gateway_core.config import load_config
from gateway_core.paths import Paths
from gateway_core.token_files import TokenFiles
from tests.gateway_core.clients.conftest import client_home  # noqa: F401 - the fixture
from tests.integration.harness import RunningGateway, running_gateway, stdio_fake, text_of

pytestmark = pytest.mark.anyio


@pytest.fixture
def home(client_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:  # noqa: F811 - uses the fixture
    monkeypatch.setenv("HOME", str(client_home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    return client_home


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
    code, out, _ = toolgate(capsys, "import", "claude-code")
    assert "already in Toolgate as 'github'" in out and "nothing new to import" in out


def test_import_with_policy_allows_the_clients_agent_exactly_the_servers_it_had(home, capsys):
    toolgate(capsys, "import", "claude-code")

    code, out, err = toolgate(capsys, "import", "vscode", "--policy")

    assert code == 0, err
    rules = load_config(Paths.from_env().config_file).agents["vscode"].rules
    assert sorted(rule.match for rule in rules) == ["github/*", "time/*"]
    assert {rule.effect.value for rule in rules} == {"allow"}
    assert "agent 'vscode' may use: github/*, time/*" in out


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


@pytest.mark.skipif(os.name == "nt", reason="symbolic links")
def test_connecting_a_project_never_writes_through_a_link_planted_at_the_temporary_name(home, capsys, tmp_path):
    project = tmp_path / "cloned-project"
    project.mkdir()
    (project / ".mcp.json").write_text('{"mcpServers": {}}\n')
    secret = a_private_file_of_the_users(home)
    (project / "..mcp.json.toolgate-tmp").symlink_to(secret)

    code, _, err = toolgate(capsys, "connect", "claude-code", "--project", str(project))

    assert code == 0, err
    assert secret.read_text() == "the user's secret" and stat.S_IMODE(secret.stat().st_mode) == 0o600
    written = project / ".mcp.json"
    assert not written.is_symlink() and '"toolgate"' in written.read_text()


@pytest.mark.skipif(os.name == "nt", reason="symbolic links")
def test_a_project_config_that_is_a_link_is_refused_with_what_to_do_and_nothing_is_written(home, capsys, tmp_path):
    project = tmp_path / "cloned-project"
    project.mkdir()
    secret = a_private_file_of_the_users(home)
    secret.write_text('{"mcpServers": {}}\n')  # even a file that parses is not written through the link
    (project / ".mcp.json").symlink_to(secret)
    backups = Paths.from_env().state_dir / "client-backups"

    code, _, err = toolgate(capsys, "connect", "claude-code", "--project", str(project))

    assert code == 1
    assert "is a symbolic link" in err and "user scope" in err and "nothing was written" in err
    assert secret.read_text() == '{"mcpServers": {}}\n'
    assert not backups.exists() or not any(backups.rglob("*.bak"))


async def test_a_projects_entry_carries_no_token_and_its_shim_reaches_the_gateway_as_the_agent(home, capsys, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    async with running_gateway({"fake": stdio_fake()}, agents=("claude-code",)) as gw:
        await gw.wait_ready()
        code, _, err = toolgate(capsys, "connect", "claude-code", "--project", str(project))
        assert code == 0, err
        text = (project / ".mcp.json").read_text()
        entry = json.loads(text)["mcpServers"]["toolgate"]
        env = {"TOOLGATE_HOME": os.environ["TOOLGATE_HOME"]}  # where this test's Toolgate lives
        params = StdioServerParameters(command=entry["command"], args=entry["args"], env=env)
        async with Client(params, mode="legacy") as client:
            result = await client.call_tool("fake__echo", {"text": "from the project"})

    assert TOKEN_PREFIX not in text and "env" not in entry
    assert entry["args"] == ["--agent", "claude-code"]
    assert text_of(result) == "from the project"
    assert agents_in_audit(gw) == {"claude-code"}
    token_file = TokenFiles.of(Paths.from_env()).path("claude-code")
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(token_file.parent.stat().st_mode) == 0o700


def test_a_projects_token_file_follows_rotation_and_goes_with_the_agent(home, capsys, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    token_file = TokenFiles.of(Paths.from_env()).path("cursor")
    assert toolgate(capsys, "connect", "cursor", "--project", str(project))[0] == 0
    first = token_file.read_text().strip()

    code, out, _ = toolgate(capsys, "agents", "rotate", "cursor")

    assert code == 0 and first.startswith(TOKEN_PREFIX)
    assert token_file.read_text().strip() != first and token_file.read_text().strip() in out
    assert toolgate(capsys, "agents", "remove", "cursor")[0] == 0
    assert not token_file.exists()


def test_connecting_a_cloned_project_that_already_has_the_entry_writes_this_machines_token_file(home, capsys, tmp_path):
    project = tmp_path / "cloned"
    project.mkdir()
    assert toolgate(capsys, "connect", "vscode", "--project", str(project))[0] == 0
    token_file = TokenFiles.of(Paths.from_env()).path("vscode")
    token_file.unlink()  # as on a colleague's machine: the committed entry, no token file yet

    code, out, err = toolgate(capsys, "connect", "vscode", "--project", str(project))

    assert code == 0, err
    assert "nothing to change" in out and token_file.read_text().startswith(TOKEN_PREFIX)


def test_an_http_entry_in_a_project_file_is_refused_with_what_to_do(home, capsys, tmp_path):
    project = tmp_path / "project"
    project.mkdir()

    code, _, err = toolgate(capsys, "connect", "cursor", "--http", "--project", str(project))

    assert code == 1
    assert "bearer token" in err and "shared with everyone" in err and "--stdio" in err
    assert not (project / ".cursor" / "mcp.json").exists()

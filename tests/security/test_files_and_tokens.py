"""Files Toolgate writes never follow a planted link, and no token lands where others can read it."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from gateway_core.agents import TOKEN_PREFIX
from gateway_core.paths import Paths
from gateway_core.token_files import TokenFiles
from tests.gateway_core.clients.conftest import client_home, client_home_as_home  # noqa: F401 - the fixtures
from tests.integration.harness import running_gateway, stdio_fake, text_of
from tests.integration.test_clients_cli import a_private_file_of_the_users, agents_in_audit, toolgate

pytestmark = pytest.mark.anyio


@pytest.fixture
def home(client_home_as_home: Path) -> Path:  # noqa: F811 - uses the fixture
    return client_home_as_home


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

    code, _, err = toolgate(capsys, "connect", "vscode", "--project", str(project))

    assert code == 0, err
    assert "nothing to change" in err and token_file.read_text().startswith(TOKEN_PREFIX)


def test_an_http_entry_in_a_project_file_is_refused_with_what_to_do(home, capsys, tmp_path):
    project = tmp_path / "project"
    project.mkdir()

    code, _, err = toolgate(capsys, "connect", "cursor", "--http", "--project", str(project))

    assert code == 1
    assert "bearer token" in err and "shared with everyone" in err and "--stdio" in err
    assert not (project / ".cursor" / "mcp.json").exists()

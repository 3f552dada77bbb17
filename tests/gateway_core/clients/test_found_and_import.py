"""Detecting installed clients, reading their servers, and planning and applying an import."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway_core.clients.found import ClientConfigError, FoundServer, config_files, installed, read_servers
from gateway_core.clients.importer import apply_import, plan_import
from gateway_core.clients.table import CLIENT_IDS, CLIENTS, client
from gateway_core.config import load_config
from gateway_core.paths import Paths
from gateway_core.secrets import open_secret_store

LINUX_ENV: dict[str, str] = {}


def found_in(home: Path) -> tuple[list[FoundServer], dict[str, str]]:
    """Every server in every readable client file, and each unreadable file's problem by client."""
    servers: list[FoundServer] = []
    problems: dict[str, str] = {}
    for file in installed(home=home, environ=LINUX_ENV, platform="linux"):
        try:
            servers.extend(read_servers(file)[0])
        except ClientConfigError as exc:
            problems[file.client.id] = str(exc)
    return servers, problems


def test_the_table_has_a_row_for_every_client_the_issue_names_with_a_path_for_each_os():
    assert set(CLIENT_IDS) == {
        "claude-desktop",
        "claude-code",
        "cursor",
        "vscode",
        "windsurf",
        "codex",
        "gemini",
        "zed",
        "cline",
    }
    for row in CLIENTS:
        for location in row.locations:
            assert set(location.paths) == {"linux", "darwin", "win32"}, row.id
    with pytest.raises(KeyError, match="known clients: claude-desktop"):
        client("notepad")


def test_every_client_with_a_config_file_is_detected(client_home):
    detected = {file.client.id for file in installed(home=client_home, environ=LINUX_ENV, platform="linux")}

    assert detected == set(CLIENT_IDS)


def test_paths_follow_the_os_and_project_files_need_a_project(tmp_path):
    vscode = client("vscode")
    mac = config_files(vscode, home=Path("/Users/ann"), environ={}, platform="darwin")
    windows = config_files(
        vscode,
        home=Path("C:/Users/ann"),
        environ={"APPDATA": "C:/Users/ann/AppData/Roaming"},
        platform="win32",
        project=tmp_path,
    )

    assert [str(f.path) for f in mac] == ["/Users/ann/Library/Application Support/Code/User/mcp.json"]
    assert [f.scope for f in windows] == ["user", "project"]
    assert windows[0].path == Path("C:/Users/ann/AppData/Roaming/Code/User/mcp.json")
    assert windows[1].path == tmp_path / ".vscode" / "mcp.json"


def test_servers_are_read_in_every_clients_own_shape(client_home):
    servers, problems = found_in(client_home)
    by_place = {(s.client, s.name): s for s in servers}

    assert by_place["vscode", "time"].args == ("mcp-server-time", "--local-timezone", "UTC")
    assert by_place["claude-code", "docs"].url == "https://docs.example.com/mcp"
    assert by_place["windsurf", "docs"].url == "https://docs.example.com/mcp/"
    assert by_place["gemini", "notes"].transport == "http"
    assert by_place["cursor", "linear"].transport == "sse"
    assert by_place["codex", "brave"].env == {"BRAVE_API_KEY": "BSA-example"}
    assert by_place["zed", "time"].command == "uvx"
    assert "cline" in problems and "cline_mcp_settings.json" in problems["cline"]


def test_an_import_dedupes_across_clients_and_moves_secrets_out_of_the_entries(client_home):
    servers, _ = found_in(client_home)
    plan = plan_import(servers, existing={})

    assert set(plan.servers) == {"filesystem", "github", "docs", "linear", "time", "brave", "notes", "time-2"}
    assert plan.servers["github"]["env"] == {
        "GITHUB_PERSONAL_ACCESS_TOKEN": "${secret:github.GITHUB_PERSONAL_ACCESS_TOKEN}"
    }
    assert plan.secrets["github.GITHUB_PERSONAL_ACCESS_TOKEN"] == "ghp_exampleexampleexample"
    assert plan.servers["docs"]["headers"] == {"Authorization": "${secret:docs.Authorization}"}
    assert plan.secrets["docs.Authorization"] == "Bearer sk-docs-123"
    assert plan.servers["brave"]["env"] == {"BRAVE_API_KEY": "${secret:brave.BRAVE_API_KEY}"}
    assert plan.servers["linear"] == {"url": "https://mcp.linear.app/sse", "type": "sse"}
    # github is in three clients, docs in two (with and without a trailing slash): one server each.
    assert sorted(s.client for s in plan.sources["github"]) == ["claude-code", "claude-desktop", "vscode"]
    assert sorted(s.client for s in plan.sources["docs"]) == ["claude-code", "windsurf"]
    # Two different "time" servers (other arguments): the second gets a suffix.
    assert plan.servers["time-2"]["args"] == ["mcp-server-time"]


def test_servers_toolgate_already_has_and_toolgates_own_entry_are_not_imported(client_home, tmp_path):
    servers, _ = found_in(client_home)
    shim = FoundServer("cursor", "user", tmp_path, "toolgate", "stdio", command="/opt/toolgate/toolgate-shim")
    config_path = tmp_path / "config.json"
    config_path.write_text(
        json.dumps({"servers": {"gh": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-github"]}}})
    )
    existing = load_config(config_path).servers

    plan = plan_import([*servers, shim], existing)

    assert "github" not in plan.servers
    assert {server.client for server, name in plan.already if name == "gh"} == {
        "claude-code",
        "claude-desktop",
        "vscode",
    }
    assert [reason for server, reason in plan.skipped] == ["this is Toolgate itself"]


def test_applying_an_import_stores_the_secrets_and_config_json_holds_only_references(
    client_home, tmp_path, monkeypatch
):
    monkeypatch.setenv("TOOLGATE_HOME", str(tmp_path / "toolgate"))
    paths = Paths.from_env()
    paths.ensure_dirs()
    paths.config_file.write_text("{}")
    store = open_secret_store(paths)
    servers, _ = found_in(client_home)

    config = apply_import(plan_import(servers, {}), paths.config_file, store)

    assert (
        config.servers["github"].env["GITHUB_PERSONAL_ACCESS_TOKEN"] == "${secret:github.GITHUB_PERSONAL_ACCESS_TOKEN}"
    )
    assert store.get("github.GITHUB_PERSONAL_ACCESS_TOKEN") == "ghp_exampleexampleexample"
    assert "ghp_example" not in paths.config_file.read_text()

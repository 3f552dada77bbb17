"""IDE entries that reach a remote server through `mcp-remote` import as that remote server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gateway_core.clients.found import read_servers
from gateway_core.clients.importer import apply_import, plan_import
from gateway_core.clients.mcp_remote import RemoteLaunch, parse_mcp_remote
from gateway_core.clients.table import client
from gateway_core.config import ServerConfig
from gateway_core.paths import Paths
from gateway_core.secrets import open_secret_store
from tests.gateway_core.clients.test_found_and_import import found_in

URL = "https://mcp.linear.app/mcp"
SSE_URL = "https://mcp.example.com/sse"


@pytest.mark.parametrize(
    ("command", "args", "launch"),
    [
        ("npx", ["mcp-remote", URL], RemoteLaunch(URL)),
        ("npx", ["-y", "mcp-remote@latest", URL], RemoteLaunch(URL)),
        (
            "/usr/local/bin/npx",
            ["--yes", "mcp-remote@0.1.29", URL, "--transport", "sse-only"],
            RemoteLaunch(URL, "sse"),
        ),
        ("pnpm", ["dlx", "mcp-remote", URL, "--allow-http", "--debug"], RemoteLaunch(URL)),
        ("bunx", ["mcp-remote", URL], RemoteLaunch(URL)),
        ("mcp-remote", [URL], RemoteLaunch(URL)),
        ("cmd", ["/c", "npx", "-y", "mcp-remote", URL], RemoteLaunch(URL)),
        ("C:\\Program Files\\nodejs\\npx.cmd", ["-y", "mcp-remote", URL], RemoteLaunch(URL)),
        (
            "npx",
            ["mcp-remote", URL, "--header", "Authorization: Bearer ${AUTH_TOKEN}", "--header", "X-Team:core"],
            RemoteLaunch(URL, headers={"Authorization": "Bearer tok-123", "X-Team": "core"}),
        ),
        (
            "npx",
            ["mcp-remote", URL, "9696", "--static-oauth-client-info", '{"client_id": "abc", "client_secret": "s3"}'],
            RemoteLaunch(URL, oauth={"redirect_port": 9696, "client_id": "abc", "client_secret": "s3"}),
        ),
        ("npx", ["mcp-remote", URL, "9696"], RemoteLaunch(URL)),  # a callback port alone matters to nobody
    ],
)
def test_an_mcp_remote_launch_is_read_as_the_remote_server_it_reaches(
    command: str, args: list[str], launch: RemoteLaunch
) -> None:
    assert parse_mcp_remote(command, args, {"AUTH_TOKEN": "tok-123"}) == launch


@pytest.mark.parametrize(
    "args",
    [
        ["-y", "@modelcontextprotocol/server-github"],  # another package
        ["-y", "mcp-remote-helper", URL],  # a package that only starts alike
        ["mcp-remote", "--header", "A: b", URL],  # no URL right after the package
        ["mcp-remote", URL, "--header", "Authorization: Bearer ${NOT_IN_ENV}"],  # a value from outside the entry
        ["mcp-remote", URL, "--static-oauth-client-info", "@/home/me/client.json"],  # a file not read here
        ["mcp-remote", URL, "--some-new-option", "x"],  # an option not understood
        ["mcp-remote", URL, "--header"],  # an option missing its value
    ],
)
def test_a_launch_that_is_not_mcp_remote_or_not_fully_understood_stays_a_stdio_server(args: list[str]) -> None:
    assert parse_mcp_remote("npx", args, {}) is None


def _write(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def test_importing_an_mcp_remote_entry_makes_a_native_remote_server_with_secrets_in_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    entry = {
        "command": "npx",
        "args": [
            "-y",
            "mcp-remote",
            URL,
            "8765",
            "--header",
            "Authorization: Bearer ${LINEAR_TOKEN}",
            "--static-oauth-client-info",
            '{"client_id": "toolgate-test", "client_secret": "client-secret-value"}',
        ],
        "env": {"LINEAR_TOKEN": "lin_api_secretvalue"},
    }
    _write(
        home / ".cursor" / "mcp.json",
        {
            "mcpServers": {
                "linear": entry,
                "atlassian": {"command": "npx", "args": ["-y", "mcp-remote", "https://mcp.atlassian.com/v1/sse"]},
            }
        },
    )
    monkeypatch.setenv("TOOLGATE_HOME", str(tmp_path / "toolgate"))
    paths = Paths.from_env()
    paths.ensure_dirs()
    paths.config_file.write_text("{}")
    store = open_secret_store(paths)

    servers, problems = found_in(home)
    plan = plan_import(servers, {"existing": ServerConfig(url="https://mcp.atlassian.com/v1/sse/")})
    config = apply_import(plan, paths.config_file, store)

    assert problems == {}
    linear = config.servers["linear"]
    assert (linear.url, linear.transport, linear.command) == (URL, "http", None)
    assert linear.headers == {"Authorization": "${secret:linear.Authorization}"}
    assert linear.oauth is not None
    assert (linear.oauth.client_id, linear.oauth.client_secret, linear.oauth.redirect_port) == (
        "toolgate-test",
        "${secret:linear.oauth.client_secret}",
        8765,
    )
    assert store.get("linear.Authorization") == "Bearer lin_api_secretvalue"
    assert store.get("linear.oauth.client_secret") == "client-secret-value"
    assert "secret-value" not in paths.config_file.read_text() and "secretvalue" not in paths.config_file.read_text()
    assert "atlassian" not in config.servers  # the same URL Toolgate already has
    assert [(server.name, name) for server, name in plan.already] == [("atlassian", "existing")]
    cursor_files = read_servers(next(f for f in _files(home) if f.client.id == client("cursor").id))[0]
    assert {server.via for server in cursor_files} == {"mcp-remote"}


def _files(home: Path) -> list[Any]:
    from gateway_core.clients.found import installed

    return list(installed(home=home, environ={}, platform="linux"))

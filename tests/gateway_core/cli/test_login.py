"""`toolgate login|logout`: what they refuse and say without a server to sign in to (the flow: tests/integration)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway_core.cli import main


def write_servers(home: Path, servers: dict[str, object]) -> None:
    (home / "config.json").write_text(json.dumps({"servers": servers}))


def test_login_to_a_server_that_is_not_configured_is_one_error_sentence(
    toolgate_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_servers(toolgate_home, {})

    assert main(["login", "github"]) == 1
    assert capsys.readouterr().err.startswith("Error: there is no server 'github' in ")


def test_login_to_a_stdio_server_says_only_remote_servers_sign_in(
    toolgate_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_servers(toolgate_home, {"local": {"command": "true"}})

    assert main(["login", "local"]) == 1
    assert "only http and sse servers sign in" in capsys.readouterr().err


def test_login_to_a_server_that_cannot_be_reached_fails_with_the_reason_and_stores_nothing(
    toolgate_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_servers(toolgate_home, {"remote": {"url": "http://127.0.0.1:9/mcp"}})

    assert main(["login", "remote", "--no-browser", "--timeout", "20"]) == 1
    assert "Error: cannot reach http://127.0.0.1:9/mcp: ConnectError" in capsys.readouterr().err
    assert not (toolgate_home / "secrets.json").exists()


def test_logout_when_not_signed_in_says_so_and_succeeds(
    toolgate_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_servers(toolgate_home, {"remote": {"url": "https://example.invalid/mcp"}})

    assert main(["logout", "remote"]) == 0
    assert "Toolgate was not signed in to remote." in capsys.readouterr().err

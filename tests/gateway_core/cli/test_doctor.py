"""``toolgate doctor``: the launch environment, and for each server whether its command is found and where."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway_core.cli import main


def executable(path: Path, text: str = "#!/bin/sh\nexit 0\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


def write_config(home: Path, servers: dict[str, object]) -> None:
    (home / "config.json").write_text(json.dumps({"servers": servers}))


def test_each_server_is_listed_with_where_its_command_is_or_why_it_is_not_found(
    toolgate_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    tools = tmp_path / "tools"
    executable(tools / "mcp-files")
    monkeypatch.setenv("PATH", f"{tools}:/usr/bin")
    write_config(
        toolgate_home,
        {
            "files": {"command": "mcp-files"},
            "fetch": {"command": "uvx", "args": ["mcp-server-fetch"], "env": {"PATH": "/nowhere"}},
            "remote": {"url": "http://127.0.0.1:9/mcp"},
            "old": {"command": "mcp-files", "enabled": False},
        },
    )

    code = main(["doctor"])

    assert code == 1
    assert capsys.readouterr().out.splitlines() == [
        "Launch environment: Toolgate's own environment",
        "  why: TOOLGATE_LAUNCH_ENV=inherit",
        f"  PATH: {tools}:/usr/bin",
        "",
        "Servers:",
        f"  files: mcp-files found at {tools}/mcp-files",
        "    PATH: the launch environment's",
        "  fetch: NOT FOUND: command 'uvx' not found (searched: /nowhere). "
        "uv provides uvx; install it or set the full path in the server's command",
        "    PATH: /nowhere (set in the server's env)",
        "  remote: http server at http://127.0.0.1:9/mcp, nothing to start",
        "  old: disabled",
    ]


def test_for_a_desktop_launch_it_reads_the_login_shell_and_finds_what_the_profile_puts_on_path(
    toolgate_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    tools = tmp_path / "home" / ".volta" / "bin"
    executable(tools / "npx")
    shell = executable(
        tmp_path / "shells" / "bash", f'#!/bin/sh\necho "motd"\nPATH="{tools}:$PATH"\nexec /bin/sh -c "$4"\n'
    )
    monkeypatch.delenv("TOOLGATE_LAUNCH_ENV")
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.setenv("SHELL", str(shell))
    write_config(
        toolgate_home, {"everything": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-everything"]}}
    )

    code = main(["doctor"])

    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out[:3] == [
        "Launch environment: the login shell",
        f"  why: started outside a terminal (desktop launch); read from {shell}",
        f"  PATH: {tools}:/usr/bin:/bin",
    ]
    assert f"  everything: npx found at {tools}/npx" in out


def test_when_the_login_shell_cannot_be_read_it_says_why_and_which_folders_were_added(
    toolgate_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    home = tmp_path / "home"
    (home / ".local" / "bin").mkdir(parents=True)
    monkeypatch.setenv("TOOLGATE_LAUNCH_ENV", "login-shell")
    monkeypatch.setenv("SHELL", "/bin/tcsh")
    monkeypatch.setenv("HOME", str(home))
    write_config(toolgate_home, {})

    code = main(["doctor"])

    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out[0] == "Launch environment: Toolgate's own PATH plus well-known tool folders"
    assert "the login shell /bin/tcsh is not one Toolgate can read" in out[1]
    assert out[3].startswith("  added: ") and f"{home}/.local/bin" in out[3]
    assert out[-1] == "  (none configured)"


def test_as_terminal_it_answers_for_the_tray_app_started_from_this_terminal(
    toolgate_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.delenv("TOOLGATE_LAUNCH_ENV")
    monkeypatch.setenv("SHELL", "/nonexistent/zsh")
    write_config(toolgate_home, {})

    code = main(["doctor", "--as", "terminal"])

    assert code == 0
    assert capsys.readouterr().out.splitlines()[1] == "  why: started from a terminal"

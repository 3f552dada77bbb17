"""A desktop launch: Toolgate's PATH is minimal, and a server whose command is only on the login shell's PATH starts."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

from gateway_core.downstream.base import ServerState
from gateway_core.launch.environment import PathSource, Surroundings, resolve_launch_environment
from tests.fakes.launch import FAKE_SERVER
from tests.integration.harness import running_gateway
from tests.integration.test_serve_process import add_agent, client_seeing, serving, write_config

pytestmark = pytest.mark.anyio

MINIMAL_PATH = "/usr/bin:/bin"  # what macOS gives an app started from Finder


def executable(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


def desktop_launch(tmp_path: Path) -> Surroundings:
    """A tray app started from the Dock: no terminal, a minimal PATH, and a login shell whose profile adds
    the folder where the server's command (``fake-mcp``) lives."""
    tools = tmp_path / "home" / ".local" / "bin"
    executable(tools / "fake-mcp", f'#!/bin/sh\nexec "{sys.executable}" "{FAKE_SERVER}" "$@"\n')
    profile = f'echo "Last login: today"; PATH="{tools}:$PATH"; export PATH'
    shell = executable(tmp_path / "shells" / "zsh", f'#!/bin/sh\n{profile}\nexec /bin/sh -c "$4"\n')
    environ = {"PATH": MINIMAL_PATH, "HOME": str(tmp_path / "home"), "SHELL": str(shell)}
    return Surroundings(environ=environ, windows=False, has_terminal=lambda: False)


async def test_a_server_whose_command_is_only_on_the_login_shells_path_reaches_ready(tmp_path: Path):
    launch = resolve_launch_environment(gui=True, around=desktop_launch(tmp_path))
    assert launch.source is PathSource.LOGIN_SHELL

    async with running_gateway({"fake": {"command": "fake-mcp"}}, launch=launch) as gw:
        await gw.wait_ready("fake")

        assert gw.status("fake").tools > 0


async def test_without_the_login_shell_the_same_server_fails_saying_where_it_looked(tmp_path: Path):
    environ = desktop_launch(tmp_path).environ
    launch = resolve_launch_environment(gui=True, around=Surroundings(environ=environ, has_terminal=lambda: True))

    async with running_gateway({"fake": {"command": "fake-mcp"}}, launch=launch) as gw:
        await gw.wait_state("fake", ServerState.FAILED)

        assert gw.status("fake").reason == (
            "command 'fake-mcp' not found (searched: /usr/bin, /bin). "
            "Install it or set the full path in the server's command"
        )


@pytest.mark.skipif(sys.platform == "win32", reason="a POSIX login shell")
async def test_toolgate_serve_told_to_read_the_login_shell_starts_a_server_only_its_profile_puts_on_path(
    toolgate_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    environ = desktop_launch(tmp_path).environ
    for name in ("PATH", "HOME", "SHELL"):
        monkeypatch.setenv(name, environ[name])
    monkeypatch.setenv("TOOLGATE_LAUNCH_ENV", "login-shell")  # serve reads it only when told to
    write_config(toolgate_home, {"fake": {"command": "fake-mcp"}})
    token = add_agent("desk-agent", toolgate_home)

    with serving() as (process, url):
        async with client_seeing(url, token, "fake__echo") as client:
            result = await client.call_tool("fake__echo", {"text": "hi"})
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0

    assert not result.is_error

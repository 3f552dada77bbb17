"""End to end: a gateway in front of a real OAuth-protected server, and `toolgate login|logout` as real processes.

The browser is ``tests/fakes/scripted_browser.py``, given to Python's ``webbrowser`` through ``BROWSER``.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp.shared.exceptions import MCPError

from gateway_core.downstream.base import ServerState
from gateway_core.downstream.oauth import SignIns
from gateway_core.errors import ErrorCode
from gateway_core.paths import Paths
from gateway_core.secrets import FileSecretStore
from tests.fakes.launch import read_first_line, serve_oauth
from tests.integration import cli_process
from tests.integration.harness import agent_client, running_gateway, text_of
from tests.integration.test_serve_process import add_agent, client_seeing, write_config

pytestmark = pytest.mark.anyio

SCRIPTED_BROWSER = Path(__file__).parents[1] / "fakes" / "scripted_browser.py"
CLI_TIMEOUT_S = 60.0


async def toolgate(*args: str) -> tuple[int, str]:
    """Run the ``toolgate`` command with the scripted browser; its exit code and everything it printed."""
    env = {**os.environ, "BROWSER": f"{sys.executable} {SCRIPTED_BROWSER} %s"}
    with anyio.fail_after(CLI_TIMEOUT_S):
        done = await anyio.run_process([sys.executable, "-m", "gateway_core.cli", *args], env=env, check=False)
    return done.returncode, done.stdout.decode() + done.stderr.decode()


def stored_token_values(home: Path) -> set[str]:
    secrets = json.loads((home / "secrets.json").read_text())
    token = json.loads(secrets["oauth.remote.tokens"])["token"]
    return {token["access_token"], token["refresh_token"]}


def files_holding(home: Path, values: set[str]) -> list[Path]:
    """Files under ``home`` other than the secret store in which any of ``values`` appears."""
    return [
        path
        for path in home.rglob("*")
        if path.is_file()
        and path.name != "secrets.json"
        and not path.is_socket()
        and any(value.encode() in path.read_bytes() for value in values)
    ]


async def test_sign_in_from_needs_sign_in_to_tools_to_silent_refresh_to_sign_out_keeps_tokens_in_the_store_only(
    toolgate_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    printed: list[str] = []
    tokens: set[str] = set()
    with serve_oauth() as oauth:
        base = oauth.url.removesuffix("/mcp")
        async with running_gateway({"remote": {"url": oauth.url, "type": "http"}}) as gw:
            await gw.wait_state("remote", ServerState.NEEDS_SIGN_IN)
            async with httpx2.AsyncClient() as http:
                ready = (await http.get(gw.base + "/ready")).json()

            code, output = await toolgate("login", "remote")
            printed.append(output)
            assert code == 0, output
            tokens |= stored_token_values(toolgate_home)
            await gw.wait_ready("remote")
            async with agent_client(gw.url, gw.tokens["agent-a"]) as agent:
                listed = {tool.name for tool in (await agent.list_tools()).tools}
                whoami = await agent.call_tool("remote__whoami", {})
                async with httpx2.AsyncClient() as http:
                    (await http.post(base + "/test/expire")).raise_for_status()
                after_expiry = await agent.call_tool("remote__echo", {"text": "still signed in"})
            tokens |= stored_token_values(toolgate_home)

            code, output = await toolgate("logout", "remote")
            printed.append(output)
            assert code == 0, output
            await gw.wait_state("remote", ServerState.NEEDS_SIGN_IN)
            async with agent_client(gw.url, gw.tokens["agent-a"]) as agent:
                with pytest.raises(MCPError) as refused:
                    await agent.call_tool("remote__whoami", {})
            status = gw.status("remote")
        async with httpx2.AsyncClient() as http:
            stats = (await http.get(base + "/test/stats")).json()

    assert ready["servers"] == {"remote": "needs sign-in"}
    assert "The running Toolgate connects to it now." in printed[0]  # told through the control channel
    assert "The running Toolgate stops using them now." in printed[1]
    assert {"remote__whoami", "remote__echo"} <= listed
    assert text_of(whoami) and not whoami.is_error
    assert text_of(after_expiry) == "still signed in" and stats["refreshed"] == 1
    assert len(tokens) == 4  # two pairs: the sign-in's, and the refresh's (rotated)
    assert stats["revoked"] >= 1 and stats["live"] == 0
    assert status.sign_in_at == base
    assert refused.value.error.code == ErrorCode.SERVER_UNAVAILABLE
    assert "sign in to remote first (toolgate login remote)" in refused.value.error.message
    assert files_holding(toolgate_home, tokens) == []
    assert not any(token in caplog.text or token in "".join(printed) for token in tokens)


async def test_a_pre_registered_client_and_a_client_credentials_server_keep_tokens_and_the_client_secret_in_the_store(
    toolgate_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client_secret = "the-pre-registered-client-secret"
    FileSecretStore(Paths.from_env().secrets_file).set("shared.client", client_secret)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    person = f"desktop:{client_secret}:http://127.0.0.1:{port}/callback"
    robot = f"robot:{client_secret}:http://127.0.0.1:1/callback"
    with (
        serve_oauth("--client", person, "--no-registration") as pre,
        serve_oauth("--client", robot, "--client-credentials") as machine,
    ):
        oauth = {"client_id": "desktop", "client_secret": "${secret:shared.client}", "redirect_port": port}
        m2m = {
            "grant": "client_credentials",
            "client_id": "robot",
            "client_secret": "${secret:shared.client}",
            "issuer": machine.url.removesuffix("/mcp"),
        }
        servers = {"pre": {"url": pre.url, "oauth": oauth}, "robot": {"url": machine.url, "oauth": m2m}}
        async with running_gateway(servers) as gw:
            await gw.wait_ready("robot")
            await gw.wait_state("pre", ServerState.NEEDS_SIGN_IN)
            code, output = await toolgate("login", "pre")
            assert code == 0, output
            await gw.wait_ready("pre")
            async with agent_client(gw.url, gw.tokens["agent-a"]) as agent:
                pre_whoami = await agent.call_tool("pre__whoami", {})
                robot_whoami = await agent.call_tool("robot__whoami", {})
            code, logout_output = await toolgate("logout", "pre")
            assert code == 0, logout_output
        secrets = json.loads((toolgate_home / "secrets.json").read_text())
        values = {client_secret}
        for name in ("pre", "robot"):
            token = json.loads(secrets.get(f"oauth.{name}.tokens", "{}")).get("token", {})
            values |= {value for key, value in token.items() if key in ("access_token", "refresh_token") and value}
        async with httpx2.AsyncClient() as http:
            pre_stats = (await http.get(pre.url.removesuffix("/mcp") + "/test/stats")).json()

    assert (text_of(pre_whoami), text_of(robot_whoami)) == ("desktop", "robot")
    assert pre_stats["registered"] == 0 and pre_stats["revoked"] >= 1
    assert "oauth.pre.client" not in secrets and "oauth.pre.tokens" not in secrets
    assert len(values) >= 2  # the secret and the robot's token
    assert files_holding(toolgate_home, values) == []
    assert not any(value in caplog.text or value in output + logout_output for value in values)


class LogLines:
    """The lines a process writes to stderr, read by a thread; a test waits, bounded, for one to come."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        assert process.stderr is not None
        self.lines: list[str] = []
        self._seen = threading.Condition()
        self._stream = process.stderr
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def close(self) -> None:
        """Once the process ended: read what is left and close the pipe."""
        self._reader.join(CLI_TIMEOUT_S)
        self._stream.close()

    def _read(self) -> None:
        for line in self._stream:
            with self._seen:
                self.lines.append(line)
                self._seen.notify_all()

    def _wait_sync(self, text: str, after: int, timeout_s: float) -> int:
        with self._seen:
            found = self._seen.wait_for(lambda: any(text in line for line in self.lines[after:]), timeout=timeout_s)
            assert found, f"no log line with {text!r} within {timeout_s} s: {self.lines[after:]}"
            return len(self.lines)

    async def wait_for(self, text: str, *, after: int = 0) -> int:
        """Wait for a line holding ``text`` among lines number ``after`` on; how many lines there are then."""
        return await anyio.to_thread.run_sync(self._wait_sync, text, after, CLI_TIMEOUT_S)


@contextmanager
def serving_logged() -> Iterator[tuple[str, LogLines]]:
    """Start ``toolgate serve``; yield the endpoint URL it printed and its log (its stderr, line by line)."""
    command = [sys.executable, "-m", "gateway_core.cli", "serve"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = LogLines(process)
    try:
        line = read_first_line(process, CLI_TIMEOUT_S)
        assert line.startswith("Toolgate is serving MCP at "), (line, log.lines)
        yield line.split()[-1], log
    finally:
        process.terminate()
        process.wait(CLI_TIMEOUT_S)
        process.stdout.close()  # type: ignore[union-attr]
        log.close()


@pytest.mark.skipif(sys.platform == "win32", reason="reads the serving process's stderr through a pipe")
async def test_toolgate_serve_as_a_process_needs_a_sign_in_until_login_refreshes_silently_and_needs_one_after_logout(
    toolgate_home: Path,
) -> None:
    printed: list[str] = []
    tokens: set[str] = set()
    with serve_oauth() as oauth:
        base = oauth.url.removesuffix("/mcp")
        write_config(toolgate_home, {"remote": {"url": oauth.url, "type": "http"}})
        agent_token = add_agent("cli-agent", toolgate_home)
        with serving_logged() as (url, log):
            seen = await log.wait_for("server 'remote' needs a sign-in")
            code, before, _ = await cli_process.toolgate("status", "--json")
            assert code == 0, before

            code, output = await toolgate("login", "remote")
            printed.append(output)
            assert code == 0, output
            tokens |= stored_token_values(toolgate_home)
            async with client_seeing(url, agent_token, "remote__whoami") as agent:
                listed = {tool.name for tool in (await agent.list_tools()).tools}
                whoami = await agent.call_tool("remote__whoami", {})
                async with httpx2.AsyncClient() as http:
                    (await http.post(base + "/test/expire")).raise_for_status()
                after_expiry = await agent.call_tool("remote__echo", {"text": "still signed in"})
            tokens |= stored_token_values(toolgate_home)

            code, output = await toolgate("logout", "remote")
            printed.append(output)
            assert code == 0, output
            await log.wait_for("server 'remote' needs a sign-in", after=seen)
            code, after, _ = await cli_process.toolgate("status", "--json")
            assert code == 0, after
            async with agent_client(url, agent_token) as agent:
                with pytest.raises(MCPError) as refused:
                    await agent.call_tool("remote__whoami", {})
            async with httpx2.AsyncClient() as http:
                stats = (await http.get(base + "/test/stats")).json()

    remote_before = {s["name"]: s for s in json.loads(before)["servers"]}["remote"]
    remote_after = {s["name"]: s for s in json.loads(after)["servers"]}["remote"]
    assert remote_before["state"] == remote_after["state"] == "needs sign-in"
    assert remote_before["sign_in_at"] == remote_after["sign_in_at"] == base
    assert "toolgate login remote" in remote_before["reason"]
    assert "The running Toolgate connects to it now." in printed[0]
    assert {"remote__whoami", "remote__echo"} <= listed and not whoami.is_error
    assert text_of(after_expiry) == "still signed in" and stats["refreshed"] == 1
    assert len(tokens) == 4  # the sign-in's pair and the refresh's (rotated)
    assert stats["revoked"] >= 1 and stats["live"] == 0
    assert "sign in to remote first (toolgate login remote)" in refused.value.error.message
    assert files_holding(toolgate_home, tokens) == []
    assert log.lines and not any(token in line for token in tokens for line in log.lines + printed)


async def test_each_agents_instance_of_a_per_agent_server_uses_its_one_sign_in_and_one_refresh_serves_them_all(
    toolgate_home: Path,
) -> None:
    answers: dict[str, str] = {}
    with serve_oauth() as oauth:
        base = oauth.url.removesuffix("/mcp")
        servers = {"remote": {"url": oauth.url, "type": "http", "isolation": "per_agent"}}
        async with running_gateway(servers, agents=("agent-a", "agent-b")) as gw:
            await gw.wait_state("remote", ServerState.NEEDS_SIGN_IN)
            code, output = await toolgate("login", "remote")
            assert code == 0, output
            await gw.wait_ready("remote")
            async with (
                agent_client(gw.url, gw.tokens["agent-a"]) as a,
                agent_client(gw.url, gw.tokens["agent-b"]) as b,
            ):
                agents = {"agent-a": a, "agent-b": b}
                for agent_id, agent in agents.items():
                    answers[f"{agent_id} whoami"] = text_of(await agent.call_tool("remote__whoami", {}))
                instances = gw.gateway.instance_agents("remote")
                async with httpx2.AsyncClient() as http:
                    (await http.post(base + "/test/expire")).raise_for_status()

                async def call(agent_id: str) -> None:
                    result = await agents[agent_id].call_tool("remote__echo", {"text": agent_id})
                    answers[f"{agent_id} after expiry"] = text_of(result)

                async with anyio.create_task_group() as tg:  # both instances meet the expired token at once
                    for agent_id in agents:
                        tg.start_soon(call, agent_id)
            record = SignIns(FileSecretStore(Paths.from_env().secrets_file)).of("remote").record()
            status = gw.status("remote")
        async with httpx2.AsyncClient() as http:
            stats = (await http.get(base + "/test/stats")).json()

    assert instances == ["agent-a", "agent-b"]  # each agent its own instance
    assert answers["agent-a whoami"] == answers["agent-b whoami"]  # of the one client, signed in once
    assert answers["agent-a after expiry"] == "agent-a" and answers["agent-b after expiry"] == "agent-b"
    assert stats["refreshed"] == 1 and stats["codes"] == 1  # one refresh served every instance
    assert record is not None and status.state is ServerState.READY  # nobody was signed out by a reused token

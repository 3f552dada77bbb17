"""Faults are survived and explained: a server that is down keeps its names, and says why."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp.shared.exceptions import MCPError

from gateway_core.downstream.base import ServerState
from gateway_core.errors import ErrorCode
from tests.fakes.launch import fake_command
from tests.integration.harness import agent_client, running_gateway, stdio_fake

pytestmark = pytest.mark.anyio


def runs_once(tmp_path: Path) -> dict[str, Any]:
    """The fake server the first time it is started; every later start fails, saying so on stderr."""
    marker = tmp_path / "started-once"
    command, args = fake_command()
    script = (
        "import os, pathlib, sys\n"
        f"marker = pathlib.Path({str(marker)!r})\n"
        "if marker.exists():\n"
        "    sys.exit('this server does not come back')\n"
        "marker.touch()\n"
        "os.execv(sys.argv[1], sys.argv[1:])\n"
    )
    return {"command": sys.executable, "args": ["-c", script, command, *args]}


async def test_a_call_to_a_server_that_went_down_names_the_server_and_why_not_an_unknown_tool(tmp_path: Path):
    async with running_gateway({"fake": runs_once(tmp_path)}) as gw:
        await gw.wait_ready()
        async with agent_client(gw.url, gw.tokens["agent-a"]) as client:
            with anyio.fail_after(10):
                await client.call_tool("fake__crash", {})
            await gw.wait_state("fake", ServerState.FAILED)
            with pytest.raises(MCPError) as down:
                await client.call_tool("fake__echo", {"text": "anyone there?"})
            with pytest.raises(MCPError) as prompt_down:
                await client.get_prompt("fake__greet", {"name": "x"})
            unknown = await client.call_tool("nobody__echo", {})

    assert down.value.error.code == ErrorCode.SERVER_UNAVAILABLE
    assert "server 'fake' is not ready" in down.value.error.message  # failed, or starting again
    assert prompt_down.value.error.code == ErrorCode.SERVER_UNAVAILABLE
    assert unknown.is_error is True
    assert (unknown.meta or {})["toolgate/code"] == ErrorCode.TOOL_NOT_FOUND


async def test_a_call_to_a_server_that_never_started_names_it_by_its_prefix():
    servers = {"broken": {"command": "/nonexistent/toolgate-test-server"}, "fake": stdio_fake()}
    async with running_gateway(servers) as gw:
        await gw.wait_state("broken", ServerState.FAILED)
        await gw.wait_ready("fake")
        async with agent_client(gw.url, gw.tokens["agent-a"]) as client:
            with pytest.raises(MCPError) as down:
                await client.call_tool("broken__anything", {})

    assert down.value.error.code == ErrorCode.SERVER_UNAVAILABLE
    assert "server 'broken' is not ready" in down.value.error.message


async def test_a_down_servers_tools_stay_unknown_to_an_agent_denied_them(tmp_path: Path):
    policies = {"agent-b": {"rules": [{"match": "fake/echo", "effect": "deny"}]}}
    async with running_gateway({"fake": runs_once(tmp_path)}, agents=("agent-a", "agent-b"), policies=policies) as gw:
        await gw.wait_ready()
        async with agent_client(gw.url, gw.tokens["agent-a"]) as client:
            with anyio.fail_after(10):
                await client.call_tool("fake__crash", {})
        await gw.wait_state("fake", ServerState.FAILED)
        async with agent_client(gw.url, gw.tokens["agent-b"]) as client:
            denied_tool = await client.call_tool("fake__echo", {})

    assert denied_tool.is_error is True  # an unknown tool to this agent, though its server is down
    assert (denied_tool.meta or {})["toolgate/code"] == ErrorCode.TOOL_NOT_FOUND

"""Approvals are answered only where the person's own Toolgate tools reach, and servers inherit nothing to do it."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import anyio
import httpx2
import pytest

from gateway_core.cli.control_client import ControlClient
from gateway_core.control_file import ControlError, read_control_file
from gateway_core.downstream.base import ServerState
from tests.integration.harness import agent_client, running_gateway, stdio_fake

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(os.name == "nt", reason="the control socket is POSIX; Windows keeps the port and token"),
]


async def test_approvals_are_served_on_a_private_socket_and_not_on_the_agent_port():
    async with running_gateway({"fake": stdio_fake()}) as gw:
        await gw.wait_ready()
        endpoint = read_control_file(gw.paths)
        async with httpx2.AsyncClient() as http:
            on_port = await http.get(
                gw.base + "/control/approvals", headers={"Authorization": f"Bearer {endpoint.token}"}
            )
        pending = await anyio.to_thread.run_sync(ControlClient(endpoint).pending)
        async with agent_client(gw.url, gw.tokens["agent-a"]) as good:
            served = await good.call_tool("fake__echo", {"text": "still served"})

    assert endpoint.socket is not None
    assert on_port.status_code == 404 and "control socket" in on_port.json()["error"]
    assert pending == []
    assert served.structured_content == {"text": "still served"}
    assert not await anyio.Path(endpoint.socket).exists()  # removed when the gateway stopped


async def test_telling_the_gateway_of_a_sign_in_names_a_configured_server_or_is_refused_with_the_reason():
    async with running_gateway({"fake": stdio_fake()}) as gw:
        await gw.wait_ready()
        client = ControlClient(read_control_file(gw.paths))
        await anyio.to_thread.run_sync(client.sign_in_changed, "fake")
        with pytest.raises(ControlError) as refused:
            await anyio.to_thread.run_sync(client.sign_in_changed, "no/such server")
        async with agent_client(gw.url, gw.tokens["agent-a"]) as agent:
            served = await agent.call_tool("fake__echo", {"text": "unchanged"})

    assert "there is no enabled server 'no/such server'" in str(refused.value)
    assert served.structured_content == {"text": "unchanged"}


async def test_the_control_socket_is_private_to_its_user_while_the_gateway_runs():
    async with running_gateway({}) as gw:
        endpoint = read_control_file(gw.paths)
        assert endpoint.socket is not None
        socket_stat = os.stat(endpoint.socket)
        folder_stat = os.stat(Path(endpoint.socket).parent)

    assert stat.S_ISSOCK(socket_stat.st_mode) and stat.S_IMODE(socket_stat.st_mode) == 0o600
    assert stat.S_IMODE(folder_stat.st_mode) == 0o700


async def test_a_stdio_server_inherits_no_toolgate_variable_or_descriptor(tmp_path: Path):
    report = tmp_path / "inherited.json"
    script = (
        "import json, os, sys\n"
        "fds = sorted(int(fd) for fd in os.listdir('/proc/self/fd')) if os.path.isdir('/proc/self/fd') else []\n"
        "json.dump({'env': dict(os.environ), 'fds': fds}, open(sys.argv[1], 'w'))\n"
    )
    server = {"command": sys.executable, "args": ["-c", script, str(report)]}
    async with running_gateway({"nosy": server}) as gw:
        await gw.wait_state("nosy", ServerState.FAILED)  # it exits at once: it only looked around
        token = read_control_file(gw.paths).token
    inherited = json.loads(report.read_text())

    assert not [name for name in inherited["env"] if name.startswith("TOOLGATE")]
    assert not [value for value in inherited["env"].values() if token in value]
    # stdin, stdout, stderr, and the descriptor that lists them (and the report file being written)
    assert len([fd for fd in inherited["fds"] if fd > 2]) <= 2

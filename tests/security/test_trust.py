"""Nothing is trusted before it has proven itself: the gateway a shim talks to, the tokens a request brings."""

from __future__ import annotations

import json
import os
from pathlib import Path

import anyio
import pytest
from mcp import Client

from tests.integration.test_shim import WAIT_S, a_home_with_agent_a, shim_finding_its_gateway, squatter, stop_process

pytestmark = pytest.mark.anyio


@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="waits for the detached gateway with a Linux pidfd")
async def test_the_shim_never_sends_the_token_to_another_process_on_the_published_port(toolgate_home: Path):
    # Toolgate died leaving its control file, and another process took its port: it answers every
    # request, but cannot prove it holds the control key. The shim starts its own Toolgate instead.
    paths, token = a_home_with_agent_a(toolgate_home)
    control = paths.state_dir / "control.json"
    async with squatter() as (url, received):
        paths.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        control.write_text(json.dumps({"url": url, "token": "the-dead-gateways-key", "pid": 1}))
        control.chmod(0o600)
        try:
            with anyio.fail_after(WAIT_S):
                async with Client(shim_finding_its_gateway(toolgate_home, token), mode="legacy", cache=None) as client:
                    server_name = client.server_info.name
                    await client.list_tools()
        finally:
            if json.loads(control.read_text())["url"] != url:
                await stop_process(json.loads(control.read_text())["pid"])

    assert server_name == "toolgate"
    assert received, "the shim did not try the published address first"
    everything = b"".join(received)
    assert token.encode() not in everything and b"authorization" not in everything.lower()
    assert all(request.startswith(b"POST /control/identity ") for request in received)

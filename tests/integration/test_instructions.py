"""The servers' ``instructions`` reach each agent merged, limited to the servers it may use, in both eras."""

from __future__ import annotations

import json
from typing import Any

import pytest
from mcp_types.version import LATEST_HANDSHAKE_VERSION, LATEST_PROTOCOL_VERSION

from gateway_core.config import load_config
from tests.integration.harness import agent_client, running_gateway, stdio_fake

pytestmark = pytest.mark.anyio

ZETA = "Call zeta's tools only after the person said yes.\n\n- one\n- two"
ALPHA = "Alpha's echo repeats what it is given."
SERVERS = {
    "zeta": stdio_fake("--instructions", ZETA),
    "alpha": stdio_fake("--instructions", ALPHA),
    "plain": stdio_fake(),
}
POLICIES = {
    "no-alpha": {"default": "allow", "rules": [{"match": "alpha/*", "effect": "deny"}]},
    "one-alpha-tool": {"default": "deny", "rules": [{"match": "alpha/echo", "effect": "allow"}]},
}
# A client pinned to 2026-07-28 sends no server/discover; "auto" does, and gets 2026-07-28 from the gateway.
CONNECTS = {"legacy": LATEST_HANDSHAKE_VERSION, "auto": LATEST_PROTOCOL_VERSION}
ZETA_SECTION = f"## zeta (its tools and prompts are named zeta__…)\n\n{ZETA}"
ALPHA_SECTION = f"## alpha (its tools and prompts are named alpha__…)\n\n{ALPHA}"


async def instructions_given(url: str, token: str, mode: str) -> Any:
    async with agent_client(url, token, mode=mode) as client:
        assert client.protocol_version == CONNECTS[mode]
        return client.instructions


@pytest.mark.parametrize("mode", CONNECTS)
async def test_each_agent_gets_the_instructions_of_the_servers_it_may_use_in_config_order(mode: str):
    agents = ("everything", "no-alpha", "one-alpha-tool")
    async with running_gateway(SERVERS, agents=agents, policies=POLICIES) as gw:
        await gw.wait_ready()
        given = {agent: await instructions_given(gw.url, gw.tokens[agent], mode) for agent in agents}
    assert given == {
        "everything": f"{ZETA_SECTION}\n\n{ALPHA_SECTION}",
        "no-alpha": ZETA_SECTION,
        "one-alpha-tool": ALPHA_SECTION,
    }


@pytest.mark.parametrize("mode", CONNECTS)
async def test_an_agent_gets_no_instructions_when_no_server_it_may_use_gives_any(mode: str):
    policies = {"agent-a": {"default": "allow", "rules": [{"match": "zeta/*", "effect": "deny"}]}}
    servers = {"zeta": SERVERS["zeta"], "plain": SERVERS["plain"]}
    async with running_gateway(servers, policies=policies) as gw:
        await gw.wait_ready()
        assert await instructions_given(gw.url, gw.tokens["agent-a"], mode) is None


async def test_a_server_ready_later_is_in_the_next_discover_and_the_next_sessions_instructions():
    servers = {"zeta": SERVERS["zeta"], "alpha": {**SERVERS["alpha"], "enabled": False}}
    async with running_gateway(servers) as gw:
        await gw.wait_ready("zeta")
        token = gw.tokens["agent-a"]
        async with agent_client(gw.url, token, mode="auto") as modern:
            before = modern.instructions
            raw = json.loads(gw.paths.config_file.read_text())
            raw["servers"]["alpha"]["enabled"] = True
            gw.paths.config_file.write_text(json.dumps(raw))
            gw.gateway.apply_config(load_config(gw.paths.config_file))
            await gw.wait_ready("alpha")
            rediscovered = await modern.session.send_discover(LATEST_PROTOCOL_VERSION)
        after = await instructions_given(gw.url, token, "legacy")
    assert before == ZETA_SECTION
    assert rediscovered["instructions"] == after == f"{ZETA_SECTION}\n\n{ALPHA_SECTION}"

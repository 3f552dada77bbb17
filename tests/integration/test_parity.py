"""The same scenarios, straight to a server and through the gateway, give the same results.

The gateway fronts each server with an empty prefix, so names match and results can be compared
whole (as dumped to the wire).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from mcp import Client, StdioServerParameters

from tests.integration.harness import BOTH_ERAS, Mode, agent_client, running_gateway, stdio_fake, time_server

pytestmark = pytest.mark.anyio

Scenario = Callable[[Client], Awaitable[Any]]


def wire(result: Any) -> Any:
    """A result as sent on the wire, minus the identity stamp each server puts on 2026 results."""
    dumped = result.model_dump(by_alias=True, mode="json", exclude_none=True)
    meta = dumped.pop("_meta", None) or {}
    meta.pop("io.modelcontextprotocol/serverInfo", None)
    if meta:
        dumped["_meta"] = meta
    return dumped


async def fake_scenarios(client: Client) -> list[Any]:
    tools = await client.list_tools()
    return [
        wire(tools),
        wire(await client.call_tool("echo", {"text": "parity"})),
        wire(await client.call_tool("add", {"a": 40, "b": 2})),
        wire(await client.call_tool("fail", {})),
        wire(await client.list_resources()),
        wire(await client.list_resource_templates()),
        wire(await client.read_resource("fake://greeting")),
        wire(await client.read_resource("fake://items/3")),
        wire(await client.list_prompts()),
        wire(await client.get_prompt("greet", {"name": "Grace"})),
    ]


async def time_scenarios(client: Client) -> list[Any]:
    return [
        wire(await client.list_tools()),
        wire(
            await client.call_tool(
                "convert_time", {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"}
            )
        ),
        wire(
            await client.call_tool(
                "convert_time", {"source_timezone": "Nowhere/Atlantis", "time": "12:00", "target_timezone": "UTC"}
            )
        ),
    ]


@asynccontextmanager
async def direct(entry: dict[str, Any], mode: Mode) -> AsyncIterator[Client]:
    params = StdioServerParameters(command=entry["command"], args=entry["args"])
    async with Client(params, mode=mode, cache=None) as client:
        yield client


async def run_both_ways(entry: dict[str, Any], scenarios: Scenario, mode: Mode) -> tuple[Any, Any]:
    async with direct(entry, mode) as client:
        straight = await scenarios(client)
    async with running_gateway({"srv": {**entry, "prefix": ""}}) as gw:
        await gw.wait_ready()
        async with agent_client(gw.url, gw.tokens["agent-a"], mode=mode) as client:
            through = await scenarios(client)
    return straight, through


@pytest.mark.parametrize("mode", BOTH_ERAS)
async def test_the_fake_server_answers_the_same_through_the_gateway(mode: Mode):
    straight, through = await run_both_ways(stdio_fake(), fake_scenarios, mode)

    assert through == straight


@pytest.mark.parametrize("mode", BOTH_ERAS)
async def test_mcp_server_time_answers_the_same_through_the_gateway(mode: Mode):
    straight, through = await run_both_ways(time_server(), time_scenarios, mode)

    assert through == straight

"""The npm reference server's subscriptions, log messages and binary resources through the gateway."""

from __future__ import annotations

import base64

import anyio
import mcp_types as types
import pytest

from tests.fakes.third_party import everything_server
from tests.integration.harness import agent_client, running_gateway
from tests.integration.test_server_notices import Inbox, set_level, subscribe

pytestmark = pytest.mark.anyio

DOCUMENT = "demo://resource/static/document/architecture.md"


def everything() -> dict[str, object]:
    return {"command": str(everything_server()), "args": ["stdio"]}


async def test_server_everythings_resource_updates_and_log_messages_reach_the_agent_that_asked():
    inbox, logs = Inbox(), Inbox()

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        await logs.handler(types.LoggingMessageNotification(params=params))

    async with running_gateway({"everything": everything()}) as gw:
        await gw.wait_ready()
        async with agent_client(
            gw.url, gw.tokens["agent-a"], message_handler=inbox.handler, logging_callback=on_log
        ) as client:
            await subscribe(client, DOCUMENT)
            await set_level(client, "debug")
            # Each toggle sends its first notice at once (then every 5 s until toggled off).
            await client.call_tool("everything__toggle-subscriber-updates", {})
            update = await inbox.wait_for(types.ResourceUpdatedNotification)
            await client.call_tool("everything__toggle-subscriber-updates", {})
            await client.call_tool("everything__toggle-simulated-logging", {})
            log = await logs.wait_for(types.LoggingMessageNotification)
            await client.call_tool("everything__toggle-simulated-logging", {})
    assert update.params.uri == DOCUMENT
    assert log.params.logger.startswith("everything")


async def test_a_binary_resource_from_a_template_arrives_intact():
    async with running_gateway({"everything": everything()}) as gw:
        await gw.wait_ready()
        async with agent_client(gw.url, gw.tokens["agent-a"], mode="2026-07-28") as client:
            with anyio.fail_after(20):
                result = await client.read_resource("demo://resource/dynamic/blob/2")
    content = result.contents[0]
    assert isinstance(content, types.BlobResourceContents)
    assert base64.b64decode(content.blob).decode().startswith("Resource 2: This is a base64 blob")

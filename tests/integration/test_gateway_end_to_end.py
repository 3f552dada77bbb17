"""Agents of both protocol eras use every configured server through one gateway endpoint."""

from __future__ import annotations

import anyio
import mcp_types as types
import pytest

from gateway_core.downstream.base import ServerState
from gateway_core.errors import ErrorCode
from tests.fakes.launch import serve_fake
from tests.fakes.third_party import everything_server
from tests.integration.harness import BOTH_ERAS, Mode, agent_client, running_gateway, stdio_fake, time_server

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("mode", BOTH_ERAS)
async def test_agent_sees_and_calls_tools_of_stdio_http_sse_and_third_party_servers(mode: Mode):
    with serve_fake("http") as remote, serve_fake("sse") as legacy:
        servers = {
            "local": stdio_fake(),
            "remote": {"url": remote.url},
            "legacy": {"url": legacy.url, "type": "sse"},
            "time": time_server(),
        }
        async with running_gateway(servers) as gw:
            await gw.wait_ready()
            async with agent_client(gw.url, gw.tokens["agent-a"], mode=mode) as client:
                names = {tool.name for tool in (await client.list_tools()).tools}
                local = await client.call_tool("local__echo", {"text": "hi"})
                remote_result = await client.call_tool("remote__add", {"a": 2, "b": 3})
                legacy_result = await client.call_tool("legacy__echo", {"text": "over sse"})
                now = await client.call_tool("time__get_current_time", {"timezone": "UTC"})

    assert {"local__echo", "remote__echo", "legacy__echo", "time__get_current_time", "time__convert_time"} <= names
    assert legacy_result.structured_content == {"text": "over sse"}
    assert local.structured_content == {"text": "hi"}
    assert [c.text for c in remote_result.content if isinstance(c, types.TextContent)] == ["5"]
    assert not now.is_error and "UTC" in now.content[0].text  # type: ignore[union-attr]


@pytest.mark.parametrize("mode", BOTH_ERAS)
async def test_resources_templates_and_prompts_are_served_and_routed_back(mode: Mode):
    async with running_gateway({"fake": stdio_fake()}) as gw:
        await gw.wait_ready()
        async with agent_client(gw.url, gw.tokens["agent-a"], mode=mode) as client:
            resources = await client.list_resources()
            templates = await client.list_resource_templates()
            greeting = await client.read_resource("fake://greeting")
            item = await client.read_resource("fake://items/7")
            prompts = await client.list_prompts()
            prompt = await client.get_prompt("fake__greet", {"name": "Ada"})

    assert [r.uri for r in resources.resources] == ["fake://greeting"]
    assert [t.uri_template for t in templates.resource_templates] == ["fake://items/{id}"]
    assert greeting.contents[0].uri == "fake://greeting"
    assert "7" in item.contents[0].text  # type: ignore[union-attr]
    assert [p.name for p in prompts.prompts] == ["fake__greet"]
    assert "Ada" in prompt.messages[0].content.text  # type: ignore[union-attr]


async def test_tool_errors_and_structured_results_pass_through_unchanged():
    async with running_gateway({"fake": stdio_fake()}) as gw:
        await gw.wait_ready()
        async with agent_client(gw.url, gw.tokens["agent-a"]) as client:
            failed = await client.call_tool("fake__fail", {})
            echoed = await client.call_tool("fake__echo", {"text": "x"})

    assert failed.is_error is True
    assert echoed.is_error in (None, False)
    assert echoed.structured_content == {"text": "x"}


@pytest.mark.parametrize("mode", BOTH_ERAS)
async def test_unknown_tool_is_an_error_result_naming_the_tool(mode: Mode):
    async with running_gateway({"fake": stdio_fake()}) as gw:
        await gw.wait_ready()
        async with agent_client(gw.url, gw.tokens["agent-a"], mode=mode) as client:
            result = await client.call_tool("fake__nope", {})

    assert result.is_error is True
    assert "fake__nope" in result.content[0].text
    assert (result.meta or {})["toolgate/code"] == ErrorCode.TOOL_NOT_FOUND


async def test_a_timed_out_call_is_a_clear_tool_error_and_the_server_stays_usable():
    async with running_gateway({"fake": stdio_fake(timeout_s=0.5)}) as gw:
        await gw.wait_ready()
        async with agent_client(gw.url, gw.tokens["agent-a"]) as client:
            slow = await client.call_tool("fake__slow", {"seconds": 30, "steps": 1})
            after = await client.call_tool("fake__echo", {"text": "still here"})

    assert slow.is_error is True
    assert "fake" in slow.content[0].text and "0.5" in slow.content[0].text  # type: ignore[union-attr]
    assert after.structured_content == {"text": "still here"}


async def test_a_call_to_a_crashing_server_errors_promptly_and_the_server_comes_back():
    async with running_gateway({"fake": stdio_fake()}) as gw:
        await gw.wait_ready()
        async with agent_client(gw.url, gw.tokens["agent-a"]) as client:
            with anyio.fail_after(10):
                crashed = await client.call_tool("fake__crash", {})
            await gw.wait_ready("fake")
            again = await client.call_tool("fake__echo", {"text": "back"})

    assert crashed.is_error is True
    assert "fake" in crashed.content[0].text  # type: ignore[union-attr]
    assert again.structured_content == {"text": "back"}
    assert gw.status("fake").restarts >= 1


async def test_a_server_that_cannot_start_does_not_stop_the_others():
    servers = {"broken": {"command": "/nonexistent/toolgate-test-server"}, "fake": stdio_fake()}
    async with running_gateway(servers) as gw:
        await gw.wait_ready("fake")
        await gw.wait_state("broken", ServerState.FAILED)
        async with agent_client(gw.url, gw.tokens["agent-a"]) as client:
            names = {tool.name for tool in (await client.list_tools()).tools}
            echoed = await client.call_tool("fake__echo", {"text": "ok"})

    assert "fake__echo" in names and not any(n.startswith("broken__") for n in names)
    assert echoed.structured_content == {"text": "ok"}
    assert gw.status("broken").reason


@pytest.mark.parametrize("mode", BOTH_ERAS)
async def test_progress_from_the_downstream_reaches_the_calling_agent(mode: Mode):
    updates: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        updates.append(progress)

    async with running_gateway({"fake": stdio_fake()}) as gw:
        await gw.wait_ready()
        async with agent_client(gw.url, gw.tokens["agent-a"], mode=mode) as client:
            result = await client.call_tool("fake__slow", {"seconds": 0.05, "steps": 3}, progress_callback=on_progress)

    assert not result.is_error
    assert updates == [1, 2, 3]


async def test_legacy_agents_are_told_when_a_servers_tool_list_changes():
    changed = anyio.Event()

    async def on_message(message: object) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            changed.set()

    async with running_gateway({"fake": stdio_fake()}) as gw:
        await gw.wait_ready()
        async with agent_client(gw.url, gw.tokens["agent-a"], message_handler=on_message) as client:
            await client.call_tool("fake__add_tool", {"name": "fresh"})
            with anyio.fail_after(10):
                await changed.wait()
            names = {tool.name for tool in (await client.list_tools()).tools}

    assert "fake__fresh" in names


async def test_2026_agents_are_told_on_their_listen_stream_when_a_tool_list_changes():
    async with running_gateway({"fake": stdio_fake()}) as gw:
        await gw.wait_ready()
        async with agent_client(gw.url, gw.tokens["agent-a"], mode="2026-07-28") as client:
            async with client.listen(tools_list_changed=True) as events:
                await client.call_tool("fake__add_tool", {"name": "fresh"})
                with anyio.fail_after(10):
                    event = await events.__anext__()
            names = {tool.name for tool in (await client.list_tools()).tools}

    assert type(event).__name__ == "ToolsListChanged"
    assert "fake__fresh" in names


@pytest.mark.parametrize("mode", BOTH_ERAS)
async def test_an_agents_cancellation_reaches_the_downstream_server(mode: Mode):
    async with running_gateway({"fake": stdio_fake()}) as gw:
        await gw.wait_ready()
        async with agent_client(gw.url, gw.tokens["agent-a"], mode=mode) as client:
            progressed = anyio.Event()

            async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                progressed.set()

            async with anyio.create_task_group() as tg:

                async def call_slowly() -> None:
                    await client.call_tool("fake__slow", {"seconds": 60, "steps": 2}, progress_callback=on_progress)

                tg.start_soon(call_slowly)
                with anyio.fail_after(10):
                    await progressed.wait()
                tg.cancel_scope.cancel()
            await gw.stderr.wait_for("fake", "slow cancelled")
            after = await client.call_tool("fake__echo", {"text": "still fine"})

    assert after.structured_content == {"text": "still fine"}


@pytest.mark.parametrize("mode", BOTH_ERAS)
async def test_a_handshake_era_only_server_works_for_agents_of_both_eras(mode: Mode):
    servers = {"everything": {"command": str(everything_server()), "args": ["stdio"]}}
    async with running_gateway(servers) as gw:
        await gw.wait_ready()
        async with agent_client(gw.url, gw.tokens["agent-a"], mode=mode) as client:
            names = {tool.name for tool in (await client.list_tools()).tools}
            echoed = await client.call_tool("everything__echo", {"message": "through toolgate"})
            prompts = await client.list_prompts()
            resources = await client.list_resources()

    assert "everything__echo" in names
    assert any("through toolgate" in getattr(block, "text", "") for block in echoed.content)
    assert prompts.prompts
    assert resources.resources

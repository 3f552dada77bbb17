"""Agents' requests forwarded to one server: routed by name or URI, decided, sent, and answered in the agent's era."""

from __future__ import annotations

from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp.client.session import ClientRequestContext
from mcp.shared.exceptions import MCPError

from gateway_core.errors import ErrorCode
from gateway_core.frontend.forward import SERVER_INFO_META_KEY, without_downstream_identity
from gateway_core.frontend.guard import ERROR_META_KEY
from tests.gateway_core.frontend.conftest import ALLOW_ALL, FakeServers, Inbox, agent, running_gateway

pytestmark = pytest.mark.anyio

BOTH_ERAS = ["legacy", "2026-07-28"]
DENY_FAKE = {"default": "allow", "rules": [{"match": "fake/*", "effect": "deny"}]}


def text_of(result: types.CallToolResult) -> str:
    content = result.content[0]
    assert isinstance(content, types.TextContent)
    return content.text


async def subscribe(client: Any, uri: str) -> None:
    """resources/subscribe (the SDK's helper warns that 2026 removed it; handshake agents still use it)."""
    request = types.SubscribeRequest(params=types.SubscribeRequestParams(uri=uri))
    await client.session.send_request(request, types.EmptyResult)


async def unsubscribe(client: Any, uri: str) -> None:
    request = types.UnsubscribeRequest(params=types.UnsubscribeRequestParams(uri=uri))
    await client.session.send_request(request, types.EmptyResult)


async def set_level(client: Any, level: types.LoggingLevel) -> None:
    request = types.SetLevelRequest(params=types.SetLevelRequestParams(level=level))
    await client.session.send_request(request, types.EmptyResult)


# --- tool calls ----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", BOTH_ERAS)
async def test_a_call_reaches_the_tool_behind_its_public_name_and_its_result_comes_back(
    fake_servers: FakeServers, mode: str
):
    async with running_gateway(fake_servers, {"fake": {"prefix": "f_"}}, {"agent-a": ALLOW_ALL}) as gw:
        async with agent(gw.front.server, "agent-a", mode) as client:
            result = await client.call_tool("f_echo", {"text": "hello"})

    assert text_of(result) == "hello" and result.structured_content == {"text": "hello"}
    assert gw.outcomes() == {"agent-a/fake/ok": 1}


@pytest.mark.parametrize("mode", BOTH_ERAS)
async def test_a_2026_servers_identity_stamp_never_reaches_the_agent(fake_servers: FakeServers, mode: str):
    fake_servers.modern.add("modern")
    async with running_gateway(fake_servers, {"modern": {}}, {"agent-a": ALLOW_ALL}) as gw:
        async with agent(gw.front.server, "agent-a", mode) as client:
            results: dict[str, types.Result] = {
                "tools/call": await client.call_tool("modern__echo", {"text": "who?"}),
                "resources/read": await client.read_resource("fake://greeting"),
                "prompts/get": await client.get_prompt("modern__greet", {"name": "Ada"}),
                "completion/complete": await client.complete(
                    types.PromptReference(name="modern__greet"), {"name": "name", "value": "A"}
                ),
            }
        spoken = gw.pool.servers["modern"].status.protocol_version

    assert spoken == "2026-07-28"
    toolgate = None if mode == "legacy" else "toolgate"
    stamps = {
        method: (result.meta or {}).get(SERVER_INFO_META_KEY, {}).get("name") for method, result in results.items()
    }
    assert stamps == dict.fromkeys(results, toolgate)
    assert (results["tools/call"].meta or {}).get("fake/server") == "modern"  # the server's own _meta is kept


def test_removing_the_identity_stamp_keeps_the_rest_of_the_meta():
    stamp = {SERVER_INFO_META_KEY: {"name": "downstream", "version": "1"}}
    only_stamp = types.CallToolResult(content=[], _meta=stamp)
    with_more = types.CallToolResult(content=[], _meta={**stamp, "x/trace": "7"})
    without = types.CallToolResult(content=[], _meta={"x/trace": "7"})

    assert without_downstream_identity(only_stamp).meta is None
    assert without_downstream_identity(with_more).meta == {"x/trace": "7"}
    assert without_downstream_identity(without) is without


async def test_an_unknown_tool_or_prompt_is_answered_as_the_spec_says_naming_it(fake_servers: FakeServers):
    async with running_gateway(fake_servers, {"fake": {}}, {"agent-a": ALLOW_ALL}) as gw:
        async with agent(gw.front.server, "agent-a") as client:
            tool = await client.call_tool("fake__nothing", {})
            with pytest.raises(MCPError) as prompt:
                await client.get_prompt("fake__nothing", {})

    assert tool.is_error is True
    assert tool.content == [types.TextContent(text="Unknown tool: 'fake__nothing' is not in tools/list")]
    assert (tool.meta or {})["toolgate/code"] == ErrorCode.TOOL_NOT_FOUND
    assert prompt.value.error.code == types.INVALID_PARAMS
    assert prompt.value.error.data == {"name": "fake__nothing", "toolgate/code": ErrorCode.PROMPT_NOT_FOUND}


async def test_a_call_to_a_server_that_is_down_says_so_only_to_agents_that_may_use_it(fake_servers: FakeServers):
    fake_servers.broken.add("broken")
    agents: dict[str, Any] = {
        "agent-a": ALLOW_ALL,
        "agent-b": {"default": "allow", "rules": [{"match": "broken/*", "effect": "deny"}]},
    }
    async with running_gateway(fake_servers, {"broken": {}}, agents) as gw:
        async with agent(gw.front.server, "agent-a") as client_a, agent(gw.front.server, "agent-b") as client_b:
            with pytest.raises(MCPError) as allowed:
                await client_a.call_tool("broken__anything", {})
            denied = await client_b.call_tool("broken__anything", {})

    assert allowed.value.error.code == ErrorCode.SERVER_UNAVAILABLE
    assert allowed.value.error.message.startswith("server 'broken' is not ready")
    assert denied.is_error is True  # an unknown tool: nothing said about a server it may not use
    assert (denied.meta or {})["toolgate/code"] == ErrorCode.TOOL_NOT_FOUND


async def test_a_denied_call_is_refused_in_its_result_and_never_reaches_the_server(fake_servers: FakeServers):
    async with running_gateway(fake_servers, {"fake": {}}, {"agent-a": DENY_FAKE}) as gw:
        async with agent(gw.front.server, "agent-a") as client:
            result = await client.call_tool("fake__add_tool", {"name": "sneaky"})

    assert result.is_error
    assert text_of(result) == "Toolgate: agent 'agent-a' may not call fake__add_tool (rule: fake/* → deny)"
    assert (result.meta or {})[ERROR_META_KEY] == {"code": ErrorCode.DENIED_BY_POLICY, "name": "DENIED_BY_POLICY"}
    assert "sneaky" not in [tool.name for tool in fake_servers.latest["fake"].tools]
    assert gw.outcomes() == {"agent-a/fake/denied": 1}


async def test_a_tool_error_from_the_server_reaches_the_agent_as_it_is(fake_servers: FakeServers):
    async with running_gateway(fake_servers, {"fake": {}}, {"agent-a": ALLOW_ALL}) as gw:
        async with agent(gw.front.server, "agent-a") as client:
            result = await client.call_tool("fake__fail", {})

    assert result.is_error and text_of(result) == "it failed"
    assert gw.outcomes() == {"agent-a/fake/tool_error": 1}


async def test_a_server_that_does_not_answer_in_time_gives_the_agent_an_error_result(fake_servers: FakeServers):
    async with running_gateway(fake_servers, {"fake": {"timeout_s": 0.2}}, {"agent-a": ALLOW_ALL}) as gw:
        async with agent(gw.front.server, "agent-a") as client:
            with anyio.fail_after(10):
                result = await client.call_tool("fake__slow", {"seconds": 3600, "steps": 1})

    assert result.is_error
    assert text_of(result) == "server 'fake' did not answer tools/call 'slow' within 0.2 s"
    assert gw.outcomes() == {"agent-a/fake/timeout": 1}


async def test_an_error_the_server_answers_with_reaches_the_agent_and_counts_as_a_protocol_error(
    fake_servers: FakeServers,
):
    async with running_gateway(fake_servers, {"fake": {}}, {"agent-a": ALLOW_ALL}) as gw:
        async with agent(gw.front.server, "agent-a") as client:  # it cannot answer the question the tool asks
            with pytest.raises(MCPError) as raised:
                await client.call_tool("fake__ask", {"who": "a"})

    assert raised.value.error.code == types.INVALID_REQUEST
    assert "agent 'agent-a' does not support elicitation" in raised.value.error.message
    assert gw.outcomes() == {"agent-a/fake/protocol_error": 1}


@pytest.mark.parametrize("mode", BOTH_ERAS)
async def test_a_servers_question_during_a_call_is_put_to_the_calling_agent(fake_servers: FakeServers, mode: str):
    asked: list[str] = []

    async def answer(context: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={"name": "Ada"})

    async with running_gateway(fake_servers, {"fake": {}}, {"agent-a": ALLOW_ALL}) as gw:
        async with agent(gw.front.server, "agent-a", mode, elicitation_callback=answer) as client:
            result = await client.call_tool("fake__ask", {"who": "a"})

    assert asked == ["Question for a: your name?"]
    assert text_of(result) == "a got: Ada"


# --- progress and log messages during a call -----------------------------------------------------


@pytest.mark.parametrize("mode", BOTH_ERAS)
async def test_a_calls_progress_reaches_it_before_its_result(fake_servers: FakeServers, mode: str):
    received: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        received.append((progress, total, message))

    async with running_gateway(fake_servers, {"fake": {}}, {"agent-a": ALLOW_ALL}) as gw:
        async with agent(gw.front.server, "agent-a", mode) as client:
            await client.call_tool("fake__slow", {"seconds": 0, "steps": 3}, progress_callback=on_progress)
            at_the_result = list(received)

    assert at_the_result == [(1, 3, "step 1"), (2, 3, "step 2"), (3, 3, "step 3")]


async def test_a_call_that_did_not_ask_for_progress_gets_none(fake_servers: FakeServers):
    inbox = Inbox()
    async with running_gateway(fake_servers, {"fake": {}}, {"agent-a": ALLOW_ALL}) as gw:
        async with agent(gw.front.server, "agent-a", message_handler=inbox.handler) as client:
            await client.call_tool("fake__slow", {"seconds": 0, "steps": 3})

    assert inbox.of(types.ProgressNotification) == []


async def test_a_2026_call_gets_its_servers_log_messages_only_when_it_asked_for_them(fake_servers: FakeServers):
    logs: list[tuple[str, str | None, Any]] = []

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        logs.append((params.level, params.logger, params.data))

    async with running_gateway(fake_servers, {"fake": {}}, {"agent-a": ALLOW_ALL}) as gw:
        modern = "2026-07-28"
        async with agent(gw.front.server, "agent-a", modern, logging_callback=on_log) as client:
            await client.call_tool("fake__log", {"level": "error", "text": "not asked for"})
        async with agent(gw.front.server, "agent-a", modern, logging_callback=on_log, log_level="warning") as client:
            await client.call_tool("fake__log", {"level": "info", "text": "below the level"})
            await client.call_tool("fake__log", {"level": "error", "text": "asked for"})

    assert logs == [("error", "fake/fake-logger", "asked for")]


async def test_a_handshake_agent_that_sets_a_level_gets_the_servers_log_messages(fake_servers: FakeServers):
    inbox = Inbox()
    fake_servers.handshake_only.add("fake")  # a 2026-07-28 server gets the level with each request instead
    async with running_gateway(fake_servers, {"fake": {}}, {"agent-a": ALLOW_ALL}) as gw:
        async with agent(gw.front.server, "agent-a", message_handler=inbox.handler) as client:
            await set_level(client, "warning")
            await client.call_tool("fake__log", {"level": "info", "text": "below the level"})
            await client.call_tool("fake__log", {"level": "warning", "text": "careful"})
            await inbox.until(lambda: bool(inbox.of(types.LoggingMessageNotification)))

    assert [(m.params.logger, m.params.data) for m in inbox.of(types.LoggingMessageNotification)] == [
        ("fake/fake-logger", "careful")
    ]
    assert ("fake", "logging/setLevel", "warning") in fake_servers.asked


# --- resources, prompts and completions ----------------------------------------------------------


@pytest.mark.parametrize("mode", BOTH_ERAS)
async def test_a_resource_is_read_from_the_server_that_lists_it_or_has_a_matching_template(
    fake_servers: FakeServers, mode: str
):
    async with running_gateway(fake_servers, {"fake": {}}, {"agent-a": ALLOW_ALL}) as gw:
        async with agent(gw.front.server, "agent-a", mode) as client:
            listed = await client.read_resource("fake://greeting")
            templated = await client.read_resource("fake://items/7")

    assert [c.text for c in listed.contents if isinstance(c, types.TextResourceContents)] == ["hello from fake"]
    assert [c.text for c in templated.contents if isinstance(c, types.TextResourceContents)] == ["item 7"]
    assert gw.outcomes() == {"agent-a/fake/ok": 2}


async def test_reading_a_resource_no_server_offers_or_of_a_denied_server_is_an_error(fake_servers: FakeServers):
    async with running_gateway(fake_servers, {"fake": {}}, {"agent-a": ALLOW_ALL, "agent-b": DENY_FAKE}) as gw:
        async with agent(gw.front.server, "agent-a") as client_a, agent(gw.front.server, "agent-b") as client_b:
            with pytest.raises(MCPError) as nowhere:
                await client_a.read_resource("elsewhere://x")
            with pytest.raises(MCPError) as denied:
                await client_b.read_resource("fake://greeting")

    assert nowhere.value.error.code == types.INVALID_PARAMS
    assert nowhere.value.error.data == {"uri": "elsewhere://x", "toolgate/code": ErrorCode.RESOURCE_NOT_FOUND}
    assert denied.value.error.code == ErrorCode.DENIED_BY_POLICY
    assert "may not call fake://greeting" in denied.value.error.message
    assert gw.outcomes() == {"agent-b/fake/denied": 1}


@pytest.mark.parametrize("mode", BOTH_ERAS)
async def test_a_prompt_is_got_by_its_public_name_with_its_arguments(fake_servers: FakeServers, mode: str):
    async with running_gateway(fake_servers, {"fake": {"prefix": "p."}}, {"agent-a": ALLOW_ALL}) as gw:
        async with agent(gw.front.server, "agent-a", mode) as client:
            result = await client.get_prompt("p.greet", {"name": "Ada"})

    content = result.messages[0].content
    assert isinstance(content, types.TextContent) and content.text == "Hello, Ada!"


async def test_completions_come_from_the_server_owning_the_prompt_or_template(fake_servers: FakeServers):
    async with running_gateway(fake_servers, {"fake": {}}, {"agent-a": ALLOW_ALL}) as gw:
        async with agent(gw.front.server, "agent-a") as client:
            prompt = await client.complete(types.PromptReference(name="fake__greet"), {"name": "name", "value": "Al"})
            template = await client.complete(
                types.ResourceTemplateReference(uri="fake://items/{id}"), {"name": "id", "value": "1"}
            )
            with pytest.raises(MCPError) as unknown_prompt:
                await client.complete(types.PromptReference(name="greet"), {"name": "name", "value": "A"})
            with pytest.raises(MCPError) as unknown_template:
                await client.complete(types.ResourceTemplateReference(uri="x://{id}"), {"name": "id", "value": "1"})

    assert prompt.completion.values == ["Alice", "Alan"]
    assert template.completion.values == ["1", "12"]
    assert fake_servers.asked == [
        ("fake", "completion/complete", "greet"),  # the name the server gave it
        ("fake", "completion/complete", "fake://items/{id}"),
    ]
    assert unknown_prompt.value.error.code == types.INVALID_PARAMS
    assert unknown_template.value.error.code == types.INVALID_PARAMS
    assert unknown_template.value.error.data == {"uri": "x://{id}", "toolgate/code": ErrorCode.RESOURCE_NOT_FOUND}


async def test_a_completion_is_never_put_to_the_person(fake_servers: FakeServers):
    async with running_gateway(fake_servers, {"fake": {}}, {"agent-a": {"default": "ask"}}) as gw:
        async with agent(gw.front.server, "agent-a") as client:
            with anyio.fail_after(10), pytest.raises(MCPError) as refused:
                await client.complete(types.PromptReference(name="fake__greet"), {"name": "name", "value": "Al"})

    assert refused.value.error.code == ErrorCode.DENIED_BY_POLICY
    assert "never put to the person" in refused.value.error.message
    assert gw.approvals.pending() == []


# --- subscriptions -------------------------------------------------------------------------------


@pytest.mark.parametrize("server_era", ["handshake", "both"])
async def test_a_handshake_agent_gets_updates_of_a_resource_it_subscribed_to_until_it_unsubscribes(
    fake_servers: FakeServers, server_era: str
):
    inbox = Inbox()
    fake_servers.handshake_era = server_era == "handshake"

    def updates() -> list[str]:
        return [m.params.uri for m in inbox.of(types.ResourceUpdatedNotification)]

    async with running_gateway(fake_servers, {"fake": {}}, {"agent-a": ALLOW_ALL}) as gw:
        async with agent(gw.front.server, "agent-a", message_handler=inbox.handler) as client:
            await subscribe(client, "fake://greeting")
            await subscribe(client, "fake://items/1")
            await client.call_tool("fake__touch", {"uri": "fake://greeting"})
            await inbox.until(lambda: len(updates()) == 1)
            await unsubscribe(client, "fake://greeting")
            await client.call_tool("fake__touch", {"uri": "fake://greeting"})
            await client.call_tool("fake__touch", {"uri": "fake://items/1"})  # arrives after any update before it
            await inbox.until(lambda: len(updates()) == 2)

    assert updates() == ["fake://greeting", "fake://items/1"]


async def test_a_subscription_to_a_uri_no_server_lists_goes_to_every_server_the_agent_may_use(
    fake_servers: FakeServers,
):
    policy = {"default": "allow", "rules": [{"match": "denied/*", "effect": "deny"}]}
    fake_servers.handshake_era = True  # 2026-07-28 servers are asked on their listen streams instead
    async with running_gateway(fake_servers, {"fake": {}, "other": {}, "denied": {}}, {"agent-a": policy}) as gw:
        async with agent(gw.front.server, "agent-a") as client:
            await subscribe(client, "made://later")

    subscribed = {server for server, method, uri in fake_servers.asked if method == "resources/subscribe"}
    assert subscribed == {"fake", "other"}


async def test_subscribing_to_a_resource_of_a_denied_server_or_of_no_server_is_refused(fake_servers: FakeServers):
    async with running_gateway(fake_servers, {"fake": {}}, {"agent-a": DENY_FAKE}) as gw:
        async with agent(gw.front.server, "agent-a") as client:
            with pytest.raises(MCPError) as denied:
                await subscribe(client, "fake://greeting")
            with pytest.raises(MCPError) as nowhere:
                await subscribe(client, "made://later")  # the only server that takes subscriptions is denied

    assert denied.value.error.code == ErrorCode.DENIED_BY_POLICY
    assert denied.value.error.message == "Toolgate: agent 'agent-a' may not use server 'fake'"
    assert nowhere.value.error.code == types.INVALID_PARAMS
    assert fake_servers.asked == []

"""On-demand agents see three gateway tools and find and call every tool they may use through them."""

from __future__ import annotations

import json
from typing import Any

import anyio
import mcp_types as types
import pytest

from gateway_core.approvals import Answer, ApprovalBroker, ApprovalRequested
from gateway_core.config import ToolsMode
from gateway_core.errors import ErrorCode
from tests.gateway_core.frontend.conftest import WAIT_S, FakeServers, agent, running_gateway

pytestmark = pytest.mark.anyio

BOTH_ERAS = ["legacy", "2026-07-28"]
ON_DEMAND = {"default": "allow", "tools": "on_demand"}
META = ["list_servers", "get_server_tools", "execute_tool"]


def text_of(result: types.CallToolResult) -> str:
    content = result.content[0]
    assert isinstance(content, types.TextContent)
    return content.text


def json_of(result: types.CallToolResult) -> Any:
    assert not result.is_error, text_of(result)
    return json.loads(text_of(result))


def names_in(result: types.CallToolResult) -> list[str]:
    return [tool["name"] for tool in json_of(result)["tools"]]


async def answer_when_asked(approvals: ApprovalBroker, answer: Answer) -> str:
    """Answer the first approval request once it is pending; the public name it asked about."""
    asked = anyio.Event()
    unsubscribe = approvals.subscribe(lambda event: asked.set() if isinstance(event, ApprovalRequested) else None)
    try:
        with anyio.fail_after(WAIT_S):
            while not approvals.pending():
                await asked.wait()
    finally:
        unsubscribe()
    request = approvals.pending()[0]
    approvals.answer(request.id, answer)
    return f"{request.server}/{request.tool} as {request.public_name}"


@pytest.mark.parametrize("mode", BOTH_ERAS)
async def test_an_on_demand_agent_is_listed_only_the_gateway_tools_and_what_it_keeps_listed(
    fake_servers: FakeServers, mode: str
):
    policies = {
        "lean": ON_DEMAND,
        "kept": {
            **ON_DEMAND,
            "always_listed": ["fake/echo", "fake/fail"],
            "rules": [{"match": "fake/fail", "effect": "deny"}],
        },
        "full": {"default": "allow"},
    }
    async with running_gateway(fake_servers, {"fake": {}}, policies) as gw:
        async with (
            agent(gw.front.server, "lean", mode) as lean,
            agent(gw.front.server, "kept", mode) as kept,
            agent(gw.front.server, "full", mode) as full,
        ):
            lean_tools = (await lean.list_tools()).tools
            kept_names = [tool.name for tool in (await kept.list_tools()).tools]
            full_names = [tool.name for tool in (await full.list_tools()).tools]

    assert [tool.name for tool in lean_tools] == META
    assert all(len(tool.description or "") < 250 for tool in lean_tools)
    assert kept_names == [*META, "fake__echo"]  # a denied tool is never listed, even when kept listed
    assert "fake__echo" in full_names and "list_servers" not in full_names


@pytest.mark.parametrize("mode", BOTH_ERAS)
async def test_list_servers_shows_each_usable_server_with_its_state_and_the_agents_tool_count(
    fake_servers: FakeServers, mode: str
):
    fake_servers.broken.add("down")
    policy = {**ON_DEMAND, "rules": [{"match": "hidden/*", "effect": "deny"}, {"match": "fake/add", "effect": "deny"}]}
    async with running_gateway(fake_servers, {"fake": {}, "hidden": {}, "down": {}}, {"agent-a": policy}) as gw:
        async with agent(gw.front.server, "agent-a", mode) as client:
            listed = json_of(await client.call_tool("list_servers", {}))["servers"]
        every_tool = len(gw.pool.servers["fake"].catalog.tools)

    assert [(s["name"], s["state"], s["tools"]) for s in listed] == [
        ("fake", "ready", every_tool - 1),
        ("down", "failed", 0),
    ]


@pytest.mark.parametrize("mode", BOTH_ERAS)
async def test_a_query_finds_the_tool_for_a_task_and_returns_its_whole_definition(fake_servers: FakeServers, mode: str):
    async with running_gateway(fake_servers, {"fake": {}}, {"agent-a": ON_DEMAND}) as gw:
        async with agent(gw.front.server, "agent-a", mode) as client:
            found = json_of(await client.call_tool("get_server_tools", {"query": "add two numbers together"}))
            nothing = json_of(await client.call_tool("get_server_tools", {"query": "zyzzyva"}))

    assert found["tools"][0] == {
        "name": "fake__add",
        "description": "Add two numbers.",
        "inputSchema": gw.front.routes.input_schemas["fake__add"],
    }
    assert nothing["tools"] == [] and "No tool matched" in nothing["note"]


# Tools that share a word with "add two numbers together" in their description only, far from it in meaning.
WEAK_MATCHES = {
    "print_receipt": "Print a shop receipt, in two copies if asked.",
    "play_song": "Play a song from the library; two songs can be queued together.",
    "water_plants": "Water the garden's plants; the numbers of the beds are on the map.",
    "lock_door": "Lock the front door; two locks are turned together.",
    "feed_cat": "Feed the cat; the numbers on the tins say which flavour.",
}


async def test_a_query_returns_its_close_matches_and_names_the_weaker_ones_left_out_and_how_to_get_them(
    fake_servers: FakeServers,
):
    async with running_gateway(fake_servers, {"fake": {}}, {"agent-a": ON_DEMAND}) as gw:
        async with agent(gw.front.server, "agent-a") as client:
            # The fake takes the tools at once, and lists them with the next one it is asked to add.
            fake_servers.latest["fake"].tools += [
                types.Tool(name=name, description=description, input_schema={"type": "object"})
                for name, description in WEAK_MATCHES.items()
            ]
            await client.call_tool("execute_tool", {"name": "fake__add_tool", "arguments": {"name": "zebra"}})
            await gw.until_routed(lambda: "fake__zebra" in gw.front.routes.tools)
            close = json_of(await client.call_tool("get_server_tools", {"query": "add two numbers together"}))
            wide = json_of(
                await client.call_tool("get_server_tools", {"query": "add two numbers together", "limit": 40})
            )
            few = json_of(await client.call_tool("get_server_tools", {"server": "fake", "limit": 2}))
        listed = [tool.name for tool in gw.front.routes.tool_list]

    shown, ranked = [tool["name"] for tool in close["tools"]], [tool["name"] for tool in wide["tools"]]
    assert shown[0] == "fake__add" and shown == ranked[: len(shown)]
    assert 3 <= len(shown) < len(ranked)  # the first three are always kept
    assert {f"fake__{name}" for name in WEAK_MATCHES} & set(ranked) - set(shown)  # they match, weakly
    assert f"{len(ranked) - len(shown)} weaker matches were left out (the next: {ranked[len(shown)]}, " in close["note"]
    assert f"`limit` above {len(shown)}, or describe the task in other words." in close["note"]
    assert "note" not in wide  # all of them fit the default budget
    assert [tool["name"] for tool in few["tools"]] == listed[:2]
    assert few["note"].startswith(f"{len(listed) - 2} more tools were left out (the next: {listed[2]}, ")
    assert few["note"].endswith("Ask for them with `limit` above 2.")


async def test_a_query_that_many_tools_match_closely_is_answered_the_ten_closest_unless_limit_asks_for_more(
    fake_servers: FakeServers,
):
    alike = [f"tally_{letter}" for letter in "abcdefghijkl"]
    async with running_gateway(fake_servers, {"fake": {}}, {"agent-a": ON_DEMAND}) as gw:
        async with agent(gw.front.server, "agent-a") as client:
            fake_servers.latest["fake"].tools += [
                types.Tool(name=name, description="Tally the votes of a poll.", input_schema={"type": "object"})
                for name in alike
            ]
            await client.call_tool("execute_tool", {"name": "fake__add_tool", "arguments": {"name": "zebra"}})
            await gw.until_routed(lambda: "fake__zebra" in gw.front.routes.tools)
            ten = json_of(await client.call_tool("get_server_tools", {"query": "tally the poll votes"}))
            all_of_them = json_of(await client.call_tool("get_server_tools", {"query": "tally the votes", "limit": 12}))

    assert len(ten["tools"]) == 10 and {tool["name"] for tool in ten["tools"]} < {f"fake__{name}" for name in alike}
    assert "weaker matches were left out" in ten["note"] and "`limit`" in ten["note"]
    assert sorted(tool["name"] for tool in all_of_them["tools"]) == [f"fake__{name}" for name in alike]


async def test_tools_are_filtered_by_server_names_and_pattern_and_a_denied_tool_is_never_described(
    fake_servers: FakeServers,
):
    fake_servers.broken.add("down")
    policy = {**ON_DEMAND, "rules": [{"match": "fake/echo", "effect": "deny"}]}
    servers = {"fake": {}, "other": {"prefix": "o."}, "down": {}}
    async with running_gateway(fake_servers, servers, {"agent-a": policy}) as gw:
        async with agent(gw.front.server, "agent-a") as client:
            by_names = await client.call_tool("get_server_tools", {"names": ["fake__add", "fake__echo", "o.echo"]})
            by_pattern = await client.call_tool("get_server_tools", {"server": "other", "pattern": "*ECHO*"})
            by_query = await client.call_tool("get_server_tools", {"query": "echo the text back", "server": "fake"})
            everything = await client.call_tool("get_server_tools", {"max_tokens": 1_000_000})
            no_server = await client.call_tool("get_server_tools", {"server": "nope"})
            down = await client.call_tool("get_server_tools", {"server": "down"})

    assert names_in(by_names) == ["fake__add", "o.echo"]
    assert json_of(by_names)["note"] == "No tool is named fake__echo."  # as if it did not exist
    assert names_in(by_pattern) == ["o.echo"]
    assert "fake__echo" not in names_in(by_query)
    assert "fake__echo" not in names_in(everything) and "o.echo" in names_in(everything)
    assert "fake__echo" not in text_of(everything)
    assert no_server.is_error and "list_servers" in text_of(no_server)
    assert json_of(down) == {"tools": [], "note": "Server 'down' is failed: its tools are back when it is ready."}


async def test_what_does_not_fit_the_token_budget_is_named_in_a_note_saying_how_to_get_it(fake_servers: FakeServers):
    async with running_gateway(fake_servers, {"fake": {}}, {"agent-a": ON_DEMAND}) as gw:
        async with agent(gw.front.server, "agent-a") as client:
            small = json_of(await client.call_tool("get_server_tools", {"server": "fake", "max_tokens": 100}))
        listed = [tool.name for tool in gw.front.routes.tool_list]

    shown = [tool["name"] for tool in small["tools"]]
    assert 1 <= len(shown) < len(listed) and shown == listed[: len(shown)]
    assert f"{len(listed) - len(shown)} more matching tools were left out" in small["note"]
    assert listed[len(shown)] in small["note"] and "`names`" in small["note"] and "`max_tokens`" in small["note"]


async def test_bad_arguments_to_a_gateway_tool_get_an_error_result_saying_what_is_wrong(fake_servers: FakeServers):
    async with running_gateway(fake_servers, {"fake": {}}, {"agent-a": ON_DEMAND}) as gw:
        async with agent(gw.front.server, "agent-a") as client:
            no_name = await client.call_tool("execute_tool", {"arguments": {}})
            stray = await client.call_tool("execute_tool", {"name": "fake__echo", "text": "hi"})

    assert no_name.is_error and text_of(no_name).startswith("execute_tool: name:")
    assert stray.is_error and text_of(stray).startswith("execute_tool: text:")
    assert gw.outcomes() == {}


@pytest.mark.parametrize("mode", BOTH_ERAS)
async def test_execute_tool_calls_the_tool_and_passes_its_result_through_unchanged(
    fake_servers: FakeServers, mode: str
):
    progress: list[float] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append(done)

    async with running_gateway(fake_servers, {"fake": {}}, {"agent-a": ON_DEMAND}) as gw:
        async with agent(gw.front.server, "agent-a", mode) as client:
            echoed = await client.call_tool("execute_tool", {"name": "fake__echo", "arguments": {"text": "hi"}})
            failed = await client.call_tool("execute_tool", {"name": "fake__fail"})
            slow = {"name": "fake__slow", "arguments": {"seconds": 0, "steps": 2}}
            await client.call_tool("execute_tool", slow, progress_callback=on_progress)

    assert echoed.structured_content == {"text": "hi"}
    assert (echoed.meta or {})["fake/server"] == "fake"
    assert failed.is_error and text_of(failed) == "it failed"
    assert progress == [1, 2]
    assert gw.outcomes() == {"agent-a/fake/ok": 2, "agent-a/fake/tool_error": 1}


@pytest.mark.parametrize("mode", BOTH_ERAS)
async def test_execute_tool_of_a_denied_tool_is_answered_as_for_a_tool_that_does_not_exist(
    fake_servers: FakeServers, mode: str
):
    policy = {**ON_DEMAND, "rules": [{"match": "fake/add", "effect": "deny"}]}
    async with running_gateway(fake_servers, {"fake": {}}, {"agent-a": policy}) as gw:
        async with agent(gw.front.server, "agent-a", mode) as client:
            denied = await client.call_tool("execute_tool", {"name": "fake__add", "arguments": {"a": 1, "b": 2}})
            missing = await client.call_tool("execute_tool", {"name": "fake__nope", "arguments": {"a": 1, "b": 2}})

    assert text_of(denied) == text_of(missing).replace("fake__nope", "fake__add")
    assert denied.is_error and denied.meta == missing.meta
    assert (denied.meta or {})["toolgate/code"] == ErrorCode.TOOL_NOT_FOUND
    assert gw.outcomes() == {"agent-a/fake/denied": 1}  # the refusal is still counted and recorded


@pytest.mark.parametrize("mode", BOTH_ERAS)
async def test_execute_tool_of_a_tool_that_asks_puts_the_real_tool_to_the_person(fake_servers: FakeServers, mode: str):
    policy = {**ON_DEMAND, "rules": [{"match": "fake/add", "effect": "ask"}]}
    async with running_gateway(fake_servers, {"fake": {}}, {"agent-a": policy}) as gw:
        async with agent(gw.front.server, "agent-a", mode) as client, anyio.create_task_group() as tg:
            asked: list[str] = []

            async def approve() -> None:
                asked.append(await answer_when_asked(gw.approvals, Answer.ALLOW_ONCE))

            tg.start_soon(approve)
            added = await client.call_tool("execute_tool", {"name": "fake__add", "arguments": {"a": 2, "b": 3}})

    assert asked == ["fake/add as fake__add"]
    assert added.structured_content == {"result": 5}


@pytest.mark.parametrize("mode", BOTH_ERAS)
async def test_a_servers_question_during_execute_tool_reaches_the_agent(fake_servers: FakeServers, mode: str):
    async def answer(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        return types.ElicitResult(action="accept", content={"name": "Ada"})

    async with running_gateway(fake_servers, {"fake": {}}, {"agent-a": ON_DEMAND}) as gw:
        async with agent(gw.front.server, "agent-a", mode, elicitation_callback=answer) as client:
            result = await client.call_tool("execute_tool", {"name": "fake__ask", "arguments": {"who": "a"}})

    assert text_of(result) == "a got: Ada"


@pytest.mark.parametrize("mode", BOTH_ERAS)
async def test_a_tool_added_at_a_server_is_found_by_the_next_query(fake_servers: FakeServers, mode: str):
    async with running_gateway(fake_servers, {"fake": {}}, {"agent-a": ON_DEMAND}) as gw:
        async with agent(gw.front.server, "agent-a", mode) as client:
            before = await client.call_tool("get_server_tools", {"query": "zebra"})
            await client.call_tool("execute_tool", {"name": "fake__add_tool", "arguments": {"name": "zebra_stripes"}})
            await gw.until_routed(lambda: "fake__zebra_stripes" in gw.front.routes.tools)
            after = await client.call_tool("get_server_tools", {"query": "zebra"})

    assert names_in(before) == []
    assert names_in(after) == ["fake__zebra_stripes"]


@pytest.mark.parametrize("mode", BOTH_ERAS)
async def test_switching_an_agent_between_modes_applies_to_its_next_request(fake_servers: FakeServers, mode: str):
    async with running_gateway(fake_servers, {"fake": {}}, {"agent-a": {"default": "allow"}}) as gw:
        async with agent(gw.front.server, "agent-a", mode) as client:
            full = [tool.name for tool in (await client.list_tools()).tools]
            not_yet = await client.call_tool("list_servers", {})
            switch_to(gw, ToolsMode.ON_DEMAND)
            lean = [tool.name for tool in (await client.list_tools()).tools]
            servers = await client.call_tool("list_servers", {})
            switch_to(gw, ToolsMode.ALL)
            again = [tool.name for tool in (await client.list_tools()).tools]

    assert "fake__echo" in full and lean == META and again == full
    assert not_yet.is_error and (not_yet.meta or {}).get("toolgate/code") == ErrorCode.TOOL_NOT_FOUND
    assert [server["name"] for server in json_of(servers)["servers"]] == ["fake"]


def switch_to(gw: Any, mode: ToolsMode) -> None:
    config = gw.runtime.now.config
    agents = {name: entry.model_copy(update={"tools": mode}) for name, entry in config.agents.items()}
    gw.runtime.swap(lambda runtime: runtime.with_config(config.model_copy(update={"agents": agents})))
    gw.front.config_changed()

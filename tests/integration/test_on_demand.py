"""An on-demand agent finds and calls every tool it may use through three gateway tools, over real sockets."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest

from gateway_core.approvals import Answer, ApprovalRequested
from gateway_core.config import load_config
from tests.fakes.task_client import task_client_over_http
from tests.integration.harness import BOTH_ERAS, Mode, RunningGateway, agent_client, running_gateway, stdio_fake

pytestmark = pytest.mark.anyio

WAIT_S = 20.0


async def _sample(context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
    return types.CreateMessageResult(role="assistant", content=types.TextContent(text="ok"), model="test")


async def _elicit(context: Any, params: Any) -> types.ElicitResult:
    return types.ElicitResult(action="decline")


META = ["list_servers", "get_server_tools", "execute_tool"]
ON_DEMAND: dict[str, Any] = {
    "default": "allow",
    "tools": "on_demand",
    "rules": [{"match": "fake/add", "effect": "ask"}, {"match": "fake/fail", "effect": "deny"}],
}


def text_of(result: types.CallToolResult) -> str:
    return " ".join(block.text for block in result.content if isinstance(block, types.TextContent))


def json_of(result: types.CallToolResult) -> Any:
    assert not result.is_error, text_of(result)
    return json.loads(text_of(result))


def audit_rows(gw: RunningGateway) -> list[dict[str, Any]]:
    with sqlite3.connect(gw.paths.audit_db) as db:
        db.row_factory = sqlite3.Row
        return [dict(row) for row in db.execute("SELECT * FROM records ORDER BY id")]


async def approve_next(gw: RunningGateway) -> str:
    """Allow the next approval request once it is pending; what it named (agent, server/tool, public name)."""
    requested = anyio.Event()
    unsubscribe = gw.gateway.events.subscribe(
        lambda event: requested.set() if isinstance(event, ApprovalRequested) else None
    )
    try:
        with anyio.fail_after(WAIT_S):
            while not gw.gateway.pending_approvals():
                await requested.wait()
    finally:
        unsubscribe()
    request = gw.gateway.pending_approvals()[0]
    gw.gateway.answer_approval(request.id, Answer.ALLOW_ONCE)
    return f"{request.agent}: {request.server}/{request.tool} as {request.public_name}"


@pytest.mark.parametrize("mode", BOTH_ERAS)
async def test_an_on_demand_agent_finds_a_tool_and_calls_it_under_its_policy_on_record(mode: Mode):
    config = {"fake": stdio_fake("--instructions", "Echoes text and adds numbers.\n\nMore words. " * 20)}
    async with running_gateway(config, policies={"agent-a": ON_DEMAND}) as gw:
        await gw.wait_ready()
        async with agent_client(gw.url, gw.tokens["agent-a"], mode=mode) as client:
            listed = [tool.name for tool in (await client.list_tools()).tools]
            servers = json_of(await client.call_tool("list_servers", {}))["servers"]
            found = json_of(await client.call_tool("get_server_tools", {"query": "echo some text back"}))["tools"]
            echoed = await client.call_tool("execute_tool", {"name": found[0]["name"], "arguments": {"text": "hi"}})
            denied = await client.call_tool("execute_tool", {"name": "fake__fail", "arguments": {}})
            unknown = await client.call_tool("execute_tool", {"name": "fake__nope", "arguments": {}})
            async with anyio.create_task_group() as tg:
                asked: list[str] = []

                async def approve() -> None:
                    asked.append(await approve_next(gw))

                tg.start_soon(approve)
                added = await client.call_tool("execute_tool", {"name": "fake__add", "arguments": {"a": 2, "b": 40}})
    rows = audit_rows(gw)  # after shutdown, which writes every queued outcome

    assert listed == META
    assert [(s["name"], s["state"]) for s in servers] == [("fake", "ready")]
    assert servers[0]["description"].startswith("Echoes text and adds numbers. More words. Echoes")
    assert len(servers[0]["description"]) <= 200 and servers[0]["description"].endswith("…")
    assert found[0]["name"] == "fake__echo" and found[0]["inputSchema"]["properties"] == {"text": {"type": "string"}}
    assert echoed.structured_content == {"text": "hi"}
    assert denied.is_error and text_of(denied) == text_of(unknown).replace("fake__nope", "fake__fail")
    assert asked == ["agent-a: fake/add as fake__add"]
    assert text_of(added) == "42"
    outcomes = [(r["server"], r["tool"], r["effect"], r["outcome"]) for r in rows if r["kind"] == "outcome"]
    assert outcomes == [
        ("fake", "echo", "allow", "ok"),
        ("fake", "fail", "deny", "denied"),
        ("fake", "add", "ask", "ok"),
    ]


@pytest.mark.parametrize("mode", BOTH_ERAS)
async def test_a_tool_a_server_adds_is_found_by_the_next_query(mode: Mode):
    async with running_gateway({"fake": stdio_fake()}, policies={"agent-a": ON_DEMAND}) as gw:
        await gw.wait_ready()
        async with agent_client(gw.url, gw.tokens["agent-a"], mode=mode) as client:
            await client.call_tool("execute_tool", {"name": "fake__add_tool", "arguments": {"name": "zebra_stripes"}})
            with anyio.fail_after(WAIT_S):
                while "fake__zebra_stripes" not in gw.gateway.routes.tools:
                    await gw.gateway.wait_routes_rebuilt()
            found = json_of(await client.call_tool("get_server_tools", {"query": "zebra"}))["tools"]

    assert [tool["name"] for tool in found] == ["fake__zebra_stripes"]


@pytest.mark.parametrize("mode", BOTH_ERAS)
async def test_an_agents_cancellation_of_execute_tool_reaches_the_server(mode: Mode):
    async with running_gateway({"fake": stdio_fake()}, policies={"agent-a": ON_DEMAND}) as gw:
        await gw.wait_ready()
        async with agent_client(gw.url, gw.tokens["agent-a"], mode=mode) as client:
            progressed = anyio.Event()

            async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                progressed.set()

            async with anyio.create_task_group() as tg:

                async def call_slowly() -> None:
                    slow = {"name": "fake__slow", "arguments": {"seconds": 60, "steps": 2}}
                    await client.call_tool("execute_tool", slow, progress_callback=on_progress)

                tg.start_soon(call_slowly)
                with anyio.fail_after(WAIT_S):
                    await progressed.wait()
                tg.cancel_scope.cancel()
            await gw.stderr.wait_for("fake", "slow cancelled")
            after = await client.call_tool("execute_tool", {"name": "fake__echo", "arguments": {"text": "fine"}})

    assert after.structured_content == {"text": "fine"}


async def test_execute_tool_reaches_the_agents_own_process_of_a_per_agent_server():
    policies = {"agent-a": ON_DEMAND, "agent-b": ON_DEMAND}
    servers = {"fake": stdio_fake(isolation="per_agent")}
    async with running_gateway(servers, agents=("agent-a", "agent-b"), policies=policies) as gw:
        await gw.wait_ready()
        async with (
            agent_client(gw.url, gw.tokens["agent-a"]) as client_a,
            agent_client(gw.url, gw.tokens["agent-b"], mode="2026-07-28") as client_b,
        ):
            pid_a = text_of(await client_a.call_tool("execute_tool", {"name": "fake__pid"}))
            pid_b = text_of(await client_b.call_tool("execute_tool", {"name": "fake__pid"}))
            instances = gw.gateway.instance_agents("fake")

    assert pid_a != pid_b
    assert instances == ["agent-a", "agent-b"]


@pytest.mark.parametrize("mode", BOTH_ERAS)
async def test_switching_an_agent_to_on_demand_in_the_config_applies_live(mode: Mode):
    async with running_gateway({"fake": stdio_fake()}) as gw:
        await gw.wait_ready()
        async with agent_client(gw.url, gw.tokens["agent-a"], mode=mode) as client:
            before = [tool.name for tool in (await client.list_tools()).tools]
            raw = json.loads(gw.paths.config_file.read_text())
            raw["agents"]["agent-a"]["tools"] = "on_demand"
            gw.paths.config_file.write_text(json.dumps(raw))
            gw.gateway.apply_config(load_config(gw.paths.config_file))
            after = [tool.name for tool in (await client.list_tools()).tools]

    assert "fake__echo" in before and "execute_tool" not in before
    assert after == META


async def test_an_on_demand_agent_hears_of_list_changes_only_when_its_servers_change():
    inboxes: dict[str, list[Any]] = {"full": [], "lean": []}
    heard = anyio.Event()

    def inbox(name: str) -> Any:
        async def handler(message: Any) -> None:
            if type(message).__name__.endswith("ListChangedNotification"):
                inboxes[name].append(type(message).__name__)
                heard.set()

        return handler

    async def until(condition: Any) -> None:
        nonlocal heard
        with anyio.fail_after(WAIT_S):
            while not condition():
                await heard.wait()
                heard = anyio.Event()

    servers = {"fake": stdio_fake(), "other": stdio_fake()}
    policies = {"lean": {"default": "allow", "tools": "on_demand"}}
    async with running_gateway(servers, agents=("full", "lean"), policies=policies) as gw:
        await gw.wait_ready()
        async with (
            agent_client(gw.url, gw.tokens["full"], message_handler=inbox("full")) as full,
            agent_client(gw.url, gw.tokens["lean"], message_handler=inbox("lean")) as lean,
        ):
            await full.list_tools()
            await lean.list_tools()
            await lean.call_tool("execute_tool", {"name": "fake__add_tool", "arguments": {"name": "fresh"}})
            await until(lambda: "ToolListChangedNotification" in inboxes["full"])
            gw.gateway.restart_server("other")  # its tools go away and come back: the lean agent's servers change
            await until(lambda: "ToolListChangedNotification" in inboxes["lean"])
            await gw.wait_ready()

    # A server's list change heard before the restart's would come first on the lean agent's stream.
    assert inboxes["lean"][0] != "ToolListChangedNotification"


async def test_an_on_demand_2026_agents_listen_stream_hears_of_tools_only_when_its_servers_change():
    servers = {"fake": stdio_fake(), "other": stdio_fake()}
    policies = {"lean": {"default": "allow", "tools": "on_demand"}}
    async with running_gateway(servers, agents=("full", "lean"), policies=policies) as gw:
        await gw.wait_ready()
        async with (
            agent_client(gw.url, gw.tokens["full"], mode="2026-07-28") as full,
            agent_client(gw.url, gw.tokens["lean"], mode="2026-07-28") as lean,
            full.listen(tools_list_changed=True) as full_events,
            lean.listen(tools_list_changed=True, prompts_list_changed=True) as lean_events,
        ):
            await lean.call_tool("execute_tool", {"name": "fake__add_tool", "arguments": {"name": "fresh"}})
            with anyio.fail_after(WAIT_S):
                full_heard = await full_events.__anext__()
            gw.gateway.restart_server("other")
            with anyio.fail_after(WAIT_S):
                lean_heard = await lean_events.__anext__()

    assert type(full_heard).__name__ == "ToolsListChanged"
    # Had the lean agent heard of the new tool, that would have come before the restart's prompts change.
    assert type(lean_heard).__name__ == "PromptsListChanged"


TASK_SERVER = Path(__file__).parents[1] / "fakes" / "task_server.py"
PLAIN_ON_DEMAND: dict[str, Any] = {"default": "allow", "tools": "on_demand"}


async def test_an_on_demand_agent_that_can_create_tasks_finds_a_task_only_tool_and_runs_it_as_a_task():
    jobs = {"command": sys.executable, "args": [str(TASK_SERVER)]}
    async with running_gateway({"jobs": jobs}, policies={"agent-a": PLAIN_ON_DEMAND}) as gw:
        await gw.wait_ready()
        async with task_client_over_http(gw.url, gw.tokens["agent-a"]) as agent:
            listed = {tool.name: tool for tool in (await agent.session.list_tools()).tools}
            found = json_of(await agent.session.call_tool("get_server_tools", {"query": "wait until released"}))
            servers = json_of(await agent.session.call_tool("list_servers", {}))["servers"]
            created = await agent.call_as_task("execute_tool", {"name": "jobs__wait", "arguments": {"text": "report"}})
            assert isinstance(created, types.CreateTaskResult), created
            task_id = created.task.task_id
            await agent.session.call_tool("execute_tool", {"name": "jobs__release"})
            result = await agent.result(task_id)
            tasks = [task.task_id for task in (await agent.list_tasks()).tasks]
    rows = audit_rows(gw)

    assert list(listed) == META
    assert listed["execute_tool"].execution == types.ToolExecution(task_support="optional")
    assert found["tools"][0]["name"] == "jobs__wait" and "note" not in found
    assert found["tools"][0]["execution"] == {"taskSupport": "required"}
    assert servers[0]["tools"] == 3
    assert text_of(result) == "released: report"
    assert tasks == [task_id]
    outcomes = [(r["server"], r["tool"], r["outcome"]) for r in rows if r["kind"] == "outcome"]
    assert outcomes[:2] == [("jobs", "wait", "ok"), ("jobs", "release", "ok")]


@pytest.mark.parametrize("mode", BOTH_ERAS)
async def test_an_on_demand_agent_that_cannot_create_tasks_is_told_why_a_task_only_tool_is_not_offered(mode: Mode):
    jobs = {"command": sys.executable, "args": [str(TASK_SERVER)]}
    async with running_gateway({"jobs": jobs}, policies={"agent-a": PLAIN_ON_DEMAND}) as gw:
        await gw.wait_ready()
        async with agent_client(gw.url, gw.tokens["agent-a"], mode=mode) as client:
            listed = {tool.name: tool for tool in (await client.list_tools()).tools}
            found = json_of(await client.call_tool("get_server_tools", {"query": "wait until released"}))
            everything = json_of(await client.call_tool("get_server_tools", {"server": "jobs"}))
            servers = json_of(await client.call_tool("list_servers", {}))["servers"]

    assert listed["execute_tool"].execution is None
    assert "jobs__wait" not in [tool["name"] for tool in found["tools"]]
    assert found["note"].startswith('1 matching tools run only as tasks (execution.taskSupport "required")')
    assert "cannot create: jobs__wait. Tasks need protocol version 2025-11-25" in found["note"]
    assert [tool["name"] for tool in everything["tools"]] == ["jobs__release", "jobs__plain"]
    assert "jobs__wait" in everything["note"]
    assert servers[0]["tools"] == 2


@pytest.mark.parametrize("mode", BOTH_ERAS)
@pytest.mark.parametrize("declared", ["nothing", "sampling and elicitation"])
async def test_an_on_demand_agent_finds_exactly_the_tools_its_full_listing_would_hold(mode: Mode, declared: str):
    person: dict[str, Any] = {}
    if declared != "nothing":
        person = {"sampling_callback": _sample, "elicitation_callback": _elicit}
    policies = {
        "agent-a": PLAIN_ON_DEMAND,
        "agent-b": {"default": "allow"},
        "agent-c": {**PLAIN_ON_DEMAND, "always_listed": ["fake/summarise", "fake/echo"]},
    }
    config = {"fake": stdio_fake("--by-capability")}
    async with running_gateway(config, agents=("agent-a", "agent-b", "agent-c"), policies=policies) as gw:
        await gw.wait_ready()
        async with (
            agent_client(gw.url, gw.tokens["agent-a"], mode=mode, **person) as on_demand,
            agent_client(gw.url, gw.tokens["agent-b"], mode=mode, **person) as full,
            agent_client(gw.url, gw.tokens["agent-c"], mode=mode, **person) as keeping,
        ):
            listed = sorted(tool.name for tool in (await full.list_tools()).tools)
            kept = [tool.name for tool in (await keeping.list_tools()).tools]
            found = json_of(await on_demand.call_tool("get_server_tools", {"max_tokens": 100_000}))
            queried = json_of(await on_demand.call_tool("get_server_tools", {"query": "summarise"}))
            servers = json_of(await on_demand.call_tool("list_servers", {}))["servers"]

    assert sorted(tool["name"] for tool in found["tools"]) == listed
    assert ("fake__summarise" in listed) == (declared != "nothing")
    assert ("fake__summarise" in [tool["name"] for tool in queried["tools"]]) == (declared != "nothing")
    assert servers[0]["tools"] == len(listed)
    assert kept == [*META, "fake__echo", *(["fake__summarise"] if declared != "nothing" else [])]


@pytest.mark.parametrize("mode", BOTH_ERAS)
async def test_an_on_demand_agent_finds_and_calls_what_a_server_offers_its_era(mode: Mode):
    policies = {"agent-a": PLAIN_ON_DEMAND, "agent-b": {"default": "allow"}}
    config = {"fake": stdio_fake("--by-era")}
    async with running_gateway(config, agents=("agent-a", "agent-b"), policies=policies) as gw:
        await gw.wait_ready()
        async with (
            agent_client(gw.url, gw.tokens["agent-a"], mode=mode) as on_demand,
            agent_client(gw.url, gw.tokens["agent-b"], mode=mode) as full,
        ):
            listed = sorted(tool.name for tool in (await full.list_tools()).tools)
            found = json_of(await on_demand.call_tool("get_server_tools", {"max_tokens": 100_000}))
            queried = json_of(await on_demand.call_tool("get_server_tools", {"query": "listed only to clients"}))
            era = await on_demand.call_tool("execute_tool", {"name": "fake__era", "arguments": {}})
            old = None
            if mode == "legacy":
                old = await on_demand.call_tool("execute_tool", {"name": "fake__whats_old", "arguments": {}})

    assert sorted(tool["name"] for tool in found["tools"]) == listed
    assert ("fake__whats_old" in listed, "fake__whats_new" in listed) == (mode == "legacy", mode != "legacy")
    ranked = [tool["name"] for tool in queried["tools"]]
    mine, other = ("fake__whats_old", "fake__whats_new") if mode == "legacy" else ("fake__whats_new", "fake__whats_old")
    assert ranked[0] == mine and other not in ranked
    assert text_of(era) == ("2025-11-25" if mode == "legacy" else "2026-07-28")
    assert old is None or text_of(old) == "old"

"""2025-11-25 tasks through a real gateway: created by calls, followed with tasks/*, each agent's own."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError

from gateway_core.policy import Effect, Rule
from tests.fakes.task_client import task_client_over_http, task_client_over_stdio
from tests.integration.harness import agent_client, running_gateway, stdio_fake, text_of
from tests.integration.test_shim import shim_params

pytestmark = pytest.mark.anyio

TASK_SERVER = Path(__file__).parents[1] / "fakes" / "task_server.py"


def task_server(**settings: Any) -> dict[str, Any]:
    return {"command": sys.executable, "args": [str(TASK_SERVER)], **settings}


@pytest.mark.parametrize("eras", ["handshake era only", "both eras"])
async def test_a_task_created_through_the_gateway_is_followed_to_its_result(eras: str):
    entry = (
        task_server() if eras == "handshake era only" else {**task_server(), "args": [str(TASK_SERVER), "--both-eras"]}
    )
    async with running_gateway({"jobs": entry}) as gw:
        await gw.wait_ready()
        async with task_client_over_http(gw.url, gw.tokens["agent-a"]) as agent:
            created = await agent.call_as_task("jobs__wait", {"text": "report"}, ttl=30_000)
            assert isinstance(created, types.CreateTaskResult)
            task_id = created.task.task_id
            assert (created.task.status, created.task.ttl) == ("working", 30_000)
            assert (await agent.get(task_id)).status == "working"

            await agent.session.call_tool("jobs__release", {})

            assert (await agent.get(task_id)).status == "completed"
            result = await agent.result(task_id)
            assert text_of(result) == "released: report"
            assert result.meta == {"io.modelcontextprotocol/related-task": {"taskId": task_id}}
            assert [task.task_id for task in (await agent.list_tasks()).tasks] == [task_id]


async def test_another_agent_cannot_see_get_fetch_or_cancel_an_agents_task():
    async with running_gateway({"jobs": task_server()}, agents=("agent-a", "agent-b")) as gw:
        await gw.wait_ready()
        async with (
            task_client_over_http(gw.url, gw.tokens["agent-a"]) as owner,
            task_client_over_http(gw.url, gw.tokens["agent-b"]) as other,
        ):
            created = await owner.call_as_task("jobs__wait", {"text": "mine"})
            assert isinstance(created, types.CreateTaskResult)
            task_id = created.task.task_id

            for attempt in (other.get, other.result, other.cancel):
                with pytest.raises(MCPError) as refused:
                    await attempt(task_id)
                assert refused.value.error.code == types.INVALID_PARAMS
                assert "not one of this agent's tasks" in refused.value.error.message
            assert (await other.list_tasks()).tasks == []

            assert (await owner.cancel(task_id)).status == "cancelled"
            assert [task.status for task in (await owner.list_tasks()).tasks] == ["cancelled"]


async def test_a_task_of_a_tool_denied_since_it_was_created_is_no_longer_followed_but_can_be_cancelled():
    async with running_gateway({"jobs": task_server()}) as gw:
        await gw.wait_ready()
        async with task_client_over_http(gw.url, gw.tokens["agent-a"]) as agent:
            created = await agent.call_as_task("jobs__wait", {"text": "secret"})
            assert isinstance(created, types.CreateTaskResult)
            task_id = created.task.task_id
            config = gw.gateway.config
            denying = config.agents["agent-a"].model_copy(
                update={"rules": (*config.agents["agent-a"].rules, Rule(match="jobs/wait", effect=Effect.DENY))}
            )
            gw.gateway.apply_config(config.model_copy(update={"agents": {**config.agents, "agent-a": denying}}))

            for attempt in (agent.get, agent.result):
                with pytest.raises(MCPError) as refused:
                    await attempt(task_id)
                assert refused.value.error.code == types.INVALID_PARAMS
            assert (await agent.list_tasks()).tasks == []
            assert (await agent.cancel(task_id)).status == "cancelled"


async def test_a_tasks_status_notifications_reach_only_the_agent_that_created_it():
    async with running_gateway({"jobs": task_server()}, agents=("agent-a", "agent-b")) as gw:
        await gw.wait_ready()
        async with (
            task_client_over_http(gw.url, gw.tokens["agent-a"]) as owner,
            task_client_over_http(gw.url, gw.tokens["agent-b"]) as other,
        ):
            created = await owner.call_as_task("jobs__wait", {"text": "x"})
            assert isinstance(created, types.CreateTaskResult)

            await other.session.call_tool("jobs__release", {})

            statuses = await owner.wait_for_statuses(1)
            assert [(s.task_id, s.status) for s in statuses] == [(created.task.task_id, "completed")]
            assert (await other.list_tasks()).tasks == []
            assert other.statuses == []


async def test_the_same_task_id_from_two_servers_reaches_the_agent_as_two_tasks():
    async with running_gateway({"one": task_server(), "two": task_server()}) as gw:
        await gw.wait_ready()
        async with task_client_over_http(gw.url, gw.tokens["agent-a"]) as agent:
            first = await agent.call_as_task("one__wait", {"text": "from one"})
            second = await agent.call_as_task("two__wait", {"text": "from two"})
            assert isinstance(first, types.CreateTaskResult) and isinstance(second, types.CreateTaskResult)
            assert (first.task.task_id, second.task.task_id) == ("task-1", "task-1@two")

            await agent.session.call_tool("two__release", {})

            assert text_of(await agent.result("task-1@two")) == "released: from two"
            assert (await agent.get("task-1")).status == "working"
            assert [t.task_id for t in (await agent.list_tasks()).tasks] == ["task-1", "task-1@two"]


async def test_a_tool_that_requires_a_task_is_listed_only_to_agents_that_can_create_tasks():
    async with running_gateway({"jobs": task_server()}) as gw:
        await gw.wait_ready()
        async with task_client_over_http(gw.url, gw.tokens["agent-a"]) as capable:
            listed = [tool.name for tool in (await capable.session.list_tools()).tools]
        async with task_client_over_http(gw.url, gw.tokens["agent-a"], declare_tasks=False) as incapable:
            unlisted = [tool.name for tool in (await incapable.session.list_tools()).tools]
        async with agent_client(gw.url, gw.tokens["agent-a"], mode="2026-07-28") as modern:
            modern_listed = [tool.name for tool in (await modern.list_tools()).tools]

    assert listed == ["jobs__wait", "jobs__release", "jobs__plain"]
    assert unlisted == modern_listed == ["jobs__release", "jobs__plain"]


async def test_a_task_augmented_call_to_a_server_without_tasks_runs_as_a_plain_call():
    async with running_gateway({"fake": stdio_fake()}) as gw:
        await gw.wait_ready()
        async with task_client_over_http(gw.url, gw.tokens["agent-a"]) as agent:
            result = await agent.call_as_task("fake__echo", {"text": "no task"})

    assert isinstance(result, types.CallToolResult)
    assert text_of(result) == "no task"


async def test_the_gateway_offers_tasks_to_handshake_era_agents():
    async with running_gateway({"fake": stdio_fake()}) as gw:
        await gw.wait_ready()
        async with task_client_over_http(gw.url, gw.tokens["agent-a"]) as agent:
            capabilities = agent.session.server_capabilities

    assert capabilities is not None and capabilities.tasks is not None
    assert capabilities.tasks.requests is not None and capabilities.tasks.requests.tools is not None
    assert capabilities.tasks.list is not None and capabilities.tasks.cancel is not None


async def test_a_2026_agent_is_told_there_are_no_task_methods():
    async with running_gateway({"jobs": task_server()}) as gw:
        await gw.wait_ready()
        async with agent_client(gw.url, gw.tokens["agent-a"], mode="2026-07-28") as modern:
            requests = [
                types.GetTaskRequest(params=types.GetTaskRequestParams(task_id="task-1")),
                types.GetTaskPayloadRequest(params=types.GetTaskPayloadRequestParams(task_id="task-1")),
                types.CancelTaskRequest(params=types.CancelTaskRequestParams(task_id="task-1")),
                types.ListTasksRequest(),
            ]
            codes = []
            for request in requests:
                with pytest.raises(MCPError) as refused:
                    await modern.session.send_request(request, types.GetTaskResult)
                codes.append(refused.value.error.code)

    assert codes == [types.METHOD_NOT_FOUND] * 4


async def test_a_task_runs_through_the_shim_as_over_http():
    async with running_gateway({"jobs": task_server()}) as gw:
        await gw.wait_ready()
        async with task_client_over_stdio(shim_params(gw.base, gw.tokens["agent-a"])) as agent:
            created = await agent.call_as_task("jobs__wait", {"text": "via the shim"})
            assert isinstance(created, types.CreateTaskResult)

            await agent.session.call_tool("jobs__release", {})

            statuses = await agent.wait_for_statuses(1)
            assert [(s.task_id, s.status) for s in statuses] == [(created.task.task_id, "completed")]
            assert text_of(await agent.result(created.task.task_id)) == "released: via the shim"

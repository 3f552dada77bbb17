"""The same scenarios, straight to a server and through the gateway, give the same results.

The gateway fronts each server with an empty prefix, so names match and results can be compared
whole (as dumped to the wire).
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import ExitStack, asynccontextmanager
from typing import Any

import httpx2
import mcp_types as types
import pytest
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError

from gateway_core.gateway import HOT_PATH_ENV
from tests.fakes.launch import serve_fake
from tests.fakes.task_client import TaskClient, task_client_over_http, task_client_over_stdio
from tests.fakes.task_server import __file__ as TASK_SERVER
from tests.fakes.third_party import everything_server
from tests.integration.harness import BOTH_ERAS, Mode, agent_client, running_gateway, stdio_fake, time_server

pytestmark = pytest.mark.anyio

Scenario = Callable[[Client], Awaitable[Any]]


@pytest.fixture(params=["hot path", "long way"])
def hot_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """The gateway with its hot path on (plain requests answered with JSON), then with it off."""
    on = request.param == "hot path"
    monkeypatch.setenv(HOT_PATH_ENV, "1" if on else "0")
    return on


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


ITEM_TEMPLATE = types.ResourceTemplateReference(uri="fake://items/{id}")
COMPLETABLE = types.PromptReference(name="completable-prompt")


async def interactive_scenarios(client: Client) -> list[Any]:
    """Server questions answered by ``PERSON``, completions and a log call."""
    return [
        wire(await client.call_tool("ask", {"who": "parity"})),
        wire(await client.call_tool("ask_url", {"who": "parity"})),
        wire(await client.call_tool("sample", {"prompt": "same either way"})),
        wire(await client.call_tool("roots", {})),
        wire(await client.call_tool("log", {"level": "error", "text": "x"})),
        wire(await client.complete(types.PromptReference(name="greet"), {"name": "name", "value": "A"})),
        wire(
            await client.complete(types.ResourceTemplateReference(uri="fake://items/{id}"), {"name": "id", "value": ""})
        ),
    ]


async def everything_scenarios(client: Client) -> list[Any]:
    """The npm reference server's tools that ask the client things, its completions, templates and progress."""
    progress: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    return [
        wire(await client.list_tools()),
        wire(await client.call_tool("trigger-elicitation-request", {})),
        wire(await client.call_tool("trigger-sampling-request", {"prompt": "hello", "maxTokens": 10})),
        wire(await client.call_tool("get-sum", {"a": 2, "b": 3})),
        wire(
            await client.complete(
                types.PromptReference(name="completable-prompt"), {"name": "department", "value": "S"}
            )
        ),
        wire(
            await client.complete(
                types.ResourceTemplateReference(uri="demo://resource/dynamic/text/{resourceId}"),
                {"name": "resourceId", "value": "4"},
            )
        ),
        wire(await client.read_resource("demo://resource/static/document/architecture.md")),
        wire(await client.get_prompt("args-prompt", {"city": "Paris", "state": "TX"})),
        wire(
            await client.call_tool(
                "trigger-long-running-operation", {"duration": 0.3, "steps": 3}, progress_callback=on_progress
            )
        ),
        progress,
    ]


async def _elicit(context: Any, params: Any) -> types.ElicitResult:
    if isinstance(params, types.ElicitRequestURLParams):
        return types.ElicitResult(action="decline")
    return types.ElicitResult(action="accept", content={"name": "Parity"})


async def _sample(context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
    return types.CreateMessageResult(role="assistant", content=types.TextContent(text="a model's answer"), model="m")


async def _roots(context: Any) -> types.ListRootsResult:
    return types.ListRootsResult(roots=[types.Root(uri="file:///work/parity", name="parity")])


PERSON: dict[str, Any] = {"elicitation_callback": _elicit, "sampling_callback": _sample, "list_roots_callback": _roots}


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
async def direct(entry: dict[str, Any], mode: Mode, **options: Any) -> AsyncIterator[Client]:
    server = entry["url"] if "url" in entry else StdioServerParameters(command=entry["command"], args=entry["args"])
    async with Client(server, mode=mode, cache=None, **options) as client:
        yield client


async def run_both_ways(
    entry: dict[str, Any],
    scenarios: Scenario,
    mode: Mode,
    *,
    direct_mode: Mode | None = None,
    hot_calls: list[int] | None = None,
    **options: Any,
) -> tuple[Any, Any]:
    """Run ``scenarios`` straight to the server (in ``direct_mode``, default ``mode``) and through the gateway.

    ``hot_calls`` gets how many calls the gateway's hot path answered (``hot_path.py``).
    """
    async with direct(entry, direct_mode or mode, **options) as client:
        straight = await scenarios(client)
    async with running_gateway({"srv": {**entry, "prefix": ""}}) as gw:
        await gw.wait_ready()
        async with agent_client(gw.url, gw.tokens["agent-a"], mode=mode, **options) as client:
            through = await scenarios(client)
        if hot_calls is not None:
            async with httpx2.AsyncClient(timeout=10) as http:
                metrics = (await http.get(f"{gw.base}/metrics")).text
            counted = [line for line in metrics.splitlines() if line.startswith("toolgate_hot_path_calls_total{")]
            hot_calls.append(sum(int(line.rsplit(" ", 1)[1]) for line in counted))
    return straight, through


def hot_path_taken(hot_calls: list[int], hot_path: bool) -> bool:
    """Whether the hot path answered calls exactly when it should: on, for agents of either era.

    A handshake-era agent's plain calls, reads and prompts take it in their session (``hot_path.py``), a
    2026-07-28 agent's by the modern lane (``modern_lane.py``).
    """
    return (hot_calls[0] > 0) is hot_path


@pytest.mark.parametrize("mode", BOTH_ERAS)
async def test_the_fake_server_answers_the_same_through_the_gateway(mode: Mode, hot_path: bool):
    hot_calls: list[int] = []
    straight, through = await run_both_ways(stdio_fake(), fake_scenarios, mode, hot_calls=hot_calls)

    assert through == straight
    assert hot_path_taken(hot_calls, hot_path)


@pytest.mark.parametrize("mode", BOTH_ERAS)
async def test_the_fake_server_over_streamable_http_answers_the_same_through_the_gateway(mode: Mode, hot_path: bool):
    # The hot path reaches an HTTP server by its raw lane (http_lane.py).
    hot_calls: list[int] = []
    with serve_fake("http") as remote:
        entry = {"url": remote.url, "type": "http"}
        straight, through = await run_both_ways(entry, fake_scenarios, mode, hot_calls=hot_calls)

    assert through == straight
    assert hot_path_taken(hot_calls, hot_path)


@pytest.mark.parametrize("mode", BOTH_ERAS)
async def test_mcp_server_time_answers_the_same_through_the_gateway(mode: Mode, hot_path: bool):
    hot_calls: list[int] = []
    straight, through = await run_both_ways(time_server(), time_scenarios, mode, hot_calls=hot_calls)

    assert through == straight
    assert hot_path_taken(hot_calls, hot_path)


@pytest.mark.parametrize("mode", BOTH_ERAS)
async def test_the_fakes_questions_completions_and_logs_answer_the_same_through_the_gateway(mode: Mode):
    # In 2026 mode the fake asks straight through InputRequiredResult rounds; through the gateway
    # it asks Toolgate with real requests, which Toolgate turns into rounds for the agent.
    straight, through = await run_both_ways(stdio_fake(), interactive_scenarios, mode, **PERSON)

    assert through == straight
    assert straight[0]["content"][0]["text"] == "parity got: Parity"


@pytest.mark.parametrize("mode", BOTH_ERAS)
async def test_server_everything_answers_the_same_through_the_gateway(mode: Mode):
    # server-everything speaks only the handshake era, so it is always reached directly in it; a
    # 2026 agent reaches it through the gateway's rounds.
    entry = {"command": str(everything_server()), "args": ["stdio"]}
    straight, through = await run_both_ways(entry, everything_scenarios, mode, direct_mode="legacy", **PERSON)

    # The SDK's Client cannot create tasks: through Toolgate, a tool that requires one is not listed to it.
    tools = straight[0]["tools"]
    straight[0]["tools"] = [tool for tool in tools if tool.get("execution", {}).get("taskSupport") != "required"]
    assert [tool["name"] for tool in tools if tool not in straight[0]["tools"]] == ["simulate-research-query"]
    if mode == "2026-07-28":
        # A 2026-07-28 Tool has no `execution` (tasks left the core protocol); the SDK drops it.
        for tool in straight[0]["tools"]:
            tool.pop("execution", None)
    assert through == straight
    assert "Parity" in json.dumps(straight[1])
    assert straight[-1] == [1, 2, 3]


HOP_KEYS = {
    "progressToken",
    "io.modelcontextprotocol/protocolVersion",
    "io.modelcontextprotocol/clientInfo",
    "io.modelcontextprotocol/clientCapabilities",
}


async def meta_scenarios(client: Client) -> list[Any]:
    """What the server gets of a request's ``_meta`` (the keys about the agent's own hop left out)."""
    sent: Any = {"com.example/trace": "trace-1", "note": {"nested": [1, 2]}}
    result = await client.call_tool("meta", {}, meta=sent)
    received = (result.structured_content or {})["meta"]
    return [{key: value for key, value in received.items() if key not in HOP_KEYS}]


@pytest.mark.parametrize("mode", BOTH_ERAS)
async def test_a_requests_meta_reaches_the_server_as_it_would_directly(mode: Mode, hot_path: bool):
    hot_calls: list[int] = []
    straight, through = await run_both_ways(stdio_fake(), meta_scenarios, mode, hot_calls=hot_calls)

    assert through == straight
    assert hot_path_taken(hot_calls, hot_path)
    assert straight == [{"com.example/trace": "trace-1", "note": {"nested": [1, 2]}}]


async def round_scenarios(client: Client) -> list[Any]:
    """A 2026 agent driving the rounds itself: what one round holds, and the result of answering it."""
    first = await client.session.call_tool("ask_two", {"who": "Ada"}, allow_input_required=True)
    assert isinstance(first, types.InputRequiredResult)
    questions = {key: wire(request) for key, request in (first.input_requests or {}).items()}
    answers: types.InputResponses = {
        key: types.ElicitResult(action="accept", content={key: f"my {key}"}) for key in questions
    }
    final = await client.session.call_tool(
        "ask_two", {"who": "Ada"}, input_responses=answers, request_state=first.request_state, allow_input_required=True
    )
    return [questions, wire(final)]


async def listings(client: Client) -> list[Any]:
    tools = sorted(tool.name for tool in (await client.list_tools()).tools)
    prompts = sorted(prompt.name for prompt in (await client.list_prompts()).prompts)
    return [tools, prompts]


@pytest.mark.parametrize("mode", BOTH_ERAS)
@pytest.mark.parametrize("declared", ["nothing", "sampling, elicitation and roots"])
async def test_a_server_that_lists_by_capability_lists_each_agent_what_it_lists_the_agent_directly(
    mode: Mode, declared: str
):
    options = {} if declared == "nothing" else PERSON
    straight, through = await run_both_ways(stdio_fake("--by-capability"), listings, mode, **options)

    assert through == straight
    assert ("summarise" in straight[0], "interview" in straight[1]) == (bool(options), bool(options))


async def answered_before_asked(client: Client) -> list[Any]:
    """A 2026 agent whose first call already carries the answer to the question the server would ask."""
    early: types.InputResponses = {"q": types.ElicitResult(action="accept", content={"name": "Early"})}
    result = await client.session.call_tool("ask", {"who": "Ada"}, input_responses=early, allow_input_required=True)
    return [wire(result)]


async def test_answers_a_2026_agent_sends_before_any_round_reach_the_server_with_its_call():
    straight, through = await run_both_ways(stdio_fake(), answered_before_asked, "2026-07-28", **PERSON)

    assert through == straight
    assert straight[0]["content"][0]["text"] == "Ada got: Early"


async def test_a_2026_agent_gets_a_2026_servers_questions_in_the_same_rounds_under_the_same_keys():
    entry = stdio_fake("--modern-only")
    straight, through = await run_both_ways(entry, round_scenarios, "2026-07-28", **PERSON)

    assert through == straight
    assert sorted(straight[0]) == ["favourite_colour", "user_name"]
    assert straight[1]["content"][0]["text"] == "Ada: my user_name, my favourite_colour"


async def capability_scenarios(client: Client) -> list[Any]:
    """The client capabilities the server was told."""
    return [wire(await client.call_tool("capabilities", {}))]


CAPABILITY_SETS: dict[str, dict[str, Any]] = {
    "none": {},
    "sampling with context and tools": {
        "sampling_callback": _sample,
        "sampling_capabilities": types.SamplingCapability(
            context=types.SamplingContextCapability(), tools=types.SamplingToolsCapability()
        ),
    },
    "plain sampling": {"sampling_callback": _sample},
    "elicitation and roots": {"elicitation_callback": _elicit, "list_roots_callback": _roots},
}


@pytest.mark.parametrize("mode", BOTH_ERAS)
@pytest.mark.parametrize("declared", list(CAPABILITY_SETS))
async def test_an_agents_own_process_is_told_the_capabilities_the_agent_declared(mode: Mode, declared: str):
    entry = stdio_fake(isolation="per_agent")
    straight, through = await run_both_ways(entry, capability_scenarios, mode, **CAPABILITY_SETS[declared])

    assert through == straight
    if declared == "none":
        assert straight[0]["content"][0]["text"] in ("{}", "null")


@pytest.mark.parametrize("declared", list(CAPABILITY_SETS))
async def test_a_shared_2026_server_is_told_the_capabilities_of_the_agent_each_request_is_for(declared: str):
    # In the 2026-07-28 era each request carries its client's capabilities: Toolgate's session with
    # the server claims, for an agent's request, what that agent declared.
    entry = stdio_fake("--modern-only")
    straight, through = await run_both_ways(entry, capability_scenarios, "2026-07-28", **CAPABILITY_SETS[declared])

    assert through == straight


async def instruction_scenarios(client: Client) -> list[Any]:
    """The instructions the agent was given, in the era it speaks."""
    return [client.protocol_version, client.instructions]


# A client pinned to 2026-07-28 sends no server/discover; "auto" does (and speaks 2026-07-28 then).
@pytest.mark.parametrize("mode", ["legacy", "auto"])
@pytest.mark.parametrize("instructions", [None, "Use echo first.\n\n## Notes\n\nNothing else."])
async def test_a_lone_servers_instructions_reach_the_agent_unchanged(mode: Any, instructions: str | None):
    entry = stdio_fake() if instructions is None else stdio_fake("--instructions", instructions)
    straight, through = await run_both_ways(entry, instruction_scenarios, mode)

    assert through == straight
    assert straight[1] == instructions


def without_times(dumped: Any) -> Any:
    """A dumped result with its tasks' timestamps blanked (they differ between any two runs)."""
    if isinstance(dumped, dict):
        return {k: "<time>" if k in ("createdAt", "lastUpdatedAt") else without_times(v) for k, v in dumped.items()}
    if isinstance(dumped, list):
        return [without_times(item) for item in dumped]
    return dumped


async def task_scenarios(agent: TaskClient) -> list[Any]:
    """A task followed to its result, one cancelled, the listing, and the calls a task tool refuses."""
    listed = await agent.session.list_tools()
    created = await agent.call_as_task("wait", {"text": "parity"}, ttl=30_000)
    doomed = await agent.call_as_task("wait", {"text": "cancel me"})
    assert isinstance(created, types.CreateTaskResult) and isinstance(doomed, types.CreateTaskResult)
    outcomes = [wire(listed), wire(created), wire(doomed), wire(await agent.get(created.task.task_id))]
    outcomes.append(wire(await agent.cancel(doomed.task.task_id)))
    outcomes.append(wire(await agent.session.call_tool("release", {})))
    outcomes.append(wire(await agent.result(created.task.task_id)))
    outcomes.append(wire(await agent.list_tasks()))
    outcomes.append([wire(status) for status in await agent.wait_for_statuses(1)])
    for refused in (agent.call_as_task("plain", {}), agent.session.call_tool("wait", {"text": "no task"})):
        try:
            await refused
        except MCPError as exc:
            outcomes.append(exc.error.code)
    return without_times(outcomes)


async def test_a_task_runs_the_same_through_the_gateway():
    command, args = sys.executable, [str(TASK_SERVER)]
    async with task_client_over_stdio(StdioServerParameters(command=command, args=args)) as agent:
        straight = await task_scenarios(agent)
    async with running_gateway({"srv": {"command": command, "args": args, "prefix": ""}}) as gw:
        await gw.wait_ready()
        async with task_client_over_http(gw.url, gw.tokens["agent-a"]) as agent:
            through = await task_scenarios(agent)

    assert through == straight
    assert straight[6]["content"][0]["text"] == "released: parity"
    assert straight[-2:] == [types.METHOD_NOT_FOUND, types.METHOD_NOT_FOUND]


def without_ids(dumped: Any, ids: list[str]) -> Any:
    """``dumped`` with the given task ids (a server's random ones) numbered in order of appearance."""
    text = json.dumps(dumped)
    for number, task_id in enumerate(ids, start=1):
        text = text.replace(task_id, f"<task {number}>")
    return json.loads(text)


async def research_scenarios(agent: TaskClient) -> list[Any]:
    """server-everything's research task, from creation to result (its progress is timed, so not compared)."""
    # Only the research tool: which others it lists depends on capabilities this client does not declare.
    listed = [tool for tool in (await agent.session.list_tools()).tools if tool.name == "simulate-research-query"]
    created = await agent.call_as_task("simulate-research-query", {"topic": "parity"})
    assert isinstance(created, types.CreateTaskResult)
    task_id = created.task.task_id
    result = await agent.result(task_id)
    outcomes = [
        [wire(tool) for tool in listed],
        wire(created.task)["status"],
        wire(result),
        wire(await agent.get(task_id)),
    ]
    outcomes.append(wire(await agent.list_tasks()))
    return without_ids(without_times(outcomes), [task_id])


async def test_server_everythings_research_task_runs_the_same_through_the_gateway():
    command, args = str(everything_server()), ["stdio"]
    async with task_client_over_stdio(StdioServerParameters(command=command, args=args)) as agent:
        straight = await research_scenarios(agent)
    async with running_gateway({"srv": {"command": command, "args": args, "prefix": ""}}) as gw:
        await gw.wait_ready()
        async with task_client_over_http(gw.url, gw.tokens["agent-a"]) as agent:
            through = await research_scenarios(agent)

    assert through == straight
    assert "Research Report: parity" in straight[2]["content"][0]["text"]
    assert straight[3]["status"] == "completed"


async def _clarify(context: Any, params: Any) -> types.ElicitResult:
    return types.ElicitResult(action="accept", content={"interpretation": "the one the agent chose"})


async def ambiguous_research(agent: TaskClient) -> list[Any]:
    """An ambiguous research task: the server asks the agent to clarify while ``tasks/result`` waits."""
    created = await agent.call_as_task("simulate-research-query", {"topic": "parity", "ambiguous": True})
    assert isinstance(created, types.CreateTaskResult)
    result = await agent.result(created.task.task_id)
    return without_ids([wire(result)], [created.task.task_id])


async def test_server_everythings_question_during_a_task_reaches_the_agent_as_directly():
    command, args = str(everything_server()), ["stdio"]
    params = StdioServerParameters(command=command, args=args)
    async with task_client_over_stdio(params, elicitation_callback=_clarify) as agent:
        straight = await ambiguous_research(agent)
    async with running_gateway({"srv": {"command": command, "args": args, "prefix": ""}}) as gw:
        await gw.wait_ready()
        async with task_client_over_http(gw.url, gw.tokens["agent-a"], elicitation_callback=_clarify) as agent:
            through = await ambiguous_research(agent)

    assert through == straight
    assert "the one the agent chose" in straight[0]["content"][0]["text"]


async def era_scenarios(client: Client) -> list[Any]:
    """What the server lists to the client, and which era it says a call came in."""
    tools = sorted(tool.name for tool in (await client.list_tools()).tools)
    era = wire(await client.call_tool("era", {}))
    old = wire(await client.call_tool("whats_old", {})) if "whats_old" in tools else None
    return [tools, era, old]


@pytest.mark.parametrize("mode", BOTH_ERAS)
@pytest.mark.parametrize("transport", ["stdio", "stdio per_agent", "http"])
async def test_a_server_that_offers_each_era_something_else_offers_each_agent_what_its_era_sees_directly(
    mode: Mode, transport: str
):
    with ExitStack() as stack:
        remote = None if transport == "stdio" else stack.enter_context(serve_fake("http", "--by-era"))
        entry = stdio_fake("--by-era") if remote is None else {"url": remote.url, "type": "http"}
        if transport == "stdio per_agent":
            entry["isolation"] = "per_agent"
        straight, through = await run_both_ways(entry, era_scenarios, mode)

    assert through == straight
    assert ("whats_new" in straight[0], "whats_old" in straight[0]) == (mode == "2026-07-28", mode == "legacy")
    assert straight[1]["content"][0]["text"] == ("2026-07-28" if mode == "2026-07-28" else "2025-11-25")

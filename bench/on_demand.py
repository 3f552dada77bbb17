"""What on-demand tools save, how well get_server_tools finds the tool a task needs, and what they cost.

Two catalogues, each behind the agent-facing server in this process (agents connect in memory):
  real       six real third-party servers over stdio: mcp-server-time (installed for the tests),
             mcp-server-fetch and mcp-server-git (PyPI), the npm reference servers everything
             (installed for the tests), filesystem and memory; bench/install-servers installs the
             rest. git serves a throwaway repository, filesystem and memory a temporary folder; tools
             are only listed and ranked, never called (fetch fetches nothing)
  synthetic  500 generated tools: 25 services × 20 tools with descriptions and typed parameters
Measured:
  (a) each agent's tools/list size with all tools and on demand (``GatewayApi.listing_sizes``);
      targets: on demand <= 10 % of all tools (real), <= 2 % (500 tools)
  (b) retrieval: for each task in ``on_demand_tasks.json`` (written against the real catalogue),
      whether the tool it needs is in the top 3 of ``get_server_tools(query=task)``; target >= 90 %
      (a task whose tool is not offered to the agent is named, not counted), by server; and the same
      for ``on_demand_tasks_held_out.json``, tasks written before the ranking was measured on them,
      never used to tune it (a ranking fitted to the first set shows here); each by words alone (what
      Toolgate does when its table of meanings cannot be read) and by words and meaning (the default)
  (c) on the 500 tools, in turns: ``get_server_tools`` with a query, median (target <= 5 ms); a
      direct ``tools/call`` and ``execute_tool`` of the same tool, difference of medians
      (target <= 0.2 ms); and the ranking alone, also for queries whose words it has not seen (a word's
      similarities to the tools are worked out once, then kept: the timed queries repeat 125 texts)
  (d) how large an answer to ``get_server_tools(query=…)`` is (an agent pays it in its context on every
      search): median and 90th percentile in bytes and estimated tokens, per query, for the task sets on
      the real catalogue (with (b), which also says how often the needed tool is in the answer at all)
      and for 125 queries on the 500 tools

  (e) with --cuts: the answers' sizes, and how often they hold the needed tool, replayed for other
      relevance cuts (share of the best match, fewest and most tools kept), to choose the one on_demand makes

    .venv/bin/python bench/on_demand.py [--calls 2000] [--show-misses] [--show-catalogue] [--cuts]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
from mcp import Client
from mcp.server.lowlevel import Server

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway_core.approvals import ApprovalBroker
from gateway_core.config import ServerConfig
from gateway_core.downstream import DownstreamPool, ServerState
from gateway_core.downstream.base import Connection
from gateway_core.downstream.memory import open_memory
from gateway_core.events import EventStream
from gateway_core.frontend.guard import CallGuard
from gateway_core.frontend.listing_size import ListingSizes, listing_sizes
from gateway_core.frontend.metrics import Metrics
from gateway_core.frontend.on_demand import (
    DEFAULT_BUDGET_TOKENS,
    KEPT_AT_LEAST,
    KEPT_AT_MOST,
    RELEVANT_SHARE,
    _compact,
    _definition,
    estimated_tokens,
)
from gateway_core.frontend.routing import Routes
from gateway_core.frontend.runtime import Runtime, RuntimeCell
from gateway_core.frontend.server import AgentFacingServer
from gateway_core.frontend.tasks import requires_task
from gateway_core.frontend.tool_embeddings import Embedder
from gateway_core.frontend.tool_embeddings import load as load_embedder
from gateway_core.frontend.tool_embeddings import read as read_embedder
from gateway_core.frontend.tool_search import ToolIndex
from tests.fakes.third_party import EVERYTHING_BIN, time_server_command
from tests.gateway_core.frontend.conftest import config_of, in_memory

TASKS = Path(__file__).with_name("on_demand_tasks.json")
HELD_OUT = Path(__file__).with_name("on_demand_tasks_held_out.json")
# bench/install-servers installs the npm servers filesystem and memory here (.cache/npm is the tests').
NPM_BENCH = Path(__file__).resolve().parents[1] / ".cache/npm-bench/node_modules/.bin"
FILESYSTEM_BIN = NPM_BENCH / "mcp-server-filesystem"
MEMORY_BIN = NPM_BENCH / "mcp-server-memory"
AGENT = "bench"
# Lists the tool the latency runs call, so the client knows it (else the SDK fetches tools/list to check its result).
CALLER = "caller"
CALLED = "github__get_issue"
ON_DEMAND: dict[str, Any] = {"default": "allow", "tools": "on_demand"}
START_TIMEOUT_S = 60.0
TOP = 3
TARGETS = {"real_ratio": 0.10, "synthetic_ratio": 0.02, "recall": 0.90, "query_ms": 5.0, "execute_ms": 0.2}


# --- the catalogues ---------------------------------------------------------------------------------


def real_servers(workspace: Path) -> dict[str, dict[str, Any]]:
    """The six real servers, those installed here; their files go in ``workspace`` (missing ones said on stderr).

    git serves a throwaway repository made in ``workspace``, filesystem a folder in it, and memory keeps
    its file there. Only their tools are listed: nothing is called, so fetch never fetches.
    """
    servers: dict[str, dict[str, Any]] = {}
    missing: list[tuple[str, str]] = []  # (the server, how to install it)
    command, args = time_server_command()
    servers["time"] = {"command": command, "args": args}
    if importlib.util.find_spec("mcp_server_fetch") is not None:
        servers["fetch"] = {"command": sys.executable, "args": ["-m", "mcp_server_fetch"]}
    else:
        missing.append(("fetch (PyPI mcp-server-fetch)", "bench/install-servers installs it"))
    if importlib.util.find_spec("mcp_server_git") is not None and shutil.which("git") is not None:
        servers["git"] = {
            "command": sys.executable,
            "args": ["-m", "mcp_server_git", "--repository", str(_repository(workspace))],
        }
    else:
        missing.append(("git (PyPI mcp-server-git, and the git command)", "bench/install-servers installs the server"))
    node = shutil.which("node")
    if EVERYTHING_BIN.exists() and node is not None:
        servers["everything"] = {"command": str(EVERYTHING_BIN), "args": ["stdio"]}
    else:
        missing.append((f"everything (npm, {EVERYTHING_BIN}, and node)", "scripts/test installs it"))
    if FILESYSTEM_BIN.exists() and node is not None:
        project = workspace / "project"
        project.mkdir()
        (project / "README.md").write_text("# A project\n\nServed by the filesystem server during the benchmark.\n")
        servers["filesystem"] = {"command": str(FILESYSTEM_BIN), "args": [str(project)]}
    else:
        missing.append((f"filesystem (npm, {FILESYSTEM_BIN}, and node)", "bench/install-servers installs it"))
    if MEMORY_BIN.exists() and node is not None:
        servers["memory"] = {"command": str(MEMORY_BIN), "env": {"MEMORY_FILE_PATH": str(workspace / "memory.jsonl")}}
    else:
        missing.append((f"memory (npm, {MEMORY_BIN}, and node)", "bench/install-servers installs it"))
    for server, how in missing:
        print(f"left out: the server {server} is not installed here; {how}", file=sys.stderr)
    return servers


def _repository(workspace: Path) -> Path:
    """A git repository with two commits in ``workspace``, for the git server to serve."""
    repository = workspace / "repository"
    repository.mkdir()
    identity = ["-c", "user.name=Bench", "-c", "user.email=bench@example.invalid", "-c", "commit.gpgsign=false"]
    for message in ("First commit", "Second commit"):
        (repository / "notes.txt").write_text(f"{message}\n")
        for command in (["init", "--quiet"], ["add", "notes.txt"], ["commit", "--quiet", "-m", message]):
            subprocess.run(["git", *identity, *command], cwd=repository, check=True)
    return repository


SERVICES = {
    "github": ("repository", "issue", "pull request", "branch", "release"),
    "jira": ("ticket", "sprint", "board", "epic", "comment"),
    "slack": ("channel", "message", "thread", "reaction", "user group"),
    "calendar": ("event", "calendar", "attendee", "reminder", "availability window"),
    "mail": ("message", "draft", "label", "attachment", "filter"),
    "storage": ("bucket", "object", "upload", "lifecycle rule", "access policy"),
    "postgres": ("table", "query", "index", "schema", "role"),
    "kubernetes": ("pod", "deployment", "service", "namespace", "config map"),
    "docker": ("container", "image", "volume", "network", "registry login"),
    "billing": ("invoice", "customer", "subscription", "refund", "payment method"),
    "notes": ("page", "database", "block", "workspace", "template"),
    "tracker": ("task", "project", "milestone", "label", "cycle"),
    "errors": ("incident", "error event", "release health", "alert rule", "stack trace"),
    "metrics": ("dashboard", "monitor", "metric series", "log query", "service map"),
    "drive": ("file", "folder", "permission", "revision", "shared drive"),
    "sheets": ("spreadsheet", "worksheet", "cell range", "chart", "named range"),
    "design": ("design file", "frame", "component", "style", "prototype link"),
    "sms": ("text message", "phone number", "call", "recording", "messaging service"),
    "helpdesk": ("support ticket", "macro", "agent", "satisfaction rating", "help article"),
    "crm": ("contact", "company", "deal", "pipeline", "note"),
    "shop": ("product", "order", "inventory item", "discount code", "fulfillment"),
    "music": ("playlist", "track", "album", "artist", "playback queue"),
    "weather": ("forecast", "current conditions", "weather alert", "air quality reading", "historical record"),
    "maps": ("place", "route", "geocode", "distance matrix", "elevation profile"),
    "search": ("web result", "news article", "image result", "site index", "answer box"),
}
VERBS = ("list", "get", "create", "update")
PARAMETERS = {
    "list": {"limit": ("integer", "At most this many results (1-100)."), "cursor": ("string", "Where to continue.")},
    "get": {"id": ("string", "The identifier.")},
    "create": {"name": ("string", "Its name."), "details": ("object", "Further fields, as the service names them.")},
    "update": {"id": ("string", "The identifier."), "changes": ("object", "The fields to change and their values.")},
}


def synthetic_tools() -> dict[str, list[types.Tool]]:
    """500 tools by service, shaped like real services' tools: verb_object names, a few sentences, typed parameters."""
    chance = random.Random(16)
    tools: dict[str, list[types.Tool]] = {}
    for service, things in SERVICES.items():
        tools[service] = []
        for thing in things:
            for verb in VERBS:
                noun = thing.replace(" ", "_")
                scope = chance.choice(("workspace", "account", "project", "organization"))
                description = (
                    f"{verb.capitalize()} {'the ' + thing + 's' if verb == 'list' else 'a ' + thing} in {service}. "
                    f"Works within the connected {scope}; results follow the permissions of the signed-in user. "
                    + chance.choice(
                        (
                            "Returns JSON with the fields the service provides.",
                            "Rate limited to 60 requests per minute.",
                            "Large results are paginated; pass the returned cursor to continue.",
                        )
                    )
                )
                properties = {
                    name: {"type": kind, "description": text} for name, (kind, text) in PARAMETERS[verb].items()
                }
                properties[f"{service}_{scope}"] = {"type": "string", "description": f"The {service} {scope}."}
                tools[service].append(
                    types.Tool(
                        name=f"{verb}_{noun}",
                        description=description,
                        input_schema={"type": "object", "properties": properties, "required": list(properties)[:1]},
                    )
                )
    return tools


def synthetic_server(name: str, tools: list[types.Tool]) -> Server[Any]:
    """A server listing ``tools`` whose every call answers its name at once (nothing else is measured)."""

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tools)

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        return types.CallToolResult(content=[types.TextContent(text=params.name)])

    return Server(name, version="1.0.0", on_list_tools=list_tools, on_call_tool=call_tool)


class SyntheticServers:
    """The transport of the synthetic catalogue: each configured server is one in-memory ``synthetic_server``."""

    def __init__(self, tools_by_server: Mapping[str, list[types.Tool]]) -> None:
        self._tools = tools_by_server

    def open(self, name: str, config: ServerConfig) -> AbstractAsyncContextManager[Connection]:
        return open_memory(synthetic_server(name, self._tools[name]))


@asynccontextmanager
async def serving(
    servers: Mapping[str, Mapping[str, Any]], policies: Mapping[str, Mapping[str, Any]], transport: Any = None
) -> AsyncIterator[tuple[AgentFacingServer, RuntimeCell]]:
    """The agent-facing server over a pool of ``servers``, as the gateway wires them; every server tried."""
    config = config_of({}, policies).model_copy(update={"servers": config_of(servers, {}).servers})
    runtime = RuntimeCell(Runtime.of(config))
    approvals = ApprovalBroker(timeout_s=lambda: 60.0, on_always=lambda request, effect: None)
    guard = CallGuard(runtime, approvals, None)
    fronts: list[AgentFacingServer] = []
    pool = DownstreamPool(
        config.servers,
        resolve=dict,
        on_change=lambda name: fronts[0].on_pool_change(name),
        on_catalog=lambda name: fronts[0].on_pool_change(name),
        transport=transport,
    )
    front = AgentFacingServer(runtime, pool, guard, Metrics(), EventStream(), version="0.0.0-bench")
    fronts.append(front)
    async with anyio.create_task_group() as tg:
        await tg.start(front.run)
        await tg.start(pool.run)
        with anyio.fail_after(START_TIMEOUT_S):
            await pool.wait_all_tried()
            ready = {name for name, server in pool.servers.items() if server.status.state is ServerState.READY}
            while {route.server for route in front.routes.tools.values()} != ready:
                await front.wait_refreshed()
        for name, server in pool.servers.items():
            if server.status.state is not ServerState.READY:
                print(f"left out: server {name} is {server.status.state.value}", file=sys.stderr)
        try:
            yield front, runtime
        finally:
            front.close()
            tg.cancel_scope.cancel()


@asynccontextmanager
async def agent(front: AgentFacingServer, agent_id: str = AGENT) -> AsyncIterator[Client]:
    """An agent connected to ``front`` in memory (handshake era, as most IDEs today)."""
    async with Client(in_memory(front.server, agent_id), mode="legacy") as client:
        yield client


def sizes_of(runtime: RuntimeCell) -> ListingSizes:
    now = runtime.now
    return listing_sizes(now.routes, now.policy(AGENT), now.config.agents[AGENT].always_listed)


@dataclass(frozen=True)
class Answer:
    """What ``get_server_tools(query=…)`` answered: the tools' names, in order, and the answer's text."""

    names: list[str]
    text: str

    @property
    def bytes(self) -> int:
        return len(self.text.encode())


async def found(client: Client, query: str) -> Answer:
    result = await client.call_tool("get_server_tools", {"query": query})
    content = result.content[0]
    assert isinstance(content, types.TextContent) and not result.is_error, result
    return Answer([tool["name"] for tool in json.loads(content.text)["tools"]], content.text)


def size_summary(answers: list[Answer]) -> str:
    """The median and 90th-percentile answer, in bytes and estimated tokens, and how many tools answers held."""
    sizes = sorted(answer.bytes for answer in answers)
    tokens = sorted(estimated_tokens(answer.text) for answer in answers)
    tools = sorted(len(answer.names) for answer in answers)
    p90 = statistics.quantiles(sizes, n=10, method="inclusive")[-1]
    p90_tokens = statistics.quantiles(tokens, n=10, method="inclusive")[-1]
    return (
        f"answer median {statistics.median(sizes):,.0f} B ~{statistics.median(tokens):,.0f} tok, "
        f"90th percentile {p90:,.0f} B ~{p90_tokens:,.0f} tok; "
        f"tools in an answer median {statistics.median(tools):.0f}, most {tools[-1]}"
    )


# --- the measurements -------------------------------------------------------------------------------


def size_row(name: str, tools: int, sizes: ListingSizes, target: float) -> str:
    ratio = sizes.on_demand.bytes / sizes.all.bytes
    verdict = "OK" if ratio <= target else "MISSED"
    return (
        f"  {name:<10} {tools:>4} tools  all {sizes.all.bytes:>8,} B ~{sizes.all.tokens:>7,} tok"
        f"  on demand {sizes.on_demand.bytes:>6,} B ~{sizes.on_demand.tokens:>5,} tok"
        f"  {ratio:6.1%} (target <= {target:.0%}) {verdict}"
    )


async def retrieval(
    client: Client, tasks: list[dict[str, str]], show_misses: bool
) -> tuple[dict[str, tuple[int, int]], list[Answer], int]:
    """By server, how many of ``tasks`` have their tool in the top 3 of a query of the task's words, of how many;
    the answers; and how many held the tool at all."""
    by_server: dict[str, tuple[int, int]] = {}
    answers = []
    for task in tasks:
        answer = await found(client, task["task"])
        answers.append(answer)
        top = answer.names[:TOP]
        hit = task["tool"] in top
        if not hit and show_misses:
            where = "not in the answer" if task["tool"] not in answer.names else "in the answer"
            print(f"    miss: {task['task']!r} needs {task['tool']} ({where}), got {top}")
        server = task["tool"].split("__")[0]
        hits, count = by_server.get(server, (0, 0))
        by_server[server] = (hits + hit, count + 1)
    held = sum(task["tool"] in answer.names for task, answer in zip(tasks, answers, strict=True))
    return by_server, answers, held


QUERIES = [f"{thing} in {service}" for service, things in SERVICES.items() for thing in things]


def first_queries_ms(routes: Routes) -> float:
    """Median ms of ranking alone by meaning, each of the 125 queries once on a fresh index and embedder
    (every word new to it, but those of earlier queries)."""
    fresh = read_embedder()
    assert fresh is not None
    index = ToolIndex()
    index.search(routes, "build", fresh)
    timed = []
    for query in QUERIES:
        start = time.perf_counter()
        index.search(routes, query, fresh)
        timed.append((time.perf_counter() - start) * 1000)
    index.close()
    return statistics.median(timed)


def ranking_ms(routes: Routes, calls: int, embedder: Embedder | None) -> float:
    """Median ms of ranking alone (``ToolIndex.search``), on an index already built."""
    index = ToolIndex()
    index.search(routes, "build", embedder)
    timed = []
    for i in range(calls):
        start = time.perf_counter()
        index.search(routes, QUERIES[i % len(QUERIES)], embedder)
        timed.append((time.perf_counter() - start) * 1000)
    index.close()
    return statistics.median(timed)


async def latencies(
    client: Client, calls: int, front: AgentFacingServer, embedder: Embedder | None
) -> dict[str, float]:
    """Median ms of a query (by words, and by meaning too if ``embedder``), of a direct call, and of the same
    call through execute_tool, taken in turns."""
    await client.list_tools()  # the client learns the called tool's definition
    kinds: list[tuple[str, str, dict[str, Any]]] = [
        ("query", "get_server_tools", {}),
        ("direct", CALLED, {"id": "1"}),
        ("execute", "execute_tool", {"name": CALLED, "arguments": {"id": "1"}}),
    ]
    if embedder is not None:
        kinds.append(("query by meaning", "get_server_tools", {}))
    timed: dict[str, list[float]] = {kind: [] for kind, _, _ in kinds}
    for round_ in range(calls + 1):  # the first round warms every path up
        turn = round_ % len(kinds)
        for kind, name, arguments in kinds[turn:] + kinds[:turn]:
            if kind.startswith("query"):
                arguments = {"query": QUERIES[round_ % len(QUERIES)]}
                use_embedder(front, embedder if kind == "query by meaning" else None)
            start = time.perf_counter()
            result = await client.call_tool(name, arguments)
            if round_:
                timed[kind].append((time.perf_counter() - start) * 1000)
            assert not result.is_error, result
    return {kind: statistics.median(values) for kind, values in timed.items()}


# The cuts --cuts replays: the share of the best match's relevance a tool needs, and the fewest and most kept.
CUT_SHARES = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
CUT_LEAST = (3, 5)
CUT_MOST = (8, 10, 12, None)
Cut = tuple[float, int, int | None]


def replay_cuts(
    routes: Routes, queries: list[str], needed: list[str] | None, embedder: Embedder | None
) -> dict[Cut, str]:
    """For each cut (share of the best, fewest, most), the answers ``queries`` would get by words and meaning:
    median and 90th-percentile estimated tokens of their definitions within the default budget, and how
    many held the ``needed`` tool. Replays ``ToolIndex.scored`` as get_server_tools cuts it (``on_demand``)."""
    index = ToolIndex()
    offered = {tool.name: tool for tool in routes.tool_list if not requires_task(tool)}
    cost = {name: estimated_tokens(_compact(_definition(tool))) for name, tool in offered.items()}
    ranked = [
        [(name, score) for name, score in index.scored(routes, query, embedder) if name in offered] for query in queries
    ]
    index.close()
    rows = {}
    for share in CUT_SHARES:
        for least in CUT_LEAST:
            for most in CUT_MOST:
                tokens, held = [], 0
                for i, scored in enumerate(ranked):
                    close = sum(1 for _, score in scored if scored and score >= share * scored[0][1])
                    count = max(close, least) if most is None else min(max(close, least), most)
                    used, names = 0, []
                    for name, _ in scored[:count]:
                        if names and used + cost[name] > DEFAULT_BUDGET_TOKENS:
                            break
                        names.append(name)
                        used += cost[name]
                    tokens.append(used)
                    held += needed is not None and needed[i] in names
                p90 = statistics.quantiles(tokens, n=10, method="inclusive")[-1]
                found = f", needed tool in it {held / len(queries):6.1%}" if needed is not None else ""
                rows[(share, least, most)] = f"median ~{statistics.median(tokens):5,.0f} tok, p90 ~{p90:5,.0f}{found}"
    return rows


def print_cuts(replayed: Mapping[str, dict[Cut, str]]) -> None:
    print(
        "(e) cuts replayed (definitions only, no note), by words and meaning; now: "
        f"share {RELEVANT_SHARE}, at least {KEPT_AT_LEAST}, at most {KEPT_AT_MOST}"
    )
    for name, rows in replayed.items():
        print(f"  {name}")
        for (share, least, most), row in rows.items():
            print(f"    share {share} least {least} most {most or 'any':>3}: {row}")


@dataclass(frozen=True)
class Retrieval:
    """How one task set fared: the tasks counted and, by server, (hits, tasks); the answers, and how many
    held the needed tool anywhere."""

    tasks: list[dict[str, str]]
    reachable: list[dict[str, str]]
    hits: dict[str, tuple[int, int]]
    answers: list[Answer]
    held: int

    @property
    def recall(self) -> float:
        return sum(hits for hits, _ in self.hits.values()) / sum(count for _, count in self.hits.values())


@dataclass(frozen=True)
class RealCatalogue:
    """What was measured on the real servers: retrieval by task set."""

    servers: list[str]
    tools: int
    sizes: ListingSizes
    retrieval: dict[tuple[str, str], Retrieval]  # by (ranking, task set)


def rankings() -> dict[str, Embedder | None]:
    """The rankings measured: by words alone, and by words and meaning (when its table can be read)."""
    embedder = load_embedder()
    if embedder is None:
        print("left out: ranking by meaning; its table cannot be read (see the warning)", file=sys.stderr)
    return {"words": None} | ({"words+meaning": embedder} if embedder is not None else {})


def use_embedder(front: AgentFacingServer, embedder: Embedder | None) -> None:
    """Make ``front``'s get_server_tools rank with ``embedder`` (None: by words alone)."""
    front.on_demand._embedder, front.on_demand._embedder_read = embedder, True


async def measure_real(
    servers: Mapping[str, Mapping[str, Any]],
    task_sets: Mapping[str, list[dict[str, str]]],
    show_misses: bool,
    show_catalogue: bool,
    cuts: dict[str, dict[Cut, str]] | None = None,
) -> RealCatalogue | None:
    """Sizes and retrieval on the real ``servers`` (None when asked only to print their tools)."""
    async with serving(servers, {AGENT: ON_DEMAND}) as (front, runtime):
        routes = runtime.now.routes
        if show_catalogue:
            for tool in routes.tool_list:
                print(f"{tool.name}: {tool.description}\n    {json.dumps(tool.input_schema.get('properties', {}))}")
            return None
        offered = {tool.name for tool in routes.tool_list if not requires_task(tool)}
        if cuts is not None and (embedder := load_embedder()) is not None:
            for name, tasks in task_sets.items():
                reachable = [task for task in tasks if task["tool"] in offered]
                needed = [task["tool"] for task in reachable]
                cuts[f"real, {name} set"] = replay_cuts(routes, [task["task"] for task in reachable], needed, embedder)
        # A tool that runs only as a task is listed to no agent that cannot create tasks (as this one).
        measured = {}
        async with agent(front) as client:
            for ranking, embedder in rankings().items():
                use_embedder(front, embedder)
                for name, tasks in task_sets.items():
                    reachable = [task for task in tasks if task["tool"] in offered]
                    if show_misses:
                        print(f"  {ranking}, {name}:")
                    hits, answers, held = await retrieval(client, reachable, show_misses)
                    measured[(ranking, name)] = Retrieval(tasks, reachable, hits, answers, held)
        ready = sorted({route.server for route in routes.tools.values()})
        return RealCatalogue(ready, len(offered), sizes_of(runtime), measured)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000, help="timed queries, and timed calls of each kind")
    parser.add_argument("--show-misses", action="store_true", help="print each task whose tool is not in the top 3")
    parser.add_argument("--show-catalogue", action="store_true", help="print the real catalogue's tools and stop")
    parser.add_argument("--cuts", action="store_true", help="also replay other relevance cuts of a query's answer")
    options = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # the synthetic servers do not listen for changes; the log says so
    task_sets = {
        name: json.loads(path.read_text())["tasks"] for name, path in {"first": TASKS, "held-out": HELD_OUT}.items()
    }

    with tempfile.TemporaryDirectory(prefix="toolgate-bench-") as workspace:
        cuts: dict[str, dict[Cut, str]] | None = {} if options.cuts else None
        real = await measure_real(
            real_servers(Path(workspace)), task_sets, options.show_misses, options.show_catalogue, cuts
        )
    if real is None:
        return

    by_server = synthetic_tools()
    synthetic: dict[str, dict[str, Any]] = {service: {} for service in SERVICES}
    policies: dict[str, dict[str, Any]] = {
        AGENT: ON_DEMAND,
        CALLER: {**ON_DEMAND, "always_listed": ["github/get_issue"]},
    }
    async with serving(synthetic, policies, SyntheticServers(by_server).open) as (front, runtime):
        synthetic_sizes, synthetic_count = sizes_of(runtime), len(runtime.now.routes.tool_list)
        embedder = load_embedder()
        async with agent(front, CALLER) as client:
            synthetic_answers = {}
            for ranking, used in {"words": None, "words+meaning": embedder}.items():
                if ranking == "words" or used is not None:
                    use_embedder(front, used)
                    synthetic_answers[ranking] = [await found(client, query) for query in QUERIES]
            medians = await latencies(client, options.calls, front, embedder)
        search_ms = ranking_ms(runtime.now.routes, options.calls, None)
        meaning_ms = ranking_ms(runtime.now.routes, options.calls, embedder) if embedder is not None else None
        first_ms = first_queries_ms(runtime.now.routes) if embedder is not None else None
        if cuts is not None and embedder is not None:
            cuts[f"{synthetic_count} tools"] = replay_cuts(runtime.now.routes, QUERIES, None, embedder)

    print(
        f"on-demand tools; real servers here: {', '.join(real.servers)} ({len(real.servers)} of the 6 the issue names)"
    )
    print("(a) tools/list size, all tools vs on demand")
    print(size_row("real", real.tools, real.sizes, TARGETS["real_ratio"]))
    print(size_row("synthetic", synthetic_count, synthetic_sizes, TARGETS["synthetic_ratio"]))
    print(f"(b) retrieval: the needed tool in the top {TOP} of get_server_tools(query=task) (target >= 90 %)")
    for (ranking, name), measured in real.retrieval.items():
        verdict = "OK" if measured.recall >= TARGETS["recall"] else "MISSED"
        hits = sum(hits for hits, _ in measured.hits.values())
        print(f"  {ranking:<13} {name:<9} {measured.recall:6.1%} ({hits} of {len(measured.reachable)} tasks) {verdict}")
        by_server = ", ".join(f"{server} {hits}/{count}" for server, (hits, count) in sorted(measured.hits.items()))
        print(f"    by server: {by_server}")
        print(
            f"    {size_summary(measured.answers)}; "
            f"needed tool in the answer at all: {measured.held / len(measured.answers):.1%}"
        )
        for task in measured.tasks:
            if task not in measured.reachable:
                print(f"    not counted: {task['task']!r}: {task['tool']} is not offered to this agent (task-only?)")
    print(f"(c) latency on {synthetic_count} tools, {options.calls} of each in turns, in process (agent in memory)")
    query_ms, direct_ms, execute_ms = medians["query"], medians["direct"], medians["execute"]
    verdict = "OK" if query_ms <= TARGETS["query_ms"] else "MISSED"
    print(f"  get_server_tools(query) median {query_ms:.3f} ms (target <= 5 ms) {verdict}")
    print(f"    of which the ranking alone (ToolIndex.search) median {search_ms:.3f} ms")
    if meaning_ms is not None:
        query_ms = medians["query by meaning"]
        verdict = "OK" if query_ms <= TARGETS["query_ms"] else "MISSED"
        print(f"  get_server_tools(query) by words and meaning median {query_ms:.3f} ms (target <= 5 ms) {verdict}")
        print(f"    of which the ranking alone median {meaning_ms:.3f} ms")
        print(f"    the ranking alone of queries with words it has not seen yet median {first_ms:.3f} ms")
    added = execute_ms - direct_ms
    verdict = "OK" if added <= TARGETS["execute_ms"] else "MISSED"
    print(
        f"  direct call median {direct_ms:.3f} ms, execute_tool median {execute_ms:.3f} ms: "
        f"{added:+.3f} ms, x{execute_ms / direct_ms:.2f} (target <= +0.2 ms) {verdict}"
    )
    print(f"(d) the answer to get_server_tools(query) on {synthetic_count} tools, {len(QUERIES)} queries")
    for ranking, answers in synthetic_answers.items():
        print(f"  {ranking:<13} {size_summary(answers)}")

    if cuts is not None:
        print_cuts(cuts)


if __name__ == "__main__":
    anyio.run(main)

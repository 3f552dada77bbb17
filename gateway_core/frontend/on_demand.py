"""On-demand tools: three gateway tools through which an agent finds and calls every tool it may use.

An agent configured with ``"tools": "on_demand"`` is listed ``list_servers``, ``get_server_tools`` and
``execute_tool`` (plus its ``always_listed`` tools) instead of every tool's whole definition. What
they show is exactly what the agent's full ``tools/list`` would hold: filtered by its policy (a denied
tool is never described), by whether it can create tasks (tools that run only as tasks are offered
to a handshake-era agent that declared ``tasks``; to others a note names them and says why not), and
by what each server lists to a client with the agent's capabilities (``listed.py``). ``execute_tool``
is a ``tools/call`` of the named tool: the same guard, approval, audit, progress, cancellation, server
questions and tasks (``forward.py``, ``tasks.py``), its result unchanged.
Built once per agent-facing server; it reads the runtime on every request.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import mcp_types as types
from anyio import to_thread
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway_core.config import ToolsMode
from gateway_core.downstream.base import ServerState
from gateway_core.downstream.by_capability import capability_key
from gateway_core.downstream.pool import DownstreamPool
from gateway_core.downstream.server import DownstreamServer
from gateway_core.frontend.forward import Ctx, RequestForwarder, current_agent, is_modern
from gateway_core.frontend.guard import CallGuard
from gateway_core.frontend.listed import as_listed_to
from gateway_core.frontend.routing import Route, Routes
from gateway_core.frontend.runtime import Runtime, RuntimeCell
from gateway_core.frontend.tasks import may_use_tasks, requires_task
from gateway_core.frontend.tool_embeddings import Embedder
from gateway_core.frontend.tool_embeddings import load as load_embedder
from gateway_core.frontend.tool_search import ToolIndex

LIST_SERVERS = "list_servers"
GET_SERVER_TOOLS = "get_server_tools"
EXECUTE_TOOL = "execute_tool"
# What get_server_tools returns when the agent names no budget: a dozen ordinary definitions.
DEFAULT_BUDGET_TOKENS = 4000
# A server's description in list_servers: enough to tell what it is for, not its whole manual.
DESCRIPTION_CHARS = 200
# Names of left-out tools given in a note; beyond this the note gives only their number.
NOTE_NAMES = 50
# A query's answer holds its close matches only (an agent pays every definition in its context): the tools
# scoring at least this share of the best match's relevance, never fewer than KEPT_AT_LEAST (when as many
# match) nor more than KEPT_AT_MOST, unless the agent sets `limit`. Chosen by bench/on_demand.py: on the real
# catalogue the median answer fell from 2,800-3,000 to 630-820 estimated tokens, and the needed tool is
# still in it for 96-97 % of the tasks (99 and 96 % before); top-3 recall is unchanged (the first three stay).
RELEVANT_SHARE = 0.4
KEPT_AT_LEAST = 3
KEPT_AT_MOST = 10
# Names of the weaker matches left out given in a note, the strongest first.
WEAKER_NAMES = 5
# The usual rough size of a token in English text and JSON, for budgets and size estimates.
CHARS_PER_TOKEN = 4

_STRING = {"type": "string"}
# An agent's tools as its full listing would hold them, and the task-only ones it cannot be offered.
_Listed = tuple[tuple[tuple[types.Tool, Route], ...], tuple[tuple[types.Tool, Route], ...]]
META_TOOLS: tuple[types.Tool, ...] = (
    types.Tool(
        name=LIST_SERVERS,
        description="List the tool servers you can use: what each is for, its state and its number of tools.",
        input_schema={"type": "object", "properties": {}},
    ),
    types.Tool(
        name=GET_SERVER_TOOLS,
        description=(
            "Get tool definitions to call with execute_tool. Describe the task in `query` (you get the closest "
            "matches; `limit` asks for more), and/or filter by `server`, exact `names` or a name `pattern` (glob); "
            "results fit `max_tokens`."
        ),
        input_schema={
            "type": "object",
            "properties": {
                "query": _STRING,
                "server": _STRING,
                "names": {"type": "array", "items": _STRING},
                "pattern": _STRING,
                "limit": {"type": "integer", "minimum": 1},
                "max_tokens": {"type": "integer", "minimum": 1},
            },
        },
    ),
    types.Tool(
        name=EXECUTE_TOOL,
        description="Call a tool by its exact name (from get_server_tools) with its arguments.",
        input_schema={
            "type": "object",
            "properties": {"name": _STRING, "arguments": {"type": "object"}},
            "required": ["name"],
        },
    ),
)
META_NAMES = frozenset(tool.name for tool in META_TOOLS)
# execute_tool as an agent that can create tasks is listed it: it may be called as a task, for tools that
# run as tasks (a client sends a task only to a tool whose execution allows it).
EXECUTE_AS_TASK = META_TOOLS[2].model_copy(update={"execution": types.ToolExecution(task_support="optional")})
TASK_ONLY_NOTE = (
    '{count} matching tools run only as tasks (execution.taskSupport "required"), which this connection '
    "cannot create: {names}. Tasks need protocol version 2025-11-25 and the client capability `tasks`."
)


class _ToolsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str | None = None
    server: str | None = None
    names: list[str] | None = None
    pattern: str | None = None
    limit: int | None = Field(default=None, ge=1)
    max_tokens: int = Field(default=DEFAULT_BUDGET_TOKENS, ge=1)


class _Execution(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    arguments: dict[str, Any] | None = None


@dataclass(frozen=True)
class ServerEntry:
    """One server as ``list_servers`` shows it to one agent.

    Attributes:
        name: the configured server's name.
        description: what it is for (its description or instructions, shortened).
        state: ``ready``, ``starting``, ``failed`` or ``stopped``.
        tools: how many of its tools the agent may use now.
    """

    name: str
    description: str
    state: ServerState
    tools: int


class OnDemandTools:
    """Serves the gateway tools of on-demand agents, and calls every other name as a direct call.

    Args:
        runtime: the configuration (each agent's mode) and the routing table in force.
        pool: the downstream servers (state, description).
        guard: whether an agent may see a tool.
        forward: how a tool call is decided, forwarded and recorded.
    """

    def __init__(self, runtime: RuntimeCell, pool: DownstreamPool, guard: CallGuard, forward: RequestForwarder) -> None:
        self._runtime = runtime
        self._pool = pool
        self._guard = guard
        self._forward = forward
        self._index = ToolIndex()
        self._embedder: Embedder | None = None
        self._embedder_read = False
        self._seen: dict[str, tuple[object, ...]] = {}
        self._listed_in: tuple[Runtime | None, dict[tuple[str, bool, str, bool], _Listed]] = (None, {})
        self._usable_in: tuple[Runtime | None, dict[tuple[str, bool], tuple[tuple[types.Tool, Route], ...]]] = (
            None,
            {},
        )

    def is_on_demand(self, agent: str) -> bool:
        """Whether ``agent`` is configured with ``"tools": "on_demand"``."""
        entry = self._runtime.now.config.agents.get(agent)
        return entry is not None and entry.tools is ToolsMode.ON_DEMAND

    def listing(self, agent: str, visible: Sequence[types.Tool], tasks: bool = False) -> list[types.Tool]:
        """An on-demand agent's ``tools/list``: the gateway tools, then those of ``visible`` it keeps listed.

        ``tasks``: the agent can create tasks, so ``execute_tool`` may be called as one.
        """
        meta = (*META_TOOLS[:2], EXECUTE_AS_TASK) if tasks else META_TOOLS
        return [*meta, *self._always_listed(agent, visible)]

    def called_name(self, params: types.CallToolRequestParams) -> str:
        """The tool a ``tools/call`` calls: for an on-demand agent's ``execute_tool``, the one it names."""
        if params.name != EXECUTE_TOOL or not self.is_on_demand(current_agent()):
            return params.name
        name = (params.arguments or {}).get("name")
        return name if isinstance(name, str) else params.name

    async def call_tool(self, ctx: Ctx, params: types.CallToolRequestParams) -> Any:
        """``tools/call``: an on-demand agent's gateway tools are served here, every other call is forwarded."""
        agent = current_agent()
        if params.name not in META_NAMES or not self.is_on_demand(agent):
            return await self._forward.call_tool(ctx, params)
        arguments = params.arguments or {}
        try:
            if params.name == EXECUTE_TOOL:
                return await self._execute(ctx, params, _Execution.model_validate(arguments))
            usable, task_only = await self._listed(ctx, agent)
            if params.name == LIST_SERVERS:
                return _text_result({"servers": [_shown(entry) for entry in self.servers_for(agent, usable)]})
            return await self._get_server_tools(ctx, agent, usable, task_only, _ToolsQuery.model_validate(arguments))
        except ValidationError as exc:
            return _error(f"{params.name}: {_first_problem(exc)}")

    def servers_for(self, agent: str, usable: Sequence[tuple[types.Tool, Route]] | None = None) -> list[ServerEntry]:
        """The servers ``agent`` may use, in configuration order: it is shown one of their tools, or allowed them.

        ``usable``: the tools counted (default: those it may use without tasks, whatever its capabilities).
        """
        config = self._runtime.now.config
        usable = self._usable(agent, False) if usable is None else usable
        entries = []
        for name, server_config in config.servers.items():
            server = self._pool.servers.get(name)
            if server is None or not server_config.enabled:
                continue
            count = sum(1 for _, route in usable if route.server == name)
            if count == 0 and not self._shows_server(agent, name, server.last_catalog.tools):
                continue
            entries.append(ServerEntry(name, _description(server), server.status.state, count))
        return entries

    def changed_server_lists(self) -> set[str]:
        """The on-demand agents whose servers (or always-listed tools) changed since the last call."""
        seen: dict[str, tuple[object, ...]] = {}
        for agent, entry in self._runtime.now.config.agents.items():
            if entry.tools is ToolsMode.ON_DEMAND:
                servers = tuple((server.name, server.state) for server in self.servers_for(agent))
                listed = [tool for tool, _ in self._usable(agent, False)]
                seen[agent] = (servers, tuple(self._always_listed(agent, listed)))
        changed = {agent for agent, signature in seen.items() if self._seen.get(agent) != signature}
        self._seen = seen
        return changed

    def close(self) -> None:
        """Free the search index."""
        self._index.close()

    async def _execute(self, ctx: Ctx, params: types.CallToolRequestParams, execution: _Execution) -> Any:
        # A 2026 agent's retry after a server's question carries its answers on execute_tool itself.
        # A handshake-era agent's execute_tool as a task is the named tool's call as a task (tasks.py).
        call = types.CallToolRequestParams(
            name=execution.name,
            arguments=execution.arguments,
            task=params.task,
            request_state=params.request_state,
            input_responses=params.input_responses,
        )
        return await self._forward.call_tool(ctx, call, denied_as_unknown=True)

    async def _get_server_tools(
        self,
        ctx: Ctx,
        agent: str,
        usable: Sequence[tuple[types.Tool, Route]],
        task_only: Sequence[tuple[types.Tool, Route]],
        asked: _ToolsQuery,
    ) -> types.CallToolResult:
        routes = self._runtime.now.routes
        tasks = may_use_tasks(ctx)
        # The task-only tools an agent that cannot create tasks is not offered: filtered alike, named in a note.
        candidates = [*usable, *task_only]
        notes = []
        if asked.server is not None:
            shown = {entry.name: entry for entry in self.servers_for(agent, usable)}.get(asked.server)
            if shown is None:
                return _error(f"get_server_tools: there is no server {asked.server!r}; list_servers shows them")
            if shown.state is not ServerState.READY:
                notes.append(f"Server {asked.server!r} is {shown.state.value}: its tools are back when it is ready.")
            candidates = [(tool, route) for tool, route in candidates if route.server == asked.server]
        if asked.names is not None:
            wanted = set(asked.names)
            candidates = [(tool, route) for tool, route in candidates if tool.name in wanted]
            missing = sorted(wanted - {tool.name for tool, _ in candidates})
            if missing:
                notes.append(f"No tool is named {', '.join(missing)}.")
        if asked.pattern is not None:
            pattern = asked.pattern.lower()
            candidates = [
                (tool, route) for tool, route in candidates if fnmatch.fnmatchcase(tool.name.lower(), pattern)
            ]
        tools = [tool for tool, _ in candidates]
        scores: dict[str, float] | None = None
        if asked.query is not None:
            # The first query reads the embedder off the event loop, and the first query of a catalogue works
            # out its tools' meanings there: each takes up to hundreds of milliseconds.
            if not self._embedder_read:
                self._embedder, self._embedder_read = await to_thread.run_sync(load_embedder), True
            if self._embedder is not None and not self._index.knows_meanings(routes, self._embedder):
                await to_thread.run_sync(self._index.meanings, routes, self._embedder)
            ranked = self._ranked(routes, asked.query, tools, self._embedder)
            tools, scores = [tool for tool, _ in ranked], {tool.name: score for tool, score in ranked}
            if not tools:
                notes.append("No tool matched the query; try other words, or leave out `query` to list tools.")
        # A query without `limit` is answered its close matches: those at least RELEVANT_SHARE as relevant as the best.
        floor = RELEVANT_SHARE * max(scores.values()) if scores and asked.limit is None else None
        if not tasks:
            unoffered = [tool for tool in tools if requires_task(tool)]
            tools = [tool for tool in tools if not requires_task(tool)]
            if scores is not None and floor is not None:
                unoffered = [tool for tool in unoffered if scores[tool.name] >= floor]
            if unoffered:
                names = ", ".join(tool.name for tool in unoffered[:NOTE_NAMES])
                more = f" and {len(unoffered) - NOTE_NAMES} more" if len(unoffered) > NOTE_NAMES else ""
                notes.append(TASK_ONLY_NOTE.format(count=len(unoffered), names=names + more))
        tools, weaker = _relevant(tools, scores, floor, asked.limit)
        if weaker:
            names = ", ".join(tool.name for tool in weaker[:WEAKER_NAMES])
            what = "weaker matches" if scores is not None else "more tools"
            notes.append(
                f"{len(weaker)} {what} were left out (the next: {names}). "
                f"Ask for them with `limit` above {len(tools)}"
                + (", or describe the task in other words." if scores is not None else ".")
            )
        found, left_out = _within_budget(tools, asked.max_tokens)
        if left_out:
            names = ", ".join(tool.name for tool in left_out[:NOTE_NAMES])
            more = f" and {len(left_out) - NOTE_NAMES} more" if len(left_out) > NOTE_NAMES else ""
            notes.append(
                f"{len(left_out)} more matching tools were left out to stay within max_tokens={asked.max_tokens}: "
                f"{names}{more}. Ask for them with `names`, or a larger `max_tokens`."
            )
        # The definitions were serialized to be measured: the result is put together from those texts.
        note = f',"note":{_compact(" ".join(notes))}' if notes else ""
        text = f'{{"tools":[{",".join(found)}]{note}}}'
        return types.CallToolResult(content=[types.TextContent(text=text)])

    def _ranked(
        self, routes: Routes, query: str, tools: Sequence[types.Tool], embedder: Embedder | None
    ) -> list[tuple[types.Tool, float]]:
        by_name = {tool.name: tool for tool in tools}
        scored = self._index.scored(routes, query, embedder)
        return [(by_name[name], score) for name, score in scored if name in by_name]

    def _usable(self, agent: str, tasks: bool) -> list[tuple[types.Tool, Route]]:
        """The routed tools ``agent`` may see, in listing order; with ``tasks``, those that run only as tasks too.

        Worked out once per runtime (policies and routes change only with it): deciding on 500 tools
        takes milliseconds, several times a query's ranking.
        """
        runtime = self._runtime.now
        if self._usable_in[0] is not runtime:
            self._usable_in = (runtime, {})
        known = self._usable_in[1].get((agent, tasks))
        if known is not None:
            return list(known)
        routes = runtime.routes
        usable = []
        for tool in routes.tool_list:
            route = routes.tools[tool.name]
            if self._guard.may_see(agent, route.server, route.upstream_name) and (tasks or not requires_task(tool)):
                usable.append((tool, route))
        self._usable_in[1][(agent, tasks)] = tuple(usable)
        return usable

    async def _listed(self, ctx: Ctx, agent: str) -> _Listed:
        """What the agent's full listing would hold (``usable``), and the task-only tools it cannot be offered.

        Filtered by what each server lists to a client of the agent's era and capabilities (``listed.py``:
        to a handshake-era agent, what a server's handshake-era twin lists, with its definitions); kept
        until the runtime changes (a catalog, a policy, a twin), as ``tools/list``'s own cache is.
        """
        tasks, capabilities, modern = may_use_tasks(ctx), ctx.session.client_capabilities, is_modern(ctx)
        runtime = self._runtime.now
        if self._listed_in[0] is not runtime:
            self._listed_in = (runtime, {})
        key = (agent, tasks, capability_key(capabilities), modern)
        known = self._listed_in[1].get(key)
        if known is not None:
            return known
        everything = self._usable(agent, True)
        route_of = {tool.name: route for tool, route in everything}
        tools = await as_listed_to(
            self._pool,
            capabilities,
            [tool for tool, _ in everything],
            lambda tool: route_of[tool.name],
            "tools",
            modern=modern,
        )
        listed = [(tool, route_of[tool.name]) for tool in tools]  # each as its server defines it for this era
        usable = tuple(pair for pair in listed if tasks or not requires_task(pair[0]))
        found = (usable, () if tasks else tuple(pair for pair in listed if requires_task(pair[0])))
        if self._listed_in[0] is runtime:
            self._listed_in[1][key] = found
        return found

    def _shows_server(self, agent: str, name: str, tools: Sequence[types.Tool]) -> bool:
        return self._guard.may_see(agent, name) or any(self._guard.may_see(agent, name, tool.name) for tool in tools)

    def _always_listed(self, agent: str, visible: Sequence[types.Tool]) -> list[types.Tool]:
        entry = self._runtime.now.config.agents.get(agent)
        if entry is None:
            return []
        return always_listed(self._runtime.now.routes, entry.always_listed, visible)


def always_listed(routes: Routes, matches: Sequence[str], visible: Sequence[types.Tool]) -> list[types.Tool]:
    """The tools of ``visible`` that ``matches`` (``always_listed``'s ``server-glob/tool-glob``) keep listed."""
    if not matches:
        return []
    patterns = [match.partition("/")[::2] for match in matches]
    kept = []
    for tool in visible:
        route = routes.tools.get(tool.name)
        if route is None or tool.name in META_NAMES:
            continue
        if any(
            fnmatch.fnmatchcase(route.server, server) and fnmatch.fnmatchcase(route.upstream_name, upstream)
            for server, upstream in patterns
        ):
            kept.append(tool)
    return kept


def estimated_tokens(text: str) -> int:
    """A rough token count of ``text`` (about four characters a token)."""
    return -(-len(text) // CHARS_PER_TOKEN)


def _definition(tool: types.Tool) -> dict[str, Any]:
    definition: dict[str, Any] = {"name": tool.name}
    if tool.description:
        definition["description"] = tool.description
    definition["inputSchema"] = tool.input_schema
    if tool.execution is not None:  # whether it may, or must, be called as a task
        definition["execution"] = tool.execution.model_dump(by_alias=True, mode="json", exclude_none=True)
    return definition


def _relevant(
    tools: Sequence[types.Tool], scores: dict[str, float] | None, floor: float | None, limit: int | None
) -> tuple[list[types.Tool], list[types.Tool]]:
    """The ``tools`` (most relevant first, if ranked) an answer holds, and the weaker ones it leaves out.

    With ``limit``, the first that many; for a query without it (``floor``), those scoring at least ``floor``,
    at least ``KEPT_AT_LEAST`` and at most ``KEPT_AT_MOST`` of them; otherwise all.
    """
    if limit is not None:
        count = limit
    elif scores is not None and floor is not None:
        close = sum(1 for tool in tools if scores[tool.name] >= floor)
        count = min(max(close, KEPT_AT_LEAST), KEPT_AT_MOST)
    else:
        count = len(tools)
    return list(tools[:count]), list(tools[count:])


def _within_budget(tools: Sequence[types.Tool], budget: int) -> tuple[list[str], list[types.Tool]]:
    """The compact JSON definitions of the first ``tools`` within ``budget`` tokens (one at least); those left out."""
    found: list[str] = []
    used = 0
    for index, tool in enumerate(tools):
        definition = _compact(_definition(tool))
        cost = estimated_tokens(definition)
        if found and used + cost > budget:
            return found, list(tools[index:])
        found.append(definition)
        used += cost
    return found, []


def _description(server: DownstreamServer) -> str:
    live = server.session.live
    info = live.server_info if live is not None else None
    text = (info.description if info is not None else None) or server.instructions or ""
    text = " ".join(text.split())
    if len(text) <= DESCRIPTION_CHARS:
        return text
    return text[: DESCRIPTION_CHARS - 1].rsplit(" ", 1)[0] + "…"


def _shown(entry: ServerEntry) -> dict[str, Any]:
    return {"name": entry.name, "description": entry.description, "state": entry.state.value, "tools": entry.tools}


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _text_result(value: Any) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=_compact(value))])


def _error(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=text)], is_error=True)


def _first_problem(exc: ValidationError) -> str:
    error = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in error["loc"]) or "arguments"
    return f"{where}: {error['msg']}"

"""2025-11-25 tasks: task-augmented calls and ``tasks/get|result|list|cancel``, each task its creator's alone.

A handshake-era agent's ``tools/call`` with a ``task`` is decided, forwarded and recorded like any
call (``forward.py``), with its ``task``, to the server owning the tool; a task the server creates
is noted here as that agent's. The agent's ``tasks/*`` about it go to that server; to any other
agent it does not exist (the spec's -32602 for an unknown task). ``tasks/list`` gives the agent's own
tasks, from every server; ``notifications/tasks/status`` reaches only the owner.

Lifecycle: one ``Tasks`` per gateway; what it knows is in memory. A task is forgotten once the
retention the server gave it (``ttl``) has passed, once its server no longer knows it, and, when the
server keeps it forever, once it ended and its result was fetched; an agent keeps at most
``MAX_TASKS_PER_AGENT`` (the oldest are forgotten first).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import mcp_types as types
from anyio.streams.memory import MemoryObjectSendStream
from mcp.server import ServerRequestContext
from mcp.server.context import HandlerResult
from mcp.server.session import ServerSession
from mcp.shared.exceptions import MCPError
from mcp_types.methods import serialize_server_result

from gateway_core.downstream.pool import DownstreamPool
from gateway_core.errors import DownstreamError, ErrorCode
from gateway_core.frontend.callers import HandshakeCaller
from gateway_core.frontend.forward import current_agent, forwarded_meta, is_modern, session_id
from gateway_core.frontend.guard import CallGuard
from gateway_core.frontend.routing import Routes

logger = logging.getLogger(__name__)

Ctx = ServerRequestContext[Any, Any]
CallTool = Callable[[Ctx, types.CallToolRequestParams], Awaitable[Any]]
_R = TypeVar("_R", bound=types.Result)

RELATED_TASK_META_KEY = "io.modelcontextprotocol/related-task"
# Bounds the memory one agent's forgotten-about tasks can hold.
MAX_TASKS_PER_AGENT = 1000
# Status notifications waiting to be sent; more means agents are not reading them.
STATUS_BACKLOG = 256
TERMINAL = frozenset({"completed", "failed", "cancelled"})
# What Toolgate offers handshake-era agents: it forwards all of it to the servers that run tasks.
TASKS_CAPABILITY = types.ServerTasksCapability(
    list=types.TasksListCapability(),
    cancel=types.TasksCancelCapability(),
    requests=types.ServerTasksRequestsCapability(tools=types.TasksToolsCapability(call=types.TasksCallCapability())),
)


def requires_task(tool: types.Tool) -> bool:
    """Whether ``tool`` can only be called as a task (``execution.taskSupport: "required"``)."""
    return tool.execution is not None and tool.execution.task_support == "required"


def may_use_tasks(ctx: Ctx) -> bool:
    """Whether the agent behind ``ctx`` can create tasks: a handshake-era agent that declared ``tasks``.

    Tasks left the core protocol in 2026-07-28 (they continue as an extension Toolgate does not speak).
    """
    if is_modern(ctx):
        return False
    capabilities = ctx.session.client_capabilities
    return capabilities is not None and capabilities.tasks is not None


@dataclass
class OwnedTask:
    """A task a server runs for an agent: where it runs, and under which id the agent knows it."""

    agent: str
    public_id: str
    server: str
    upstream_id: str
    expires_at: float | None
    session_id: str | None
    session: ServerSession | None
    status: str = "working"
    result_fetched: bool = False
    # The tool the task runs, as the server names it (None: not known), for policy checks later on.
    tool: str | None = None


class TaskBook:
    """Which agent owns which task (pure bookkeeping: no I/O).

    An id is passed to the agent unchanged unless one of the agent's tasks on another server
    already has it; then the agent sees ``<id>@<server>`` (``-2``, ``-3``… added if even that is taken).
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, limit: int = MAX_TASKS_PER_AGENT) -> None:
        self._clock = clock
        self._limit = limit
        self._tasks: dict[str, dict[str, OwnedTask]] = {}

    def add(
        self,
        agent: str,
        server: str,
        task: types.Task,
        *,
        session_id: str | None = None,
        session: ServerSession | None = None,
        tool: str | None = None,
    ) -> OwnedTask:
        """Note ``task``, just created by ``server``, as ``agent``'s; returns it with the id the agent sees."""
        owned = self._tasks.setdefault(agent, {})
        public_id = task.task_id
        if public_id in owned:
            public_id = base = f"{task.task_id}@{server}"
            suffix = 2
            while public_id in owned:
                public_id, suffix = f"{base}-{suffix}", suffix + 1
        expires_at = None if task.ttl is None else self._clock() + task.ttl / 1000
        entry = OwnedTask(
            agent, public_id, server, task.task_id, expires_at, session_id, session, task.status, tool=tool
        )
        owned[public_id] = entry
        while len(owned) > self._limit:
            del owned[next(iter(owned))]
        return entry

    def find(self, agent: str, public_id: str) -> OwnedTask | None:
        """``agent``'s task known to it as ``public_id`` (None: not this agent's, or forgotten)."""
        self._expire(agent)
        return self._tasks.get(agent, {}).get(public_id)

    def of_agent(self, agent: str) -> list[OwnedTask]:
        """``agent``'s tasks, oldest first."""
        self._expire(agent)
        return list(self._tasks.get(agent, {}).values())

    def on_server(self, server: str, upstream_id: str) -> list[OwnedTask]:
        """The tasks known to ``server`` as ``upstream_id`` (one, unless agents have their own instances)."""
        return [
            entry
            for agent in list(self._tasks)
            for entry in self.of_agent(agent)
            if (entry.server, entry.upstream_id) == (server, upstream_id)
        ]

    def seen(self, entry: OwnedTask, status: str, *, result_fetched: bool = False) -> None:
        """Note what the server said about the task; one kept forever is forgotten once ended and fetched."""
        entry.status = status
        entry.result_fetched = entry.result_fetched or result_fetched
        if entry.expires_at is None and entry.status in TERMINAL and entry.result_fetched:
            self.forget(entry)

    def forget(self, entry: OwnedTask) -> None:
        """Drop the task (its server no longer knows it)."""
        self._tasks.get(entry.agent, {}).pop(entry.public_id, None)

    def session_ended(self, session_id: str) -> None:
        """A handshake-era session ended: its tasks stay the agent's, but no status is sent to it."""
        for owned in self._tasks.values():
            for entry in owned.values():
                if entry.session_id == session_id:
                    entry.session = None

    def _expire(self, agent: str) -> None:
        owned, now = self._tasks.get(agent, {}), self._clock()
        for public_id in [
            key for key, entry in owned.items() if entry.expires_at is not None and entry.expires_at <= now
        ]:
            del owned[public_id]


class Tasks:
    """Serves tasks to handshake-era agents: creating them through calls, and ``tasks/*``.

    Args:
        routes: the current routing table (read on every call).
        pool: the downstream servers.
        guard: where questions a server asks during ``tasks/result`` are recorded.
        call_tool: how a call is decided, forwarded and recorded (``RequestForwarder.call_tool``).
        called_name: the tool a call runs (an on-demand agent's ``execute_tool`` runs the one it names).
    """

    def __init__(
        self,
        routes: Callable[[], Routes],
        pool: DownstreamPool,
        guard: CallGuard,
        call_tool: CallTool,
        called_name: Callable[[types.CallToolRequestParams], str] = lambda params: params.name,
    ) -> None:
        self._routes = routes
        self._pool = pool
        self._guard = guard
        self._call_tool = call_tool
        self._called_name = called_name
        self.book = TaskBook()
        self._statuses: MemoryObjectSendStream[tuple[str, types.TaskStatusNotification]] | None = None

    async def create(self, ctx: Ctx, call_next: Callable[[Ctx], Awaitable[HandlerResult]]) -> Any:
        """Middleware: a handshake-era task-augmented ``tools/call`` becomes a task of the calling agent.

        It cannot go through the SDK's ``tools/call`` handler, which accepts only ``CallToolResult``s.
        """
        if ctx.method != "tools/call" or (ctx.params or {}).get("task") is None or is_modern(ctx):
            return await call_next(ctx)
        params = types.CallToolRequestParams.model_validate(ctx.params, by_name=False)
        route = self._routes().tools.get(self._called_name(params))
        result = await self._call_tool(ctx, params)
        if not isinstance(result, types.CreateTaskResult) or route is None:
            # Run normally after all (the server does not run tasks), refused, or an unknown tool.
            dumped = result.model_dump(by_alias=True, mode="json", exclude_none=True)
            return serialize_server_result("tools/call", ctx.protocol_version, dumped)
        entry = self.book.add(
            current_agent(),
            route.server,
            result.task,
            session_id=session_id(ctx),
            session=ctx.session,
            tool=route.upstream_name,
        )
        return result.model_copy(update={"task": _renamed(result.task, entry.public_id)})

    async def get(self, ctx: Ctx, params: types.GetTaskRequestParams) -> types.GetTaskResult:
        """``tasks/get`` about one of the agent's tasks."""
        entry = self._owned(ctx, params.task_id)
        request = types.GetTaskRequest(
            params=types.GetTaskRequestParams(task_id=entry.upstream_id, _meta=forwarded_meta(ctx))
        )
        result = await self._send(ctx, entry, request, types.GetTaskResult, forget_if_unknown=True)
        self.book.seen(entry, result.status)
        return _renamed(result, entry.public_id)

    async def result(self, ctx: Ctx, params: types.GetTaskPayloadRequestParams) -> dict[str, Any]:
        """``tasks/result``: the task's tool result, when it has ended (the server may ask questions meanwhile)."""
        entry = self._owned(ctx, params.task_id)
        inner = types.GetTaskPayloadRequestParams(task_id=entry.upstream_id, _meta=forwarded_meta(ctx))
        request = types.GetTaskPayloadRequest(params=inner)
        result = await self._send(ctx, entry, request, types.CallToolResult, ask=True)
        meta = dict(result.meta or {})
        if RELATED_TASK_META_KEY in meta:
            meta[RELATED_TASK_META_KEY] = {"taskId": entry.public_id}
        self.book.seen(entry, entry.status if entry.status in TERMINAL else "completed", result_fetched=True)
        dumped = result.model_copy(update={"meta": meta or None}).model_dump(
            by_alias=True, mode="json", exclude_none=True
        )
        return serialize_server_result("tools/call", ctx.protocol_version, dumped)

    async def cancel(self, ctx: Ctx, params: types.CancelTaskRequestParams) -> types.CancelTaskResult:
        """``tasks/cancel`` of one of the agent's tasks."""
        entry = self._owned(ctx, params.task_id, cancelling=True)
        inner = types.CancelTaskRequestParams(task_id=entry.upstream_id, _meta=forwarded_meta(ctx))
        result = await self._send(ctx, entry, types.CancelTaskRequest(params=inner), types.CancelTaskResult)
        self.book.seen(entry, result.status)
        return _renamed(result, entry.public_id)

    async def list_tasks(self, ctx: Ctx, params: types.PaginatedRequestParams | None) -> types.ListTasksResult:
        """``tasks/list``: the agent's own tasks, as their servers see them now (one page)."""
        _handshake_era_only(ctx)
        found: list[types.Task] = []
        for entry in self.book.of_agent(current_agent()):
            if not self._still_allowed(entry):
                continue
            request = types.GetTaskRequest(params=types.GetTaskRequestParams(task_id=entry.upstream_id))
            try:
                task = await self._send(ctx, entry, request, types.GetTaskResult, forget_if_unknown=True)
            except MCPError as exc:
                logger.info("task %r of server %r left out of tasks/list: %s", entry.upstream_id, entry.server, exc)
                continue
            self.book.seen(entry, task.status)
            found.append(
                _renamed(types.Task(**{name: getattr(task, name) for name in types.Task.model_fields}), entry.public_id)
            )
        return types.ListTasksResult(tasks=found)

    def session_ended(self, session_id: str) -> None:
        """A handshake-era session ended: nothing more is sent to it."""
        self.book.session_ended(session_id)

    # --- status notifications ----------------------------------------------------------------------

    def on_status(self, server: str, notification: types.TaskStatusNotification) -> None:
        """Called by the pool (on the loop, without blocking) for each ``notifications/tasks/status``."""
        if self._statuses is None:
            return
        try:
            self._statuses.send_nowait((server, notification))
        except anyio.WouldBlock:
            logger.warning("dropped a task status from server %r: agents are not reading them fast enough", server)

    async def run(self) -> None:
        """Send each task status to the session that created the task, until cancelled."""
        send, receive = anyio.create_memory_object_stream[tuple[str, types.TaskStatusNotification]](STATUS_BACKLOG)
        self._statuses = send
        with send, receive:
            try:
                async for server, notification in receive:
                    await self._deliver(server, notification)
            finally:
                self._statuses = None

    async def _deliver(self, server: str, notification: types.TaskStatusNotification) -> None:
        owners = self.book.on_server(server, notification.params.task_id)
        if len(owners) != 1:
            return  # no agent's task (or, with per-agent instances, not one agent's): nobody is told
        entry = owners[0]
        self.book.seen(entry, notification.params.status)
        if entry.session is None:
            return
        params = _renamed(notification.params, entry.public_id)
        try:
            await entry.session.send_notification(types.TaskStatusNotification(params=params))  # type: ignore[arg-type]
        except Exception:  # one agent's broken stream must not stop the others' statuses
            logger.exception("sending a task status of server %r to agent %r failed", server, entry.agent)

    # --- helpers ------------------------------------------------------------------------------------

    def _owned(self, ctx: Ctx, public_id: str, *, cancelling: bool = False) -> OwnedTask:
        """The agent's task ``public_id``; unknown (-32602) if it has none, or if policy now denies its tool.

        A task of a tool denied since it was created is not followed any more (its status, its
        result); cancelling it still reaches the server, since stopping work harms nobody.
        """
        _handshake_era_only(ctx)
        entry = self.book.find(current_agent(), public_id)
        if entry is None or (not cancelling and not self._still_allowed(entry)):
            raise unknown_task(public_id)
        return entry

    def _still_allowed(self, entry: OwnedTask) -> bool:
        if entry.tool is None:
            return self._guard.may_see(entry.agent, entry.server)
        return self._guard.may_see(entry.agent, entry.server, entry.tool)

    async def _send(
        self,
        ctx: Ctx,
        entry: OwnedTask,
        request: types.GetTaskRequest | types.GetTaskPayloadRequest | types.CancelTaskRequest,
        result_type: type[_R],
        *,
        forget_if_unknown: bool = False,
        ask: bool = False,
    ) -> _R:
        """Send a ``tasks/*`` request to the task's server (the agent's own instance of it, if it has one).

        With ``ask``, questions the server asks meanwhile go to the agent (as during a call).
        """
        caller = (
            HandshakeCaller(entry.agent, session_id(ctx), ctx.session, ctx.request_id, self._record) if ask else None
        )
        async with self._pool.use(entry.server, entry.agent, modern=False) as server:
            if server is None:
                raise MCPError(
                    ErrorCode.SERVER_UNAVAILABLE, f"server {entry.server!r} was removed from the configuration"
                )
            try:
                return await server.session.task_request(request, result_type, caller=caller)
            except DownstreamError as exc:
                raise MCPError(exc.code, str(exc)) from exc
            except MCPError as exc:
                if forget_if_unknown and exc.code == types.INVALID_PARAMS:
                    self.book.forget(entry)
                raise

    async def _record(
        self, agent: str, server: str, method: str, outcome: str, latency_s: float, answer: types.InputResponse | None
    ) -> None:
        await self._guard.record_question(agent, server, method, outcome, latency_s)


def _handshake_era_only(ctx: Ctx) -> None:
    """2026-07-28 has no ``tasks/*`` methods (the tasks extension, which Toolgate does not speak, has its own)."""
    if is_modern(ctx):
        raise MCPError(types.METHOD_NOT_FOUND, "Method not found", data=ctx.method)


def unknown_task(task_id: str) -> MCPError:
    """The spec's error for a task id the receiver does not know (the same whoever else has such a task)."""
    return MCPError(
        types.INVALID_PARAMS, f"Unknown task: {task_id!r} is not one of this agent's tasks", data={"taskId": task_id}
    )


_T = TypeVar("_T", types.Task, types.GetTaskResult, types.CancelTaskResult, types.TaskStatusNotificationParams)


def _renamed(task: _T, public_id: str) -> _T:
    return task if task.task_id == public_id else task.model_copy(update={"task_id": public_id})

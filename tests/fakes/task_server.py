"""A fake MCP server with 2025-11-25 tasks, over stdio (the SDK serves no tasks itself: this does it by hand).

    python tests/fakes/task_server.py [--both-eras]

Tools: ``wait(text)`` must be called as a task (``taskSupport: "required"``) and stays ``working``
until ``release()`` (a plain call) completes every working task with the text "released: <text>",
sending ``notifications/tasks/status`` for each; ``plain()`` forbids tasks. Task ids are
``task-1``, ``task-2``… in each process, so two of these servers hand out the same ids.
Serves ``tasks/get``, ``tasks/result`` (waits for the end), ``tasks/list`` and ``tasks/cancel``.
It speaks the handshake era only (``server/discover`` gets -32601): 2025-11-25 tasks live there. With
``--both-eras`` it also speaks 2026-07-28, where it offers no tasks (a dual-era server of today).
"""

from __future__ import annotations

import datetime
import itertools
import sys
from dataclasses import dataclass, field
from typing import Any

import anyio
import mcp_types as types
from mcp.server import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.session import ServerSession
from mcp.shared.exceptions import MCPError

try:  # run as a script, its folder is on sys.path; imported, it is a package module
    import eras  # type: ignore[import-not-found]
except ModuleNotFoundError:
    from tests.fakes import eras

Ctx = ServerRequestContext[Any, Any]
RELATED_TASK_META_KEY = "io.modelcontextprotocol/related-task"
DEFAULT_TTL_MS = 60_000
TERMINAL = frozenset({"completed", "failed", "cancelled"})
TASKS_CAPABILITY = types.ServerTasksCapability(
    list=types.TasksListCapability(),
    cancel=types.TasksCancelCapability(),
    requests=types.ServerTasksRequestsCapability(tools=types.TasksToolsCapability(call=types.TasksCallCapability())),
)
_OBJECT: dict[str, Any] = {"type": "object"}
TOOLS = [
    types.Tool(
        name="wait",
        description="Wait, as a task, until released.",
        input_schema={"type": "object", "properties": {"text": {"type": "string"}}},
        execution=types.ToolExecution(task_support="required"),
    ),
    types.Tool(name="release", description="Complete every working task.", input_schema=_OBJECT),
    types.Tool(name="plain", description="A tool that is never a task.", input_schema=_OBJECT),
]


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat()


@dataclass
class FakeTask:
    task: types.Task
    text: str
    session: ServerSession
    done: anyio.Event = field(default_factory=anyio.Event)
    result: types.CallToolResult | None = None


class TaskServer:
    """The fake's tasks, by id."""

    def __init__(self) -> None:
        self.tasks: dict[str, FakeTask] = {}
        self._ids = itertools.count(1)
        self.server: Server[Any] = Server("tasks", version="0.0.1", on_list_tools=self.list_tools)
        self.server.add_request_handler("tools/call", types.CallToolRequestParams, self.call_tool)
        self.server.add_request_handler("tasks/get", types.GetTaskRequestParams, self.get)
        self.server.add_request_handler("tasks/result", types.GetTaskPayloadRequestParams, self.result)
        self.server.add_request_handler("tasks/list", types.PaginatedRequestParams, self.list_tasks)
        self.server.add_request_handler("tasks/cancel", types.CancelTaskRequestParams, self.cancel)
        # A CreateTaskResult is not a CallToolResult: the SDK would refuse it as a tools/call result.
        self.server.middleware = [self.create_task]

    async def list_tools(self, ctx: Ctx, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return types.ListToolsResult(tools=TOOLS)

    async def create_task(self, ctx: Ctx, call_next: Any) -> Any:
        params = ctx.params or {}
        if ctx.method != "tools/call" or "task" not in params:
            return await call_next(ctx)
        call = types.CallToolRequestParams.model_validate(params, by_name=False)
        if call.name != "wait":
            raise MCPError(code=types.METHOD_NOT_FOUND, message=f"tool {call.name!r} cannot run as a task")
        assert call.task is not None
        now = _now()
        task = types.Task(
            task_id=f"task-{next(self._ids)}",
            status="working",
            created_at=now,
            last_updated_at=now,
            ttl=call.task.ttl if call.task.ttl is not None else DEFAULT_TTL_MS,
            poll_interval=50,
        )
        self.tasks[task.task_id] = FakeTask(task, str((call.arguments or {}).get("text", "")), ctx.session)
        return types.CreateTaskResult(task=task)

    async def call_tool(self, ctx: Ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
        if params.name == "wait":
            raise MCPError(code=types.METHOD_NOT_FOUND, message="tool 'wait' must be called as a task")
        if params.name == "release":
            working = [t for t in self.tasks.values() if t.task.status == "working"]
            for fake in working:
                self._end(fake, "completed", types.CallToolResult(content=[_text(f"released: {fake.text}")]))
                status = types.TaskStatusNotification(params=types.TaskStatusNotificationParams(**_fields(fake.task)))
                await fake.session.send_notification(status)  # type: ignore[arg-type]
            return types.CallToolResult(content=[_text(f"released {len(working)}")])
        if params.name == "plain":
            return types.CallToolResult(content=[_text("plain")])
        raise MCPError(code=types.INVALID_PARAMS, message=f"unknown tool: {params.name}")

    async def get(self, ctx: Ctx, params: types.GetTaskRequestParams) -> types.GetTaskResult:
        return types.GetTaskResult(**_fields(self._find(params.task_id).task))

    async def result(self, ctx: Ctx, params: types.GetTaskPayloadRequestParams) -> dict[str, Any]:
        fake = self._find(params.task_id)
        await fake.done.wait()
        if fake.result is None:
            raise MCPError(code=types.INVALID_PARAMS, message=f"task {params.task_id!r} was {fake.task.status}")
        meta = {RELATED_TASK_META_KEY: {"taskId": fake.task.task_id}}
        return fake.result.model_copy(update={"meta": meta}).model_dump(by_alias=True, mode="json", exclude_none=True)

    async def list_tasks(self, ctx: Ctx, params: types.PaginatedRequestParams | None) -> types.ListTasksResult:
        return types.ListTasksResult(tasks=[fake.task for fake in self.tasks.values()])

    async def cancel(self, ctx: Ctx, params: types.CancelTaskRequestParams) -> types.CancelTaskResult:
        fake = self._find(params.task_id)
        if fake.task.status in TERMINAL:
            raise MCPError(code=types.INVALID_PARAMS, message=f"task {params.task_id!r} is already {fake.task.status}")
        self._end(fake, "cancelled", None)
        return types.CancelTaskResult(**_fields(fake.task))

    def _find(self, task_id: str) -> FakeTask:
        fake = self.tasks.get(task_id)
        if fake is None:
            raise MCPError(code=types.INVALID_PARAMS, message=f"unknown task: {task_id!r}")
        return fake

    def _end(self, fake: FakeTask, status: types.TaskStatus, result: types.CallToolResult | None) -> None:
        fake.task = fake.task.model_copy(update={"status": status, "last_updated_at": _now()})
        fake.result = result
        fake.done.set()


def _text(text: str) -> types.TextContent:
    return types.TextContent(type="text", text=text)


def _fields(task: types.Task) -> dict[str, Any]:
    return {name: getattr(task, name) for name in types.Task.model_fields}


async def _serve_stdio() -> None:
    from mcp.server.stdio import stdio_server

    fake = TaskServer()
    options = fake.server.create_initialization_options()
    options.capabilities = options.capabilities.model_copy(update={"tasks": TASKS_CAPABILITY})
    if "--both-eras" not in sys.argv[1:]:
        eras.refuse_discover(fake.server)
    async with stdio_server() as (read, write):
        await fake.server.run(read, write, options)


if __name__ == "__main__":
    anyio.run(_serve_stdio)

"""A handshake-era client that creates 2025-11-25 tasks, over stdio or HTTP (the SDK's Client cannot).

    async with task_client_over_http(url, token) as agent:
        created = await agent.call_as_task("wait", {"text": "hi"})
        ...                                 # agent.get / result / cancel / list_tasks / statuses

It declares the ``tasks`` capability (unless told not to) and collects ``notifications/tasks/status``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx2
import mcp_types as types
from mcp import StdioServerParameters
from mcp.client.extension import NotificationBinding
from mcp.client.session import ClientSession
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.inbound import MCP_PROTOCOL_VERSION_HEADER
from mcp.shared.jsonrpc_dispatcher import JSONRPCDispatcher
from mcp_types.version import LATEST_HANDSHAKE_VERSION
from pydantic import TypeAdapter

CALL_RESULT: TypeAdapter[types.CreateTaskResult | types.CallToolResult] = TypeAdapter(
    types.CreateTaskResult | types.CallToolResult
)


class TaskClient:
    """One connected session, with the task requests as methods."""

    def __init__(self, session: ClientSession, dispatcher: JSONRPCDispatcher[Any]) -> None:
        self.session = session
        self._dispatcher = dispatcher
        self.statuses: list[types.TaskStatusNotificationParams] = []
        self._status = anyio.Event()

    async def on_status(self, params: types.TaskStatusNotificationParams) -> None:
        self.statuses.append(params)
        self._status.set()
        self._status = anyio.Event()

    async def wait_for_statuses(self, count: int) -> list[types.TaskStatusNotificationParams]:
        with anyio.fail_after(10):
            while len(self.statuses) < count:
                await self._status.wait()
        return self.statuses

    async def call_as_task(
        self, name: str, arguments: dict[str, Any], ttl: int | None = None
    ) -> types.CreateTaskResult | types.CallToolResult:
        # Sent raw: the SDK session checks a tools/call answer against CallToolResult.
        params = {"name": name, "arguments": arguments, "task": {} if ttl is None else {"ttl": ttl}}
        options: Any = {"headers": {MCP_PROTOCOL_VERSION_HEADER: LATEST_HANDSHAKE_VERSION}}
        raw = await self._dispatcher.send_raw_request("tools/call", params, options)
        return CALL_RESULT.validate_python(raw, by_name=False)

    async def get(self, task_id: str) -> types.GetTaskResult:
        request = types.GetTaskRequest(params=types.GetTaskRequestParams(task_id=task_id))
        return await self.session.send_request(request, types.GetTaskResult)

    async def result(self, task_id: str) -> types.CallToolResult:
        request = types.GetTaskPayloadRequest(params=types.GetTaskPayloadRequestParams(task_id=task_id))
        return await self.session.send_request(request, types.CallToolResult)

    async def cancel(self, task_id: str) -> types.CancelTaskResult:
        request = types.CancelTaskRequest(params=types.CancelTaskRequestParams(task_id=task_id))
        return await self.session.send_request(request, types.CancelTaskResult)

    async def list_tasks(self) -> types.ListTasksResult:
        return await self.session.send_request(types.ListTasksRequest(), types.ListTasksResult)


@asynccontextmanager
async def task_client(
    streams: Any, *, declare_tasks: bool = True, elicitation_callback: Any = None
) -> AsyncIterator[TaskClient]:
    """A handshake-era session on ``streams`` that declares ``tasks`` (the SDK's ``initialize`` cannot).

    With ``elicitation_callback``, it also declares form elicitation and answers with it.
    """
    dispatcher: JSONRPCDispatcher[Any] = JSONRPCDispatcher(*streams)
    holder: list[TaskClient] = []

    async def on_status(params: types.TaskStatusNotificationParams) -> None:
        await holder[0].on_status(params)

    binding = NotificationBinding(
        method="notifications/tasks/status", params_type=types.TaskStatusNotificationParams, handler=on_status
    )
    async with ClientSession(
        dispatcher=dispatcher, notification_bindings=[binding], elicitation_callback=elicitation_callback
    ) as session:
        client = TaskClient(session, dispatcher)
        holder.append(client)
        elicitation = (
            None
            if elicitation_callback is None
            else types.ElicitationCapability(form=types.FormElicitationCapability())
        )
        capabilities = types.ClientCapabilities(
            tasks=types.ClientTasksCapability() if declare_tasks else None, elicitation=elicitation
        )
        params = types.InitializeRequestParams(
            protocol_version=LATEST_HANDSHAKE_VERSION,
            capabilities=capabilities,
            client_info=types.Implementation(name="task-client", version="0"),
        )
        session.adopt(await session.send_request(types.InitializeRequest(params=params), types.InitializeResult))
        await session.send_notification(types.InitializedNotification())
        yield client


@asynccontextmanager
async def task_client_over_stdio(params: StdioServerParameters, **options: Any) -> AsyncIterator[TaskClient]:
    async with stdio_client(params) as streams:
        async with task_client(streams, **options) as client:
            yield client


@asynccontextmanager
async def task_client_over_http(url: str, token: str, **options: Any) -> AsyncIterator[TaskClient]:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=60)) as http:
        async with streamable_http_client(url, http_client=http) as streams:
            async with task_client(streams, **options) as client:
                yield client

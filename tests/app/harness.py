"""A real GatewayBridge (real gateway, real stdio servers, real SQLite) on the app's event loop, for widget tests.

Widget tests are plain functions that hand one coroutine to ``run_async``, which runs the app's event loop
(and so the gateway, the widgets and the MCP clients) until it finishes:

    def test_something(qloop):
        async def scenario():
            async with running_bridge({"fake": stdio_fake()}) as bridge:
                ...
        run_async(qloop, scenario())

A test about what an agent's calls do starts from ``connected_agent`` instead: the same bridge with
one agent connected, whose calls can wait in the background (for an approval) while the test acts.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from typing import Any, Generic, TypeVar

import anyio
import anyio.abc
import mcp_types as types
from mcp import Client
from PySide6.QtCore import SignalInstance

from app.bridge import GatewayBridge
from gateway_core import (
    AuditRecord,
    CallOutcome,
    LaunchEnvironment,
    LocalGateway,
    Paths,
    RecordKind,
    bind,
    load_config,
    open_secret_store,
)
from tests.integration.harness import Mode, agent_client, stdio_fake

T = TypeVar("T")
WAIT_S = 30.0


L = TypeVar("L", bound=asyncio.AbstractEventLoop)


@contextmanager
def current(loop: L) -> Iterator[L]:
    """``loop`` as the current event loop; then its async generators shut down, the loop closed, none current."""
    asyncio.set_event_loop(loop)
    try:
        yield loop
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        asyncio.set_event_loop(None)


def run_async(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T], timeout_s: float = 120.0) -> T:
    """Run ``coro`` on the app's loop (Qt events are processed meanwhile), bounded by ``timeout_s``."""
    return loop.run_until_complete(asyncio.wait_for(coro, timeout_s))


@asynccontextmanager
async def running_bridge(
    servers: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    agents: Mapping[str, Mapping[str, Any]] | None = None,
    wait_ready: bool = True,
    launch: LaunchEnvironment | None = None,
    **gateway_settings: Any,
) -> AsyncIterator[GatewayBridge]:
    """A bridge serving on 127.0.0.1:0 with config.json written from ``servers`` and ``agents``.

    Agents get tokens in the (file) secret store; ``bridge.api.agent_token(id)`` gives them. With
    ``wait_ready`` every server has had its first start attempt when the block begins. Stdio servers
    start from ``launch`` (as the tray app's resolved launch environment), this process's environment when None.
    """
    paths = Paths.from_env()
    paths.ensure_dirs()
    data = {
        "gateway": {"port": 0, **gateway_settings},
        "servers": dict(servers or {}),
        "agents": {agent_id: {"name": agent_id, **entry} for agent_id, entry in (agents or {}).items()},
    }
    paths.config_file.write_text(json.dumps(data, indent=2))
    store = open_secret_store(paths)
    config = load_config(paths.config_file)
    api = LocalGateway(config, config_path=paths.config_file, paths=paths, store=store, launch=launch)
    bridge = GatewayBridge(api, paths=paths)
    for agent_id in agents or {}:
        api.rotate_token(agent_id)
    with bind("127.0.0.1", 0) as sock:  # closed however the block ends, so a failing test leaks no socket
        async with anyio.create_task_group() as tg:
            await tg.start(bridge.run, sock)
            if wait_ready:
                with anyio.fail_after(WAIT_S):
                    await api.wait_ready()
            try:
                yield bridge
            finally:
                bridge.stop()


class BackgroundCall(Generic[T]):
    """A request an agent has made and not yet had answered (it may be waiting for an approval)."""

    def __init__(self) -> None:
        self._scope = anyio.CancelScope()
        self._ended = anyio.Event()
        self._result: T | None = None

    async def _run(self, request: Callable[..., Awaitable[T]], *args: Any) -> None:
        try:
            with self._scope:
                self._result = await request(*args)
        finally:
            self._ended.set()

    async def result(self) -> T:
        """The answer, once the request has ended (bounded)."""
        with anyio.fail_after(WAIT_S):
            await self._ended.wait()
        if self._scope.cancelled_caught or self._result is None:
            raise AssertionError("the request was withdrawn, so it has no answer")
        return self._result

    async def withdraw(self) -> None:
        """Cancel the request, as an agent that gives up does; returns once it has ended (bounded)."""
        self._scope.cancel()
        with anyio.fail_after(WAIT_S):
            await self._ended.wait()


class ConnectedAgent:
    """One agent's MCP client on a running bridge; ``start_call`` lets a call wait while the test acts."""

    def __init__(self, client: Client, task_group: anyio.abc.TaskGroup) -> None:
        self.client = client
        self._task_group = task_group

    def start(self, request: Callable[..., Awaitable[T]], *args: Any) -> BackgroundCall[T]:
        """Send ``request(*args)`` (a method of ``client``) in the background."""
        call: BackgroundCall[T] = BackgroundCall()
        self._task_group.start_soon(call._run, request, *args)
        return call

    def start_call(self, tool: str, arguments: dict[str, Any]) -> BackgroundCall[types.CallToolResult]:
        """Call ``tool`` in the background."""
        return self.start(self.client.call_tool, tool, arguments)


@asynccontextmanager
async def connected_agent(
    agent_id: str,
    entry: Mapping[str, Any],
    *,
    servers: Mapping[str, Mapping[str, Any]] | None = None,
    mode: Mode = "legacy",
    **gateway_settings: Any,
) -> AsyncIterator[tuple[GatewayBridge, ConnectedAgent]]:
    """``running_bridge`` with the one agent ``agent_id`` (config ``entry``), connected as an MCP client.

    ``servers`` defaults to one stdio fake named ``fake``; ``mode`` is the agent's protocol era. The
    block ends once the calls it started have (answered or withdrawn); then the client disconnects and
    the gateway stops.
    """
    servers = {"fake": stdio_fake()} if servers is None else servers
    async with running_bridge(servers, agents={agent_id: entry}, **gateway_settings) as bridge:
        async with agent_client(bridge.endpoint_url, bridge.api.agent_token(agent_id), mode=mode) as client:
            async with anyio.create_task_group() as tg:
                yield bridge, ConnectedAgent(client, tg)


async def wait_signal(signal: SignalInstance, predicate: Callable[..., bool] = lambda *_: True) -> tuple[Any, ...]:
    """Wait (bounded) for ``signal`` to be emitted with arguments that satisfy ``predicate``."""
    future: asyncio.Future[tuple[Any, ...]] = asyncio.get_running_loop().create_future()

    def receive(*args: Any) -> None:
        if not future.done() and predicate(*args):
            future.set_result(args)

    signal.connect(receive)
    try:
        return await asyncio.wait_for(future, WAIT_S)
    finally:
        signal.disconnect(receive)


async def eventually(predicate: Callable[[], bool], what: str, timeout_s: float = WAIT_S) -> None:
    """Wait until ``predicate()`` holds, checking after each turn of the event loop; bounded."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.01)


def ended_call(seconds_ago: float) -> AuditRecord:
    """The outcome record of an agent's echo call that ended ``seconds_ago``."""
    return AuditRecord(
        id=0,
        time=time.time() - seconds_ago,
        kind=RecordKind.OUTCOME,
        call_id=uuid.uuid4().hex,
        agent="a",
        server="fake",
        tool="echo",
        effect=None,
        rule=None,
        reason=None,
        answer=None,
        waited_s=None,
        latency_s=0.01,
        outcome=CallOutcome.OK,
        result_size=None,
        arguments="",
    )

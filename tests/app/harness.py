"""A real GatewayBridge (real gateway, real stdio servers, real SQLite) on a qasync loop, for widget tests.

Widget tests are plain functions that hand one coroutine to ``run_async``, which runs the Qt event loop
(and so the gateway, the widgets and the MCP clients) until it finishes:

    def test_something(qloop):
        async def scenario():
            async with running_bridge({"fake": stdio_fake()}) as bridge:
                ...
        run_async(qloop, scenario())
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import anyio
from PySide6.QtCore import SignalInstance

from app.bridge import GatewayBridge
from app.loop import QtEventLoop
from gateway_core import LocalGateway, Paths, bind, load_config, open_secret_store

T = TypeVar("T")
WAIT_S = 30.0


def run_async(loop: QtEventLoop, coro: Coroutine[Any, Any, T], timeout_s: float = 120.0) -> T:
    """Run ``coro`` on the qasync loop (Qt events are processed meanwhile), bounded by ``timeout_s``."""
    return loop.run_until_complete(asyncio.wait_for(coro, timeout_s))


@asynccontextmanager
async def running_bridge(
    servers: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    agents: Mapping[str, Mapping[str, Any]] | None = None,
    wait_ready: bool = True,
    **gateway_settings: Any,
) -> AsyncIterator[GatewayBridge]:
    """A bridge serving on 127.0.0.1:0 with config.json written from ``servers`` and ``agents``.

    Agents get tokens in the (file) secret store; ``bridge.agent_token(id)`` gives them. With
    ``wait_ready`` every server has had its first start attempt when the block begins.
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
    api = LocalGateway(load_config(paths.config_file), config_path=paths.config_file, paths=paths, store=store)
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

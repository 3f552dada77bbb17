"""The in-memory transport: an SDK ``Server`` object served in this process, for tests.

With it, a ``DownstreamServer``'s logic (handshake, catalog, calls, questions, failure) is exercised
without spawning a process or opening a socket, the way httpx's ``MockTransport`` lets a client be
tested without a network. Toolgate's own configuration never chooses it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from mcp.server.lowlevel import Server
from mcp.shared.memory import create_client_server_memory_streams

from gateway_core.downstream.base import Connection


@asynccontextmanager
async def open_memory(server: Server[Any], **init_options: Any) -> AsyncIterator[Connection]:
    """Serve ``server`` over in-memory streams; the connection is lost when it stops serving.

    Args:
        server: the SDK server to talk to.
        init_options: passed to ``server.create_initialization_options``.
    """
    async with create_client_server_memory_streams() as (client_streams, server_streams):
        stopped = anyio.Event()
        ended = "the in-memory server stopped serving"

        async def serve() -> None:
            try:
                await server.run(*server_streams, server.create_initialization_options(**init_options))
            finally:
                stopped.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(serve)
            try:
                yield Connection(streams=client_streams, lost=stopped, loss_reason=lambda: ended)
            finally:
                tg.cancel_scope.cancel()

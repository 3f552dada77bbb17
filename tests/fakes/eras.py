"""Pin an SDK 2.x fake server (which speaks both eras) to one era, as older or newer servers are.

- ``refuse_handshake`` (middleware): ``initialize`` is refused, as by a 2026-07-28-only server;
- ``refuse_discover(server)``: ``server/discover`` gets -32601, as TypeScript SDK 1.x servers answer
  it, before the SDK sees it (the SDK would settle the connection's era on it);
- ``exit_on_discover(server)``: the process exits (code 4) when sent ``server/discover``, as a server
  that cannot stand an unknown method would (stdio).

Over Streamable HTTP, ``discover_refused_app`` answers a ``server/discover`` POST with -32601.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator
from typing import Any

import anyio
import mcp_types as types
from mcp.server import ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp.shared.message import SessionMessage

DISCOVER = "server/discover"
EXIT_CODE = 4


async def refuse_handshake(ctx: ServerRequestContext[Any], call_next: Any) -> Any:
    """A handshake-era ``initialize`` is refused: the server speaks 2026-07-28 only."""
    if ctx.method == "initialize":
        raise MCPError(code=types.INVALID_REQUEST, message="this server speaks only 2026-07-28; send server/discover")
    return await call_next(ctx)


def _method_not_found(request_id: Any) -> types.JSONRPCError:
    error = types.ErrorData(code=types.METHOD_NOT_FOUND, message="Method not found")
    return types.JSONRPCError(jsonrpc="2.0", id=request_id, error=error)


@contextlib.asynccontextmanager
async def _without_discover(read: Any, write: Any, *, exit_instead: bool) -> AsyncIterator[tuple[Any, Any]]:
    """The server's streams, with ``server/discover`` answered (or the process ended) on the way in."""
    send, receive = anyio.create_memory_object_stream[Any](0)

    async def pump() -> None:
        async with send:
            async for message in read:
                inner = getattr(message, "message", None)
                if isinstance(inner, types.JSONRPCRequest) and inner.method == DISCOVER:
                    if exit_instead:
                        sys.stderr.write("unknown method server/discover: exiting\n")
                        sys.stderr.flush()
                        os._exit(EXIT_CODE)
                    await write.send(SessionMessage(_method_not_found(inner.id)))
                    continue
                await send.send(message)

    async with anyio.create_task_group() as tg:
        tg.start_soon(pump)
        yield receive, write
        tg.cancel_scope.cancel()


def _filter_run(server: Any, *, exit_instead: bool) -> None:
    run = server.run

    async def run_without_discover(read: Any, write: Any, *args: Any, **kwargs: Any) -> Any:
        async with _without_discover(read, write, exit_instead=exit_instead) as (filtered, out):
            return await run(filtered, out, *args, **kwargs)

    server.run = run_without_discover


def refuse_discover(server: Any) -> None:
    """Make ``server`` (an SDK ``Server``) answer ``server/discover`` with -32601 on stream transports."""
    _filter_run(server, exit_instead=False)


def exit_on_discover(server: Any) -> None:
    """Make the process serving ``server`` exit when sent ``server/discover``."""
    _filter_run(server, exit_instead=True)


def discover_refused_app(app: Any) -> Any:
    """An ASGI app that answers a ``server/discover`` POST with -32601 and passes everything else to ``app``."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await app(scope, receive, send)
            return
        chunks: list[bytes] = []
        more = True
        while more:
            event = await receive()
            chunks.append(event.get("body", b""))
            more = event.get("more_body", False)
        body = b"".join(chunks)
        try:
            message = json.loads(body)
        except ValueError:
            message = None
        if isinstance(message, dict) and message.get("method") == DISCOVER:
            answer = _method_not_found(message.get("id")).model_dump_json(by_alias=True, exclude_none=True).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(answer)).encode())]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": answer})
            return
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await app(scope, replay, send)

    return wrapped

"""The floor for any HTTP->stdio gateway: a bare asyncio relay written for the benchmark.

HTTP/1.1 in (keep-alive, `Content-Length` bodies), each JSON-RPC request written as one line to one
stdio server with its id remapped, the server's answer written back as `application/json` with the
caller's id. No auth, no policy, no audit, no validation, no SDK: what relaying alone costs.

The relay initializes the server once at start and answers every agent's `initialize` with that
result; notifications get 202 and are not forwarded; a GET (the SDK client's listening stream) and a
DELETE get 405. Enough for a minimal client and for the MCP SDK's client in the handshake era.

A request in the 2026-07-28 era (its envelope, `_meta`, names a protocol version) goes as it is to a
second process of the same server, never initialized, which answers each such request on its own as
the era has it: the floor for a gateway reaching servers in their newest era, as Toolgate does.

    python bench/bare_relay.py COMMAND [ARGS...]   # prints "READY http://127.0.0.1:PORT/mcp"
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
from typing import Any

LIMIT = 16 * 1024 * 1024
# The envelope key naming a 2026-07-28 request's protocol version.
VERSION_KEY = "io.modelcontextprotocol/protocolVersion"


class Downstream:
    """One stdio server: requests out with fresh ids, answers matched back by id."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        assert self._process.stdout is not None
        async for line in self._process.stdout:
            message = json.loads(line)
            waiter = self._waiting.pop(message.get("id"), None) if "method" not in message else None
            if waiter is not None and not waiter.done():
                waiter.set_result(message)

    async def request(self, message: dict[str, Any]) -> dict[str, Any]:
        assert self._process.stdin is not None
        own = next(self._ids)
        waiter = asyncio.get_running_loop().create_future()
        self._waiting[own] = waiter
        self._process.stdin.write(json.dumps({**message, "id": own}).encode() + b"\n")
        return await waiter

    def notify(self, message: dict[str, Any]) -> None:
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps(message).encode() + b"\n")


def in_newest_era(message: dict[str, Any]) -> bool:
    """Whether ``message`` is a 2026-07-28 request: its envelope names a protocol version."""
    params = message.get("params")
    meta = params.get("_meta") if isinstance(params, dict) else None
    return isinstance(meta, dict) and VERSION_KEY in meta


def answer(status: str, body: bytes = b"", content_type: str = "application/json") -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


async def serve_connection(
    downstream: Downstream,
    newest: Downstream,
    initialized: dict[str, Any],
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
) -> None:
    try:
        while True:
            request_line = await reader.readline()
            if not request_line:
                return
            length = 0
            while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = header.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            body = await reader.readexactly(length) if length else b""
            if not request_line.startswith(b"POST "):
                writer.write(answer("405 Method Not Allowed"))
                continue
            message = json.loads(body)
            if "id" not in message:
                writer.write(answer("202 Accepted"))
                continue
            if message.get("method") == "initialize":
                reply = {"jsonrpc": "2.0", "id": message["id"], "result": initialized}
            elif in_newest_era(message):
                reply = {**await newest.request(message), "id": message["id"]}
            else:
                reply = {**await downstream.request(message), "id": message["id"]}
            writer.write(answer("200 OK", json.dumps(reply).encode()))
    except (ConnectionError, asyncio.IncompleteReadError):
        return
    finally:
        writer.close()


async def start(command: str, args: list[str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        command, *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=LIMIT
    )


async def main(command: str, args: list[str]) -> None:
    process = await start(command, args)
    downstream = Downstream(process)
    newest_process = await start(command, args)
    newest = Downstream(newest_process)
    hello = {
        "method": "initialize",
        "jsonrpc": "2.0",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "relay", "version": "0"},
        },
    }
    initialized = (await downstream.request(hello))["result"]
    downstream.notify({"jsonrpc": "2.0", "method": "notifications/initialized"})

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await serve_connection(downstream, newest, initialized, reader, writer)

    server = await asyncio.start_server(on_connection, "127.0.0.1", 0, limit=LIMIT, backlog=256)
    port = server.sockets[0].getsockname()[1]
    print(f"READY http://127.0.0.1:{port}/mcp", flush=True)
    async with server:
        await asyncio.wait(
            [asyncio.ensure_future(process.wait()), asyncio.ensure_future(newest_process.wait())],
            return_when=asyncio.FIRST_COMPLETED,
        )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2:]))

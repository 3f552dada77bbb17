"""The smallest SDK proxy that can stand in for a gateway: the benchmark's reference for path (d).

One low-level `Server` on Streamable HTTP whose tools/list and tools/call forward to one persistent
stdio session. No auth, no naming, no bookkeeping: what any SDK-based gateway pays at the least.

    python bench/minimal_proxy.py COMMAND [ARGS...]   # prints "READY http://127.0.0.1:PORT/mcp"
"""

from __future__ import annotations

import socket
import sys
from typing import Any

import anyio
import mcp_types as types
import uvicorn
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.server import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager


async def main(command: str, args: list[str]) -> None:
    async with stdio_client(StdioServerParameters(command=command, args=args)) as streams:
        async with ClientSession(*streams) as downstream:
            await downstream.initialize()
            tools = (await downstream.list_tools()).tools
            schemas = {tool.name: tool.input_schema for tool in tools}

            async def list_tools(ctx: ServerRequestContext[Any], params: Any) -> types.ListToolsResult:
                return types.ListToolsResult(tools=tools)

            async def call_tool(ctx: ServerRequestContext[Any], params: types.CallToolRequestParams) -> Any:
                request = types.CallToolRequest(
                    params=types.CallToolRequestParams(name=params.name, arguments=params.arguments)
                )
                return await downstream.send_request(request, types.CallToolResult)

            server: Server[Any] = Server(
                "minimal-proxy", on_list_tools=list_tools, on_call_tool=call_tool, get_tool_input_schema=schemas.get
            )
            server.middleware = []
            manager = StreamableHTTPSessionManager(server)
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            sock.bind(("127.0.0.1", 0))
            sock.listen(256)
            http = uvicorn.Server(
                uvicorn.Config(manager.handle_request, log_level="warning", lifespan="off", interface="asgi3")
            )
            async with manager.run():
                print(f"READY http://127.0.0.1:{sock.getsockname()[1]}/mcp", flush=True)
                await http.serve([sock])


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2:])

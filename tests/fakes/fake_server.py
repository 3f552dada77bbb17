"""A fake MCP server for tests and benchmarks, written with the SDK 2.x low-level ``Server``.

    python tests/fakes/fake_server.py [--http [--resumable] | --sse] [--name N] [--tools N]
                                      [--modern-only | --handshake-only | --exit-on-discover]
                                      [--max-body BYTES] [--instructions TEXT] [--by-capability] [--by-era]
                                      [--describe TOOL=TEXT] [--annotate TOOL=HINT] [--redescribable] [--rich]
                                      [--scheme S]

Serves over stdio by default. With ``--http`` (Streamable HTTP, path ``/mcp``) or ``--sse`` (legacy SSE,
path ``/sse``) it listens on 127.0.0.1 on a free port and prints ``READY <url>`` as its first stdout line;
``--max-body`` raises the SDK's 4 MiB limit on the request bodies it accepts there. ``--resumable`` gives
its Streamable HTTP transport an event store (SEP-1699: priming events, ``retry:``, ``Last-Event-ID``).

Tools: echo(text), add(a, b), fail(), slow(seconds, steps) (writes "slow started" to stderr as each call
begins and "slow cancelled" when one is cancelled), crash(), add_tool(name), stderr(text), spawn_child(),
meta() (the request's ``_meta``), capabilities() (the client capabilities the server was told, in
either era; ``null`` if none), drop_stream(text) (closes the call's SSE stream mid-call where the
transport can, between two progress steps, then answers "resumed: <text>"), blob(size) (``size`` bytes of
text) and measure(data) (the length of ``data``), each of the last two after one progress step; plus
``--tools N`` trivial tools ``tool_000``…; and the interactive tools of ``interactive.py`` (elicitation,
sampling, roots, logging, resource updates, in both eras). One resource ``fake://greeting``, one
template ``fake://items/{id}`` (``--scheme S``: ``S://greeting``, ``S://items/{id}``; item ``blob`` is a
PNG blob, item ``error`` an error answer and reading item ``crash`` exits the process), one prompt
``greet(name)``. With ``--by-capability`` it also lists the tool
``summarise`` only to clients that declared sampling and the prompt ``interview`` only to clients that
declared elicitation (in 2026-07-28, as each request's capabilities say). With ``--by-era`` it lists
``era`` (answers the protocol version its call came in) to everyone, ``whats_new`` only to 2026-07-28
clients and ``whats_old`` (answers "old") only to handshake-era clients. ``--describe echo=TEXT`` gives a
tool another description and ``--annotate echo=destructiveHint`` sets one of its annotation hints to true
(each may be repeated); with ``--redescribable`` the tool ``redescribe(name, description)`` changes a tool's
description while the server runs and says its tools changed (a server pulling the rug); with ``--rich``
the tool ``picture`` answers an image and annotated text, and the prompt ``picture`` an image message;
the tool ``region`` echoes its argument ``region``, which 2026-07-28 clients also send as a header.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import socket
import subprocess
import sys
from typing import Any

import anyio
import anyio.to_thread
import mcp_types as types
from mcp.server import ServerRequestContext
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.server.subscriptions import ToolsListChanged
from mcp.server.transport_security import DEFAULT_MAX_REQUEST_BODY_SIZE
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

try:  # run as a script, its folder is on sys.path; imported (the in-memory tests), it is a package module
    import eras  # type: ignore[import-not-found]
    import interactive  # type: ignore[import-not-found]
    from event_store import MemoryEventStore  # type: ignore[import-not-found]
except ModuleNotFoundError:
    from tests.fakes import eras, interactive
    from tests.fakes.event_store import MemoryEventStore
from mcp.shared.message import ServerMessageMetadata

_OBJECT: dict[str, Any] = {"type": "object"}
_NOTIFY_ALL = NotificationOptions(tools_changed=True, resources_changed=True, prompts_changed=True)
# How soon a client whose stream this server closed comes back (``--resumable``): soon, tests wait for it.
_RETRY_INTERVAL_MS = 50


def _schema(**props: str) -> dict[str, Any]:
    return {"type": "object", "properties": {k: {"type": v} for k, v in props.items()}, "required": list(props)}


def _text(text: str) -> types.TextContent:
    return types.TextContent(type="text", text=text)


def _spawn_sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", "import threading; threading.Event().wait()"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


# With --by-capability: listed only to clients that declared sampling (the tool) or elicitation (the prompt).
SAMPLING_TOOL = types.Tool(name="summarise", description="Summarise with the client's model.", input_schema=_OBJECT)
ELICITING_PROMPT = types.Prompt(name="interview", description="Asks the user questions first.")


# With --redescribable: changes a tool's description at run time.
REDESCRIBE_TOOL = types.Tool(
    name="redescribe",
    description="Give a tool another description.",
    input_schema=_schema(name="string", description="string"),
)


# With --by-era: ``era`` answers the era of its call; ``whats_new`` is listed only to 2026-07-28 clients,
# ``whats_old`` only to handshake-era clients.
# With --rich: a result in more than text (an image, annotated text), as many real servers send.
PICTURE_TOOL = types.Tool(name="picture", description="Return an image and annotated text.", input_schema=_OBJECT)
PICTURE = types.CallToolResult(
    content=[
        types.ImageContent(data="iVBORw0KGgo=", mime_type="image/png"),
        types.TextContent(text="a picture", annotations=types.Annotations(audience=["user"], priority=0.5)),
    ]
)
PICTURE_PROMPT = types.Prompt(name="picture", description="An image message.")
PICTURE_PROMPT_RESULT = types.GetPromptResult(
    description="a picture",
    messages=[types.PromptMessage(role="user", content=types.ImageContent(data="iVBORw0KGgo=", mime_type="image/png"))],
)
# With --rich: a tool whose argument a 2026-07-28 client also sends as a header (``x-mcp-header``).
REGION_TOOL = types.Tool(
    name="region",
    description="Echo `region`, which 2026-07-28 clients also send as the header Mcp-Param-Region.",
    input_schema={"type": "object", "properties": {"region": {"type": "string", "x-mcp-header": "Region"}}},
)
ERA_TOOL = types.Tool(name="era", description="Say which protocol era this call came in.", input_schema=_OBJECT)
MODERN_TOOL = types.Tool(name="whats_new", description="Listed only to 2026-07-28 clients.", input_schema=_OBJECT)
OLD_TOOL = types.Tool(name="whats_old", description="Listed only to handshake-era clients.", input_schema=_OBJECT)


def _for_era(enabled: bool, ctx: ServerRequestContext[Any]) -> list[types.Tool]:
    """What ``--by-era`` adds to the tools listed to the client of ``ctx``."""
    if not enabled:
        return []
    return [ERA_TOOL, MODERN_TOOL] if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS else [ERA_TOOL, OLD_TOOL]


def _for_capabilities(enabled: bool, ctx: ServerRequestContext[Any], item: Any) -> list[Any]:
    """``[item]`` when listing by capability and the client declared what ``item`` needs, else ``[]``."""
    told = ctx.session.client_capabilities
    if not enabled or told is None:
        return []
    needed = told.sampling if isinstance(item, types.Tool) else told.elicitation
    return [item] if needed is not None else []


class FakeServer:
    """The fake's state: its tool list grows with ``add_tool``."""

    def __init__(
        self,
        name: str,
        extra_tools: int,
        instructions: str | None = None,
        *,
        by_capability: bool = False,
        by_era: bool = False,
        scheme: str = "fake",
    ) -> None:
        self.name = name
        self.scheme = scheme
        # With --rich: prompts answered in more than text.
        self.rich_prompts: list[types.Prompt] = []
        self.by_capability = by_capability
        self.by_era = by_era
        self.tools: list[types.Tool] = [
            types.Tool(
                name="echo",
                description="Echo the text back.",
                input_schema=_schema(text="string"),
                output_schema=_schema(text="string"),
            ),
            types.Tool(name="add", description="Add two numbers.", input_schema=_schema(a="number", b="number")),
            types.Tool(name="fail", description="Return an error result.", input_schema=_OBJECT),
            types.Tool(
                name="slow",
                description="Report progress `steps` times over `seconds`.",
                input_schema=_schema(seconds="number", steps="integer"),
            ),
            types.Tool(name="crash", description="Exit the process mid-call.", input_schema=_OBJECT),
            types.Tool(name="add_tool", description="Register a tool.", input_schema=_schema(name="string")),
            types.Tool(name="stderr", description="Write a line to stderr.", input_schema=_schema(text="string")),
            types.Tool(name="spawn_child", description="Start a long-lived child process.", input_schema=_OBJECT),
            types.Tool(name="ping_client", description="Ping the client mid-call.", input_schema=_OBJECT),
            types.Tool(name="meta", description="Return the request's _meta.", input_schema=_OBJECT),
            types.Tool(name="capabilities", description="Return the client's capabilities.", input_schema=_OBJECT),
            types.Tool(
                name="drop_stream",
                description="Close this call's SSE stream mid-call, then answer.",
                input_schema=_schema(text="string"),
            ),
            types.Tool(name="blob", description="Return `size` bytes of text.", input_schema=_schema(size="integer")),
            types.Tool(name="measure", description="Return the length of `data`.", input_schema=_schema(data="string")),
            *interactive.TOOLS,
        ]
        self.tools += [
            types.Tool(name=f"tool_{i:03d}", description=f"Trivial tool {i}.", input_schema=_OBJECT)
            for i in range(extra_tools)
        ]
        self.interactive = interactive.Interactive()
        self.server: Server[Any] = Server(
            name,
            version="0.0.1",
            instructions=instructions,
            on_list_tools=self.list_tools,
            on_call_tool=self.call_tool,
            on_list_resources=self.list_resources,
            on_list_resource_templates=self.list_resource_templates,
            on_read_resource=self.read_resource,
            on_subscribe_resource=self.interactive.subscribe,
            on_unsubscribe_resource=self.interactive.unsubscribe,
            on_list_prompts=self.list_prompts,
            on_get_prompt=self.get_prompt,
            on_completion=self.interactive.complete,
            on_subscriptions_listen=self.interactive.listen,
        )
        self.server.add_request_handler("logging/setLevel", types.SetLevelRequestParams, self.interactive.set_level)
        for notification in ("notifications/initialized", "notifications/roots/list_changed"):
            self.server.add_notification_handler(notification, types.NotificationParams, self.interactive.ask_roots)

    def annotate(self, hints: dict[str, dict[str, bool]]) -> None:
        """Give the named tools these annotation hints (by the spec's names)."""
        self.tools = [
            tool
            if tool.name not in hints
            else tool.model_copy(update={"annotations": types.ToolAnnotations.model_validate(hints[tool.name])})
            for tool in self.tools
        ]

    async def list_tools(self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None) -> Any:
        extra = _for_capabilities(self.by_capability, ctx, SAMPLING_TOOL) + _for_era(self.by_era, ctx)
        return types.ListToolsResult(tools=self.tools + extra)

    async def call_tool(self, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams) -> Any:
        args = params.arguments or {}
        match params.name:
            case "echo":
                text = str(args.get("text", ""))
                return types.CallToolResult(
                    content=[_text(text)], structured_content={"text": text}, _meta={"fake/server": self.name}
                )
            case "whats_old":
                return types.CallToolResult(content=[_text("old")])
            case "picture":
                return PICTURE
            case "region":
                return types.CallToolResult(content=[_text(str(args.get("region")))])
            case "era":
                return types.CallToolResult(content=[_text(ctx.protocol_version)])
            case "add":
                total = args["a"] + args["b"]
                return types.CallToolResult(content=[_text(str(total))], structured_content={"result": total})
            case "fail":
                return types.CallToolResult(content=[_text("it failed")], is_error=True)
            case "slow":
                seconds, steps = float(args.get("seconds", 1)), int(args.get("steps", 1))
                # Tests count these lines to see how many times a call ran.
                sys.stderr.write("slow started\n")
                sys.stderr.flush()
                try:
                    for step in range(steps):
                        await ctx.session.report_progress(step + 1, total=steps, message=f"step {step + 1}")
                        await anyio.sleep(seconds / max(steps, 1))
                except anyio.get_cancelled_exc_class():
                    # Tests read this line to see that notifications/cancelled arrived.
                    sys.stderr.write("slow cancelled\n")
                    sys.stderr.flush()
                    raise
                return types.CallToolResult(content=[_text("done")])
            case "crash":
                os._exit(3)
            case "add_tool":
                added = types.Tool(name=str(args["name"]), description="Added at run time.", input_schema=_OBJECT)
                self.tools.append(added)
                await ctx.session.send_tool_list_changed()  # handshake-era clients
                await self.interactive.bus.publish(ToolsListChanged())  # 2026 listen streams
                return types.CallToolResult(content=[_text(f"added {args['name']}")])
            case "redescribe":
                self.redefine(str(args["name"]), description=str(args["description"]))
                await ctx.session.send_tool_list_changed()  # handshake-era clients
                await self.interactive.bus.publish(ToolsListChanged())  # 2026 listen streams
                return types.CallToolResult(content=[_text(f"redescribed {args['name']}")])
            case "stderr":
                sys.stderr.write(f"{args.get('text', '')}\n")
                sys.stderr.flush()
                return types.CallToolResult(content=[_text("written")])
            case "ping_client":
                # A server-to-client request in the middle of a call (handshake era only).
                await ctx.session.send_request(
                    types.PingRequest(),
                    types.EmptyResult,
                    metadata=ServerMessageMetadata(related_request_id=ctx.request_id),
                )
                return types.CallToolResult(content=[_text("the client answered")])
            case "meta":
                meta = params.model_dump(mode="json", by_alias=True).get("_meta") or {}
                return types.CallToolResult(content=[_text(json.dumps(meta))], structured_content={"meta": meta})
            case "capabilities":
                told = ctx.session.client_capabilities
                dumped = None if told is None else told.model_dump(by_alias=True, mode="json", exclude_none=True)
                return types.CallToolResult(content=[_text(json.dumps(dumped, sort_keys=True))])
            case "drop_stream":
                # SEP-1699: the client sees its stream end and comes back with Last-Event-ID for the rest.
                await ctx.session.report_progress(1, total=2, message="before the stream closed")
                if ctx.close_sse_stream is not None:
                    await ctx.close_sse_stream()
                await ctx.session.report_progress(2, total=2, message="after the stream closed")
                return types.CallToolResult(content=[_text(f"resumed: {args.get('text', '')}")])
            case "blob" | "measure":
                # A progress step first makes a 2026-07-28 HTTP response an SSE stream rather than JSON.
                await ctx.session.report_progress(0, total=1)
                text = "x" * int(args["size"]) if params.name == "blob" else str(len(args["data"]))
                return types.CallToolResult(content=[_text(text)])
            case "spawn_child":
                child = await anyio.to_thread.run_sync(_spawn_sleeper)
                return types.CallToolResult(
                    content=[_text(str(child.pid))], structured_content={"pid": child.pid, "server": os.getpid()}
                )
            case name if any(tool.name == name for tool in interactive.TOOLS):
                return await self.interactive.call(ctx, params)
            case name if any(tool.name == name for tool in self.tools):
                return types.CallToolResult(content=[_text(name)])
        raise MCPError(code=types.INVALID_PARAMS, message=f"unknown tool: {params.name}")

    def redefine(self, name: str, *, description: str | None = None, hint: str | None = None) -> None:
        """Change tool ``name``'s description, or set one of its annotation hints (e.g. ``destructiveHint``)."""
        index = next(i for i, tool in enumerate(self.tools) if tool.name == name)
        tool = self.tools[index]
        changes: dict[str, Any] = {}
        if description is not None:
            changes["description"] = description
        if hint is not None:
            annotations = tool.annotations.model_dump(by_alias=True) if tool.annotations else {}
            changes["annotations"] = types.ToolAnnotations.model_validate({**annotations, hint: True})
        self.tools[index] = tool.model_copy(update=changes)

    async def list_resources(self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None) -> Any:
        return types.ListResourcesResult(resources=[types.Resource(uri=f"{self.scheme}://greeting", name="greeting")])

    async def list_resource_templates(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> Any:
        template = types.ResourceTemplate(uri_template=f"{self.scheme}://items/{{id}}", name="item")
        return types.ListResourceTemplatesResult(resource_templates=[template])

    async def read_resource(self, ctx: ServerRequestContext[Any], params: types.ReadResourceRequestParams) -> Any:
        items = f"{self.scheme}://items/"
        if params.uri == f"{self.scheme}://greeting":
            text = f"hello from {self.name}"
        elif params.uri.startswith(items):
            item = params.uri.removeprefix(items)
            if item == "crash":
                os._exit(3)
            if item == "error":
                raise MCPError(code=types.INTERNAL_ERROR, message="item error is broken", data={"item": item})
            if item == "blob":
                blob = types.BlobResourceContents(uri=params.uri, mime_type="image/png", blob="iVBORw0KGgo=")
                return types.ReadResourceResult(contents=[blob])
            text = f"item {item}"
        else:
            raise MCPError(code=types.INVALID_PARAMS, message=f"unknown resource: {params.uri}")
        return types.ReadResourceResult(contents=[types.TextResourceContents(uri=params.uri, text=text)])

    async def list_prompts(self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None) -> Any:
        argument = types.PromptArgument(name="name", required=True)
        greet = types.Prompt(name="greet", arguments=[argument])
        eliciting = _for_capabilities(self.by_capability, ctx, ELICITING_PROMPT)
        return types.ListPromptsResult(prompts=[greet, *eliciting, *self.rich_prompts])

    async def get_prompt(self, ctx: ServerRequestContext[Any], params: types.GetPromptRequestParams) -> Any:
        if params.name == "picture" and self.rich_prompts:
            return PICTURE_PROMPT_RESULT
        if params.name != "greet":
            raise MCPError(code=types.INVALID_PARAMS, message=f"unknown prompt: {params.name}")
        who = (params.arguments or {}).get("name", "world")
        message = types.PromptMessage(role="user", content=_text(f"Hello, {who}!"))
        return types.GetPromptResult(messages=[message])


async def _serve_stdio(fake: FakeServer) -> None:
    from mcp.server.stdio import stdio_server

    async with stdio_server() as (read, write):
        await fake.server.run(read, write, fake.server.create_initialization_options(_NOTIFY_ALL))


def _sse_app(fake: FakeServer, max_body: int) -> Any:
    from mcp.server.sse import SseServerTransport
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Mount, Route

    sse = SseServerTransport("/messages/", max_request_body_size=max_body)

    async def handle_sse(request: Request) -> Response:
        async with sse.connect_sse(request.scope, request.receive, request._send) as (read, write):
            await fake.server.run(read, write, fake.server.create_initialization_options(_NOTIFY_ALL))
        return Response()

    routes = [Route("/sse", endpoint=handle_sse, methods=["GET"]), Mount("/messages/", app=sse.handle_post_message)]
    return Starlette(routes=routes)


async def _serve_http(
    fake: FakeServer, kind: str, max_body: int, *, resumable: bool = False, handshake_only: bool = False
) -> None:
    import uvicorn

    if kind == "http":
        # The session manager ignores init options; without this, listChanged is advertised as false.
        fake.server.create_initialization_options = functools.partial(  # type: ignore[method-assign]
            fake.server.create_initialization_options, _NOTIFY_ALL
        )
        store = MemoryEventStore() if resumable else None
        retry = _RETRY_INTERVAL_MS if resumable else None
        app = fake.server.streamable_http_app(max_request_body_size=max_body, event_store=store, retry_interval=retry)
        if handshake_only:
            app = eras.discover_refused_app(app)
        path = "/mcp"
    else:
        app, path = _sse_app(fake, max_body), "/sse"
    # IPPROTO_TCP so asyncio sets TCP_NODELAY on accepted sockets (else ~40 ms delayed-ACK stalls).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen()  # before READY: a client may connect as soon as it reads the line
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1))
    sys.stdout.write(f"READY http://127.0.0.1:{port}{path}\n")
    sys.stdout.flush()
    await server.serve(sockets=[sock])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--http", action="store_true", help="serve Streamable HTTP on 127.0.0.1")
    group.add_argument("--sse", action="store_true", help="serve legacy SSE on 127.0.0.1")
    parser.add_argument("--resumable", action="store_true", help="with --http: keep events for Last-Event-ID")
    parser.add_argument("--name", default="fake", help="server name (default: fake)")
    parser.add_argument("--tools", type=int, default=0, help="add N trivial tools tool_000…")
    era = parser.add_mutually_exclusive_group()
    era.add_argument("--modern-only", action="store_true", help="refuse the handshake: speak 2026-07-28 only")
    era.add_argument("--handshake-only", action="store_true", help="answer server/discover -32601 (handshake era only)")
    era.add_argument("--exit-on-discover", action="store_true", help="exit when sent server/discover (stdio)")
    parser.add_argument(
        "--max-body", type=int, default=DEFAULT_MAX_REQUEST_BODY_SIZE, help="largest request body over HTTP, in bytes"
    )
    parser.add_argument("--instructions", help="the instructions the server gives its clients")
    parser.add_argument(
        "--by-capability", action="store_true", help="list summarise, interview only to clients that can sample, elicit"
    )
    parser.add_argument(
        "--by-era", action="store_true", help="whats_new, whats_old listed to 2026-07-28, handshake-era clients only"
    )
    parser.add_argument("--describe", action="append", default=[], metavar="TOOL=TEXT", help="another description")
    parser.add_argument("--annotate", action="append", default=[], metavar="TOOL=HINT", help="set an annotation hint")
    parser.add_argument("--redescribable", action="store_true", help="add the tool redescribe(name, description)")
    parser.add_argument(
        "--rich", action="store_true", help="add the tool and prompt picture (an image and more) and the tool region"
    )
    parser.add_argument("--scheme", default="fake", help="the URI scheme of its resources (default: fake)")
    parser.add_argument(
        "--annotated", action="store_true", help="echo says readOnlyHint, fail says destructiveHint; add says nothing"
    )
    options = parser.parse_args()
    fake = FakeServer(
        options.name,
        options.tools,
        options.instructions,
        by_capability=options.by_capability,
        by_era=options.by_era,
        scheme=options.scheme,
    )
    if options.redescribable:
        fake.tools.append(REDESCRIBE_TOOL)
    if options.rich:
        fake.tools.extend((PICTURE_TOOL, REGION_TOOL))
        fake.rich_prompts.append(PICTURE_PROMPT)
    for item in options.describe:
        name, _, text = item.partition("=")
        fake.redefine(name, description=text)
    for item in options.annotate:
        name, _, hint = item.partition("=")
        fake.redefine(name, hint=hint)
    if options.annotated:
        fake.annotate({"echo": {"readOnlyHint": True}, "fail": {"readOnlyHint": False, "destructiveHint": True}})
    if options.modern_only:
        fake.server.middleware = [*fake.server.middleware, eras.refuse_handshake]
    if options.handshake_only:
        eras.refuse_discover(fake.server)
    if options.exit_on_discover:
        eras.exit_on_discover(fake.server)
    if options.http or options.sse:
        serve = functools.partial(_serve_http, resumable=options.resumable, handshake_only=options.handshake_only)
        anyio.run(serve, fake, "http" if options.http else "sse", options.max_body)
    else:
        anyio.run(_serve_stdio, fake)


if __name__ == "__main__":
    main()

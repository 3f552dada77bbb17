"""An MCP server with what the official conformance suite's server scenarios ask for (SDK 2.x low-level ``Server``).

    python tests/fakes/conformance_server.py [--http [--port N]]

Serves over stdio by default. With ``--http`` it serves Streamable HTTP (stateful, SSE responses, path
``/mcp``) on 127.0.0.1 on ``--port`` (default: a free port), prints ``READY <url>`` as its first stdout
line, and accepts only localhost ``Host`` and ``Origin`` headers (DNS rebinding protection).

Tools: test_simple_text, test_image_content, test_audio_content, test_embedded_resource,
test_multiple_content_types, test_tool_with_logging (3 info messages, 50 ms apart), test_error_handling
(an ``isError`` result), test_tool_with_progress (0, 50, 100 of 100), test_sampling(prompt),
test_elicitation(message), test_elicitation_sep1034_defaults, test_elicitation_sep1330_enums, and
json_schema_2020_12_tool (for the pending json-schema-2020-12 scenario). The sampling and elicitation
tools ask the client with a server-to-client request, so they need a handshake-era connection.
Resources: test://static-text, test://static-binary, test://watched-resource, and the template
test://template/{id}/data. Prompts: test_simple_prompt, test_prompt_with_arguments(arg1, arg2),
test_prompt_with_embedded_resource(resourceUri), test_prompt_with_image. Also completion/complete
(prompt argument ``arg1``, template variable ``id``), logging/setLevel (one level for the process),
resources/subscribe and unsubscribe, and ping. Scenario texts: the suite's ``--help`` and its source.
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import mcp_types as types
from mcp.server import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError
from mcp.shared.message import ServerMessageMetadata
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

Ctx = ServerRequestContext[Any]
ToolFn = Callable[[Ctx, dict[str, Any]], Awaitable[types.CallToolResult]]

# A 1x1 red PNG and a 1 ms silent 8 kHz mono WAV.
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"
WAV = "UklGRiwAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQgAAACAgICAgICAgA=="
LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")
LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]")
TEMPLATE = re.compile(r"^test://template/(?P<id>[^/]+)/data$")
COMPLETIONS = {"arg1": ("paris", "park", "party", "test", "testing"), "id": ("1", "2", "3", "123")}
NO_ARGS: dict[str, Any] = {"type": "object", "properties": {}}


@dataclass
class State:
    """What the server remembers between requests (one of each per process, not per session)."""

    level: str = "info"
    subscribed: set[str] = field(default_factory=set)


STATE = State()

TOOLS: dict[str, tuple[types.Tool, ToolFn]] = {}


def tool(name: str, description: str, schema: dict[str, Any] | None = None) -> Callable[[ToolFn], ToolFn]:
    """Register a tool handler ``async (ctx, arguments) -> CallToolResult`` under ``name``."""

    def register(fn: ToolFn) -> ToolFn:
        TOOLS[name] = (types.Tool(name=name, description=description, input_schema=schema or NO_ARGS), fn)
        return fn

    return register


def _strings(*names: str) -> dict[str, Any]:
    return {"type": "object", "properties": {n: {"type": "string"} for n in names}, "required": list(names)}


def _text(text: str) -> types.TextContent:
    return types.TextContent(type="text", text=text)


def _image() -> types.ImageContent:
    return types.ImageContent(type="image", data=PNG, mime_type="image/png")


def _embedded(uri: str, text: str, mime_type: str = "text/plain") -> types.EmbeddedResource:
    resource = types.TextResourceContents(uri=uri, mime_type=mime_type, text=text)
    return types.EmbeddedResource(type="resource", resource=resource)


def _result(*content: Any, is_error: bool = False) -> types.CallToolResult:
    return types.CallToolResult(content=list(content), is_error=is_error)


# ---------------------------------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------------------------------


def _fixed(name: str, description: str, *content: Any, is_error: bool = False) -> None:
    """Register a tool without arguments that always returns ``content``."""

    async def answer(ctx: Ctx, args: dict[str, Any]) -> types.CallToolResult:
        return _result(*content, is_error=is_error)

    tool(name, description)(answer)


_fixed("test_simple_text", "Returns simple text content.", _text("This is a simple text response for testing."))
_fixed("test_image_content", "Returns image content.", _image())
_fixed(
    "test_audio_content", "Returns audio content.", types.AudioContent(type="audio", data=WAV, mime_type="audio/wav")
)
_fixed(
    "test_embedded_resource",
    "Returns an embedded resource.",
    _embedded("test://embedded-resource", "This is an embedded resource content."),
)
_fixed(
    "test_multiple_content_types",
    "Returns text, image and resource content.",
    _text("Multiple content types test:"),
    _image(),
    _embedded("test://mixed-content-resource", json.dumps({"test": "data", "value": 123}), "application/json"),
)
_fixed(
    "test_error_handling",
    "Always fails with an error result.",
    _text("This tool intentionally returns an error for testing"),
    is_error=True,
)


@tool("test_tool_with_logging", "Sends three log messages while it runs.")
async def tool_with_logging(ctx: Ctx, args: dict[str, Any]) -> types.CallToolResult:
    for i, text in enumerate(("Tool execution started", "Tool processing data", "Tool execution completed")):
        if i:
            await anyio.sleep(0.05)
        await _log(ctx, "info", text)
    return _result(_text("Tool with logging executed successfully"))


async def _log(ctx: Ctx, level: types.LoggingLevel, text: str) -> None:
    """A log message on the request's stream, if the level is at or above the one asked for."""
    modern = ctx.protocol_version in MODERN_PROTOCOL_VERSIONS
    threshold = (ctx.meta or {}).get("io.modelcontextprotocol/logLevel") if modern else STATE.level
    if threshold in LEVELS and LEVELS.index(level) >= LEVELS.index(threshold):
        params = types.LoggingMessageNotificationParams(level=level, logger="conformance", data=text)
        await ctx.session.send_notification(types.LoggingMessageNotification(params=params), ctx.request_id)


@tool("test_tool_with_progress", "Reports progress 0, 50 and 100 of 100.")
async def tool_with_progress(ctx: Ctx, args: dict[str, Any]) -> types.CallToolResult:
    for progress in (0, 50, 100):
        if progress:
            await anyio.sleep(0.05)
        await ctx.session.report_progress(progress, total=100, message=f"{progress}%")
    return _result(_text("Tool with progress executed successfully"))


@tool("test_sampling", "Asks the client's model (sampling).", _strings("prompt"))
async def sampling(ctx: Ctx, args: dict[str, Any]) -> types.CallToolResult:
    message = types.SamplingMessage(role="user", content=_text(str(args.get("prompt", ""))))
    request = types.CreateMessageRequest(params=types.CreateMessageRequestParams(messages=[message], max_tokens=100))
    answer = await _ask(ctx, "sampling", request, types.CreateMessageResult)
    if isinstance(answer, types.CallToolResult):
        return answer
    content = answer.model_dump(by_alias=True, mode="json")["content"]
    first = content[0] if isinstance(content, list) and content else content
    return _result(_text(f"LLM response: {first.get('text', first) if isinstance(first, dict) else first}"))


@tool("test_elicitation", "Asks the person for a username and email (elicitation).", _strings("message"))
async def elicitation(ctx: Ctx, args: dict[str, Any]) -> types.CallToolResult:
    schema = {
        "type": "object",
        "properties": {
            "username": {"type": "string", "description": "User's response"},
            "email": {"type": "string", "description": "User's email address"},
        },
        "required": ["username", "email"],
    }
    return await _elicit(ctx, str(args.get("message", "")), schema, "User response")


@tool("test_elicitation_sep1034_defaults", "Elicitation with a default for every primitive type (SEP-1034).")
async def elicitation_defaults(ctx: Ctx, args: dict[str, Any]) -> types.CallToolResult:
    properties = {
        "name": {"type": "string", "default": "John Doe"},
        "age": {"type": "integer", "default": 30},
        "score": {"type": "number", "default": 95.5},
        "status": {"type": "string", "enum": ["active", "inactive", "pending"], "default": "active"},
        "verified": {"type": "boolean", "default": True},
    }
    schema = {"type": "object", "properties": properties}
    return await _elicit(ctx, "Please review and update the form fields with defaults", schema)


@tool("test_elicitation_sep1330_enums", "Elicitation with all five enum variants (SEP-1330).")
async def elicitation_enums(ctx: Ctx, args: dict[str, Any]) -> types.CallToolResult:
    def titled(prefix: str, *titles: str) -> list[dict[str, str]]:
        return [{"const": f"{prefix}{i}", "title": title} for i, title in enumerate(titles, 1)]

    options = ["option1", "option2", "option3"]
    properties = {
        "untitledSingle": {"type": "string", "enum": options},
        "titledSingle": {"type": "string", "oneOf": titled("value", "First Option", "Second Option", "Third Option")},
        "legacyEnum": {
            "type": "string",
            "enum": ["opt1", "opt2", "opt3"],
            "enumNames": ["Option One", "Option Two", "Option Three"],
        },
        "untitledMulti": {"type": "array", "items": {"type": "string", "enum": options}},
        "titledMulti": {
            "type": "array",
            "items": {"anyOf": titled("value", "First Choice", "Second Choice", "Third Choice")},
        },
    }
    schema = {"type": "object", "properties": properties}
    return await _elicit(ctx, "Please select options from the enum fields", schema)


async def _elicit(
    ctx: Ctx, message: str, schema: dict[str, Any], label: str = "Elicitation completed"
) -> types.CallToolResult:
    params = types.ElicitRequestFormParams(message=message, requested_schema=schema)
    answer = await _ask(ctx, "elicitation", types.ElicitRequest(params=params), types.ElicitResult)
    if isinstance(answer, types.CallToolResult):
        return answer
    return _result(_text(f"{label}: action={answer.action}, content={json.dumps(answer.content or {})}"))


async def _ask(ctx: Ctx, capability: str, request: Any, result_type: type[Any]) -> Any:
    """Send ``request`` to the client during the call; an error result if it cannot be asked."""
    if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
        return _result(_text("this tool needs a handshake-era (initialize) connection"), is_error=True)
    capabilities = ctx.session.client_capabilities
    if capabilities is None or getattr(capabilities, capability) is None:
        return _result(_text(f"the client does not support {capability}"), is_error=True)
    metadata = ServerMessageMetadata(related_request_id=ctx.request_id)
    return await ctx.session.send_request(request, result_type, metadata=metadata)


SCHEMA_2020_12 = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {"address": {"type": "object", "properties": {"street": {"type": "string"}, "city": {"type": "string"}}}},
    "properties": {"name": {"type": "string"}, "address": {"$ref": "#/$defs/address"}},
    "additionalProperties": False,
}


@tool("json_schema_2020_12_tool", "Tool with JSON Schema 2020-12 features", SCHEMA_2020_12)
async def json_schema_tool(ctx: Ctx, args: dict[str, Any]) -> types.CallToolResult:
    return _result(_text(f"received: {json.dumps(args)}"))


async def list_tools(ctx: Ctx, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
    return types.ListToolsResult(tools=[entry[0] for entry in TOOLS.values()])


async def call_tool(ctx: Ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
    if params.name not in TOOLS:
        raise MCPError(code=types.INVALID_PARAMS, message=f"unknown tool: {params.name}")
    return await TOOLS[params.name][1](ctx, params.arguments or {})


# ---------------------------------------------------------------------------------------------------
# Resources
# ---------------------------------------------------------------------------------------------------


def _resource(name: str, description: str, mime_type: str) -> types.Resource:
    return types.Resource(uri=f"test://{name}", name=name, description=description, mime_type=mime_type)


RESOURCES = [
    _resource("static-text", "A static text resource", "text/plain"),
    _resource("static-binary", "A static PNG image", "image/png"),
    _resource("watched-resource", "A resource to subscribe to", "text/plain"),
]
TEMPLATE_DATA = types.ResourceTemplate(
    uri_template="test://template/{id}/data",
    name="template-data",
    description="Data for an id",
    mime_type="application/json",
)


async def list_resources(ctx: Ctx, params: types.PaginatedRequestParams | None) -> types.ListResourcesResult:
    return types.ListResourcesResult(resources=RESOURCES)


async def list_resource_templates(
    ctx: Ctx, params: types.PaginatedRequestParams | None
) -> types.ListResourceTemplatesResult:
    return types.ListResourceTemplatesResult(resource_templates=[TEMPLATE_DATA])


async def read_resource(ctx: Ctx, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
    uri = params.uri
    contents: types.TextResourceContents | types.BlobResourceContents
    if uri == "test://static-text":
        text = "This is the content of the static text resource."
        contents = types.TextResourceContents(uri=uri, mime_type="text/plain", text=text)
    elif uri == "test://static-binary":
        contents = types.BlobResourceContents(uri=uri, mime_type="image/png", blob=PNG)
    elif uri == "test://watched-resource":
        contents = types.TextResourceContents(uri=uri, mime_type="text/plain", text="Watched resource content")
    elif match := TEMPLATE.match(uri):
        data = {"id": match["id"], "templateTest": True, "data": f"Data for ID: {match['id']}"}
        contents = types.TextResourceContents(uri=uri, mime_type="application/json", text=json.dumps(data))
    else:
        raise MCPError(code=types.INVALID_PARAMS, message=f"unknown resource: {uri}")
    return types.ReadResourceResult(contents=[contents])


async def subscribe(ctx: Ctx, params: types.SubscribeRequestParams) -> types.EmptyResult:
    STATE.subscribed.add(params.uri)
    return types.EmptyResult()


async def unsubscribe(ctx: Ctx, params: types.UnsubscribeRequestParams) -> types.EmptyResult:
    STATE.subscribed.discard(params.uri)
    return types.EmptyResult()


# ---------------------------------------------------------------------------------------------------
# Prompts, completion, logging
# ---------------------------------------------------------------------------------------------------


def _argument(name: str, description: str) -> types.PromptArgument:
    return types.PromptArgument(name=name, description=description, required=True)


PROMPTS = [
    types.Prompt(name="test_simple_prompt", description="A prompt without arguments"),
    types.Prompt(
        name="test_prompt_with_arguments",
        description="A prompt with two arguments",
        arguments=[_argument("arg1", "First test argument"), _argument("arg2", "Second test argument")],
    ),
    types.Prompt(
        name="test_prompt_with_embedded_resource",
        description="A prompt with an embedded resource",
        arguments=[_argument("resourceUri", "URI of the resource to embed")],
    ),
    types.Prompt(name="test_prompt_with_image", description="A prompt with an image"),
]


async def list_prompts(ctx: Ctx, params: types.PaginatedRequestParams | None) -> types.ListPromptsResult:
    return types.ListPromptsResult(prompts=PROMPTS)


async def get_prompt(ctx: Ctx, params: types.GetPromptRequestParams) -> types.GetPromptResult:
    args = params.arguments or {}
    match params.name:
        case "test_simple_prompt":
            contents: list[Any] = [_text("This is a simple prompt for testing.")]
        case "test_prompt_with_arguments":
            arg1, arg2 = args.get("arg1", ""), args.get("arg2", "")
            contents = [_text(f"Prompt with arguments: arg1='{arg1}', arg2='{arg2}'")]
        case "test_prompt_with_embedded_resource":
            embedded = _embedded(args.get("resourceUri", "test://example-resource"), "Embedded resource content.")
            contents = [embedded, _text("Please process the embedded resource above.")]
        case "test_prompt_with_image":
            contents = [_image(), _text("Please analyze the image above.")]
        case _:
            raise MCPError(code=types.INVALID_PARAMS, message=f"unknown prompt: {params.name}")
    messages = [types.PromptMessage(role="user", content=content) for content in contents]
    return types.GetPromptResult(description=params.name, messages=messages)


async def complete(ctx: Ctx, params: types.CompleteRequestParams) -> types.CompleteResult:
    """Values for prompt argument ``arg1`` and template variable ``id`` that start with what was typed."""
    typed = params.argument.value
    values = [v for v in COMPLETIONS.get(params.argument.name, ()) if v.startswith(typed)]
    return types.CompleteResult(completion=types.Completion(values=values, total=len(values), has_more=False))


async def set_level(ctx: Ctx, params: types.SetLevelRequestParams) -> types.EmptyResult:
    STATE.level = params.level
    return types.EmptyResult()


# ---------------------------------------------------------------------------------------------------
# Serving
# ---------------------------------------------------------------------------------------------------


def build_server() -> Server[Any]:
    """The server with every handler above."""
    server: Server[Any] = Server(
        "toolgate-conformance",
        version="1.0.0",
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_list_resource_templates=list_resource_templates,
        on_read_resource=read_resource,
        on_subscribe_resource=subscribe,
        on_unsubscribe_resource=unsubscribe,
        on_list_prompts=list_prompts,
        on_get_prompt=get_prompt,
        on_completion=complete,
    )
    server.add_request_handler("logging/setLevel", types.SetLevelRequestParams, set_level)
    return server


async def serve_stdio(server: Server[Any]) -> None:
    from mcp.server.stdio import stdio_server

    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


async def serve_http(server: Server[Any], port: int) -> None:
    import uvicorn

    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[f"{host}:*" for host in LOCAL_HOSTS],
        allowed_origins=[f"http://{host}:*" for host in LOCAL_HOSTS],
    )
    app = server.streamable_http_app(transport_security=security)
    # IPPROTO_TCP so asyncio sets TCP_NODELAY on accepted sockets (else ~40 ms delayed-ACK stalls).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sys.stdout.write(f"READY http://127.0.0.1:{sock.getsockname()[1]}/mcp\n")
    sys.stdout.flush()
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1)
    await uvicorn.Server(config).serve(sockets=[sock])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--http", action="store_true", help="serve Streamable HTTP on 127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="the HTTP port (default: a free one)")
    options = parser.parse_args()
    server = build_server()
    if options.http:
        anyio.run(serve_http, server, options.port)
    else:
        anyio.run(serve_stdio, server)


if __name__ == "__main__":
    main()

"""An MCP server with what the official conformance suite's server scenarios ask for, in both protocol eras.

    python tests/fakes/conformance_server.py [--http [--port N]]

Written with the SDK 2.x low-level ``Server``, which serves the handshake era (``initialize``) and
2026-07-28 (a ``_meta`` envelope on every request) on the same transport. Serves over stdio by
default. With ``--http`` it serves Streamable HTTP (stateful sessions for the handshake era, one
POST per request for 2026-07-28, SSE responses, resumable handshake-era streams (an in-memory event store:
priming events, ``retry:``, ``Last-Event-ID``), path ``/mcp``) on 127.0.0.1 on ``--port`` (default: a
free port), prints ``READY <url>`` as its first stdout line, and accepts only localhost ``Host`` and
``Origin`` headers (DNS rebinding protection).

Tools: test_simple_text, test_image_content, test_audio_content, test_embedded_resource,
test_multiple_content_types, test_tool_with_logging (3 info messages, 50 ms apart), test_error_handling
(an ``isError`` result), test_tool_with_progress (0, 50, 100 of 100), test_reconnection (closes the
call's SSE stream mid-call, SEP-1699), test_sampling(prompt),
test_elicitation(message), test_elicitation_sep1034_defaults, test_elicitation_sep1330_enums,
json_schema_2020_12_tool, test_header_param(region) (an ``x-mcp-header`` parameter, SEP-2243), and
the 2026-07-28 probes: the ``test_input_required_result_*`` tools (SEP-2322), test_missing_capability
(needs sampling), test_streaming_elicitation, test_logging_tool, test_trigger_tool_change and
test_trigger_prompt_change (add or remove test_dynamic_tool / test_dynamic_prompt and announce it).
Resources: test://static-text, test://static-binary, test://watched-resource, and the template
test://template/{id}/data. Prompts: test_simple_prompt, test_prompt_with_arguments(arg1, arg2),
test_prompt_with_embedded_resource(resourceUri), test_prompt_with_image, and
test_input_required_result_prompt (asks for a context first). Also completion/complete (prompt
argument ``arg1``, template variable ``id``), logging/setLevel (one level for the process),
resources/subscribe and unsubscribe, ping, and 2026 ``subscriptions/listen``.

Every tool or prompt that asks the client something (sampling, elicitation, roots) asks the way the
connection's era allows: a server-to-client request during the call in the handshake era, an
``InputRequiredResult`` answered by the client's retry in 2026-07-28, with the question keys and
``requestState`` values the scenarios name; the SDK's ``RequestStateBoundary`` seals every
``requestState`` and refuses a tampered one. A client that did not declare the capability a question
needs gets error -32021 with ``data.requiredCapabilities``; an unknown tool, prompt or resource gets
-32602 (with ``data.uri`` for a resource). Scenario texts: ``conformance list --server`` and the
suite's source (``src/scenarios/server``).
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import socket
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import mcp_types as types
from mcp.server import ServerRequestContext
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.server.request_state import RequestStateBoundary, RequestStateSecurity
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler, PromptsListChanged, ToolsListChanged
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError
from mcp.shared.message import ServerMessageMetadata
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

try:  # run as a script, its folder is on sys.path; imported, it is a package module
    from event_store import MemoryEventStore  # type: ignore[import-not-found]
except ModuleNotFoundError:
    from tests.fakes.event_store import MemoryEventStore

Ctx = ServerRequestContext[Any]
ToolOutcome = types.CallToolResult | types.InputRequiredResult
ToolFn = Callable[[Ctx, types.CallToolRequestParams], Awaitable[ToolOutcome]]
Answers = dict[str, Any]

# A 1x1 red PNG and a 1 ms silent 8 kHz mono WAV.
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"
WAV = "UklGRiwAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQgAAACAgICAgICAgA=="
LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")
LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]")
# How soon a client whose stream test_reconnection closed comes back (the SSE `retry:` field).
RETRY_INTERVAL_MS = 500
TEMPLATE = re.compile(r"^test://template/(?P<id>[^/]+)/data$")
COMPLETIONS = {"arg1": ("paris", "park", "party", "test", "testing"), "id": ("1", "2", "3", "123")}
NO_ARGS: dict[str, Any] = {"type": "object", "properties": {}}
# Handshake-era clients are told the tool and prompt lists can change (the SDK's HTTP transport would
# otherwise offer them the default, no list changes); 2026 clients learn it from subscriptions/listen.
LIST_CHANGES = NotificationOptions(tools_changed=True, prompts_changed=True)


@dataclass
class State:
    """What the server remembers between requests (one of each per process, not per session)."""

    level: str = "info"
    subscribed: set[str] = field(default_factory=set)
    dynamic_tool: bool = False
    dynamic_prompt: bool = False
    bus: InMemorySubscriptionBus = field(default_factory=InMemorySubscriptionBus)


STATE = State()

TOOLS: dict[str, tuple[types.Tool, ToolFn]] = {}


def tool(name: str, description: str, schema: dict[str, Any] | None = None) -> Callable[[ToolFn], ToolFn]:
    """Register a tool handler ``async (ctx, params) -> CallToolResult | InputRequiredResult`` under ``name``."""

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

    async def answer(ctx: Ctx, params: types.CallToolRequestParams) -> ToolOutcome:
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
async def tool_with_logging(ctx: Ctx, params: types.CallToolRequestParams) -> ToolOutcome:
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


@tool("test_reconnection", "Closes the call's SSE stream mid-call (SEP-1699), then answers.")
async def reconnection(ctx: Ctx, params: types.CallToolRequestParams) -> ToolOutcome:
    # Over HTTP the client sees its stream end and comes back with Last-Event-ID for the answer; over
    # stdio (or before 2025-11-25) there is no stream to close and the answer simply follows.
    if ctx.close_sse_stream is not None:
        await ctx.close_sse_stream()
    return _result(_text("Reconnection test completed successfully"))


@tool("test_tool_with_progress", "Reports progress 0, 50 and 100 of 100.")
async def tool_with_progress(ctx: Ctx, params: types.CallToolRequestParams) -> ToolOutcome:
    for progress in (0, 50, 100):
        if progress:
            await anyio.sleep(0.05)
        await ctx.session.report_progress(progress, total=100, message=f"{progress}%")
    return _result(_text("Tool with progress executed successfully"))


# ---------------------------------------------------------------------------------------------------
# Questions to the client (sampling, elicitation, roots), in both eras
# ---------------------------------------------------------------------------------------------------

# What each kind of question needs the client to have declared, and the answer it gets.
CAPABILITY = {"sampling/createMessage": "sampling", "elicitation/create": "elicitation", "roots/list": "roots"}
ANSWER_TYPES: dict[str, tuple[type[Any], ...]] = {
    "sampling/createMessage": (types.CreateMessageResult, types.CreateMessageResultWithTools),
    "elicitation/create": (types.ElicitResult,),
    "roots/list": (types.ListRootsResult,),
}


@dataclass(frozen=True)
class Question:
    """A question for the client; ``key`` names it in a 2026 ``InputRequiredResult``."""

    key: str
    request: types.ElicitRequest | types.CreateMessageRequest | types.ListRootsRequest


def elicit(key: str, message: str, schema: dict[str, Any]) -> Question:
    """A form elicitation."""
    params = types.ElicitRequestFormParams(message=message, requested_schema=schema)
    return Question(key, types.ElicitRequest(params=params))


def sample(key: str, prompt: str, max_tokens: int = 100) -> Question:
    """A sampling request with one user message."""
    message = types.SamplingMessage(role="user", content=_text(prompt))
    params = types.CreateMessageRequestParams(messages=[message], max_tokens=max_tokens)
    return Question(key, types.CreateMessageRequest(params=params))


def roots(key: str) -> Question:
    """A roots/list request."""
    return Question(key, types.ListRootsRequest())


def _modern(ctx: Ctx) -> bool:
    return ctx.protocol_version in MODERN_PROTOCOL_VERSIONS


async def ask(
    ctx: Ctx, params: types.InputResponseRequestParams, questions: Sequence[Question], state: str | None = None
) -> Answers | types.InputRequiredResult:
    """The client's answers to ``questions`` by key, or the ``InputRequiredResult`` that asks them.

    Handshake era: each question is a server-to-client request during the call, in turn. 2026-07-28:
    the answers are the retry's ``inputResponses`` when every question has one of the right kind and
    the retry echoed ``state`` (which the ``RequestStateBoundary`` has checked is one this server
    sealed for this very request); otherwise every question is asked again, with ``state``. Keys
    nobody asked are ignored.

    Raises:
        MCPError: -32021 (missing required client capability) when the client did not declare
            what a question needs.
    """
    declared = ctx.session.client_capabilities
    needed = {CAPABILITY[q.request.method] for q in questions}
    missing = sorted(name for name in needed if getattr(declared, name, None) is None)
    if missing:
        required = types.ClientCapabilities.model_validate({name: {} for name in missing})
        data = types.MissingRequiredClientCapabilityErrorData(required_capabilities=required)
        raise MCPError(
            code=types.MISSING_REQUIRED_CLIENT_CAPABILITY,
            message=f"the client did not declare the capability this needs: {', '.join(missing)}",
            data=data.model_dump(by_alias=True, mode="json", exclude_none=True),
        )
    if not _modern(ctx):
        metadata = ServerMessageMetadata(related_request_id=ctx.request_id)
        return {
            q.key: await ctx.session.send_request(q.request, ANSWER_TYPES[q.request.method][0], metadata=metadata)
            for q in questions
        }
    given = params.input_responses or {}
    answers = {q.key: given[q.key] for q in questions if isinstance(given.get(q.key), ANSWER_TYPES[q.request.method])}
    if len(answers) == len(questions) and params.request_state == state:
        return answers
    return types.InputRequiredResult(input_requests={q.key: q.request for q in questions}, request_state=state)


def said(answer: types.ElicitResult, field_name: str) -> str:
    """What the person entered in a field of an accepted form, else what they did instead."""
    if answer.action == "accept" and answer.content is not None:
        return str(answer.content.get(field_name))
    return answer.action


def sampled(answer: types.CreateMessageResult | types.CreateMessageResultWithTools) -> str:
    """The text of the model's answer."""
    content = answer.content[0] if isinstance(answer.content, list) else answer.content
    return content.text if isinstance(content, types.TextContent) else content.type


def asking(
    name: str,
    description: str,
    questions: Sequence[Question],
    reply: Callable[[Answers], str],
    *,
    state: str | None = None,
) -> None:
    """Register a tool that asks ``questions`` (with ``state`` in 2026) and returns ``reply(answers)`` as text."""

    async def answer(ctx: Ctx, params: types.CallToolRequestParams) -> ToolOutcome:
        answers = await ask(ctx, params, questions, state)
        return answers if isinstance(answers, types.InputRequiredResult) else _result(_text(reply(answers)))

    tool(name, description)(answer)


@tool("test_sampling", "Asks the client's model (sampling).", _strings("prompt"))
async def sampling(ctx: Ctx, params: types.CallToolRequestParams) -> ToolOutcome:
    answers = await ask(ctx, params, [sample("answer", str((params.arguments or {}).get("prompt", "")))])
    if isinstance(answers, types.InputRequiredResult):
        return answers
    return _result(_text(f"LLM response: {sampled(answers['answer'])}"))


@tool("test_elicitation", "Asks the person for a username and email (elicitation).", _strings("message"))
async def elicitation(ctx: Ctx, params: types.CallToolRequestParams) -> ToolOutcome:
    schema = {
        "type": "object",
        "properties": {
            "username": {"type": "string", "description": "User's response"},
            "email": {"type": "string", "description": "User's email address"},
        },
        "required": ["username", "email"],
    }
    return await _elicit(ctx, params, str((params.arguments or {}).get("message", "")), schema, "User response")


@tool("test_elicitation_sep1034_defaults", "Elicitation with a default for every primitive type (SEP-1034).")
async def elicitation_defaults(ctx: Ctx, params: types.CallToolRequestParams) -> ToolOutcome:
    properties = {
        "name": {"type": "string", "default": "John Doe"},
        "age": {"type": "integer", "default": 30},
        "score": {"type": "number", "default": 95.5},
        "status": {"type": "string", "enum": ["active", "inactive", "pending"], "default": "active"},
        "verified": {"type": "boolean", "default": True},
    }
    schema = {"type": "object", "properties": properties}
    return await _elicit(ctx, params, "Please review and update the form fields with defaults", schema)


@tool("test_elicitation_sep1330_enums", "Elicitation with all five enum variants (SEP-1330).")
async def elicitation_enums(ctx: Ctx, params: types.CallToolRequestParams) -> ToolOutcome:
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
    return await _elicit(ctx, params, "Please select options from the enum fields", schema)


async def _elicit(
    ctx: Ctx,
    params: types.CallToolRequestParams,
    message: str,
    schema: dict[str, Any],
    label: str = "Elicitation completed",
) -> ToolOutcome:
    answers = await ask(ctx, params, [elicit("answer", message, schema)])
    if isinstance(answers, types.InputRequiredResult):
        return answers
    answer = answers["answer"]
    return _result(_text(f"{label}: action={answer.action}, content={json.dumps(answer.content or {})}"))


SCHEMA_2020_12 = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {
        "address": {
            "$anchor": "addressDef",
            "type": "object",
            "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
        }
    },
    "properties": {
        "name": {"type": "string"},
        "address": {"$ref": "#/$defs/address"},
        "contactMethod": {"type": "string", "enum": ["phone", "email"]},
        "phone": {"type": "string"},
        "email": {"type": "string"},
    },
    "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
    "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
    "then": {"required": ["phone"]},
    "else": {"required": ["email"]},
    "additionalProperties": False,
}


@tool("json_schema_2020_12_tool", "Tool with JSON Schema 2020-12 features", SCHEMA_2020_12)
async def json_schema_tool(ctx: Ctx, params: types.CallToolRequestParams) -> ToolOutcome:
    return _result(_text(f"received: {json.dumps(params.arguments or {})}"))


HEADER_SCHEMA = {
    "type": "object",
    "properties": {"region": {"type": "string", "x-mcp-header": "Region"}},
    "required": ["region"],
}


@tool("test_header_param", "Echoes region, which 2026 clients also send as header Mcp-Param-Region.", HEADER_SCHEMA)
async def header_param(ctx: Ctx, params: types.CallToolRequestParams) -> ToolOutcome:
    return _result(_text(f"region: {(params.arguments or {}).get('region')}"))


# ---------------------------------------------------------------------------------------------------
# 2026-07-28 probes: input rounds (SEP-2322), stateless requests and subscriptions (SEP-2575)
# ---------------------------------------------------------------------------------------------------

USER_NAME = elicit("user_name", "What is your name?", _strings("name"))
CONFIRM = elicit(
    "confirm", "Please confirm", {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
)
asking(
    "test_input_required_result_elicitation",
    "Asks the person's name (user_name), then greets them.",
    [USER_NAME],
    lambda answers: f"Hello, {said(answers['user_name'], 'name')}!",
)
asking(
    "test_input_required_result_sampling",
    "Asks the client's model a question (capital_question).",
    [sample("capital_question", "What is the capital of France?")],
    lambda answers: f"Sampling result: {sampled(answers['capital_question'])}",
)
asking(
    "test_input_required_result_list_roots",
    "Asks the client's roots (client_roots).",
    [roots("client_roots")],
    lambda answers: f"Found {len(answers['client_roots'].roots)} root(s)",
)
asking(
    "test_input_required_result_request_state",
    "Asks for a confirmation, with a requestState it checks on the retry.",
    [CONFIRM],
    lambda answers: "state-ok: requestState validated",
    state="request-state",
)
asking(
    "test_input_required_result_multiple_inputs",
    "Asks a name, a model's greeting and the roots in one round.",
    [USER_NAME, sample("greeting", "Generate a greeting", 50), roots("client_roots")],
    lambda answers: (
        f"Name: {said(answers['user_name'], 'name')}; Greeting: {sampled(answers['greeting'])}; "
        f"Roots: {len(answers['client_roots'].roots)}"
    ),
    state="multiple-inputs",
)
asking(
    "test_input_required_result_tampered_state",
    "Asks for a confirmation; a tampered requestState is refused.",
    [CONFIRM],
    lambda answers: "integrity-ok: state verified",
    state="tamper-test",
)
asking(
    "test_streaming_elicitation",
    "Asks for a confirmation while the call runs.",
    [CONFIRM],
    lambda answers: f"Streaming complete: {said(answers['confirm'], 'ok')}",
)
asking(
    "test_missing_capability",
    "Asks the client's model something, so it needs the sampling capability.",
    [sample("probe", "Say hello")],
    lambda answers: "Success",
)


@tool("test_input_required_result_multi_round", "Asks a name (step1), then a favourite colour (step2).")
async def multi_round(ctx: Ctx, params: types.CallToolRequestParams) -> ToolOutcome:
    step1 = elicit("step1", "Step 1: What is your name?", _strings("name"))
    if _modern(ctx) and (params.request_state or "").startswith("step2:"):
        name = (params.request_state or "").removeprefix("step2:")
    else:
        first = await ask(ctx, params, [step1], "step1")
        if isinstance(first, types.InputRequiredResult):
            return first
        name = said(first["step1"], "name")
    step2 = elicit("step2", "Step 2: What is your favorite color?", _strings("color"))
    second = await ask(ctx, params, [step2], f"step2:{name}")
    if isinstance(second, types.InputRequiredResult):
        return second
    return _result(_text(f"Multi-round complete for {name} who likes {said(second['step2'], 'color')}"))


@tool("test_input_required_result_capabilities", "Asks only what the client declared it can answer.")
async def respect_capabilities(ctx: Ctx, params: types.CallToolRequestParams) -> ToolOutcome:
    declared = ctx.session.client_capabilities or types.ClientCapabilities()
    questions = [elicit("elicit_input", "Elicitation input", _strings("value"))] if declared.elicitation else []
    questions += [sample("sample_input", "Sample request", 50)] if declared.sampling else []
    if not questions:
        return _result(_text("No supported capabilities declared"))
    answers = await ask(ctx, params, questions, "capabilities-test")
    if isinstance(answers, types.InputRequiredResult):
        return answers
    return _result(_text(f"capabilities-ok: received {','.join(answers)}"))


@tool("test_logging_tool", "Sends one info log message, if the client asked for log messages.")
async def logging_tool(ctx: Ctx, params: types.CallToolRequestParams) -> ToolOutcome:
    await _log(ctx, "info", "Diagnostic trace logging activated")
    return _result(_text("Logging evaluated"))


DYNAMIC_TOOL = types.Tool(
    name="test_dynamic_tool", description="Listed after test_trigger_tool_change.", input_schema=NO_ARGS
)
DYNAMIC_PROMPT = types.Prompt(name="test_dynamic_prompt", description="Listed after test_trigger_prompt_change.")


@tool("test_trigger_tool_change", "Adds test_dynamic_tool, or removes it, and announces the change.")
async def trigger_tool_change(ctx: Ctx, params: types.CallToolRequestParams) -> ToolOutcome:
    STATE.dynamic_tool = not STATE.dynamic_tool
    await STATE.bus.publish(ToolsListChanged())
    if not _modern(ctx):
        await ctx.session.send_tool_list_changed()
    return _result(_text(f"test_dynamic_tool {'added' if STATE.dynamic_tool else 'removed'}"))


@tool("test_trigger_prompt_change", "Adds test_dynamic_prompt, or removes it, and announces the change.")
async def trigger_prompt_change(ctx: Ctx, params: types.CallToolRequestParams) -> ToolOutcome:
    STATE.dynamic_prompt = not STATE.dynamic_prompt
    await STATE.bus.publish(PromptsListChanged())
    if not _modern(ctx):
        await ctx.session.send_prompt_list_changed()
    return _result(_text(f"test_dynamic_prompt {'added' if STATE.dynamic_prompt else 'removed'}"))


async def list_tools(ctx: Ctx, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
    dynamic = [DYNAMIC_TOOL] if STATE.dynamic_tool else []
    return types.ListToolsResult(tools=[entry[0] for entry in TOOLS.values()] + dynamic)


async def call_tool(ctx: Ctx, params: types.CallToolRequestParams) -> ToolOutcome:
    if params.name == DYNAMIC_TOOL.name and STATE.dynamic_tool:
        return _result(_text("dynamic tool called"))
    if params.name not in TOOLS:
        raise MCPError(code=types.INVALID_PARAMS, message=f"unknown tool: {params.name}")
    return await TOOLS[params.name][1](ctx, params)


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
        raise MCPError(code=types.INVALID_PARAMS, message=f"unknown resource: {uri}", data={"uri": uri})
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
    types.Prompt(name="test_input_required_result_prompt", description="A prompt that asks for a context first"),
]
USER_CONTEXT = elicit("user_context", "What context should the prompt use?", _strings("context"))


async def list_prompts(ctx: Ctx, params: types.PaginatedRequestParams | None) -> types.ListPromptsResult:
    return types.ListPromptsResult(prompts=PROMPTS + ([DYNAMIC_PROMPT] if STATE.dynamic_prompt else []))


async def get_prompt(
    ctx: Ctx, params: types.GetPromptRequestParams
) -> types.GetPromptResult | types.InputRequiredResult:
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
        case "test_input_required_result_prompt":
            answers = await ask(ctx, params, [USER_CONTEXT])
            if isinstance(answers, types.InputRequiredResult):
                return answers
            contents = [_text(f"Prompt with context: {said(answers['user_context'], 'context')}")]
        case DYNAMIC_PROMPT.name if STATE.dynamic_prompt:
            contents = [_text("This prompt was added by test_trigger_prompt_change.")]
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
        on_subscriptions_listen=ListenHandler(STATE.bus),
    )
    server.add_request_handler("logging/setLevel", types.SetLevelRequestParams, set_level)
    server.middleware.append(RequestStateBoundary(RequestStateSecurity.ephemeral(), default_audience=server.name))
    server.create_initialization_options = functools.partial(  # type: ignore[method-assign]
        server.create_initialization_options, LIST_CHANGES
    )
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
    app = server.streamable_http_app(
        transport_security=security, event_store=MemoryEventStore(), retry_interval=RETRY_INTERVAL_MS
    )
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

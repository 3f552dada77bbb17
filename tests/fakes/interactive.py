"""The fake server's tools that ask its client things, log, and announce resource updates, in both eras.

Tools (added to ``fake_server.py``):
    ask(who)              form elicitation "Question for <who>: your name?"; returns "<who> got: <answer>"
                          or "<who> got: <action>" when declined or cancelled.
    ask_two(who)          two form elicitations at once, keyed "user_name" and "favourite_colour" (a 2026
                          client gets both in one round; a handshake-era one two requests); returns
                          "<who>: <name>, <colour>".
    ask_url(who)          URL elicitation of https://example.invalid/<who>; returns "<who> url: <action>".
    sample(prompt)        sampling/createMessage with the prompt; returns "sampled: <text of the answer>".
    roots()               roots/list; returns the root URIs, one per line (or "no roots").
    roots_amid_progress(gate)  as roots(), with progress 1 of 3 before the question, 2 once a line
                          can be read from the named pipe ``gate`` while the answer is awaited, and
                          3 after the answer (handshake era; a 2026 client is only asked).
    known_roots(answers)  the roots the server asked for by itself (after initialized and on
                          roots/list_changed), one per line, once ``answers`` answers came (default
                          1; waits up to 10 s, then says "not asked").
    pid()                 the server process's id.
    log(level, text)      a log message at ``level`` with logger "fake-logger"; returns "logged".
    touch(uri)            notifications/resources/updated for ``uri`` to subscribers; returns "touched".

A handshake-era client is asked with a real server-to-client request during the call. A 2026-07-28
client gets an ``InputRequiredResult`` and the answer comes back in its retry, as the SDK's own
servers do. The server also serves resources/subscribe and unsubscribe, logging/setLevel (messages
below the level are not sent), completion/complete (prompt ``greet`` argument ``name``, and template
``fake://items/{id}`` variable ``id``), and 2026 ``subscriptions/listen``.
"""

from __future__ import annotations

import os
from typing import Any

import anyio
import anyio.to_thread
import mcp_types as types
from mcp.server import ServerRequestContext
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler, ResourceUpdated
from mcp.shared.message import ServerMessageMetadata
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

Ctx = ServerRequestContext[Any]
LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")
NAMES = ("Alice", "Alan", "Bob")
ITEM_IDS = ("1", "2", "12", "3")


def _schema(**props: str) -> dict[str, Any]:
    return {"type": "object", "properties": {k: {"type": v} for k, v in props.items()}, "required": list(props)}


TOOLS = [
    types.Tool(name="ask", description="Ask the person a question (elicitation).", input_schema=_schema(who="string")),
    types.Tool(name="ask_two", description="Ask two questions at once.", input_schema=_schema(who="string")),
    types.Tool(
        name="ask_url", description="Send the person to a URL (URL elicitation).", input_schema=_schema(who="string")
    ),
    types.Tool(name="sample", description="Ask the client's model (sampling).", input_schema=_schema(prompt="string")),
    types.Tool(name="roots", description="List the client's roots.", input_schema={"type": "object"}),
    types.Tool(
        name="roots_amid_progress",
        description="List the roots, reporting progress.",
        input_schema=_schema(gate="string"),
    ),
    types.Tool(name="log", description="Send a log message.", input_schema=_schema(level="string", text="string")),
    types.Tool(name="touch", description="Announce that a resource changed.", input_schema=_schema(uri="string")),
    types.Tool(
        name="known_roots", description="The roots asked at start and on change.", input_schema={"type": "object"}
    ),
    types.Tool(name="pid", description="This process's id.", input_schema={"type": "object"}),
]


def _text(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)])


def _question(name: str, args: dict[str, Any]) -> types.InputRequest:
    match name:
        case "ask":
            schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
            params: Any = types.ElicitRequestFormParams(
                message=f"Question for {args['who']}: your name?", requested_schema=schema
            )
            return types.ElicitRequest(params=params)
        case "ask_url":
            params = types.ElicitRequestURLParams(
                message=f"Sign in for {args['who']}",
                url=f"https://example.invalid/{args['who']}",
                elicitation_id=f"id-{args['who']}",
            )
            return types.ElicitRequest(params=params)
        case "sample":
            message = types.SamplingMessage(role="user", content=types.TextContent(type="text", text=args["prompt"]))
            return types.CreateMessageRequest(
                params=types.CreateMessageRequestParams(messages=[message], max_tokens=50)
            )
        case _:
            return types.ListRootsRequest()


TWO_KEYS = ("user_name", "favourite_colour")


def _elicit_text(message: str, field: str) -> types.ElicitRequest:
    schema = {"type": "object", "properties": {field: {"type": "string"}}, "required": [field]}
    return types.ElicitRequest(params=types.ElicitRequestFormParams(message=message, requested_schema=schema))


def _reply(name: str, args: dict[str, Any], answer: dict[str, Any]) -> types.CallToolResult:
    match name:
        case "ask":
            got = (
                (answer.get("content") or {}).get("name") if answer.get("action") == "accept" else answer.get("action")
            )
            return _text(f"{args['who']} got: {got}")
        case "ask_url":
            return _text(f"{args['who']} url: {answer.get('action')}")
        case "sample":
            content = answer.get("content") or {}
            return _text(f"sampled: {content.get('text') if isinstance(content, dict) else content}")
        case _:
            uris = [root["uri"] for root in answer.get("roots", [])]
            return _text("\n".join(uris) if uris else "no roots")


def _read_line(path: str) -> str:
    with open(path) as pipe:
        return pipe.readline()


_RESULT_TYPES: dict[str, type[Any]] = {
    "elicitation/create": types.ElicitResult,
    "sampling/createMessage": types.CreateMessageResult,
    "roots/list": types.ListRootsResult,
}


class Interactive:
    """The state behind the interactive tools: subscriptions, the log level, the 2026 listen bus."""

    def __init__(self) -> None:
        self.level = "debug"
        self.subscribers: dict[str, list[Any]] = {}
        self.bus = InMemorySubscriptionBus()
        self.listen = ListenHandler(self.bus)
        self.known_roots: list[str] | None = None
        self.roots_answers = 0
        self.roots_answered = anyio.Event()

    async def ask_roots(self, ctx: Any, params: Any) -> None:
        """After initialized and on roots/list_changed (handshake era): ask the client for its roots."""
        capabilities = ctx.session.client_capabilities
        if capabilities is None or capabilities.roots is None:
            return
        result = await ctx.session.send_request(types.ListRootsRequest(), types.ListRootsResult)
        self.known_roots = [str(root.uri) for root in result.roots]
        self.roots_answers += 1
        self.roots_answered.set()
        self.roots_answered = anyio.Event()

    async def call(self, ctx: Ctx, params: types.CallToolRequestParams) -> Any:
        """Serve one of ``TOOLS``."""
        name, args = params.name, params.arguments or {}
        if name == "log":
            return await self._log(ctx, args)
        if name == "pid":
            return _text(str(os.getpid()))
        if name == "known_roots":
            with anyio.move_on_after(10):
                while self.roots_answers < int(args.get("answers", 1)):
                    await self.roots_answered.wait()
            known = self.known_roots
            return _text("not asked" if known is None else "\n".join(known) if known else "no roots")
        if name == "ask_two":
            return await self._ask_two(ctx, params, args["who"])
        if name == "touch":
            for session in self.subscribers.get(args["uri"], []):
                await session.send_resource_updated(args["uri"])
            await self.bus.publish(ResourceUpdated(uri=args["uri"]))
            return _text("touched")
        question = _question(name, args)
        if name == "roots_amid_progress" and ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS:
            return await self._roots_amid_progress(ctx, args["gate"])
        if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
            if not params.input_responses:
                return types.InputRequiredResult(input_requests={"q": question})
            answer = params.input_responses["q"].model_dump(by_alias=True, mode="json", exclude_none=True)
            return _reply(name, args, answer)
        result = await ctx.session.send_request(
            question,
            _RESULT_TYPES[question.method],
            metadata=ServerMessageMetadata(related_request_id=ctx.request_id),
        )
        return _reply(name, args, result.model_dump(by_alias=True, mode="json", exclude_none=True))

    async def _ask_two(self, ctx: Ctx, params: types.CallToolRequestParams, who: str) -> types.CallToolResult:
        questions = {key: _elicit_text(f"{who}, your {key.replace('_', ' ')}?", key) for key in TWO_KEYS}
        if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
            if not params.input_responses:
                return types.InputRequiredResult(input_requests=dict(questions))
            answers = {key: params.input_responses[key].model_dump(by_alias=True) for key in TWO_KEYS}
        else:
            metadata = ServerMessageMetadata(related_request_id=ctx.request_id)
            answers = {}
            for key, question in questions.items():
                answer = await ctx.session.send_request(question, types.ElicitResult, metadata=metadata)
                answers[key] = answer.model_dump(by_alias=True)
        values = [(answers[key].get("content") or {}).get(key) for key in TWO_KEYS]
        return _text(f"{who}: {values[0]}, {values[1]}")

    async def _roots_amid_progress(self, ctx: Ctx, gate: str) -> types.CallToolResult:
        answers: list[types.ListRootsResult] = []

        async def ask() -> None:
            metadata = ServerMessageMetadata(related_request_id=ctx.request_id)
            answers.append(
                await ctx.session.send_request(types.ListRootsRequest(), types.ListRootsResult, metadata=metadata)
            )

        await ctx.session.report_progress(1, total=3)
        async with anyio.create_task_group() as tg:
            tg.start_soon(ask)
            await anyio.to_thread.run_sync(_read_line, gate)
            await ctx.session.report_progress(2, total=3)
        await ctx.session.report_progress(3, total=3)
        return _reply("roots", {}, answers[0].model_dump(by_alias=True, mode="json", exclude_none=True))

    async def _log(self, ctx: Ctx, args: dict[str, Any]) -> types.CallToolResult:
        level = args["level"]
        modern = ctx.protocol_version in MODERN_PROTOCOL_VERSIONS
        threshold = (ctx.meta or {}).get("io.modelcontextprotocol/logLevel") if modern else self.level
        if threshold in LEVELS and LEVELS.index(level) >= LEVELS.index(threshold):
            params = types.LoggingMessageNotificationParams(level=level, logger="fake-logger", data=args["text"])
            # On the call's own stream, as the SDK's MCPServer sends a tool's log messages.
            await ctx.session.send_notification(
                types.LoggingMessageNotification(params=params), related_request_id=ctx.request_id
            )
        return _text("logged")

    async def subscribe(self, ctx: Ctx, params: types.SubscribeRequestParams) -> types.EmptyResult:
        """Remember the session for ``touch``."""
        self.subscribers.setdefault(params.uri, []).append(ctx.session)
        return types.EmptyResult()

    async def unsubscribe(self, ctx: Ctx, params: types.UnsubscribeRequestParams) -> types.EmptyResult:
        """Forget every subscription to the URI (the fake has one client at a time)."""
        self.subscribers.pop(params.uri, None)
        return types.EmptyResult()

    async def set_level(self, ctx: Ctx, params: types.SetLevelRequestParams) -> types.EmptyResult:
        """Send log messages at this level and above."""
        self.level = params.level
        return types.EmptyResult()

    async def complete(self, ctx: Ctx, params: types.CompleteRequestParams) -> types.CompleteResult:
        """Complete prompt greet's ``name`` and template fake://items/{id}'s ``id`` by prefix."""
        typed = params.argument.value
        if isinstance(params.ref, types.PromptReference) and params.argument.name == "name":
            values = [name for name in NAMES if name.startswith(typed)]
        elif isinstance(params.ref, types.ResourceTemplateReference) and params.argument.name == "id":
            values = [item for item in ITEM_IDS if item.startswith(typed)]
        else:
            values = []
        return types.CompleteResult(completion=types.Completion(values=values, total=len(values), has_more=False))

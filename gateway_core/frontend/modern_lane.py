"""The hot lane for 2026-07-28 agents: a plain call, read or prompt served without the SDK's 2026-07-28 entry.

A 2026-07-28 request carries its envelope (protocol version, client info and capabilities) in its
``_meta`` and has no session. The SDK's entry for it (``handle_modern_request``) checks the request
against the envelope and the routing headers, builds a connection for it, and serves it through the
SDK's server in a task group of its own, with a memory stream for the notifications it may stream and a
task watching for the agent going away. For a plain ``tools/call``, ``resources/read`` or ``prompts/get``
(no progress token, no log level, no task, no answers, from an agent that can be asked nothing: nothing
can be streamed) ``ModernLane`` makes the same checks with the SDK's own functions, runs the request with
the same code as the long way (``RequestForwarder``'s handler for it: routing, limits, the guard,
approvals, the audit records, metrics; a tool's result passed through where the long way would pass it
unchanged) and shapes and writes the answer with the SDK's own functions, in the request's own task. A
request still running after ``JSON_WINDOW_S`` is watched for its agent going away, which ends it as on
the long way; one still running when the SDK's entry would switch to SSE (``SSE_AFTER_S``) is answered
as there: an SSE stream kept alive by pings, its result the last event. Anything else, and anything in
doubt, goes the long way.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import anyio
import mcp_types as types
import pydantic_core
from mcp.server import ServerRequestContext
from mcp.server._streamable_http_modern import (  # the SDK's own steps, so both ways answer alike
    _SSE_HEADERS,
    _SSE_PING_INTERVAL,
    _mcp_param_rejection,
    _SingleExchangeDispatchContext,
    _sse_event,
    _to_jsonrpc_response,
    _write,
)
from mcp.server.connection import Connection
from mcp.server.lowlevel.server import Server
from mcp.server.runner import ServerRunner
from mcp.server.session import ServerSession
from mcp.server.streamable_http import MCP_SESSION_ID_HEADER, check_accept_headers
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from mcp.shared.exceptions import MCPError
from mcp.shared.inbound import (
    MCP_PROTOCOL_VERSION_HEADER,
    X_MCP_HEADER_KEY,
    InboundModernRoute,
    _walk_schema_positions,  # where the SDK looks for a tool's header declarations
    classify_inbound_request,
    find_duplicated_routing_header,
)
from mcp.shared.message import ServerMessageMetadata
from mcp.shared.transport_context import TransportContext
from mcp_types import JSONRPCError, JSONRPCRequest, JSONRPCResponse, methods
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import ValidationError
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from gateway_core.frontend.callers import interactive
from gateway_core.frontend.hot_path import PARAMS, Forward
from gateway_core.frontend.json_answers import JSON_WINDOW_S, Windows, cancel_call
from gateway_core.frontend.metrics import Metrics

logger = logging.getLogger(__name__)

# When the SDK's entry answers a request still running with an SSE stream instead of JSON, and how often
# it pings the stream then (the same interval there).
SSE_AFTER_S = _SSE_PING_INTERVAL
PING_INTERVAL_S = _SSE_PING_INTERVAL
# What in a 2026-07-28 request's ``_meta`` can make its answer stream, or asks more than a plain answer.
_STREAMING_META = ("progressToken", "io.modelcontextprotocol/logLevel")
_MORE_THAN_PLAIN = ("task", "requestState", "inputResponses")
# How many tools' input schemas the lane remembers as declaring ``Mcp-Param-*`` headers or not.
MAX_SCHEMAS = 1024


@dataclass(frozen=True, slots=True)
class ModernCall:
    """A plain 2026-07-28 request the lane serves (one of ``PARAMS``): the request and what its envelope says."""

    message: JSONRPCRequest
    route: InboundModernRoute
    params: types.RequestParams  # its method's type in ``PARAMS``
    meta: types.RequestParamsMeta | None
    connection: Connection  # as the SDK's entry builds it from the envelope


class ModernLane:
    """Plans and serves plain 2026-07-28 calls, reads and prompts (see the module docstring).

    Args:
        server: the agent-facing SDK server (its answers' shape, its identity stamp, its tools' schemas).
        security: the session manager's transport security settings (what the SDK's entry checks).
        json_response: the session manager's choice of plain JSON answers for every request (then the
            SDK's entry never streams, which the lane does not copy: every request goes the long way).
        lifespan_state: the session manager's lifespan state, as the SDK's entry hands it to its server.
        known: whether the routing table has what a request names (tool, resource or prompt) for the
            calling agent (an on-demand agent's tools go the long way).
        forwards: the forwarder's handler of each method in ``PARAMS`` (``RequestForwarder.call_tool``,
            ``read_resource``, ``get_prompt``).
        metrics: where the lane's calls are counted, as the hot path's (``toolgate_hot_path_calls_total``).
    """

    def __init__(
        self,
        server: Server[Any],
        *,
        security: TransportSecuritySettings | None,
        json_response: bool,
        lifespan_state: Callable[[], Any],
        known: Callable[[types.RequestParams], bool],
        forwards: Mapping[str, Forward],
        metrics: Metrics,
    ) -> None:
        self._server = server
        self._security = TransportSecurityMiddleware(security)
        self._json_response = json_response
        self._lifespan_state = lifespan_state
        self._known = known
        self._forwards = dict(forwards)
        self._metrics = metrics
        self._windows = Windows()
        # By ``id`` of a tool's input schema (kept, so the id stays its): whether it declares headers.
        self._declares_headers: dict[int, tuple[object, bool]] = {}

    def takes(self, request: Request) -> bool:
        """Whether a POST is a 2026-07-28 request the lane may serve, by its headers (the body is not read yet).

        As the SDK's entry checks them before reading the body: the Content-Type (DNS-rebinding protection,
        when set, is left to it) and an Accept of both JSON and SSE.
        """
        headers = request.headers
        if headers.get(MCP_PROTOCOL_VERSION_HEADER) not in MODERN_PROTOCOL_VERSIONS or MCP_SESSION_ID_HEADER in headers:
            return False
        if self._json_response or self._security.settings.enable_dns_rebinding_protection:
            return False
        if not self._security._validate_content_type(headers.get("content-type")):
            return False
        has_json, has_sse = check_accept_headers(request)
        return has_json and has_sse

    async def plan(self, body: bytes, request: Request) -> ModernCall | None:
        """The request to serve, if the body is a plain one of ``PARAMS`` the SDK's entry would hand to its server.

        None (nothing done yet): the long way, which answers or refuses it as it always has.
        """
        try:
            decoded = pydantic_core.from_json(body)
        except ValueError:
            return None
        if not isinstance(decoded, dict) or "id" not in decoded:
            return None
        method = decoded.get("method")
        if not isinstance(method, str) or (params_type := PARAMS.get(method)) is None:
            return None
        params = decoded.get("params")
        if not isinstance(params, dict) or any(key in params for key in _MORE_THAN_PLAIN):
            return None
        meta = params.get("_meta")
        if not isinstance(meta, dict) or any(key in meta for key in _STREAMING_META):
            return None
        try:
            message = JSONRPCRequest.model_validate(decoded)
        except ValidationError:
            return None
        headers = request.headers
        if find_duplicated_routing_header(headers.items()) is not None:
            return None
        route = classify_inbound_request(decoded, headers=dict(headers))
        if not isinstance(route, InboundModernRoute):
            return None
        connection = Connection.from_envelope(route.protocol_version, route.client_info, route.client_capabilities)
        if interactive(connection.client_capabilities):
            return None  # questions are asked in rounds: the long way
        try:
            methods.validate_client_request(method, route.protocol_version, params)
            typed = params_type.model_validate(params, by_name=False)
        except (ValidationError, KeyError):
            return None
        if not self._known(typed):
            return None
        if self._may_reject_headers(method, typed) and (
            await _mcp_param_rejection(self._server, request, message, route, self._lifespan_state()) is not None
        ):
            return None
        return ModernCall(message, route, typed, _request_meta(params), connection)

    def _may_reject_headers(self, method: str, params: types.RequestParams) -> bool:
        """Whether the SDK's check of a call's ``Mcp-Param-*`` headers could refuse it; False: it passes, unasked.

        A tool whose input schema declares no header anywhere the SDK looks passes that check whatever the
        request's headers say (``validate_mcp_param_headers``); each routed schema is looked at once (a
        catalog's schemas are not changed in place). Anything else is left to the check itself.
        """
        if method != "tools/call":
            return False  # the check looks at tool calls only
        lookup = self._server.get_tool_input_schema
        if lookup is None:
            return True  # the check lists the tools itself
        try:
            schema = lookup(cast(types.CallToolRequestParams, params).name)
        except Exception:
            return True  # the check logs it, as the SDK's entry does
        if schema is None:
            return False
        kept = self._declares_headers.get(id(schema))
        if kept is None or kept[0] is not schema:
            if len(self._declares_headers) >= MAX_SCHEMAS:
                self._declares_headers.clear()
            declares = any(X_MCP_HEADER_KEY in position for _, position in _walk_schema_positions(schema))
            kept = self._declares_headers[id(schema)] = (schema, declares)
        return kept[1]

    async def serve(self, call: ModernCall, request: Request, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve a planned call in this request's task and write its answer as the SDK's entry would."""
        route, connection, message = call.route, call.connection, call.message
        dispatch = _SingleExchangeDispatchContext(  # as the SDK's entry makes it: one exchange, no back channel
            transport=TransportContext(kind="streamable-http", can_send_request=False, headers=request.headers),
            request_id=message.id,
            message_metadata=ServerMessageMetadata(request_context=request),
            progress_token=None,
        )
        lifespan_state = self._lifespan_state()
        ctx: ServerRequestContext[Any, Any] = ServerRequestContext(
            session=ServerSession(dispatch, connection, request_meta=call.meta),
            lifespan_context=lifespan_state,
            method=message.method,
            params=message.params,
            request_id=message.id,
            meta=call.meta,
            protocol_version=route.protocol_version,
            request=request,
        )
        runner = ServerRunner(self._server, connection, lifespan_state)

        async def answer() -> dict[str, Any]:
            # As the SDK's server runs a handler and shapes its result (``ServerRunner``'s ``_inner``).
            result = await self._forwards[message.method](ctx, call.params)
            if isinstance(result, types.ErrorData):
                raise MCPError.from_error_data(result)
            self._metrics.count_hot_call(message.method, passed_through=isinstance(result, dict))
            return dict(runner._serialize(message.method, route.protocol_version, result))

        late: _Late | None = None
        call_scope = asyncio.timeout(None)  # asyncio's: most calls are never cancelled (see json_answers.py)
        loop = asyncio.get_running_loop()

        def on_late() -> None:
            nonlocal late
            late = _Late(call_scope, scope, receive, send)
            late.start(loop)

        window = self._windows.open(loop, on_late)
        try:
            try:
                async with call_scope:
                    try:
                        reply = await _to_jsonrpc_response(message.id, answer())
                    finally:
                        window.closed = True
            except TimeoutError:
                if not call_scope.expired():  # the call's own
                    raise
                return  # its agent went away: nobody to answer (the call is recorded withdrawn)
            finally:
                await connection.exit_stack.aclose()
            if late is None:
                await _send_reply(reply, scope, receive, send)
            else:
                await late.finish(reply)
        finally:
            if late is not None:
                await late.stop()


def _report_failure(task: asyncio.Task[None]) -> None:
    """A late call's stream that failed (the agent's connection, most likely): logged, as the SDK's would be."""
    if not task.cancelled() and (exc := task.exception()) is not None:
        logger.warning("could not answer a late 2026-07-28 call: %s", exc)


class _Late:
    """A call still running after ``JSON_WINDOW_S``: watched for its agent going away, streamed once it is late."""

    def __init__(self, call_scope: asyncio.Timeout, scope: Scope, receive: Receive, send: Send) -> None:
        self._call_scope = call_scope
        self._scope, self._receive, self._send = scope, receive, send
        self._done = asyncio.Event()
        self._reply: JSONRPCResponse | JSONRPCError | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._task = loop.create_task(self._run())
        self._task.add_done_callback(_report_failure)

    async def _run(self) -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._watch)
            streaming = False
            with anyio.move_on_after(SSE_AFTER_S - JSON_WINDOW_S):
                await self._done.wait()
            if not self._done.is_set():  # as the SDK's entry: an SSE stream from now on, a ping at once and then
                streaming = True  # every PING_INTERVAL_S
                await self._send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS})
                while not self._done.is_set():
                    await self._send({"type": "http.response.body", "body": b": ping\r\n\r\n", "more_body": True})
                    with anyio.move_on_after(PING_INTERVAL_S):
                        await self._done.wait()
            tg.cancel_scope.cancel()
        reply = self._reply
        if reply is None:
            return
        if streaming:
            await self._send({"type": "http.response.body", "body": _sse_event(reply), "more_body": False})
        else:
            await _write(reply, self._scope, self._receive, self._send)

    async def _watch(self) -> None:
        """As the SDK's entry: the agent going away ends the call."""
        while (await self._receive()).get("type") != "http.disconnect":
            pass  # pragma: no cover - a request's body is read whole before the call starts
        cancel_call(self._call_scope)

    async def finish(self, reply: JSONRPCResponse | JSONRPCError) -> None:
        """The call ended with ``reply``: written on the stream, or as JSON if it never became one."""
        self._reply = reply
        self._done.set()
        if self._task is not None:
            await asyncio.wait({self._task})

    async def stop(self) -> None:
        """Ends the watching and the stream (the call ended without a reply, or this request was cancelled)."""
        self._done.set()
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            with anyio.CancelScope(shield=True):
                await asyncio.wait({task})


async def _send_reply(reply: JSONRPCResponse | JSONRPCError, scope: Scope, receive: Receive, send: Send) -> None:
    """Write ``reply`` as the SDK's entry writes it (``_write``); a result without a Response, in fewer steps."""
    if not isinstance(reply, JSONRPCResponse):
        await _write(reply, scope, receive, send)  # its status comes from the error code
        return
    dumped = reply.model_dump(mode="json", by_alias=True, exclude_none=True)
    body = json.dumps(dumped, separators=(",", ":")).encode("utf-8")
    headers = [(b"content-length", str(len(body)).encode("latin-1")), (b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _request_meta(params: Mapping[str, Any]) -> types.RequestParamsMeta | None:
    """The request's ``_meta`` as the SDK's server hands it to handlers (``runner._extract_meta``)."""
    try:
        return types.RequestParams.model_validate(params, by_name=False).meta
    except ValidationError:
        return None

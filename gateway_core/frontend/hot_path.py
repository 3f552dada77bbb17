"""The hot path: a plain handshake-era ``tools/call`` served without the SDK's server dispatch.

A call that goes the long way is handed to the SDK's server session (a task, request validation,
the middleware chain, the result validated and dumped for the agent's protocol version) and, on the
server's side, to the SDK's client session (the result validated into a model). An eligible call
skips those: the transport (``json_answers.py``) asks ``HotPath.plan`` before handing the request to
the SDK, and gets back a call to run instead. It runs ``RequestForwarder.call_tool``, the same code
as the long way (routing, limits, the guard, approvals, the audit records, metrics), with the result
passed through as the server sent it where the long way would deliver it unchanged
(``downstream/pass_through.py``), else made for the agent's version exactly as the SDK makes it.
The transport runs the call in the request's own task and writes its answer back itself, through its
own channel (as the SDK's server would) once a late call is streamed; such a request usually reaches
the transport by the hot lane (``hot_lane.py``), past the layers between the guard and the session.

Eligible: ``tools/call`` of a handshake-era session that Toolgate has seen initialized (an
``initialize`` the SDK accepted), by the agent that opened it, whose request the transport answers
with JSON (no progress token, no task, an agent that can be asked nothing), whose params the SDK
would accept, for a tool the routing table has, from an agent that is not on demand. Anything else
(a 2026-07-28 request, an unknown tool, bad params, an on-demand agent's gateway tools) goes the
long way, which answers it as it always has.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Any

import anyio
import mcp_types as types
from mcp.server import ServerRequestContext
from mcp.server.session import ServerSession
from mcp.server.streamable_http import MCP_SESSION_ID_HEADER
from mcp.shared.jsonrpc_dispatcher import handler_exception_to_error_data
from mcp_types import INTERNAL_ERROR, ErrorData, JSONRPCError, JSONRPCRequest, JSONRPCResponse, methods
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import ValidationError
from starlette.requests import Request

from gateway_core.frontend.forward import current_agent
from gateway_core.frontend.metrics import Metrics
from gateway_core.frontend.routing import Routes

logger = logging.getLogger(__name__)

METHOD = "tools/call"
HotCall = Callable[[], Awaitable[JSONRPCResponse | JSONRPCError]]
CallTool = Callable[..., Awaitable[Any]]


class HotPath:
    """Plans and runs hot-path calls (see the module docstring).

    Args:
        sessions: the agent and SDK session of a handshake-era session id the server has seen (None: not seen).
        routes: the current routing table.
        on_demand: whether an agent sees its tools on demand (its calls go the long way).
        call_tool: ``RequestForwarder.call_tool``.
        metrics: where hot-path calls are counted.
        unanswered: told (session id, request id) of a call that ended without a result (cancelled).
    """

    def __init__(
        self,
        *,
        sessions: Callable[[str], tuple[str, ServerSession] | None],
        routes: Callable[[], Routes],
        on_demand: Callable[[str], bool],
        call_tool: CallTool,
        metrics: Metrics,
        unanswered: Callable[[str, str], None],
    ) -> None:
        self._sessions = sessions
        self._routes = routes
        self._on_demand = on_demand
        self._call_tool = call_tool
        self._metrics = metrics
        self._unanswered = unanswered

    def plan(self, message: JSONRPCRequest, request: Request) -> HotCall | None:
        """The call to run for this request on the hot path, or None for the long way (nothing done yet)."""
        if message.method != METHOD:
            return None
        session_id = request.headers.get(MCP_SESSION_ID_HEADER)
        known = self._sessions(session_id) if session_id is not None else None
        if session_id is None or known is None:
            return None
        agent, session = known
        version = session.protocol_version
        if version in MODERN_PROTOCOL_VERSIONS or session.client_params is None or agent != current_agent():
            return None
        raw_params: dict[str, Any] = message.params or {}
        try:
            methods.validate_client_request(METHOD, version, raw_params)
            params = types.CallToolRequestParams.model_validate(raw_params, by_name=False)
        except (ValidationError, KeyError, ValueError):
            return None
        if params.task is not None or params.request_state is not None or params.input_responses is not None:
            return None
        if self._on_demand(agent) or params.name not in self._routes().tools:
            return None
        ctx: ServerRequestContext[Any, Any] = ServerRequestContext(
            session=session,
            lifespan_context=None,
            protocol_version=version,
            method=METHOD,
            params=raw_params,
            request_id=message.id,
            meta=_meta(raw_params),
            request=request,
        )
        return partial(self._answer, ctx, params, session_id)

    async def _answer(
        self, ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams, session_id: str
    ) -> JSONRPCResponse | JSONRPCError:
        request_id = ctx.request_id
        assert request_id is not None
        try:
            result = await self._call_tool(ctx, params, passing_through=True)
        except anyio.get_cancelled_exc_class():
            self._unanswered(session_id, str(request_id))
            raise
        except Exception as exc:
            # As the SDK's dispatcher answers a handler's exception.
            error = handler_exception_to_error_data(exc)
            if error is None:
                logger.exception("handler for %r raised", METHOD)
                error = ErrorData(code=0, message=str(exc))
            return JSONRPCError(jsonrpc="2.0", id=request_id, error=error)
        passed_through = isinstance(result, dict)
        self._metrics.count_hot_call(passed_through=passed_through)
        if not passed_through:
            # As the SDK's server shapes a handler's result for the agent's protocol version.
            dumped = result.model_dump(by_alias=True, mode="json", exclude_none=True)
            try:
                result = methods.serialize_server_result(METHOD, ctx.protocol_version, dumped)
            except ValidationError:
                logger.exception("handler for %r returned an invalid result", METHOD)
                error = ErrorData(code=INTERNAL_ERROR, message="Handler returned an invalid result")
                return JSONRPCError(jsonrpc="2.0", id=request_id, error=error)
        return JSONRPCResponse(jsonrpc="2.0", id=request_id, result=result)


def _meta(params: Mapping[str, Any]) -> types.RequestParamsMeta | None:
    """The request's ``_meta`` as the SDK's server hands it to handlers (``None`` when absent or malformed)."""
    if "_meta" not in params:
        return None
    try:
        return types.RequestParams.model_validate(params, by_name=False).meta
    except ValidationError:
        return None

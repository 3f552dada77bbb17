"""The hot path: a plain handshake-era call, read or prompt served without the SDK's server dispatch.

A request that goes the long way is handed to the SDK's server session (a task, request validation,
the middleware chain, the result validated and dumped for the agent's protocol version) and, on the
server's side, to the SDK's client session (the result validated into a model). An eligible request
skips those: the transport (``json_answers.py``) asks ``HotPath.plan`` before handing the request to
the SDK, and gets back a call to run instead. It runs the method's ``RequestForwarder`` handler
(``call_tool``, ``read_resource``, ``get_prompt``), the same code as the long way (routing, limits,
the guard, approvals, the audit records, metrics), with the result
passed through as the server sent it where the long way would deliver it unchanged
(``downstream/pass_through.py``), else made for the agent's version exactly as the SDK makes it.
The transport runs the call in the request's own task and writes its answer back itself, through its
own channel (as the SDK's server would) once a late call is streamed; such a request usually reaches
the transport by the hot lane (``hot_lane.py``), past the layers between the guard and the session.

Eligible: a request of ``HOT_METHODS`` in a handshake-era session that Toolgate has seen initialized
(an ``initialize`` the SDK accepted), by the agent that opened it, whose request the transport answers
with JSON (no progress token, no task, an agent that can be asked nothing), whose params the SDK
would accept, for a tool, resource or prompt the routing table has (a tool: from an agent that is not
on demand, whose calls go through ``on_demand.py``). Anything else (a 2026-07-28 request, an unknown
tool, resource or prompt, bad params, an on-demand agent's tools) goes the long way, which answers it
as it always has.
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

HotCall = Callable[[], Awaitable[JSONRPCResponse | JSONRPCError]]
# A method's ``RequestForwarder`` handler: (ctx, params, passing_through=True) -> a result model or its wire dict.
Forward = Callable[..., Awaitable[Any]]
# The methods the hot path serves, and the params the SDK's server validates each one's into.
PARAMS: dict[str, type[types.RequestParams]] = {
    "tools/call": types.CallToolRequestParams,
    "resources/read": types.ReadResourceRequestParams,
    "prompts/get": types.GetPromptRequestParams,
}
HOT_METHODS = frozenset(PARAMS)


class HotPath:
    """Plans and runs hot-path calls (see the module docstring).

    Args:
        sessions: the agent and SDK session of a handshake-era session id the server has seen (None: not seen).
        routes: the current routing table.
        on_demand: whether an agent sees its tools on demand (its tool calls go the long way).
        forwards: each of ``HOT_METHODS``' handler (``RequestForwarder.call_tool``, ``read_resource``, ``get_prompt``).
        metrics: where hot-path calls are counted.
        unanswered: told (session id, request id) of a call that ended without a result (cancelled).
    """

    def __init__(
        self,
        *,
        sessions: Callable[[str], tuple[str, ServerSession] | None],
        routes: Callable[[], Routes],
        on_demand: Callable[[str], bool],
        forwards: Mapping[str, Forward],
        metrics: Metrics,
        unanswered: Callable[[str, str], None],
    ) -> None:
        self._sessions = sessions
        self._routes = routes
        self._on_demand = on_demand
        self._forwards = dict(forwards)
        self._metrics = metrics
        self._unanswered = unanswered

    def plan(self, message: JSONRPCRequest, request: Request) -> HotCall | None:
        """The call to run for this request on the hot path, or None for the long way (nothing done yet)."""
        method = message.method
        params_type = PARAMS.get(method)
        if params_type is None:
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
            methods.validate_client_request(method, version, raw_params)
            params = params_type.model_validate(raw_params, by_name=False)
        except (ValidationError, KeyError, ValueError):
            return None
        if not self._plain(params) or not self._routed(agent, params):
            return None
        ctx: ServerRequestContext[Any, Any] = ServerRequestContext(
            session=session,
            lifespan_context=None,
            protocol_version=version,
            method=method,
            params=raw_params,
            request_id=message.id,
            meta=_meta(raw_params),
            request=request,
        )
        return partial(self._answer, ctx, params, session_id)

    @staticmethod
    def _plain(params: types.RequestParams) -> bool:
        """Whether the params ask for nothing beyond a plain answer: no task, no round of a 2026 request."""
        return (
            getattr(params, "task", None) is None
            and getattr(params, "request_state", None) is None
            and getattr(params, "input_responses", None) is None
        )

    def _routed(self, agent: str, params: types.RequestParams) -> bool:
        """Whether the routing table has what the request names (a tool only for an agent not on demand)."""
        routes = self._routes()
        if isinstance(params, types.CallToolRequestParams):
            return not self._on_demand(agent) and params.name in routes.tools
        if isinstance(params, types.ReadResourceRequestParams):
            return routes.server_for_uri(params.uri) is not None
        return isinstance(params, types.GetPromptRequestParams) and params.name in routes.prompts

    async def _answer(
        self, ctx: ServerRequestContext[Any, Any], params: types.RequestParams, session_id: str
    ) -> JSONRPCResponse | JSONRPCError:
        request_id = ctx.request_id
        assert request_id is not None
        method = ctx.method
        try:
            result = await self._forwards[method](ctx, params, passing_through=True)
        except anyio.get_cancelled_exc_class():
            self._unanswered(session_id, str(request_id))
            raise
        except Exception as exc:
            # As the SDK's dispatcher answers a handler's exception.
            error = handler_exception_to_error_data(exc)
            if error is None:
                logger.exception("handler for %r raised", method)
                error = ErrorData(code=0, message=str(exc))
            return JSONRPCError(jsonrpc="2.0", id=request_id, error=error)
        passed_through = isinstance(result, dict)
        self._metrics.count_hot_call(method, passed_through=passed_through)
        if not passed_through:
            # As the SDK's server shapes a handler's result for the agent's protocol version.
            dumped = result.model_dump(by_alias=True, mode="json", exclude_none=True)
            try:
                result = methods.serialize_server_result(method, ctx.protocol_version, dumped)
            except ValidationError:
                logger.exception("handler for %r returned an invalid result", method)
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

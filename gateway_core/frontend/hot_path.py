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
from mcp_types.version import KNOWN_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from gateway_core.frontend.forward import KnownCall, current_agent
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
        check = _SURFACE_CHECKS.get((method, version))  # None: a 2026 request, or one its version lacks
        if check is None or session.client_params is None or agent != current_agent():
            return None
        raw_params: dict[str, Any] = message.params or {}
        try:
            check(raw_params, by_name=False)  # what the SDK's server checks first (``validate_client_request``)
            params = params_type.__pydantic_validator__.validate_python(raw_params, by_name=False)
        except (ValidationError, KeyError, ValueError):
            return None
        if params.request_state is not None or params.input_responses is not None:
            return None  # a round of a 2026 request: more than a plain answer
        routes, known_call = self._routes(), None
        if type(params) is types.CallToolRequestParams:
            route = routes.tools.get(params.name)
            if params.task is not None or route is None or self._on_demand(agent):
                return None  # a task (more than a plain answer), an unknown tool, or an on-demand agent's
            known_call = KnownCall(agent, session_id, route)
        elif type(params) is types.ReadResourceRequestParams:
            if routes.server_for_uri(params.uri) is None:
                return None
        elif params.name not in routes.prompts:
            return None
        ctx: ServerRequestContext[Any, Any] = ServerRequestContext(
            session=session,
            lifespan_context=None,
            protocol_version=version,
            method=method,
            params=raw_params,
            request_id=message.id,
            meta=None if "_meta" not in raw_params else _meta(raw_params),
            request=request,
        )
        return partial(self._answer, ctx, params, session_id, known_call)

    async def _answer(
        self,
        ctx: ServerRequestContext[Any, Any],
        params: types.RequestParams,
        session_id: str,
        known: KnownCall | None,
    ) -> JSONRPCResponse | JSONRPCError:
        request_id = ctx.request_id
        assert request_id is not None
        method = ctx.method
        try:
            if known is None:
                result = await self._forwards[method](ctx, params, passing_through=True)
            else:
                result = await self._forwards[method](ctx, params, passing_through=True, known=known)
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


def _surface_checks() -> dict[tuple[str, str], Callable[..., Any]]:
    """Per hot method and handshake-era version, the SDK's first check of a request, as its params' validator.

    ``methods.validate_client_request`` validates the whole request frame (``jsonrpc``, ``id``, ``method``
    and ``params``) against the version's wire model; the frame's other fields are its own stubs, so
    where the model checks nothing beyond its fields the params' own validator accepts and refuses the
    same params. A model that checks more keeps the SDK's function.
    """
    checks: dict[tuple[str, str], Callable[..., Any]] = {}
    for method in PARAMS:
        for version in KNOWN_PROTOCOL_VERSIONS:
            surface = methods.CLIENT_REQUESTS.get((method, version))
            if version in MODERN_PROTOCOL_VERSIONS or surface is None:
                continue
            field = surface.model_fields.get("params")
            params = None if field is None else field.annotation
            decorators = surface.__pydantic_decorators__
            if (
                field is not None
                and field.is_required()
                and isinstance(params, type)
                and issubclass(params, BaseModel)
                and not decorators.model_validators
                and not decorators.field_validators
                and surface.model_config.get("strict") is not True
            ):
                checks[(method, version)] = params.__pydantic_validator__.validate_python
            else:
                checks[(method, version)] = partial(_whole_request_check, method, version)
    return checks


def _whole_request_check(method: str, version: str, params: dict[str, Any], *, by_name: bool) -> None:
    methods.validate_client_request(method, version, params)


_SURFACE_CHECKS = _surface_checks()


def _meta(params: Mapping[str, Any]) -> types.RequestParamsMeta | None:
    """The request's ``_meta`` as the SDK's server hands it to handlers (``None`` when absent or malformed)."""
    if "_meta" not in params:
        return None
    try:
        return types.RequestParams.model_validate(params, by_name=False).meta
    except ValidationError:
        return None

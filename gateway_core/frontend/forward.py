"""Agents' requests that go on to one server.

That is tools/call, prompts/get, resources/read, completions, subscriptions and log levels.

Each request is routed by name or URI, checked by the guard (calls, prompts and reads), and sent
with fresh params; the result comes back without the downstream's identity stamp. The agent
behind a call is handed down as its ``Caller`` (``callers.py``), so a question the server asks
during the call reaches that agent; an interactive 2026-07-28 agent's requests run through
``rounds.py`` so its questions can travel back in ``InputRequiredResult`` rounds.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, NamedTuple, TypeVar

import anyio
import anyio.lowlevel
import mcp_types as types
from mcp.server import ServerRequestContext
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.shared.dispatcher import ProgressFnT
from mcp.shared.exceptions import MCPError
from mcp_types import CLIENT_CAPABILITIES_META_KEY, CLIENT_INFO_META_KEY, PROTOCOL_VERSION_META_KEY
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from gateway_core.approvals import RequestKind
from gateway_core.downstream.asking import Caller
from gateway_core.downstream.pass_through import audit_size
from gateway_core.downstream.pool import DownstreamPool
from gateway_core.downstream.server import DownstreamServer
from gateway_core.errors import DownstreamError, ErrorCode, ServerUnavailableError
from gateway_core.frontend.callers import HandshakeCaller, RoundTripCaller
from gateway_core.frontend.guard import Admission, Asking, CallGuard, rate_limited_result, refusal_result
from gateway_core.frontend.metrics import Metrics
from gateway_core.frontend.notices import Notices
from gateway_core.frontend.roots import AgentRoots
from gateway_core.frontend.rounds import PARKED_TTL_S, Follow, Rounds, Target
from gateway_core.frontend.routing import Route, Routes
from gateway_core.policy import Effect

# The identity stamp a 2026-era downstream adds to its results; the agent must see Toolgate's, not it.
SERVER_INFO_META_KEY = "io.modelcontextprotocol/serverInfo"
LOG_LEVEL_META_KEY = "io.modelcontextprotocol/logLevel"
# Where Toolgate's own error code travels beside the spec's (in an error's ``data``, a result's ``_meta``).
TOOLGATE_CODE_KEY = "toolgate/code"
# Request ``_meta`` keys about the agent's hop only: never passed on to the server.
HOP_META_KEYS = frozenset(
    {"progress_token", "progressToken", PROTOCOL_VERSION_META_KEY, CLIENT_INFO_META_KEY, CLIENT_CAPABILITIES_META_KEY}
)
UNKNOWN_AGENT = "-"
# Event-loop turns a finishing call waits for progress that arrived with its result, and how long
# it waits for that progress to be sent.
FLUSH_CHECKPOINTS = 10
DRAIN_TIMEOUT_S = 1.0

Ctx = ServerRequestContext[Any, Any]
# What a request that did not opt in to log messages is served within (``Notices.logging_request`` registers nothing).
_NO_LOGS: contextlib.nullcontext[None] = contextlib.nullcontext()
_R = TypeVar("_R", bound=types.Result)
_T = TypeVar("_T")
# The params of the requests whose server's result can come as it came (``pass_through.py``).
_Forwarded = types.CallToolRequestParams | types.ReadResourceRequestParams | types.GetPromptRequestParams


class KnownCall(NamedTuple):
    """What the hot path found out about a plain handshake-era tool call before running it (``hot_path.py``)."""

    agent: str
    session_id: str
    route: Route


def current_agent() -> str:
    """The id of the agent whose request is being handled (set by the HTTP layer's authentication)."""
    token = get_access_token()
    return token.client_id if token is not None else UNKNOWN_AGENT


def is_modern(ctx: Ctx) -> bool:
    """Whether the request speaks 2026-07-28 (no back-channel, no session)."""
    return ctx.protocol_version in MODERN_PROTOCOL_VERSIONS


def session_id(ctx: Ctx) -> str | None:
    """The agent's handshake-era session (for "allow for this session"); 2026 agents have none.

    A 2026 request is served without a session, so an ``Mcp-Session-Id`` it carries names nothing
    that was checked (it could be any session's, ended or not) and is ignored.
    """
    if is_modern(ctx) or ctx.request is None:
        return None
    header: str | None = ctx.request.headers.get("mcp-session-id")
    return header


class RequestForwarder:
    """Serves the requests that are forwarded to a single server.

    Args:
        routes: the current routing table (read on every request).
        pool: the downstream servers.
        guard: policy, approvals and auditing.
        metrics: where tool calls are counted.
        notices: subscriptions and log levels.
        rounds: 2026 requests waiting between rounds of questions.
        roots: what each agent's roots are, kept from its answers.
        passes_through: whether a 2026-07-28 agent's plain tool call gets its server's result as it came
            (``pass_through.py``), as the hot path's calls do; False: the typed way (``TOOLGATE_HOT_PATH=0``).
    """

    def __init__(
        self,
        routes: Callable[[], Routes],
        pool: DownstreamPool,
        guard: CallGuard,
        metrics: Metrics,
        notices: Notices,
        rounds: Rounds,
        roots: AgentRoots,
        *,
        passes_through: bool = True,
    ) -> None:
        self._routes = routes
        self._passes_through = passes_through
        self._pool = pool
        self._guard = guard
        self._metrics = metrics
        self._notices = notices
        self._rounds = rounds
        self._roots = roots

    # --- calls, prompts and reads ----------------------------------------------------------------

    async def call_tool(
        self,
        ctx: Ctx,
        params: types.CallToolRequestParams,
        *,
        denied_as_unknown: bool = False,
        passing_through: bool = False,
        known: KnownCall | None = None,
    ) -> Any:
        """Decide, ask if need be, forward and record one tool call (or resume one waiting for answers).

        With ``denied_as_unknown`` (``execute_tool``), a tool the policy denies is answered exactly as
        one that does not exist, so the call reveals nothing; the refusal is still recorded. With
        ``passing_through`` (the hot path: a plain handshake-era call), a result the server sent in
        the common shape comes back as it came, a dict in the agent's wire form (``pass_through.py``);
        so does a 2026-07-28 agent's plain call (no progress token, log level or answers, from an
        agent that can be asked nothing), unless ``passes_through`` is off.
        ``known`` is what the hot path found out about such a call already (its agent, session and route).
        """
        if known is None:
            route = self._routes().tools.get(params.name)
            if route is None:
                if (down := self._unavailable(params.name, prompt=False)) is not None:
                    raise down
                return unknown_tool(params.name)
            agent = current_agent()
            if params.request_state is not None:
                target = ("tools/call", params.name)
                return await self._rounds.resume(agent, target, params.request_state, params.input_responses, ctx)
            modern = is_modern(ctx)
            sid = None if modern else session_id(ctx)
        else:
            agent, sid, route = known  # a plain handshake-era call (no ``requestState``)
            modern = False
        server, tool = route.server, route.upstream_name
        guard = self._guard
        hit = guard.limit(agent=agent, server=server, tool=tool, arguments=params.arguments)
        if hit is not None:
            self._metrics.count_call(agent, server, "rate_limited", 0.0)
            return rate_limited_result(agent, hit)
        try:
            verdict = guard.verdict(
                agent=agent,
                session_id=sid,
                server=server,
                tool=tool,
                public_name=params.name,
                arguments=params.arguments,
            )
            admission = await guard.ask(verdict, _disconnect_check(ctx)) if isinstance(verdict, Asking) else verdict
            if admission.refusal is not None:
                self._metrics.count_call(agent, server, admission.refused_as, 0.0)
                if denied_as_unknown and admission.decision.effect is Effect.DENY:
                    return unknown_tool(params.name)
                return refusal_result(admission)
            meta = ctx.meta
            # Without a progress token no progress is ever relayed: one relay that does nothing serves every such call.
            progress = NO_PROGRESS if not meta or meta.get("progress_token") is None else ProgressRelay(ctx)
            if not modern:
                # What ``_run`` does for a handshake-era request, without its two layers (the common call).
                caller = HandshakeCaller(agent, sid, ctx.session, ctx.request_id, self._record)
                return await self._forward_call(
                    ctx, agent, server, tool, params, admission, caller, progress, passing_through
                )

            plain = self._plain_modern(ctx, params)  # no progress token among others: ``progress`` relays nothing

            async def forward(caller: Caller) -> types.CallToolResult | types.CreateTaskResult | dict[str, Any]:
                passes = plain and not caller.interactive  # questions are asked in rounds: the typed way
                return await self._forward_call(ctx, agent, server, tool, params, admission, caller, progress, passes)

            target = ("tools/call", params.name)
            return await self._run(ctx, agent, target, forward, follow=progress.retarget)
        finally:
            guard.release(agent, server)

    async def _forward_call(
        self,
        ctx: Ctx,
        agent: str,
        server_name: str,
        tool: str,
        params: types.CallToolRequestParams,
        admission: Admission,
        caller: Caller,
        progress: ProgressRelay,
        passing_through: bool = False,
    ) -> types.CallToolResult | types.CreateTaskResult | dict[str, Any]:
        started = time.perf_counter()
        outcome, size = "ok", None
        try:
            modern = ctx.protocol_version in MODERN_PROTOCOL_VERSIONS
            level = _log_level(ctx) if modern else None  # only a 2026 request opts in to log messages
            async with (
                self._pool.use(server_name, agent, ctx.session.client_capabilities, modern=modern) as server,
                _NO_LOGS
                if level is None
                else self._notices.logging_request(server_name, agent, ctx.session, ctx.request_id, level),
            ):
                if server is None:
                    raise ServerUnavailableError(f"server {server_name!r} was removed from the configuration")
                if passing_through:
                    passed = await server.session.call_tool_passing_through(
                        tool,
                        params.arguments,
                        caller=caller,
                        meta=forwarded_meta(ctx) if ctx.meta else None,
                        modern_agent=modern,
                    )
                    if isinstance(passed, dict):
                        outcome = "tool_error" if passed["isError"] else "ok"
                        size = audit_size(passed) if self._guard.auditing else None
                        return passed
                    result: types.CallToolResult | types.CreateTaskResult = passed
                else:
                    result = await self._typed_call(ctx, server, tool, params, caller, progress)
                await progress.drain()
            outcome = "tool_error" if isinstance(result, types.CallToolResult) and result.is_error else "ok"
            result = without_downstream_identity(result)
            if self._guard.auditing:
                size = len(result.model_dump_json(by_alias=True, exclude_none=True))
            return result
        except DownstreamError as exc:
            outcome = "timeout" if exc.code is ErrorCode.TIMEOUT else "unavailable"
            return types.CallToolResult(content=[types.TextContent(text=str(exc))], is_error=True)
        except MCPError:
            outcome = "protocol_error"
            raise
        except BaseException:
            outcome = "withdrawn"
            raise
        finally:
            self._record_outcome(admission, agent, server_name, tool, outcome, started, size)

    @staticmethod
    async def _typed_call(
        ctx: Ctx,
        server: DownstreamServer,
        tool: str,
        params: types.CallToolRequestParams,
        caller: Caller,
        progress: ProgressRelay,
    ) -> types.CallToolResult | types.CreateTaskResult:
        # Tasks are a handshake-era feature (tasks.py); a 2026 request's `task` means nothing.
        task = None if is_modern(ctx) else params.task
        return await server.session.call_tool(
            tool,
            params.arguments,
            progress=progress.callback,
            caller=caller,
            meta=forwarded_meta(ctx),
            task=task,
            answers=unasked_answers(ctx, params),
        )

    async def read_resource(
        self, ctx: Ctx, params: types.ReadResourceRequestParams, *, passing_through: bool = False
    ) -> Any:
        """Read a resource from the server that lists it or has a matching template.

        With ``passing_through`` (the hot path: a plain handshake-era read), a result the server sent in
        the common shape comes back as it came, a dict in the agent's wire form (``pass_through.py``);
        so does a 2026-07-28 agent's plain read (``_plain_modern``), unless ``passes_through`` is off.
        """
        server = self._routes().server_for_uri(params.uri)
        if server is None:
            raise unknown_resource(params.uri)
        agent, target = current_agent(), ("resources/read", params.uri)
        if params.request_state is not None:
            return await self._rounds.resume(agent, target, params.request_state, params.input_responses)
        admission = await self._admit_or_raise(ctx, server, params.uri, "resource")
        era = is_modern(ctx)
        plain = era and self._plain_modern(ctx, params)

        async def forward(caller: Caller) -> types.ReadResourceResult | dict[str, Any]:
            with self._measured(admission, agent, server, params.uri):
                async with self._pool.use(server, agent, ctx.session.client_capabilities, modern=era) as downstream:
                    read = _present(server, downstream).session.read_resource(
                        params.uri,
                        caller=caller,
                        meta=forwarded_meta(ctx),
                        answers=unasked_answers(ctx, params),
                        passing_through=passing_through or (plain and not caller.interactive),
                        modern_agent=era,
                    )
                    return _delivered(await _downstream_call(read))

        return await self._run(ctx, agent, target, forward)

    async def get_prompt(self, ctx: Ctx, params: types.GetPromptRequestParams, *, passing_through: bool = False) -> Any:
        """Get a prompt, with its arguments, from the server that lists it (``passing_through`` as for reads)."""
        route = self._routes().prompts.get(params.name)
        if route is None:
            raise self._unavailable(params.name, prompt=True) or unknown_prompt(params.name)
        agent, target = current_agent(), ("prompts/get", params.name)
        if params.request_state is not None:
            return await self._rounds.resume(agent, target, params.request_state, params.input_responses)
        admission = await self._admit_or_raise(ctx, route.server, params.name, "prompt")
        era = is_modern(ctx)
        plain = era and self._plain_modern(ctx, params)

        async def forward(caller: Caller) -> types.GetPromptResult | dict[str, Any]:
            with self._measured(admission, agent, route.server, params.name):
                capabilities = ctx.session.client_capabilities
                async with self._pool.use(route.server, agent, capabilities, modern=era) as downstream:
                    server = _present(route.server, downstream)
                    got = server.session.get_prompt(
                        route.upstream_name,
                        params.arguments,
                        caller=caller,
                        meta=forwarded_meta(ctx),
                        answers=unasked_answers(ctx, params),
                        passing_through=passing_through or (plain and not caller.interactive),
                        modern_agent=era,
                    )
                    return _delivered(await _downstream_call(got))

        return await self._run(ctx, agent, target, forward)

    def _plain_modern(self, ctx: Ctx, params: _Forwarded) -> bool:
        """Whether a 2026-07-28 agent's request may have its server's result passed through (``pass_through.py``).

        No progress token, no answers to questions and no log level asked for (the caller must also be one
        that can be asked nothing: questions are asked in rounds, the typed way); never with
        ``passes_through`` off.
        """
        meta = ctx.meta
        return (
            self._passes_through
            and params.input_responses is None
            and _log_level(ctx) is None
            and (not meta or meta.get("progress_token") is None)
        )

    async def _run(
        self,
        ctx: Ctx,
        agent: str,
        target: Target,
        forward: Callable[[Caller], Awaitable[_R]],
        *,
        follow: Follow | None = None,
    ) -> _R | types.InputRequiredResult:
        """Forward with the agent as the caller; an interactive 2026 agent's request runs in rounds."""
        if not is_modern(ctx):
            return await forward(HandshakeCaller(agent, session_id(ctx), ctx.session, ctx.request_id, self._record))
        caller = RoundTripCaller(agent, ctx.session.client_capabilities, self._record)
        if not caller.interactive:
            return await forward(caller)
        return await self._rounds.begin(agent, target, caller, lambda: forward(caller), follow=follow)

    async def _record(
        self, agent: str, server: str, method: str, outcome: str, latency_s: float, answer: types.InputResponse | None
    ) -> None:
        if isinstance(answer, types.ListRootsResult):
            self._roots.remember(agent, answer)
        await self._guard.record_question(agent, server, method, outcome, latency_s)

    async def _admit_or_raise(
        self, ctx: Ctx, server: str, name: str, kind: RequestKind, *, ask: bool = True
    ) -> Admission:
        """Apply the agent's decision for the whole server to a prompt, resource, subscription or completion.

        Raises:
            MCPError: refused (denied, not answered in time, or ``ask`` False and the policy asks).
        """
        agent = current_agent()
        admission = await self._guard.admit(
            agent=agent,
            session_id=session_id(ctx),
            server=server,
            tool=None,
            public_name=name,
            arguments=None,
            disconnected=_disconnect_check(ctx),
            kind=kind,
            ask=ask,
        )
        if not admission.allowed:
            self._metrics.count_call(agent, server, admission.refused_as, 0.0)
            raise MCPError(ErrorCode.DENIED_BY_POLICY, admission.refusal or "denied")
        return admission

    @contextlib.contextmanager
    def _measured(self, admission: Admission, agent: str, server: str, name: str) -> Iterator[None]:
        """Time a forwarded request that is not a tool call; record and count how it ended, as for calls."""
        started = time.perf_counter()
        outcome = "ok"
        try:
            yield
        except MCPError as exc:
            codes = {ErrorCode.SERVER_UNAVAILABLE: "unavailable", ErrorCode.TIMEOUT: "timeout"}
            outcome = codes.get(exc.error.code, "protocol_error")  # type: ignore[call-overload]
            raise
        except BaseException:
            outcome = "withdrawn"
            raise
        finally:
            self._record_outcome(admission, agent, server, name, outcome, started)

    def _record_outcome(
        self,
        admission: Admission,
        agent: str,
        server: str,
        name: str,
        outcome: str,
        started: float,
        size: int | None = None,
    ) -> None:
        """Count and audit how a forwarded request ended (the same outcome in both)."""
        latency = time.perf_counter() - started
        self._metrics.count_call(agent, server, outcome, latency)
        self._guard.record_outcome(
            admission, agent=agent, server=server, tool=name, outcome=outcome, latency_s=latency, result_size=size
        )

    # --- completions, subscriptions, log levels -------------------------------------------------

    async def complete(self, ctx: Ctx, params: types.CompleteRequestParams) -> types.CompleteResult:
        """Route ``completion/complete`` to the server owning the prompt or resource template."""
        routes, ref = self._routes(), params.ref
        upstream_ref: types.PromptReference | types.ResourceTemplateReference
        if isinstance(ref, types.PromptReference):
            route = routes.prompts.get(ref.name)
            if route is None:
                raise unknown_prompt(ref.name)
            server, upstream_ref = route.server, types.PromptReference(name=route.upstream_name)
        else:
            found = routes.server_for_template(ref.uri)
            if found is None:
                raise unknown_resource(ref.uri, template=True)
            server, upstream_ref = found, types.ResourceTemplateReference(uri=ref.uri)
        name = ref.name if isinstance(ref, types.PromptReference) else ref.uri
        # Completions come with every keystroke: they are never put to the person.
        admission = await self._admit_or_raise(ctx, server, name, "completion", ask=False)
        with self._measured(admission, current_agent(), server, name):
            completing = (
                self._server(server)
                .for_era(modern=is_modern(ctx))
                .session.complete(upstream_ref, params.argument, params.context, meta=forwarded_meta(ctx))
            )
            result = await _downstream_call(completing)
        return without_downstream_identity(result)

    async def subscribe(self, ctx: Ctx, params: types.SubscribeRequestParams) -> types.EmptyResult:
        """Subscribe a handshake-era session to a resource's updates."""
        agent = current_agent()
        receiver = self._notices.session(session_id(ctx) or "", agent, ctx.session)
        for server in self.subscription_servers(agent, params.uri):
            admission = await self._admit_or_raise(ctx, server, params.uri, "subscription")
            with self._measured(admission, agent, server, params.uri):
                await _downstream_call(self._notices.subscribe(receiver, server, params.uri))
        return types.EmptyResult()

    async def unsubscribe(self, ctx: Ctx, params: types.UnsubscribeRequestParams) -> types.EmptyResult:
        """End a handshake-era session's subscription to a resource (wherever it was subscribed)."""
        receiver = self._notices.session(session_id(ctx) or "", current_agent(), ctx.session)
        for server in receiver.servers_for(params.uri):
            await _downstream_call(self._notices.unsubscribe(receiver, server, params.uri))
        return types.EmptyResult()

    def subscription_servers(self, agent: str, uri: str) -> list[str]:
        """Where a subscription to ``uri`` goes: the server that offers it, else every one that may.

        A URI that no listing or template shows yet (a resource a tool will create, say) is
        subscribed at every ready server the agent may use that supports subscriptions.

        Raises:
            MCPError: the owning server is denied to the agent, or no server can take the subscription.
        """
        server = self._routes().server_for_uri(uri)
        if server is not None:
            if not self._guard.may_see(agent, server):
                raise MCPError(ErrorCode.DENIED_BY_POLICY, f"Toolgate: agent {agent!r} may not use server {server!r}")
            return [server]
        candidates = [
            name
            for name, downstream in self._pool.servers.items()
            if downstream.session.supports_subscriptions and self._guard.may_see(agent, name)
        ]
        if not candidates:
            raise unknown_resource(uri)
        return candidates

    async def set_level(self, ctx: Ctx, params: types.SetLevelRequestParams) -> types.EmptyResult:
        """Send a handshake-era session the servers' log messages at this level and above."""
        receiver = self._notices.session(session_id(ctx) or "", current_agent(), ctx.session)
        await self._notices.set_level(receiver, params.level)
        return types.EmptyResult()

    def _unavailable(self, name: str, *, prompt: bool) -> MCPError | None:
        """For a name no ready server lists: -32001 naming the server that is down, when the agent may see it."""
        route = self._routes().unavailable_server(name, prompt=prompt)
        if route is not None and self._guard.may_see(
            current_agent(), route.server, None if prompt else route.upstream_name
        ):
            server = self._pool.servers.get(route.server)
            if server is not None:
                return MCPError(ErrorCode.SERVER_UNAVAILABLE, server.not_ready_message())
        return None

    def _server(self, name: str) -> DownstreamServer:
        return _present(name, self._pool.servers.get(name))


def unknown_tool(name: str) -> types.CallToolResult:
    """What a server answers for a tool it does not have: an error result (Toolgate's code in ``_meta``)."""
    return types.CallToolResult(
        content=[types.TextContent(text=f"Unknown tool: {name!r} is not in tools/list")],
        is_error=True,
        _meta={TOOLGATE_CODE_KEY: int(ErrorCode.TOOL_NOT_FOUND)},
    )


def unknown_resource(uri: str, *, template: bool = False) -> MCPError:
    """The spec's error for an unknown resource: invalid params, with the URI in ``data``."""
    what = f"resource template {uri!r} is not in resources/templates/list" if template else f"resource {uri!r}"
    message = f"Unknown {what}" if template else f"Unknown resource: no configured server offers {what}"
    return MCPError(
        types.INVALID_PARAMS, message, data={"uri": uri, TOOLGATE_CODE_KEY: int(ErrorCode.RESOURCE_NOT_FOUND)}
    )


def unknown_prompt(name: str) -> MCPError:
    """The spec's error for an unknown prompt: invalid params, with the name in ``data``."""
    return MCPError(
        types.INVALID_PARAMS,
        f"Unknown prompt: {name!r} is not in prompts/list",
        data={"name": name, TOOLGATE_CODE_KEY: int(ErrorCode.PROMPT_NOT_FOUND)},
    )


def _present(name: str, server: DownstreamServer | None) -> DownstreamServer:
    """``server``, which must exist; a server removed while the request was routed is a protocol error."""
    if server is None:
        raise MCPError(ErrorCode.SERVER_UNAVAILABLE, f"server {name!r} was removed from the configuration")
    return server


async def _downstream_call(awaitable: Awaitable[_T]) -> _T:
    """Await a downstream request; Toolgate's own downstream errors become protocol errors for the agent."""
    try:
        return await awaitable
    except DownstreamError as exc:
        raise MCPError(exc.code, str(exc)) from exc


def forwarded_meta(ctx: Ctx) -> types.RequestParamsMeta | None:
    """The agent's ``_meta`` as the server should get it: without what concerns only the agent's hop.

    The progress token is the downstream session's own (progress is relayed), and the 2026 envelope
    (protocol version, client info and capabilities) is the downstream session's to send. Everything
    else (trace context, vendor keys, a 2026 request's log level) passes on unchanged.
    """
    if not ctx.meta:
        return None  # nothing to pass on (most requests)
    meta = {key: value for key, value in ctx.meta.items() if key not in HOP_META_KEYS}
    return types.RequestParamsMeta(**meta) if meta else None  # type: ignore[typeddict-item]


def unasked_answers(
    ctx: Ctx, params: types.CallToolRequestParams | types.GetPromptRequestParams | types.ReadResourceRequestParams
) -> types.InputResponses | None:
    """The ``inputResponses`` a 2026 agent sent with a first request (no ``requestState``): the server's to read.

    A server may take answers it never asked for in a round (SEP-2322); a retry within a round
    Toolgate handed out carries Toolgate's ``requestState`` and is resumed instead (``rounds.py``).
    """
    if not is_modern(ctx) or params.request_state is not None:
        return None
    return params.input_responses


def _log_level(ctx: Ctx) -> types.LoggingLevel | None:
    """The log level a 2026 request opted in to through ``_meta`` (None: it did not)."""
    if not is_modern(ctx):
        return None
    level = (ctx.meta or {}).get(LOG_LEVEL_META_KEY)
    return level if isinstance(level, str) and level in types.LoggingLevel.__args__ else None  # type: ignore[attr-defined,return-value]


def _disconnect_check(ctx: Ctx) -> Callable[[], Awaitable[bool]] | None:
    """How to tell that the agent's HTTP request is gone (uvicorn reports it to every receiver)."""
    request = ctx.request
    if request is None or not hasattr(request, "is_disconnected"):
        return None
    is_disconnected: Callable[[], Awaitable[bool]] = request.is_disconnected
    return is_disconnected


class ProgressRelay:
    """Relays a downstream's progress to the agent that asked for it (with a progress token).

    The SDK hands each notification over in a task of its own, which may run after the result it
    preceded; ``drain`` lets those finish so progress is not sent after the agent's stream closed.
    A 2026 agent's call has no open request between a round's questions and the agent's retry:
    progress arriving then waits for the retry (at most as long as a round stays parked).
    """

    def __init__(self, ctx: Ctx | None) -> None:
        self._ctx = ctx
        self._token = None if ctx is None else (ctx.meta or {}).get("progress_token")
        self._sending = 0
        if self._token is None:
            return  # no progress is ever relayed: nothing to wait for (the common case, without events)
        self._open = anyio.Event()
        self._open.set()
        self._idle = anyio.Event()
        self._idle.set()

    @property
    def callback(self) -> ProgressFnT | None:
        """The downstream progress callback, or None when the agent did not ask for progress."""
        return None if self._token is None else self._forward

    async def retarget(self, ctx: Ctx | None) -> None:
        """Follow the call across 2026 rounds: None while it waits for the agent's retry, then the retry's context.

        With None, progress already being sent on the request that is about to end gets there first (bounded).
        """
        if self._token is None:
            return  # the agent did not ask for progress: none is ever sent
        if ctx is None:
            if self._open.is_set():
                self._open = anyio.Event()
            with anyio.move_on_after(DRAIN_TIMEOUT_S):
                await self._idle.wait()
            return
        token = (ctx.meta or {}).get("progress_token")
        if self._token is not None and token is not None:
            self._ctx, self._token = ctx, token
        self._open.set()

    async def _forward(self, progress: float, total: float | None, message: str | None) -> None:
        self._sending += 1
        self._idle = anyio.Event()
        try:
            with anyio.move_on_after(PARKED_TTL_S):
                await self._open.wait()
            ctx, token = self._ctx, self._token
            assert ctx is not None and token is not None
            notification = types.ProgressNotification(
                params=types.ProgressNotificationParams(
                    progress_token=token, progress=progress, total=total, message=message
                )
            )
            await ctx.session.send_notification(notification, related_request_id=ctx.request_id)
        finally:
            self._sending -= 1
            if self._sending == 0:
                self._idle.set()

    async def drain(self) -> None:
        """Let progress that arrived with the result reach the agent first (bounded)."""
        if self._token is None:
            return
        for _ in range(FLUSH_CHECKPOINTS):
            await anyio.lowlevel.checkpoint()
        with anyio.move_on_after(DRAIN_TIMEOUT_S):
            await self._idle.wait()


NO_PROGRESS = ProgressRelay(None)
"""The relay of every call whose agent asked for no progress: it relays nothing and keeps nothing."""


def _delivered(result: _R | dict[str, Any]) -> _R | dict[str, Any]:
    """A result for the agent: passed through as it is (already without the stamp), else without the stamp."""
    return result if isinstance(result, dict) else without_downstream_identity(result)


def without_downstream_identity(result: _R) -> _R:
    """``result`` without the serverInfo stamp a 2026-era downstream put in its ``_meta``."""
    meta = result.meta
    if not meta or SERVER_INFO_META_KEY not in meta:
        return result
    kept = {k: v for k, v in meta.items() if k != SERVER_INFO_META_KEY}
    return result.model_copy(update={"meta": kept or None})

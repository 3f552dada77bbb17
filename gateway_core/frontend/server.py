"""The MCP server agents talk to: the union of every ready downstream server, routed by name and URI.

Lifecycle: built once per gateway; ``refresh()`` rebuilds the routing table whenever a downstream's
state or catalog changes, and ``watch_catalog()`` (run in the gateway's task group) coalesces those
changes and tells connected agents, in both protocol eras: handshake-era sessions get
``notifications/*/list_changed`` on their standalone stream, 2026-07-28 agents get the same events
on their ``subscriptions/listen`` streams.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
import mcp_types as types
from mcp.server import ServerRequestContext
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.context import HandlerResult
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.server.session import ServerSession
from mcp.server.subscriptions import (
    InMemorySubscriptionBus,
    ListenHandler,
    PromptsListChanged,
    ResourcesListChanged,
    ToolsListChanged,
)
from mcp.shared.dispatcher import ProgressFnT
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from gateway_core.config import Config
from gateway_core.downstream.base import ServerState
from gateway_core.downstream.pool import DownstreamPool
from gateway_core.downstream.server import DownstreamServer
from gateway_core.errors import DownstreamError, ErrorCode, ServerUnavailableError
from gateway_core.frontend.catalog import Routes, ServerCatalog, build_routes
from gateway_core.frontend.guard import CallGuard, refusal_result
from gateway_core.frontend.metrics import Metrics

logger = logging.getLogger(__name__)

# The identity stamp a 2026-era downstream adds to its results; the agent must see Toolgate's, not it.
SERVER_INFO_META_KEY = "io.modelcontextprotocol/serverInfo"
UNKNOWN_AGENT = "-"

Ctx = ServerRequestContext[Any, Any]
_R = TypeVar("_R", bound=types.Result)
LISTING_METHODS = frozenset({"tools/list", "prompts/list", "resources/list", "resources/templates/list"})
ListChanged = ToolsListChanged | PromptsListChanged | ResourcesListChanged


def current_agent() -> str:
    """The id of the agent whose request is being handled (set by the HTTP layer's authentication)."""
    token = get_access_token()
    return token.client_id if token is not None else UNKNOWN_AGENT


class AgentFacingServer:
    """The low-level MCP ``Server`` that presents all downstream servers as one.

    Args:
        config: the configuration the pool was built from (for name prefixes).
        pool: the downstream servers to aggregate.
        guard: applies each agent's policy, approvals and auditing to calls.
        metrics: where tool calls are counted.
        version: Toolgate's version, shown to agents as the server version.
    """

    def __init__(
        self, config: Config, pool: DownstreamPool, guard: CallGuard, metrics: Metrics, *, version: str
    ) -> None:
        self._config = config
        self._pool = pool
        self._guard = guard
        self._metrics = metrics
        self._routes = Routes()
        self._changed = anyio.Event()
        self._refreshed = anyio.Event()
        self._policy_changed = False
        self._bus = InMemorySubscriptionBus()
        self._listen = ListenHandler(self._bus)
        self._legacy_sessions: dict[str, ServerSession] = {}
        self.server: Server[Any] = Server(
            "toolgate",
            version=version,
            title="Toolgate",
            instructions="Toolgate: one gateway in front of the MCP servers configured on this machine.",
            get_tool_input_schema=lambda name: self._routes.input_schemas.get(name),
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            on_list_resources=self._list_resources,
            on_list_resource_templates=self._list_resource_templates,
            on_read_resource=self._read_resource,
            on_list_prompts=self._list_prompts,
            on_get_prompt=self._get_prompt,
            on_subscriptions_listen=self._listen,
        )
        # The session manager builds handshake options without NotificationOptions, which would
        # advertise listChanged=false; agents must know our listings change.
        self.server.create_initialization_options = functools.partial(  # type: ignore[method-assign]
            self.server.create_initialization_options,
            NotificationOptions(tools_changed=True, resources_changed=True, prompts_changed=True),
        )
        # Replaces the SDK's default OpenTelemetry middleware: it only costs time without an exporter.
        self.server.middleware = [self._track_legacy_session, self._serve_cached_listing]
        self._listings: dict[tuple[str, str, str], HandlerResult] = {}
        self._generation = 0

    @property
    def routes(self) -> Routes:
        """The current routing table (read-only; replaced whole on every refresh)."""
        return self._routes

    def apply_config(self, config: Config) -> None:
        """Use new prefixes and policies: rebuild the listings and tell agents they may have changed."""
        self._config = config
        self._guard.apply_config(config)
        self.invalidate_listings()
        self._policy_changed = True
        self._changed.set()

    def on_pool_change(self, server: str) -> None:
        """Called by the pool when ``server``'s state or catalog changed; schedules a refresh."""
        self._changed.set()

    def refresh(self) -> set[type[ListChanged]]:
        """Rebuild the routing table from the ready servers; return which listings changed."""
        ready = [
            ServerCatalog(name, self._config.prefix_for(name), ds.catalog)
            for name, ds in self._pool.servers.items()
            if ds.status.state is ServerState.READY and name in self._config.servers
        ]
        old, new = self._routes, build_routes(ready)
        self._routes = new
        for collision in sorted(set(new.collisions) - set(old.collisions)):
            logger.warning("name collision: %s", collision)
        self._generation += 1
        self._listings.clear()
        changed: set[type[ListChanged]] = set()
        if old.tool_list != new.tool_list:
            changed.add(ToolsListChanged)
        if old.prompt_list != new.prompt_list:
            changed.add(PromptsListChanged)
        if (old.resource_list, old.template_list) != (new.resource_list, new.template_list):
            changed.add(ResourcesListChanged)
        return changed

    async def watch_catalog(self) -> None:
        """Refresh and announce changes until cancelled; bursts of changes are announced once."""
        while True:
            await self._changed.wait()
            self._changed = anyio.Event()
            changes = self.refresh()
            if self._policy_changed:
                # What each agent may see can change with a policy even when the catalog did not.
                self._policy_changed = False
                changes = {ToolsListChanged, PromptsListChanged, ResourcesListChanged}
            self._refreshed.set()
            self._refreshed = anyio.Event()
            for event in sorted(changes, key=lambda e: e.__name__):
                await self._announce(event)

    async def wait_refreshed(self) -> None:
        """Wait until the routing table is next rebuilt (after any downstream state or catalog change)."""
        await self._refreshed.wait()

    def close(self) -> None:
        """End every 2026 listen stream so shutdown does not wait on them."""
        self._listen.close()

    async def _announce(self, event: type[ListChanged]) -> None:
        await self._bus.publish(event())
        for session in list(self._legacy_sessions.values()):
            if event is ToolsListChanged:
                await session.send_tool_list_changed()
            elif event is PromptsListChanged:
                await session.send_prompt_list_changed()
            else:
                await session.send_resource_list_changed()

    async def _track_legacy_session(self, ctx: Ctx, call_next: Callable[[Ctx], Awaitable[HandlerResult]]) -> Any:
        """Remember one session object per handshake-era HTTP session, to send it list_changed later."""
        if ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS and ctx.request is not None:
            session_id = ctx.request.headers.get("mcp-session-id")
            if session_id is not None and session_id not in self._legacy_sessions:
                self._legacy_sessions[session_id] = ctx.session
                # The SDK has no public hook for "this session ended"; its connection's exit stack is it.
                connection = getattr(ctx.session, "_connection", None)
                if connection is not None:
                    connection.exit_stack.callback(self._legacy_sessions.pop, session_id, None)
        return await call_next(ctx)

    async def _serve_cached_listing(self, ctx: Ctx, call_next: Callable[[Ctx], Awaitable[HandlerResult]]) -> Any:
        """Answer list requests from the wire form built on the first request after a catalog change.

        Dumping and validating a large listing costs milliseconds per request (about 15 ms for
        1,000 tools); the catalog only changes on a refresh, which empties this cache.
        """
        if ctx.method not in LISTING_METHODS or (ctx.params or {}).get("cursor") is not None:
            return await call_next(ctx)
        key = (current_agent(), ctx.method, ctx.protocol_version)
        cached = self._listings.get(key)
        if cached is None:
            generation = self._generation
            cached = await call_next(ctx)
            if generation == self._generation:
                self._listings[key] = cached
        return cached

    def invalidate_listings(self) -> None:
        """Forget the cached listings (the catalog or a policy changed)."""
        self._generation += 1
        self._listings.clear()

    async def _list_tools(self, ctx: Ctx, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        agent, routes = current_agent(), self._routes
        visible = [
            tool
            for tool in routes.tool_list
            if self._guard.may_see(agent, routes.tools[tool.name].server, routes.tools[tool.name].upstream_name)
        ]
        return types.ListToolsResult(tools=visible)

    async def _list_prompts(self, ctx: Ctx, params: types.PaginatedRequestParams | None) -> types.ListPromptsResult:
        agent, routes = current_agent(), self._routes
        visible = [p for p in routes.prompt_list if self._guard.may_see(agent, routes.prompts[p.name].server)]
        return types.ListPromptsResult(prompts=visible)

    async def _list_resources(self, ctx: Ctx, params: types.PaginatedRequestParams | None) -> types.ListResourcesResult:
        agent, routes = current_agent(), self._routes
        visible = [r for r in routes.resource_list if self._guard.may_see(agent, routes.resources[r.uri])]
        return types.ListResourcesResult(resources=visible)

    async def _list_resource_templates(
        self, ctx: Ctx, params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        agent, routes = current_agent(), self._routes
        visible = [
            template
            for template, server in zip(routes.template_list, routes.template_servers, strict=True)
            if self._guard.may_see(agent, server)
        ]
        return types.ListResourceTemplatesResult(resource_templates=visible)

    async def _call_tool(self, ctx: Ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
        route = self._routes.tools.get(params.name)
        if route is None:
            raise MCPError(ErrorCode.TOOL_NOT_FOUND, f"unknown tool {params.name!r}: it is not in tools/list")
        agent = current_agent()
        admission = await self._guard.admit(
            agent=agent,
            session_id=_session_id(ctx),
            server=route.server,
            tool=route.upstream_name,
            public_name=params.name,
            arguments=params.arguments,
            disconnected=_disconnect_check(ctx),
        )
        if not admission.allowed:
            self._metrics.count_call(agent, route.server, "denied", 0.0)
            return refusal_result(admission)
        started = time.perf_counter()
        outcome, size = "ok", None
        try:
            server = self._pool.servers.get(route.server)
            if server is None:
                raise ServerUnavailableError(f"server {route.server!r} was removed from the configuration")
            result = await server.call_tool(route.upstream_name, params.arguments, progress=_progress_forwarder(ctx))
            outcome = "tool_error" if result.is_error else "ok"
            result = _without_downstream_identity(result)
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
            latency = time.perf_counter() - started
            self._metrics.count_call(agent, route.server, outcome, latency)
            self._guard.finish(
                admission,
                agent=agent,
                server=route.server,
                tool=route.upstream_name,
                outcome=outcome,
                latency_s=latency,
                result_size=size,
            )

    async def _read_resource(self, ctx: Ctx, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        server = self._routes.server_for_uri(params.uri)
        if server is None:
            raise MCPError(ErrorCode.RESOURCE_NOT_FOUND, f"no configured server offers resource {params.uri!r}")
        await self._admit_or_raise(ctx, server, params.uri)
        try:
            result = await self._server(server).read_resource(params.uri)
        except DownstreamError as exc:
            raise MCPError(exc.code, str(exc)) from exc
        return _without_downstream_identity(result)

    async def _get_prompt(self, ctx: Ctx, params: types.GetPromptRequestParams) -> types.GetPromptResult:
        route = self._routes.prompts.get(params.name)
        if route is None:
            raise MCPError(ErrorCode.PROMPT_NOT_FOUND, f"unknown prompt {params.name!r}: it is not in prompts/list")
        await self._admit_or_raise(ctx, route.server, params.name)
        try:
            result = await self._server(route.server).get_prompt(route.upstream_name, params.arguments)
        except DownstreamError as exc:
            raise MCPError(exc.code, str(exc)) from exc
        return _without_downstream_identity(result)

    async def _admit_or_raise(self, ctx: Ctx, server: str, name: str) -> None:
        """Apply the agent's decision for the whole server to a prompt or resource; a refusal is a protocol error."""
        admission = await self._guard.admit(
            agent=current_agent(),
            session_id=_session_id(ctx),
            server=server,
            tool=None,
            public_name=name,
            arguments=None,
            disconnected=_disconnect_check(ctx),
        )
        if not admission.allowed:
            raise MCPError(ErrorCode.DENIED_BY_POLICY, admission.refusal or "denied")

    def _server(self, name: str) -> DownstreamServer:
        server = self._pool.servers.get(name)
        if server is None:
            raise MCPError(ErrorCode.SERVER_UNAVAILABLE, f"server {name!r} was removed from the configuration")
        return server


def _disconnect_check(ctx: Ctx) -> Callable[[], Awaitable[bool]] | None:
    """How to tell that the agent's HTTP request is gone (uvicorn reports it to every receiver)."""
    request = ctx.request
    if request is None or not hasattr(request, "is_disconnected"):
        return None
    is_disconnected: Callable[[], Awaitable[bool]] = request.is_disconnected
    return is_disconnected


def _session_id(ctx: Ctx) -> str | None:
    """The agent's handshake-era session (for "allow for this session"); 2026 agents have none."""
    return ctx.request.headers.get("mcp-session-id") if ctx.request is not None else None


def _progress_forwarder(ctx: Ctx) -> ProgressFnT | None:
    """A callback that relays downstream progress to the agent, if the agent asked for progress."""
    token = (ctx.meta or {}).get("progress_token")
    if token is None:
        return None

    async def forward(progress: float, total: float | None, message: str | None) -> None:
        notification = types.ProgressNotification(
            params=types.ProgressNotificationParams(
                progress_token=token, progress=progress, total=total, message=message
            )
        )
        await ctx.session.send_notification(notification, related_request_id=ctx.request_id)

    return forward


def _without_downstream_identity(result: _R) -> _R:
    meta = result.meta
    if not meta or SERVER_INFO_META_KEY not in meta:
        return result
    kept = {k: v for k, v in meta.items() if k != SERVER_INFO_META_KEY}
    return result.model_copy(update={"meta": kept or None})

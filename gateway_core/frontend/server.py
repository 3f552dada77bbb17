"""The MCP server agents talk to: the union of every ready downstream server, routed by name and URI.

Lifecycle: built once per gateway; ``refresh()`` rebuilds the routing table whenever a downstream's
state or catalog changes, and ``watch_catalog()`` (run by ``run()`` in the gateway's task group) coalesces those
changes and tells connected agents, in both protocol eras: handshake-era sessions get
``notifications/*/list_changed`` on their standalone stream, 2026-07-28 agents get the same events
on their ``subscriptions/listen`` streams.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.abc
import mcp_types as types
from mcp.server import ServerRequestContext
from mcp.server.context import HandlerResult
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.server.models import InitializationOptions
from mcp.server.session import ServerSession
from mcp.server.subscriptions import (
    ListenHandler,
    PromptsListChanged,
    ResourcesListChanged,
    ToolsListChanged,
)
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from gateway_core.downstream.base import ServerState
from gateway_core.downstream.by_capability import LISTING_WAIT_S, capability_key
from gateway_core.downstream.pool import DownstreamPool
from gateway_core.events import EventStream, NamesChanged, SessionEnded
from gateway_core.frontend.forward import (
    SERVER_INFO_META_KEY,
    UNKNOWN_AGENT,
    RequestForwarder,
    current_agent,
    is_modern,
)
from gateway_core.frontend.guard import CallGuard
from gateway_core.frontend.hot_path import Forward, HotPath
from gateway_core.frontend.instructions import ServerInstructions, merged_instructions
from gateway_core.frontend.listed import as_listed_to
from gateway_core.frontend.listen_bus import ListenBus
from gateway_core.frontend.metrics import Metrics
from gateway_core.frontend.modern_lane import ModernLane
from gateway_core.frontend.notices import Notices, Receiver
from gateway_core.frontend.on_demand import OnDemandTools
from gateway_core.frontend.roots import AgentRoots
from gateway_core.frontend.rounds import Rounds
from gateway_core.frontend.routing import Routes, ServerCatalog, build_routes
from gateway_core.frontend.runtime import RuntimeCell
from gateway_core.frontend.tasks import TASKS_CAPABILITY, Tasks, may_use_tasks, requires_task

logger = logging.getLogger(__name__)

__all__ = ["SERVER_INFO_META_KEY", "UNKNOWN_AGENT", "AgentFacingServer", "current_agent"]

Ctx = ServerRequestContext[Any, Any]
LISTING_METHODS = frozenset({"tools/list", "prompts/list", "resources/list", "resources/templates/list"})
ListChanged = ToolsListChanged | PromptsListChanged | ResourcesListChanged


class AgentFacingServer:
    """The low-level MCP ``Server`` that presents all downstream servers as one.

    Args:
        runtime: the gateway's runtime: its configuration (name prefixes) and policies are read from
            it, and each rebuilt routing table is put in it.
        pool: the downstream servers to aggregate.
        guard: applies each agent's policy, approvals and auditing to calls.
        metrics: where tool calls are counted.
        events: where a session's end is published, and heard by everything that keeps per-session state.
        version: Toolgate's version, shown to agents as the server version.
        hot_path: whether plain requests take the short way (``gateway.hot_path_enabled``); here, whether a
            2026-07-28 agent's plain tool call gets its server's result as it came (``forward.py``).
    """

    def __init__(
        self,
        runtime: RuntimeCell,
        pool: DownstreamPool,
        guard: CallGuard,
        metrics: Metrics,
        events: EventStream,
        *,
        version: str,
        hot_path: bool = True,
    ) -> None:
        self._runtime = runtime
        self._events = events
        self._pool = pool
        self._guard = guard
        self._metrics = metrics
        self._changed = anyio.Event()
        self._refreshed = anyio.Event()
        self._policy_changed = False
        self._bus = ListenBus()
        self._listen = ListenHandler(self._bus)
        # Each handshake-era session's agent and session object, by session id.
        self._legacy_sessions: dict[str, tuple[str, ServerSession]] = {}
        # Told (session id, request id) of a handshake-era request that ended without a result.
        self.on_unanswered: Callable[[str, str], None] | None = None
        self._ready: set[str] = set()
        self._era_generations: dict[str, int] = {}
        self.notices = Notices(pool, lambda agent, server: guard.may_see(agent, server), self._bus)
        self.rounds = Rounds()
        self.roots = AgentRoots()
        forward = RequestForwarder(
            lambda: self._runtime.now.routes,
            pool,
            guard,
            metrics,
            self.notices,
            self.rounds,
            self.roots,
            passes_through=hot_path,
        )
        self._forward = forward
        self.on_demand = OnDemandTools(runtime, pool, guard, forward)
        # The handlers of the methods the hot path and the modern lane serve (``hot_path.PARAMS``).
        self._hot_forwards: dict[str, Forward] = {
            "tools/call": forward.call_tool,
            "resources/read": forward.read_resource,
            "prompts/get": forward.get_prompt,
        }
        self.hot_path = HotPath(
            sessions=self._legacy_sessions.get,
            routes=lambda: self._runtime.now.routes,
            on_demand=self.on_demand.is_on_demand,
            forwards=self._hot_forwards,
            metrics=metrics,
            unanswered=self._call_unanswered,
        )
        self.tasks = Tasks(
            lambda: self._runtime.now.routes, pool, guard, self.on_demand.call_tool, self.on_demand.called_name
        )
        # A session's end reaches everything that keeps something per session.
        ended_handlers = (
            self._forget_session,
            guard.session_ended,
            self.notices.session_ended,
            self.roots.session_ended,
            self.tasks.session_ended,
        )
        for ended in ended_handlers:
            events.on(SessionEnded, _with_session_id(ended))
        self.server: Server[Any] = Server(
            "toolgate",
            version=version,
            title="Toolgate",
            get_tool_input_schema=lambda name: self._runtime.now.routes.input_schemas.get(name),
            on_list_tools=self._list_tools,
            on_call_tool=self.on_demand.call_tool,
            on_list_resources=self._list_resources,
            on_list_resource_templates=self._list_resource_templates,
            on_read_resource=forward.read_resource,
            on_subscribe_resource=forward.subscribe,
            on_unsubscribe_resource=forward.unsubscribe,
            on_list_prompts=self._list_prompts,
            on_get_prompt=forward.get_prompt,
            on_completion=forward.complete,
            on_subscriptions_listen=self._listen_with_subscriptions,
        )
        # Registered by hand: the constructor arguments for these warn that logging is deprecated
        # in 2026-07-28, yet handshake-era agents use it.
        self.server.add_request_handler("logging/setLevel", types.SetLevelRequestParams, forward.set_level)
        self.server.add_notification_handler(
            "notifications/roots/list_changed", types.NotificationParams, self._roots_changed
        )
        # 2025-11-25 tasks: the SDK has their types but serves none of their methods.
        self.server.add_request_handler("tasks/get", types.GetTaskRequestParams, self.tasks.get)
        self.server.add_request_handler("tasks/result", types.GetTaskPayloadRequestParams, self.tasks.result)
        self.server.add_request_handler("tasks/cancel", types.CancelTaskRequestParams, self.tasks.cancel)
        self.server.add_request_handler("tasks/list", types.PaginatedRequestParams, self.tasks.list_tasks)
        # The session manager builds handshake options without NotificationOptions, which would
        # advertise listChanged=false (agents must know our listings change), and the SDK never offers tasks.
        self.server.create_initialization_options = functools.partial(  # type: ignore[method-assign]
            _with_tasks,
            functools.partial(
                self.server.create_initialization_options,
                NotificationOptions(tools_changed=True, resources_changed=True, prompts_changed=True),
            ),
        )
        # Replaces the SDK's default OpenTelemetry middleware: it only costs time without an exporter.
        self.server.middleware = [
            self._track_legacy_session,
            self._pass_on_instructions,
            self._serve_cached_listing,
            self.tasks.create,
        ]
        self._listings: dict[tuple[str, str, str, bool, str], HandlerResult] = {}
        self._generation = 0

    @property
    def routes(self) -> Routes:
        """The current routing table (read-only; replaced whole on every refresh)."""
        return self._runtime.now.routes

    def config_changed(self) -> None:
        """The runtime has a new configuration: rebuild the routes and listings, tell agents they may have changed."""
        self.invalidate_listings()
        self._policy_changed = True
        self._changed.set()

    def on_pool_change(self, server: str) -> None:
        """Called by the pool when ``server``'s state or catalog changed; schedules a refresh."""
        self._changed.set()

    def refresh(self) -> set[type[ListChanged]]:
        """Rebuild the routing table (ready servers listed, the others routed as unavailable); what changed."""
        config = self._runtime.now.config
        entries = [
            ServerCatalog(name, config.prefix_for(name), ds.routed_catalog, ds.status.state is ServerState.READY)
            for name, ds in self._pool.servers.items()
            if name in config.servers and config.servers[name].enabled
        ]
        old, new = self._runtime.now.routes, build_routes(entries)
        self._runtime.swap(lambda runtime: dataclasses.replace(runtime, routes=new))
        ready_now = {entry.server for entry in entries if entry.available}
        for name in sorted(ready_now - self._ready):
            self.notices.server_ready(name)
        self._ready = ready_now
        for collision in sorted(set(new.collisions) - set(old.collisions)):
            logger.warning("name collision: %s", collision)
        if old.names != new.names:
            self._events.publish(NamesChanged())
        self._generation += 1
        self._listings.clear()
        changed: set[type[ListChanged]] = set()
        eras = {name: generation for name, ds in self._pool.servers.items() if (generation := ds.era_generation)}
        if eras != self._era_generations:  # what handshake-era agents are listed (era_twin.py)
            self._era_generations = eras
            changed |= {ToolsListChanged, PromptsListChanged}
        if old.tool_list != new.tool_list:
            changed.add(ToolsListChanged)
        if old.prompt_list != new.prompt_list:
            changed.add(PromptsListChanged)
        if (old.resource_list, old.template_list) != (new.resource_list, new.template_list):
            changed.add(ResourcesListChanged)
        return changed

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled: catalog changes, notices from servers, and 2026 requests between rounds."""
        async with anyio.create_task_group() as tg:
            await tg.start(self.rounds.run)
            tg.start_soon(self.notices.run)
            tg.start_soon(self.tasks.run)
            tg.start_soon(self.watch_catalog)
            task_status.started()

    async def watch_catalog(self) -> None:
        """Refresh and announce changes until cancelled; bursts of changes are announced once."""
        while True:
            await self._changed.wait()
            self._changed = anyio.Event()
            changes = self.refresh()
            server_lists = self.on_demand.changed_server_lists()
            told = self._told_of_tools(ToolsListChanged in changes, server_lists)
            if self._policy_changed:
                # What each agent may see can change with a policy even when the catalog did not.
                self._policy_changed = False
                changes, told = {ToolsListChanged, PromptsListChanged, ResourcesListChanged}, _everyone
            elif server_lists:
                changes.add(ToolsListChanged)
            self._refreshed.set()
            self._refreshed = anyio.Event()
            for event in sorted(changes, key=lambda e: e.__name__):
                await self._announce(event, told if event is ToolsListChanged else _everyone)

    def _told_of_tools(self, tools_changed: bool, server_lists: set[str]) -> Callable[[str], bool]:
        """Which agents hear that the tool list changed: on-demand ones only when their servers changed."""

        def told(agent: str) -> bool:
            if self.on_demand.is_on_demand(agent):
                return agent in server_lists
            return tools_changed

        return told

    async def wait_refreshed(self) -> None:
        """Wait until the routing table is next rebuilt (after any downstream state or catalog change)."""
        await self._refreshed.wait()

    def close(self) -> None:
        """End every 2026 listen stream so shutdown does not wait on them."""
        self._listen.close()
        self.on_demand.close()

    async def _announce(self, event: type[ListChanged], told: Callable[[str], bool]) -> None:
        await self._bus.publish(event(), only=lambda owner: not isinstance(owner, Receiver) or told(owner.agent))
        for agent, session in list(self._legacy_sessions.values()):
            if not told(agent):
                continue
            if event is ToolsListChanged:
                await session.send_tool_list_changed()
            elif event is PromptsListChanged:
                await session.send_prompt_list_changed()
            else:
                await session.send_resource_list_changed()

    async def _track_legacy_session(self, ctx: Ctx, call_next: Callable[[Ctx], Awaitable[HandlerResult]]) -> Any:
        """Remember one session object per handshake-era HTTP session, to send it list_changed later.

        A request of such a session that ends without a result (cancelled) is reported to
        ``on_unanswered``: its stream will carry nothing more, so there is nothing to resume.
        """
        session_id = None
        if ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS and ctx.request is not None:
            session_id = ctx.request.headers.get("mcp-session-id")
            if session_id is not None and session_id not in self._legacy_sessions:
                self._legacy_sessions[session_id] = (current_agent(), ctx.session)
                # The SDK has no public hook for "this session ended"; its connection's exit stack is it.
                connection = getattr(ctx.session, "_connection", None)
                if connection is not None:
                    connection.exit_stack.callback(self._session_ended, session_id)
                self.roots.session_seen(current_agent(), session_id, ctx.session)
        try:
            return await call_next(ctx)
        except anyio.get_cancelled_exc_class():
            if session_id is not None and ctx.request_id is not None and self.on_unanswered is not None:
                self.on_unanswered(session_id, str(ctx.request_id))
            raise

    def _call_unanswered(self, session_id: str, request_id: str) -> None:
        if self.on_unanswered is not None:
            self.on_unanswered(session_id, request_id)

    def _forget_session(self, session_id: str) -> None:
        self._legacy_sessions.pop(session_id, None)

    def _session_ended(self, session_id: str) -> None:
        self._events.publish(SessionEnded(session_id))

    async def _roots_changed(self, ctx: Ctx, params: types.NotificationParams) -> None:
        """An agent's roots changed: forget them and tell its own instances of per_agent servers."""
        agent = current_agent()
        self.roots.forget(agent)
        for server in self._pool.agent_instances(agent):
            try:
                await server.session.roots_changed()
            except Exception as exc:  # one instance that cannot be told must not stop the others
                logger.info("could not tell %r that the roots of %r changed: %s", server.name, agent, exc)

    async def _listen_with_subscriptions(self, ctx: Ctx, params: types.SubscriptionsListenRequestParams) -> Any:
        """Serve a 2026 listen stream; the resources it names are subscribed at their servers while it lasts.

        URIs of servers the agent may not use are left out of the subscription.
        """
        agent, requested = current_agent(), params.notifications.resource_subscriptions or []
        with self.notices.listening(agent, ctx.session) as receiver:
            allowed = []
            for uri in requested:
                try:
                    servers = self._forward.subscription_servers(agent, uri)
                except MCPError:
                    continue  # denied or offered by no server: left out of the subscription
                allowed.append(uri)
                for server in servers:
                    try:
                        await self.notices.subscribe(receiver, server, uri)
                    except Exception as exc:  # the server may be restarting; the others still count
                        logger.info("server %r did not take a subscription to %r: %s", server, uri, exc)
            if requested:
                notifications = params.notifications.model_copy(update={"resource_subscriptions": allowed or None})
                params = params.model_copy(update={"notifications": notifications})
            return await self._listen(ctx, params)

    async def _pass_on_instructions(self, ctx: Ctx, call_next: Callable[[Ctx], Awaitable[HandlerResult]]) -> Any:
        """Answer ``initialize`` and ``server/discover`` with the instructions of the servers this agent may use."""
        result = await call_next(ctx)
        if ctx.method in ("initialize", "server/discover") and isinstance(result, dict):
            text = self.instructions_for(current_agent())
            if text is None:
                result.pop("instructions", None)
            else:
                result["instructions"] = text
        return result

    def modern_lane(
        self, *, security: TransportSecuritySettings | None, json_response: bool, lifespan_state: Callable[[], Any]
    ) -> ModernLane:
        """The hot lane for plain 2026-07-28 calls, reads and prompts (``modern_lane.py``), run by the forwarder.

        ``security``, ``json_response`` and ``lifespan_state`` are the session manager's, as its entry for
        that era has them.
        """
        return ModernLane(
            self.server,
            security=security,
            json_response=json_response,
            lifespan_state=lifespan_state,
            known=self._routed_for_lane,
            forwards=self._hot_forwards,
            metrics=self._metrics,
        )

    def _routed_for_lane(self, params: types.RequestParams) -> bool:
        """Whether what a modern-lane request names is routed, as the hot path asks (``HotPath.plan``).

        A tool also needs its caller to see tools as listed: an on-demand agent's calls go the long way.
        """
        routes = self._runtime.now.routes
        if type(params) is types.CallToolRequestParams:
            return params.name in routes.tools and not self.on_demand.is_on_demand(current_agent())
        if type(params) is types.ReadResourceRequestParams:
            return routes.server_for_uri(params.uri) is not None
        return type(params) is types.GetPromptRequestParams and params.name in routes.prompts

    def instructions_for(self, agent: str) -> str | None:
        """The instructions of each ready server ``agent`` may use at all, merged (``instructions.py``).

        A server counts when the agent is shown one of its tools, or may use its prompts and resources.
        """
        config = self._runtime.now.config
        given = []
        for name in config.servers:
            server = self._pool.servers.get(name)
            if server is None or not server.instructions:
                continue
            tools = server.catalog.tools
            if self._guard.may_see(agent, name) or any(self._guard.may_see(agent, name, t.name) for t in tools):
                given.append(ServerInstructions(name, config.prefix_for(name), server.instructions))
        return merged_instructions(given)

    async def _serve_cached_listing(self, ctx: Ctx, call_next: Callable[[Ctx], Awaitable[HandlerResult]]) -> Any:
        """Answer list requests from the wire form built on the first request after a catalog change.

        Dumping and validating a large listing costs milliseconds per request (about 15 ms for
        1,000 tools); the catalog only changes on a refresh, which empties this cache.
        """
        if ctx.method not in LISTING_METHODS or (ctx.params or {}).get("cursor") is not None:
            return await call_next(ctx)
        capabilities = capability_key(ctx.session.client_capabilities)  # servers may list by them
        key = (current_agent(), ctx.method, ctx.protocol_version, may_use_tasks(ctx), capabilities)
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
        """The tools the agent may use: not denied to it, not needing tasks it cannot create, listed to its like."""
        await self._eras_settled(ctx)
        agent, routes, tasks = current_agent(), self._runtime.now.routes, may_use_tasks(ctx)
        visible = [
            tool
            for tool in routes.tool_list
            if self._guard.may_see(agent, routes.tools[tool.name].server, routes.tools[tool.name].upstream_name)
        ]
        visible = await as_listed_to(
            self._pool,
            ctx.session.client_capabilities,
            visible,
            lambda t: routes.tools[t.name],
            "tools",
            modern=is_modern(ctx),
        )
        # Tools the server defines for this agent's era (era_twin.py) decide whether they need tasks.
        visible = [tool for tool in visible if tasks or not requires_task(tool)]
        if self.on_demand.is_on_demand(agent):
            visible = self.on_demand.listing(agent, visible, tasks)
        return types.ListToolsResult(tools=visible)

    async def _eras_settled(self, ctx: Ctx) -> None:
        """For a handshake-era agent: until every server's twin is settled and routed (``era_twin.py``)."""
        if is_modern(ctx):
            return
        async with anyio.create_task_group() as tg:
            for server in self._pool.servers.values():
                tg.start_soon(server.era_settled)
        if self._changed.is_set():  # a twin kept just now is routed by the next refresh
            refreshed = self._refreshed
            with anyio.move_on_after(LISTING_WAIT_S):
                await refreshed.wait()

    async def _list_prompts(self, ctx: Ctx, params: types.PaginatedRequestParams | None) -> types.ListPromptsResult:
        await self._eras_settled(ctx)
        agent, routes = current_agent(), self._runtime.now.routes
        visible = [p for p in routes.prompt_list if self._guard.may_see(agent, routes.prompts[p.name].server)]
        capabilities = ctx.session.client_capabilities
        visible = await as_listed_to(
            self._pool, capabilities, visible, lambda p: routes.prompts[p.name], "prompts", modern=is_modern(ctx)
        )
        return types.ListPromptsResult(prompts=visible)

    async def _list_resources(self, ctx: Ctx, params: types.PaginatedRequestParams | None) -> types.ListResourcesResult:
        agent, routes = current_agent(), self._runtime.now.routes
        visible = [r for r in routes.resource_list if self._guard.may_see(agent, routes.resources[r.uri])]
        return types.ListResourcesResult(resources=visible)

    async def _list_resource_templates(
        self, ctx: Ctx, params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        agent, routes = current_agent(), self._runtime.now.routes
        visible = [
            template
            for template, server in zip(routes.template_list, routes.template_servers, strict=True)
            if self._guard.may_see(agent, server)
        ]
        return types.ListResourceTemplatesResult(resource_templates=visible)


def _with_tasks(create: Callable[..., InitializationOptions], *args: Any, **kwargs: Any) -> InitializationOptions:
    """``create``'s handshake options, offering the tasks Toolgate forwards (see tasks.py)."""
    options = create(*args, **kwargs)
    options.capabilities = options.capabilities.model_copy(update={"tasks": TASKS_CAPABILITY})
    return options


def _everyone(agent: str) -> bool:
    return True


def _with_session_id(handler: Callable[[str], None]) -> Callable[[SessionEnded], None]:
    def on_session_ended(event: SessionEnded) -> None:
        handler(event.session_id)

    return on_session_ended

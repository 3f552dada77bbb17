"""The state of one connected session (``LiveSession``) and the restart pacing (``Backoff``).

A ``LiveSession`` lives from a successful connect until the connection is lost; the supervisor in
``server.py`` makes a new one on every restart. It records why it was lost, collects list_changed
notices for the catalog refresher, and probes remote servers that would otherwise die unnoticed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import anyio
import mcp_types as types
from mcp.client.session import ClientSession, IncomingMessage
from mcp.client.subscriptions import listen
from mcp.shared.dispatcher import CallOptions, ProgressFnT
from mcp.shared.exceptions import MCPError
from mcp.shared.inbound import MCP_PROTOCOL_VERSION_HEADER
from mcp.shared.jsonrpc_dispatcher import JSONRPCDispatcher
from mcp.shared.subscriptions import PromptsListChanged, ResourcesListChanged, ResourceUpdated, ToolsListChanged
from mcp.shared.transport_context import TransportContext
from pydantic import BaseModel, TypeAdapter

from gateway_core.downstream.base import Connection, Notice
from gateway_core.downstream.catalog import Listing, advertised, announced
from gateway_core.downstream.envelope import PlainCalls, claimed

logger = logging.getLogger(__name__)

# Restart pacing: quick first retry, doubling up to a cap that still notices a fix within a minute.
INITIAL_BACKOFF_S = 0.5
MAX_BACKOFF_S = 30.0
# A server that stayed up this long is healthy again: its next failure restarts it quickly.
STABLE_AFTER_S = 60.0
# Idle remote servers are pinged this often; an HTTP transport has no other way to notice a dead peer.
PROBE_INTERVAL_S = 15.0
PROBE_TIMEOUT_S = 10.0

# What a server answers a task-augmented tools/call: a task, or (running it normally after all) a result.
TASK_CALL_RESULT: TypeAdapter[types.CreateTaskResult | types.CallToolResult] = TypeAdapter(
    types.CreateTaskResult | types.CallToolResult
)
_R = TypeVar("_R", bound=BaseModel)

_CHANGED: dict[type[types.ServerNotification], Listing] = {
    types.ToolListChangedNotification: Listing.TOOLS,
    types.ResourceListChangedNotification: Listing.RESOURCES,
    types.PromptListChangedNotification: Listing.PROMPTS,
}


@dataclass
class Backoff:
    """Exponential restart delays, reset after a stable period."""

    initial: float = INITIAL_BACKOFF_S
    maximum: float = MAX_BACKOFF_S
    stable_after: float = STABLE_AFTER_S
    _next: float = field(default=0.0, init=False)

    def next_delay(self, up_for: float) -> float:
        """The delay before the next start, given how long the last run stayed ready."""
        if up_for >= self.stable_after or self._next == 0.0:
            self._next = self.initial
        delay = self._next
        self._next = min(delay * 2, self.maximum)
        return delay


class LiveSession:
    """One connected session: the SDK session, what it negotiated, and how it ends."""

    def __init__(self, connection: Connection, *, on_notice: Callable[[Notice], None]) -> None:
        self.connection = connection
        self._on_notice = on_notice
        self.session: ClientSession
        self.dispatcher: JSONRPCDispatcher[TransportContext]
        self.lost = anyio.Event()
        # Set by the supervisor once the server's status shows the loss (after ``lost``).
        self.closed = anyio.Event()
        self.reason: str | None = None
        self.protocol_version: str | None = None
        self.server_info: types.Implementation | None = None
        self.instructions: str | None = None
        self.listings: frozenset[Listing] = frozenset()
        # The listings whose changes the server announces (a 2026-07-28 server: on its listen stream).
        self.announced: frozenset[Listing] = frozenset()
        self.logging = False
        self.subscriptions = False
        self.task_calls = False
        self.modern = False
        # Whether the connection closed while ``server/discover`` was unanswered (``session.start_session``).
        self.probe_closed = False
        # A 2026-07-28 session's log level, sent with each request (it has no logging/setLevel).
        self.log_level: types.LoggingLevel | None = None
        # The envelopes of its plain hot calls, made once (``envelope.PlainCalls``).
        self.plain_calls = PlainCalls()
        self._stale: set[Listing] = set()
        self._refresh = anyio.Event()
        # A 2026-07-28 session's resource subscriptions: the URIs its listen stream names.
        self._watched: set[str] = set()
        self._rewatch = anyio.Event()
        self._listening: frozenset[str] | None = None
        self._listened = anyio.Event()

    def adopt(self, result: types.InitializeResult) -> None:
        """Record what ``initialize`` negotiated."""
        self.protocol_version = result.protocol_version
        self.server_info = result.server_info
        self.instructions = result.instructions
        self.listings = advertised(result.capabilities)
        capabilities = result.capabilities
        self.logging = capabilities.logging is not None
        self.subscriptions = bool(capabilities.resources and capabilities.resources.subscribe)
        tasks = capabilities.tasks
        self.task_calls = bool(tasks and tasks.requests and tasks.requests.tools and tasks.requests.tools.call)

    def adopt_modern(self, result: types.DiscoverResult) -> None:
        """Record what ``server/discover`` told a 2026-07-28-only server's session.

        Such a server has no ``logging/setLevel``: a level goes with each request (``log_level``).
        It has no ``resources/subscribe`` either: its changes, and updates to the resources it was
        asked to watch (``watch``), come on a ``subscriptions/listen`` stream (``listen_for_changes``).
        """
        self.modern = True
        self.protocol_version = self.session.protocol_version
        self.server_info = self.session.server_info
        self.instructions = result.instructions
        self.listings = advertised(result.capabilities)
        capabilities = result.capabilities
        self.logging = capabilities.logging is not None
        self.subscriptions = bool(capabilities.resources and capabilities.resources.subscribe)
        self.announced = announced(capabilities)

    async def watch(self, uri: str, *, watched: bool = True) -> None:
        """On a 2026-07-28 session: add ``uri`` to (or drop it from) the listen stream's resources.

        Returns once a stream naming exactly the new set is open (the caller bounds the wait).
        """
        if (uri in self._watched) == watched:
            return
        if watched:
            self._watched.add(uri)
        else:
            self._watched.discard(uri)
        wanted = frozenset(self._watched)
        self._rewatch.set()
        while self._listening != wanted:
            listened = self._listened
            await listened.wait()

    async def listen_for_changes(self) -> None:
        """On a 2026-07-28 session: turn the server's events into catalog refreshes and resource updates.

        The stream is opened again whenever the watched resources change. Each time it opens, the
        listings are fetched again: a change may have happened while no stream was open (also
        between the first listing and the first stream). A server that announces no list changes
        and takes no subscriptions has nothing to say on such a stream: none is opened.
        """
        if not self.announced and not self.subscriptions:
            return
        while True:
            self._rewatch = anyio.Event()
            watched = frozenset(self._watched)
            if await self._listen_once(watched):
                return

    async def _listen_once(self, watched: frozenset[str]) -> bool:
        """Listen until the watched set changes (False) or the server ends the stream (True)."""
        kinds = {
            ToolsListChanged: Listing.TOOLS,
            PromptsListChanged: Listing.PROMPTS,
            ResourcesListChanged: Listing.RESOURCES,
        }
        rewatch = self._rewatch
        async with listen(
            self.session,
            tools_list_changed=Listing.TOOLS in self.announced,
            prompts_list_changed=Listing.PROMPTS in self.announced,
            resources_list_changed=Listing.RESOURCES in self.announced,
            resource_subscriptions=sorted(watched),
        ) as events:
            self._listening = watched
            self._listened.set()
            self._listened = anyio.Event()
            self._stale.update(self.listings)
            self._refresh.set()
            async with anyio.create_task_group() as tg:

                async def stop_on_rewatch() -> None:
                    await rewatch.wait()
                    tg.cancel_scope.cancel()

                tg.start_soon(stop_on_rewatch)
                async for event in events:
                    if isinstance(event, ResourceUpdated):
                        params = types.ResourceUpdatedNotificationParams(uri=event.uri)
                        self._on_notice(types.ResourceUpdatedNotification(params=params))
                    elif (kind := kinds.get(type(event))) is not None:
                        self._stale.add(kind)
                        self._refresh.set()
                tg.cancel_scope.cancel()
        return not rewatch.is_set()

    def fail(self, reason: str) -> None:
        """Mark the session lost (the first reason wins)."""
        if self.reason is None:
            self.reason = reason
        self.lost.set()

    async def on_message(self, message: IncomingMessage) -> None:
        """The session's ``message_handler``: note list_changed notices, pass on updates and log messages.

        Never does I/O itself.
        """
        if isinstance(message, Exception):
            logger.warning("transport error from an MCP server: %s", type(message).__name__)
            return
        if isinstance(message, types.ResourceUpdatedNotification) and self.modern:
            return  # the SDK shows it here too; the listen stream passes it on (``listen_for_changes``)
        if isinstance(message, types.ResourceUpdatedNotification | types.LoggingMessageNotification):
            self._on_notice(message)
            return
        kind = _CHANGED.get(type(message))
        if kind is not None and kind in self.listings:
            self._stale.add(kind)
            self._refresh.set()

    async def on_task_status(self, params: types.TaskStatusNotificationParams) -> None:
        """The session's binding for ``notifications/tasks/status``, which the SDK does not deliver itself."""
        self._on_notice(types.TaskStatusNotification(params=params))

    async def send(self, request: types.ClientRequest, result_type: type[_R], progress: ProgressFnT | None) -> _R:
        """Send ``request`` and wait for its result.

        A task-augmented ``tools/call`` goes out as it is, over the session's dispatcher: the SDK
        would check its answer against ``CallToolResult``, which a ``CreateTaskResult`` is not. Its
        result is a ``CreateTaskResult``, or a ``CallToolResult`` when the server ran it normally.
        """
        if not isinstance(request, types.CallToolRequest) or request.params.task is None:
            return await self.session.send_request(request, result_type, progress_callback=progress)
        params = request.model_dump(by_alias=True, mode="json", exclude_none=True)["params"]
        # What the SDK's handshake-era session adds to every request it sends.
        options: CallOptions = {"headers": {MCP_PROTOCOL_VERSION_HEADER: self.protocol_version or ""}}
        if progress is not None:
            options["on_progress"] = progress
        raw = await self.dispatcher.send_raw_request(request.method, params, options)
        return cast(_R, TASK_CALL_RESULT.validate_python(raw, by_name=False))

    async def send_raw(self, request: types.ClientRequest) -> dict[str, Any]:
        """Send ``request`` as the SDK's session sends it, and return its result as it came (nothing checked).

        The same wire form, envelope and headers as ``ClientSession.send_request`` (the session's own
        stamp, and the calling agent's capabilities in a 2026-07-28 envelope as ``EnvelopeWriter``
        puts them); the result's checks are the caller's (``pass_through.py``). Over stdio it goes by
        the connection's raw lane (``raw_lane.py``: its own ids, no dispatcher hop), elsewhere by
        the session's dispatcher.
        """
        data = request.model_dump(by_alias=True, mode="json", exclude_none=True)
        options: CallOptions = {}
        self.session._stamp(data, options)  # the SDK's own stamp; it has no public way to stamp without sending
        lane = self.connection.raw
        if lane is not None:
            return await lane.request(data["method"], claimed(data.get("params")), headers=options.get("headers"))
        return await self.dispatcher.send_raw_request(data["method"], data.get("params"), options)

    async def next_refresh(self) -> frozenset[Listing]:
        """Wait for list_changed notices and return the listings to fetch again."""
        await self._refresh.wait()
        self._refresh = anyio.Event()
        kinds, self._stale = frozenset(self._stale), set()
        return kinds

    async def forward_loss(self) -> None:
        """Turn the transport's loss signal into ``fail``."""
        await self.connection.lost.wait()
        self.fail(self.connection.loss_reason())

    async def probe(self) -> None:
        """Ping an idle remote server now and then; a dead one fails the session."""
        while True:
            await anyio.sleep(PROBE_INTERVAL_S)
            try:
                with anyio.fail_after(PROBE_TIMEOUT_S):
                    await self.session.send_request(types.PingRequest(), types.EmptyResult)
            except TimeoutError:
                self.fail(f"the server did not answer a ping within {PROBE_TIMEOUT_S:g} s")
            except MCPError as exc:
                if exc.code == types.CONNECTION_CLOSED:
                    self.fail("the connection was closed")
                # Any other error answer still proves the server is alive.

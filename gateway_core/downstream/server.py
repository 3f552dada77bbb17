"""One configured MCP server behind the gateway: a supervised, persistent client session.

``DownstreamServer.run`` is the supervisor task. It owns the transport and the ``ClientSession`` (the SDK
needs each session entered and left in its own task), and loops STARTING → READY → FAILED → (backoff)
→ STARTING until cancelled, then ends STOPPED with the server's process tree gone. Other tasks call
``call_tool``/``read_resource``/``get_prompt``, which use the live session directly.

Protocol: a raw ``ClientSession`` with the ``initialize`` handshake (what ``Client(mode="legacy")`` does,
without its response cache). That era is spoken by every server in the wild, old (TS SDK 1.x, Python
SDK 1.x) and new (SDK 2.x serves both eras), it delivers list_changed notifications on the connection,
and only it allows server→client requests (sampling, elicitation, roots), which the gateway forwards
to the calling agent.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar, cast

import anyio
import httpx2
import mcp_types as types
from mcp.client.session import ClientRequestContext, ClientSession
from mcp.shared.dispatcher import ProgressFnT
from mcp.shared.exceptions import MCPError
from pydantic import BaseModel, TypeAdapter, ValidationError

from gateway_core.config import ServerConfig
from gateway_core.downstream.base import Catalog, ConnectError, Connection, ResolveFn, ServerState, ServerStatus
from gateway_core.downstream.catalog import list_catalog
from gateway_core.downstream.lanes import Caller, Lanes
from gateway_core.downstream.live import Backoff, LiveSession
from gateway_core.downstream.remote import open_http, open_sse
from gateway_core.downstream.stderr import StderrBuffer
from gateway_core.downstream.stdio import NORMAL_STOP, StdioCommand, StopTimes, open_stdio
from gateway_core.errors import DownstreamError, DownstreamTimeoutError, ServerUnavailableError, ToolgateError

logger = logging.getLogger(__name__)

# Interpreters and `npx -y` need seconds to start, however short a server's per-call timeout_s is.
START_TIMEOUT_FLOOR_S = 10.0
# After a call fails with "connection closed", how long to wait for the transport to say why.
LOSS_REASON_WAIT_S = 1.0
CLIENT_INFO = types.Implementation(name="toolgate", version="0.1.0")
# Toolgate offers servers everything an agent might answer; whether the agent behind a call can
# answer is checked per question (see lanes.py), and the server gets an error if it cannot.
SAMPLING_CAPABILITY = types.SamplingCapability(
    context=types.SamplingContextCapability(), tools=types.SamplingToolsCapability()
)

_R = TypeVar("_R", bound=BaseModel)
InteractiveRequest = types.CallToolRequest | types.GetPromptRequest | types.ReadResourceRequest
INTERACTIVE_REQUESTS = (types.CallToolRequest, types.GetPromptRequest, types.ReadResourceRequest)
# A 2026-07-28 server asking for input more often than this in one request is looping.
MAX_INPUT_ROUNDS = 10


def _leaf(exc: BaseException) -> BaseException:
    """The first real error inside (nested) exception groups, which SDK transports raise from task groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


class _Refused(Exception):
    """The server answered the session's first request (``initialize`` or ``server/discover``) with an error."""


async def _start_session(session: ClientSession, live: LiveSession, *, modern: bool) -> None:
    """Start the session in the handshake era, or with ``server/discover`` for a 2026-07-28-only server.

    Raises:
        _Refused: the server answered the first request with an error (its message is the reason).
    """
    try:
        if modern:
            live.adopt_modern(await session.discover())
        else:
            live.adopt(await session.initialize())
    except MCPError as exc:
        if _is_connection_closed(exc):
            raise
        raise _Refused(exc.error.message) from exc


def _wrong_answer(method: str) -> types.ErrorData:
    return types.ErrorData(
        code=types.INTERNAL_ERROR, message=f"the agent's answer to {method} was not of the right kind"
    )


def _is_connection_closed(exc: MCPError) -> bool:
    """Whether the SDK made this error up because the transport broke (vs. an error the server sent).

    The code alone is not enough: -32000 is also free for servers to use. The SDK's own texts are
    "Connection closed" and, on Streamable HTTP, "SSE stream ended…" / "SSE stream failed: …".
    """
    message = exc.error.message
    return exc.code == types.CONNECTION_CLOSED and (message == "Connection closed" or message.startswith("SSE stream"))


class DownstreamServer:
    """One configured server, kept connected while ``run()`` runs.

    Args:
        name: the server's key in config.json.
        config: its configuration (``${secret:...}`` references unresolved).
        resolve: resolves secret references in env/header values at each (re)start.
        on_change: called with ``name`` whenever the status or catalog changes (cheap, on the loop).
        on_stderr: called with ``(name, line)`` for each stderr line of a stdio server.
        on_notice: called with ``(name, notification)`` for each resource update and log message.
        outside_call_roots: the roots to give when the server asks outside any call (an agent's own
            instance); without it such a question gets an empty list.
        stop_times: how long a stopping stdio server gets (short when the whole gateway stops).
        transport: opens the connection instead of the configured transport (tests: an in-memory server).
    """

    def __init__(
        self,
        name: str,
        config: ServerConfig,
        *,
        resolve: ResolveFn,
        on_change: Callable[[str], None],
        on_stderr: Callable[[str, str], None] | None = None,
        on_notice: Callable[[str, types.ServerNotification], None] | None = None,
        outside_call_roots: Callable[[], Awaitable[types.ListRootsResult | None]] | None = None,
        stop_times: Callable[[], StopTimes] = lambda: NORMAL_STOP,
        transport: Callable[[], AbstractAsyncContextManager[Connection]] | None = None,
    ) -> None:
        self.name = name
        self._stop_times = stop_times
        self._transport = transport
        self.config = config
        self.tried = anyio.Event()
        self._resolve = resolve
        self._on_change = on_change
        self._stderr = StderrBuffer(None if on_stderr is None else (lambda line: on_stderr(name, line)))
        self._state = ServerState.STOPPED
        self._reason: str | None = None
        self._restarts = 0
        self._catalog = Catalog()
        self._last_logged_failure: str | None = None
        self._live: LiveSession | None = None
        self._on_notice = on_notice
        self._outside_call_roots = outside_call_roots
        self._modern = False
        self._lanes = Lanes()

    @property
    def _start_timeout_s(self) -> float:
        """How long spawning, the handshake and the first listing may take together."""
        return max(self.config.timeout_s, START_TIMEOUT_FLOOR_S)

    @property
    def status(self) -> ServerStatus:
        """A snapshot of the server's state, counts and last stderr lines."""
        live, catalog = self._live, self.catalog
        info = live.server_info if live is not None else None
        return ServerStatus(
            name=self.name,
            state=self._state,
            transport=self.config.transport,
            reason=self._reason,
            stderr_tail=self._stderr.tail(),
            tools=len(catalog.tools),
            resources=len(catalog.resources),
            resource_templates=len(catalog.resource_templates),
            prompts=len(catalog.prompts),
            restarts=self._restarts,
            protocol_version=live.protocol_version if live is not None else None,
            server_info={"name": info.name, "version": info.version} if info is not None else {},
        )

    @property
    def catalog(self) -> Catalog:
        """What the server offers, as last listed; empty unless READY."""
        return self._catalog if self._state is ServerState.READY else Catalog()

    @property
    def last_catalog(self) -> Catalog:
        """What the server listed last, whatever its state now (empty if it never listed)."""
        return self._catalog

    def not_ready_message(self) -> str:
        """Why a request cannot reach this server now, for the agent (no secrets: reasons never hold any)."""
        detail = f"{self._state.value}: {self._reason}" if self._reason else self._state.value
        if self._state is ServerState.STARTING:
            detail += "; try again in a moment"
        return f"server {self.name!r} is not ready: {detail}"

    def stderr_lines(self) -> tuple[str, ...]:
        """Every stderr line kept for this server (the last ``stderr.MAX_LINES``), oldest first."""
        return self._stderr.lines()

    async def run(self) -> None:
        """Keep the server connected until cancelled; restart it with backoff when it fails or dies.

        Never raises for server problems: they become a FAILED status with a reason.
        """
        backoff = Backoff()
        try:
            while True:
                ready_at: list[float] = []
                try:
                    await self._serve_once(ready_at)
                except Exception as exc:  # the supervisor boundary: one server's failure stays here
                    self._fail(self._describe_failure(exc))
                self.tried.set()
                up_for = anyio.current_time() - ready_at[0] if ready_at else 0.0
                await anyio.sleep(backoff.next_delay(up_for))
                self._restarts += 1
        finally:
            live, self._live = self._live, None
            if live is not None:
                live.fail("the gateway is stopping the server")
                live.closed.set()
            self.tried.set()
            self._set(ServerState.STOPPED, "the gateway stopped it")

    async def call_tool(
        self,
        name: str,
        arguments: dict[str, Any] | None,
        *,
        progress: ProgressFnT | None = None,
        caller: Caller | None = None,
    ) -> types.CallToolResult:
        """Call tool ``name`` with fresh params; the result passes through unchanged (no schema check).

        Questions the server asks during the call (sampling, elicitation, roots) go to ``caller``.

        Raises:
            ServerUnavailableError: the server is not READY, or died during the call.
            DownstreamTimeoutError: no answer within ``timeout_s`` (the server is sent notifications/cancelled).
            MCPError: the server answered with an error; forward it as is.
        """
        request = types.CallToolRequest(params=types.CallToolRequestParams(name=name, arguments=arguments))
        return await self._request(f"tools/call {name!r}", request, types.CallToolResult, progress, caller)

    async def read_resource(self, uri: str, *, caller: Caller | None = None) -> types.ReadResourceResult:
        """Read resource ``uri``. Raises as ``call_tool`` does."""
        request = types.ReadResourceRequest(params=types.ReadResourceRequestParams(uri=uri))
        return await self._request(f"resources/read {uri!r}", request, types.ReadResourceResult, None, caller)

    async def get_prompt(
        self, name: str, arguments: dict[str, str] | None, *, caller: Caller | None = None
    ) -> types.GetPromptResult:
        """Get prompt ``name``. Raises as ``call_tool`` does."""
        request = types.GetPromptRequest(params=types.GetPromptRequestParams(name=name, arguments=arguments))
        return await self._request(f"prompts/get {name!r}", request, types.GetPromptResult, None, caller)

    async def complete(
        self,
        ref: types.PromptReference | types.ResourceTemplateReference,
        argument: types.CompletionArgument,
        context: types.CompletionContext | None,
    ) -> types.CompleteResult:
        """Ask for completions of a prompt argument or template variable. Raises as ``call_tool`` does."""
        params = types.CompleteRequestParams(ref=ref, argument=argument, context=context)
        return await self._request("completion/complete", types.CompleteRequest(params=params), types.CompleteResult)

    async def subscribe(self, uri: str) -> None:
        """Ask the server for ``notifications/resources/updated`` about ``uri``. Raises as ``call_tool`` does."""
        request = types.SubscribeRequest(params=types.SubscribeRequestParams(uri=uri))
        await self._request(f"resources/subscribe {uri!r}", request, types.EmptyResult)

    async def unsubscribe(self, uri: str) -> None:
        """Stop the updates about ``uri``. Raises as ``call_tool`` does."""
        request = types.UnsubscribeRequest(params=types.UnsubscribeRequestParams(uri=uri))
        await self._request(f"resources/unsubscribe {uri!r}", request, types.EmptyResult)

    async def set_logging_level(self, level: types.LoggingLevel) -> None:
        """Tell the server which log messages to send. Raises as ``call_tool`` does."""
        request = types.SetLevelRequest(params=types.SetLevelRequestParams(level=level))
        await self._request(f"logging/setLevel {level!r}", request, types.EmptyResult)

    async def roots_changed(self) -> None:
        """Tell the server its agent's roots changed (``notifications/roots/list_changed``)."""
        live = self._live
        if live is not None and self._state is ServerState.READY:
            await live.session.send_notification(types.RootsListChangedNotification())

    @property
    def calls_in_flight(self) -> int:
        """How many calls forwarded for agents are in flight."""
        return self._lanes.count

    @property
    def supports_logging(self) -> bool:
        """Whether the connected server advertised the logging capability."""
        live = self._live
        return live is not None and live.logging

    @property
    def supports_subscriptions(self) -> bool:
        """Whether the connected server advertised resource subscriptions."""
        live = self._live
        return live is not None and live.subscriptions

    async def _request(
        self,
        what: str,
        request: types.ClientRequest,
        result_type: type[_R],
        progress: ProgressFnT | None = None,
        caller: Caller | None = None,
    ) -> _R:
        if caller is None:
            return await self._send(what, request, result_type, progress)
        with anyio.move_on_after(self.config.timeout_s) as waited:
            async with self._lanes.hold(caller):
                waited.deadline = math.inf
                return await self._send(what, request, result_type, progress)
        raise DownstreamTimeoutError(
            f"server {self.name!r} was busy for {self.config.timeout_s:g} s with another agent's call that "
            'may ask its agent questions; set "isolation": "per_agent" on this server to run agents side by side'
        )

    async def _send(
        self, what: str, request: types.ClientRequest, result_type: type[_R], progress: ProgressFnT | None
    ) -> _R:
        live = self._live
        if live is None or self._state is not ServerState.READY:
            raise ServerUnavailableError(self.not_ready_message())
        timeout = self.config.timeout_s
        closed: MCPError | None = None
        with anyio.move_on_after(timeout):
            try:
                if live.modern and isinstance(request, INTERACTIVE_REQUESTS):
                    return await self._send_in_rounds(live, request, result_type, progress)
                return await live.session.send_request(request, result_type, progress_callback=progress)
            except MCPError as exc:
                if not _is_connection_closed(exc):
                    raise
                closed = exc
            except ValidationError as exc:
                raise DownstreamError(f"server {self.name!r} sent an invalid result for {what}") from exc
        if closed is None:
            raise DownstreamTimeoutError(f"server {self.name!r} did not answer {what} within {timeout:g} s")
        if self.config.transport != "stdio":
            # An HTTP transport may not notice a dead server by itself: this call did.
            live.fail("the connection was closed")
        with anyio.move_on_after(LOSS_REASON_WAIT_S):
            await live.closed.wait()
        why = live.reason or "the connection was closed"
        raise ServerUnavailableError(f"server {self.name!r} stopped answering during {what}: {why}") from closed

    async def _send_in_rounds(
        self, live: LiveSession, request: InteractiveRequest, result_type: type[_R], progress: ProgressFnT | None
    ) -> _R:
        """Send to a 2026-07-28 server, answering its ``InputRequiredResult`` rounds through ``_ask``.

        Each round's questions go to the caller like a handshake-era server's requests would;
        the request is then sent again with the answers and the server's ``requestState``.
        """
        expected: TypeAdapter[Any] = TypeAdapter(result_type | types.InputRequiredResult)  # type: ignore[arg-type]
        for _ in range(MAX_INPUT_ROUNDS):
            result = await live.session.send_request(request, expected, progress_callback=progress)
            if not isinstance(result, types.InputRequiredResult):
                return cast(_R, result)
            answers: types.InputResponses = {}
            for key, question in (result.input_requests or {}).items():
                answer = await self._ask(question)
                if isinstance(answer, types.ErrorData):
                    raise MCPError.from_error_data(answer)
                answers[key] = answer
            params = request.params.model_copy(
                update={"input_responses": answers or None, "request_state": result.request_state}
            )
            request = request.model_copy(update={"params": params})
        raise DownstreamError(f"server {self.name!r} kept asking for input after {MAX_INPUT_ROUNDS} rounds")

    def _fail(self, reason: str) -> None:
        live, self._live = self._live, None
        self._set(ServerState.FAILED, reason)
        if live is not None:
            live.fail(reason)
            live.closed.set()

    def _set(self, state: ServerState, reason: str | None = None) -> None:
        self._log_transition(state, reason)
        self._state, self._reason = state, reason
        self._on_change(self.name)

    def _log_transition(self, state: ServerState, reason: str | None) -> None:
        """Log what a person watching the log needs: ready, stopped, and each new reason for failing.

        Retries that fail for the reason already logged stay quiet, so a missing secret or a
        server that is down does not fill the log while backoff retries it.
        """
        if state is ServerState.FAILED:
            if reason != self._last_logged_failure:
                logger.warning("server %r failed: %s", self.name, reason)
            self._last_logged_failure = reason
            return
        if state is ServerState.STARTING:
            return
        self._last_logged_failure = None
        if state is ServerState.READY:
            catalog = self._catalog
            logger.info(
                "server %r is ready: %d tools, %d resources, %d prompts",
                self.name,
                len(catalog.tools),
                len(catalog.resources),
                len(catalog.prompts),
            )
        else:
            logger.info("server %r is %s%s", self.name, state.value, f": {reason}" if reason else "")

    def _open(self) -> AbstractAsyncContextManager[Connection]:
        if self._transport is not None:
            return self._transport()
        return _TRANSPORTS[self.config.transport](self)

    def _open_stdio(self) -> AbstractAsyncContextManager[Connection]:
        config = self.config
        assert config.command is not None
        env = self._resolve(config.env) if config.env else {}
        spec = StdioCommand(config.command, config.args, env, config.cwd)
        return open_stdio(spec, stderr=self._stderr, stop_times=self._stop_times)

    def _open_remote(self) -> AbstractAsyncContextManager[Connection]:
        config = self.config
        assert config.url is not None
        headers = self._resolve(config.headers) if config.headers else {}
        return (open_sse if config.transport == "sse" else open_http)(config.url, headers)

    async def _serve_once(self, ready_at: list[float]) -> None:
        """Connect, list, serve until the connection is lost; then leave the server FAILED with the reason.

        A server that refuses the handshake is started again at once and sent ``server/discover``
        (2026-07-28); while that works, later restarts start with it.
        """
        self._set(ServerState.STARTING)
        try:
            await self._connect_and_serve(ready_at, modern=self._modern)
        except Exception as exc:  # transports wrap it in exception groups
            refused = _leaf(exc)
            if not isinstance(refused, _Refused):
                raise
            if self._modern:
                self._modern = False  # try the handshake again next time
                raise ConnectError(f"the server refused to start a 2026-07-28 session: {refused}") from None
            self._modern = True
            try:
                await self._connect_and_serve(ready_at, modern=True)
            except Exception as again:
                if not isinstance(_leaf(again), _Refused):
                    raise
                self._modern = False
                raise ConnectError(f"the server refused to start a session: {refused}") from None

    async def _connect_and_serve(self, ready_at: list[float], *, modern: bool) -> None:
        async with self._open() as connection:
            live = LiveSession(connection, on_notice=self._notice)
            async with ClientSession(
                *connection.streams,
                message_handler=live.on_message,
                client_info=CLIENT_INFO,
                sampling_callback=self._on_sampling,
                sampling_capabilities=SAMPLING_CAPABILITY,
                elicitation_callback=self._on_elicitation,
                list_roots_callback=self._on_list_roots,
            ) as session:
                live.session = session
                try:
                    with anyio.fail_after(self._start_timeout_s):
                        await _start_session(session, live, modern=modern)
                        self._catalog = await list_catalog(
                            self.name, session, live.listings, Catalog(), timeout_s=self.config.timeout_s
                        )
                except MCPError as exc:
                    if not _is_connection_closed(exc):
                        raise ConnectError(
                            f"the server answered with an error while starting: {exc.error.message}"
                        ) from exc
                    with anyio.move_on_after(LOSS_REASON_WAIT_S):
                        await connection.lost.wait()
                    why = connection.loss_reason()
                    raise ConnectError(f"the server closed the connection while starting: {why}") from exc
                except TimeoutError as exc:
                    raise ConnectError(
                        f"the server did not finish starting within {self._start_timeout_s:g} s"
                    ) from exc
                self._live = live
                ready_at.append(anyio.current_time())
                self._set(ServerState.READY)
                self.tried.set()
                async with anyio.create_task_group() as tg:
                    tg.start_soon(live.forward_loss)
                    tg.start_soon(self._refresh_on_notice, live)
                    if live.modern:
                        tg.start_soon(self._listen_for_changes, live)
                    if self.config.transport != "stdio":
                        tg.start_soon(live.probe)
                    await live.lost.wait()
                    tg.cancel_scope.cancel()
                reason = live.reason or "the connection was closed"
                logger.warning("server %r was lost: %s", self.name, reason)
                self._fail(reason)

    async def _on_sampling(
        self, context: ClientRequestContext, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult | types.CreateMessageResultWithTools | types.ErrorData:
        answer = await self._ask(types.CreateMessageRequest(params=params.model_copy(update={"meta": None})))
        if isinstance(answer, types.ErrorData | types.CreateMessageResult | types.CreateMessageResultWithTools):
            return answer
        return _wrong_answer("sampling/createMessage")

    async def _on_elicitation(
        self, context: ClientRequestContext, params: types.ElicitRequestParams
    ) -> types.ElicitResult | types.ErrorData:
        answer = await self._ask(types.ElicitRequest(params=params.model_copy(update={"meta": None})))
        if isinstance(answer, types.ErrorData | types.ElicitResult):
            return answer
        return _wrong_answer("elicitation/create")

    async def _on_list_roots(self, context: ClientRequestContext) -> types.ListRootsResult | types.ErrorData:
        answer = await self._ask(types.ListRootsRequest())
        if isinstance(answer, types.ErrorData | types.ListRootsResult):
            return answer
        return _wrong_answer("roots/list")

    async def _ask(self, request: types.InputRequest) -> types.InputResponse | types.ErrorData:
        """Put the server's question to the agent whose call it belongs to (see lanes.py)."""
        caller = self._lanes.owner_of_question()
        if caller is not None:
            return await caller.ask(self.name, request)
        if isinstance(request, types.ListRootsRequest):
            # Asked outside any interactive call (typically right after connecting): an agent's own
            # instance gets that agent's roots; no agent's workspace is shared with a server that
            # several agents use.
            known = await self._outside_call_roots() if self._outside_call_roots is not None else None
            return known if known is not None else types.ListRootsResult(roots=[])
        why = (
            "the calls in progress on this server come from several agents, none of which can answer it"
            if self._lanes.count
            else "it arrived outside any agent's call"
        )
        return types.ErrorData(
            code=types.INVALID_REQUEST, message=f"Toolgate has no agent to ask {request.method}: {why}"
        )

    async def _listen_for_changes(self, live: LiveSession) -> None:
        try:
            await live.listen_for_changes()
        except Exception as exc:  # without the stream the catalog only goes stale; the server still works
            logger.warning("server %r: listening for list changes failed: %s", self.name, exc)

    def _notice(self, notification: types.ServerNotification) -> None:
        if self._on_notice is not None:
            self._on_notice(self.name, notification)

    async def _refresh_on_notice(self, live: LiveSession) -> None:
        while True:
            kinds = await live.next_refresh()
            catalog = await list_catalog(self.name, live.session, kinds, self._catalog, timeout_s=self.config.timeout_s)
            if self._live is live and catalog != self._catalog:
                self._catalog = catalog
                self._on_change(self.name)

    def _describe_failure(self, exc: Exception) -> str:
        """A reason for a failed start, fit for a status: never a traceback, never a secret value."""
        leaf = _leaf(exc)
        if isinstance(leaf, ConnectError | ToolgateError):
            return str(leaf)
        if isinstance(leaf, httpx2.HTTPStatusError):
            return f"{self.config.url} answered HTTP {leaf.response.status_code}"
        if isinstance(leaf, httpx2.TransportError):
            return f"cannot reach {self.config.url}: {type(leaf).__name__}"
        if isinstance(leaf, MCPError):
            return f"the server answered with an error: {leaf.error.message}"
        logger.exception("server %r failed unexpectedly", self.name)
        return f"unexpected error: {type(leaf).__name__}"


# How each configured transport is opened (tests may give a server its own, e.g. ``memory.open_memory``).
_TRANSPORTS: dict[str, Callable[[DownstreamServer], AbstractAsyncContextManager[Connection]]] = {
    "stdio": DownstreamServer._open_stdio,
    "http": DownstreamServer._open_remote,
    "sse": DownstreamServer._open_remote,
}

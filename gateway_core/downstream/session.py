"""Talking to one downstream server: agents' requests out, the server's questions back to the right agent.

A ``ServerSession`` outlives connections: the supervisor (``server.py``) opens each new SDK session
through ``connect`` and hands it over with ``serve`` once the server is ready; between connections
every request fails at once with the supervisor's reason. Requests of different agents run side by
side; ``asking.py`` tells which agent's call a question the server asks belongs to.

Protocol: a raw ``ClientSession`` in the newest era the server speaks, negotiated as the SDK's own
``Client(mode="auto")`` does (``start_session``): ``server/discover`` (2026-07-28), else the
``initialize`` handshake on the same connection (TS SDK 1.x, Python SDK 1.x, legacy SSE). A
handshake-era server asks its questions (sampling, elicitation, roots) as server→client requests during
a call, and they go to the calling agent; a 2026-07-28 server asks in ``InputRequiredResult`` rounds,
answered the same way, and is told the calling agent's capabilities with each request (``envelope.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, NoReturn, TypeVar, cast

import anyio
import mcp_types as types
from mcp.client._probe import negotiate_auto  # the SDK's era negotiation (Client(mode="auto")); no public home yet
from mcp.client.extension import NotificationBinding
from mcp.client.session import ClientRequestContext
from mcp.shared.dispatcher import CallOptions, ProgressFnT
from mcp.shared.exceptions import MCPError
from mcp.shared.jsonrpc_dispatcher import JSONRPCDispatcher
from pydantic import BaseModel, TypeAdapter, ValidationError

from gateway_core.downstream.asking import Caller, CallsInFlight
from gateway_core.downstream.base import Connection, Notice
from gateway_core.downstream.envelope import EnvelopeWriter, ask_for_log_level, claiming, speaking_for
from gateway_core.downstream.live import LiveSession
from gateway_core.downstream.offer import EVERYTHING, OfferingSession
from gateway_core.downstream.pass_through import typed_result, wire_result
from gateway_core.downstream.raw_lane import LaneTimeoutError
from gateway_core.errors import DownstreamError, DownstreamTimeoutError, ServerUnavailableError

# After a call fails with "connection closed", how long to wait for the transport to say why.
LOSS_REASON_WAIT_S = 1.0
CLIENT_INFO = types.Implementation(name="toolgate", version="0.1.0")
# The version the SDK's client assumes for a session whose version it does not know.
DEFAULT_VERSION = "2025-11-25"

logger = logging.getLogger(__name__)

_R = TypeVar("_R", bound=BaseModel)
_Q = TypeVar("_Q", bound=BaseModel)
_T = TypeVar("_T")
InteractiveRequest = types.CallToolRequest | types.GetPromptRequest | types.ReadResourceRequest
INTERACTIVE_REQUESTS = (types.CallToolRequest, types.GetPromptRequest, types.ReadResourceRequest)
# A 2026-07-28 server asking for input more often than this in one request is looping.
MAX_INPUT_ROUNDS = 10


class Refused(Exception):
    """The server answered the session's first request (``initialize`` or ``server/discover``) with an error."""


def is_connection_closed(exc: MCPError) -> bool:
    """Whether the SDK made this error up because the transport broke (vs. an error the server sent).

    The code alone is not enough: -32000 is also free for servers to use. The SDK's own texts are
    "Connection closed" and, on Streamable HTTP, "SSE stream ended…" / "SSE stream failed: …".
    """
    message = exc.error.message
    return exc.code == types.CONNECTION_CLOSED and (message == "Connection closed" or message.startswith("SSE stream"))


class ClosedOnProbe(Exception):
    """The connection closed while ``server/discover`` was unanswered: the server may not stand unknown methods."""


async def start_session(live: LiveSession, *, handshake_only: bool = False) -> None:
    """Start the session in the newest era the server speaks (the SDK's own negotiation, ``negotiate_auto``).

    ``server/discover`` (2026-07-28) first; a server that answers it with an error (-32601 from TS SDK
    1.x, -32602 from Python SDK 1.x) is sent ``initialize`` on the same connection. With
    ``handshake_only`` the probe is skipped (a server that closes the connection when probed).

    Raises:
        Refused: the server answered the session's start with an error (its message is the reason).
        ClosedOnProbe: the connection closed while the probe was unanswered.
        MCPError: the connection closed while starting.
    """
    session = live.session
    try:
        if handshake_only:
            live.adopt(await session.initialize())
            return
        await negotiate_auto(session)
    except MCPError as exc:
        if not is_connection_closed(exc):
            raise Refused(exc.error.message) from exc
        if session.discover_result is None and session.initialize_result is None and live.probe_closed:
            raise ClosedOnProbe() from exc
        raise
    if session.discover_result is not None:
        live.adopt_modern(session.discover_result)
    elif session.initialize_result is not None:
        live.adopt(session.initialize_result)


class _ProbingSession(OfferingSession):
    """The SDK session, noting on ``live`` when the connection closes while ``server/discover`` is unanswered."""

    def __init__(self, *args: Any, live: LiveSession, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._live = live

    async def send_discover(self, version: str) -> dict[str, Any]:
        try:
            return await super().send_discover(version)
        except MCPError as exc:
            if is_connection_closed(exc):
                self._live.probe_closed = True
            raise


class ServerSession:
    """The requests and questions of one configured server, across its connections.

    Args:
        name: the server's key in config.json (named in every error).
        timeout_s: how long one request may take (read at each request: the config can change).
        not_ready: why a request cannot be sent now, for the agent (asked only between connections).
        outside_call_roots: the roots to give when the server asks outside any call (an agent's own
            instance); without it such a question gets an empty list.
        closes_by_itself: whether the transport notices a dead server by itself (stdio); otherwise a
            request that finds the connection closed ends the connection.
        offer: the client capabilities the server is told Toolgate has (``offer.py``): by default
            everything an agent might answer, whether the agent behind a call can is checked per question.
    """

    def __init__(
        self,
        name: str,
        *,
        timeout_s: Callable[[], float],
        not_ready: Callable[[], str],
        outside_call_roots: Callable[[], Awaitable[types.ListRootsResult | None]] | None = None,
        closes_by_itself: Callable[[], bool] = lambda: True,
        offer: types.ClientCapabilities = EVERYTHING,
    ) -> None:
        self.name = name
        self.offer = offer
        self._timeout_s = timeout_s
        self._not_ready = not_ready
        self._outside_call_roots = outside_call_roots
        self._closes_by_itself = closes_by_itself
        self._calls = CallsInFlight()
        self._live: LiveSession | None = None

    # --- the supervisor's side -----------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def connect(
        self, connection: Connection, *, on_notice: Callable[[Notice], None]
    ) -> AsyncIterator[LiveSession]:
        """Open an SDK session on ``connection`` that brings the server's questions here (not yet started)."""
        live = LiveSession(connection, on_notice=on_notice)
        read, write = connection.streams
        # Kept by the live session, which sends what the SDK session cannot (task-augmented calls).
        live.dispatcher = JSONRPCDispatcher(read, EnvelopeWriter(write))
        task_status = NotificationBinding(
            method="notifications/tasks/status",
            params_type=types.TaskStatusNotificationParams,
            handler=live.on_task_status,
        )
        async with _ProbingSession(
            live=live,
            dispatcher=live.dispatcher,
            notification_bindings=[task_status],
            offer=self.offer,
            message_handler=live.on_message,
            client_info=CLIENT_INFO,
            sampling_callback=self._on_sampling,
            elicitation_callback=self._on_elicitation,
            list_roots_callback=self._on_list_roots,
        ) as session:
            live.session = session
            yield live

    def serve(self, live: LiveSession | None) -> None:
        """Send requests over ``live`` from now on (``None``: the server is not ready; requests fail)."""
        self._live = live

    @property
    def live(self) -> LiveSession | None:
        """The session requests go over now; ``None`` while the server is not ready."""
        return self._live

    # --- requests ------------------------------------------------------------------------------------

    async def call_tool(
        self,
        name: str,
        arguments: dict[str, Any] | None,
        *,
        progress: ProgressFnT | None = None,
        caller: Caller | None = None,
        meta: types.RequestParamsMeta | None = None,
        task: types.TaskMetadata | None = None,
        answers: types.InputResponses | None = None,
    ) -> types.CallToolResult | types.CreateTaskResult:
        """Call tool ``name`` with fresh params; the result passes through unchanged (no schema check).

        Questions the server asks during the call (sampling, elicitation, roots) go to ``caller``;
        ``meta`` is the agent's ``_meta`` for the server (without what concerns only the agent's hop).
        With ``task``, a server that runs tool calls as tasks answers with a ``CreateTaskResult``; any
        other server is sent the call without it, and runs it normally (as the spec says it would).
        ``answers`` are ``inputResponses`` a 2026-07-28 agent sent with its first request, before any
        round; a 2026-07-28 server gets them with it (another cannot take them).

        Raises:
            ServerUnavailableError: the server is not READY, or died during the call.
            DownstreamTimeoutError: no answer within ``timeout_s`` (the server is sent notifications/cancelled).
            MCPError: the server answered with an error; forward it as is.
        """
        if task is not None and self.runs_tasks:
            params = types.CallToolRequestParams(name=name, arguments=arguments, task=task, _meta=meta)
            request = types.CallToolRequest(params=params)
            what = f"tools/call {name!r} as a task"
            return await self._request(what, request, types.CreateTaskResult, progress, caller)
        params = types.CallToolRequestParams(
            name=name, arguments=arguments, _meta=meta, input_responses=self._takes(answers)
        )
        request = types.CallToolRequest(params=params)
        return await self._request(f"tools/call {name!r}", request, types.CallToolResult, progress, caller)

    async def call_tool_passing_through(
        self,
        name: str,
        arguments: dict[str, Any] | None,
        *,
        caller: Caller,
        meta: types.RequestParamsMeta | None,
        modern_agent: bool = False,
    ) -> dict[str, Any] | types.CallToolResult:
        """``call_tool`` for an agent's plain call (no progress, task or answers), its result unchecked.

        The agent is of the handshake era, or with ``modern_agent`` of 2026-07-28 (``wire_result``).

        The request goes out as ``call_tool`` sends it. A result in the common shape comes back as a
        dict, the agent's wire form (``pass_through.py``); any other result as ``call_tool`` gives it
        (a 2026-07-28 server's questions asked in rounds, as there). Raises as ``call_tool`` does.

        Over a connection with a raw lane (``raw_lane.py``) the call is sent from this task with no
        closure, context manager or cancel scope of its own: its deadline is kept by the lane's timer.
        Without the agent's ``_meta``, over a lane that sends no headers (stdio), the call's envelope
        is the one made for this session and agent the first time (``envelope.PlainCalls``).
        """
        live = self._live
        lane = None if live is None else live.connection.raw
        if lane is None:
            request = types.CallToolRequest(
                params=types.CallToolRequestParams(name=name, arguments=arguments, _meta=meta)
            )
            what = f"tools/call {name!r}"
            return await self.send_passing_through(
                what, request, types.CallToolResult, caller, modern_agent=modern_agent
            )
        assert live is not None
        timeout = self._timeout_s()
        deadline = asyncio.get_running_loop().time() + timeout  # anyio.current_time(), in fewer steps
        # The SDK's own stamp; it has no public way to stamp without sending.
        stamp = live.session._stamp
        params = None
        if meta is None and not lane.sends_headers:
            params = live.plain_calls.params(
                stamp, name, arguments, caller.capabilities, modern=live.modern, log_level=live.log_level
            )
        headers = None
        if params is None:
            data = _call_data(name, arguments, meta)
            if live.modern and live.log_level is not None:
                ask_for_log_level(data, live.log_level)
            options: CallOptions = {}
            stamp(data, options)
            params = data.get("params")
            if live.modern:
                params = claiming(params, caller.capabilities)
            headers = options.get("headers")
        call = self._calls.enter(caller)
        try:
            try:
                raw = await lane.request("tools/call", params, headers=headers, deadline=deadline)
            except MCPError as exc:
                if not is_connection_closed(exc):
                    raise
                await self._closed_during(live, f"tools/call {name!r}", exc)
            except LaneTimeoutError:
                raise DownstreamTimeoutError(
                    f"server {self.name!r} did not answer tools/call {name!r} within {timeout:g} s"
                ) from None
            wire = wire_result("tools/call", raw, modern=live.modern, modern_agent=modern_agent)
            if wire is not None:
                return wire
            return await self._rest_of_call(live, raw, name, arguments, caller=caller, meta=meta, deadline=deadline)
        finally:
            self._calls.leave(call)

    async def _rest_of_call(
        self,
        live: LiveSession,
        raw: dict[str, Any],
        name: str,
        arguments: dict[str, Any] | None,
        *,
        caller: Caller,
        meta: types.RequestParamsMeta | None,
        deadline: float,
    ) -> types.CallToolResult:
        """A raw-lane result not in the common shape, the typed way: checked, or a 2026 server's rounds answered."""
        what = f"tools/call {name!r}"
        version = live.protocol_version or DEFAULT_VERSION
        try:
            if not live.modern:
                return cast(
                    types.CallToolResult, typed_result("tools/call", raw, version, _adapter(types.CallToolResult))
                )
            first = typed_result("tools/call", raw, version, _or_input_required(types.CallToolResult))
        except ValidationError as exc:
            raise DownstreamError(f"server {self.name!r} sent an invalid result for {what}") from exc
        if not isinstance(first, types.InputRequiredResult):
            return cast(types.CallToolResult, first)
        request = types.CallToolRequest(params=types.CallToolRequestParams(name=name, arguments=arguments, _meta=meta))
        if live.log_level is not None:
            request = _with_log_level(request, live.log_level)

        async def rounds(live: LiveSession) -> types.CallToolResult:
            with speaking_for(caller.capabilities):
                return await self._send_in_rounds(live, request, types.CallToolResult, None, caller, first=first)

        return await self._attempt(what, rounds, live=live, deadline=deadline)

    async def send_passing_through(
        self,
        what: str,
        request: InteractiveRequest,
        result_type: type[_R],
        caller: Caller,
        *,
        modern_agent: bool = False,
    ) -> dict[str, Any] | _R:
        """Send an agent's plain request (no progress, task or answers), its result unchecked.

        ``request`` is as the typed method (``call_tool``, ``read_resource``, ``get_prompt``) sends it.
        The agent is of the handshake era, or with ``modern_agent`` of 2026-07-28 (``wire_result``).
        A result in the common shape comes back as a dict, the agent's wire form (``pass_through.py``);
        any other result as the typed method gives it (a 2026-07-28 server's questions asked in rounds,
        as there). Raises as ``call_tool`` does.
        """
        method = request.method

        async def attempt(live: LiveSession) -> dict[str, Any] | _R:
            sent = request
            if live.modern and live.log_level is not None:
                sent = _with_log_level(sent, live.log_level)
            with speaking_for(caller.capabilities) if live.modern else contextlib.nullcontext():
                raw = await live.send_raw(sent)
                wire = wire_result(method, raw, modern=live.modern, modern_agent=modern_agent)
                if wire is not None:
                    return wire
                version = live.protocol_version or DEFAULT_VERSION
                if not live.modern:
                    return cast(_R, typed_result(method, raw, version, _adapter(result_type)))
                first = typed_result(method, raw, version, _or_input_required(result_type))
                if not isinstance(first, types.InputRequiredResult):
                    return cast(_R, first)
                return await self._send_in_rounds(live, sent, result_type, None, caller, first=first)

        with self._calls.running(caller):
            return await self._attempt(what, attempt)

    async def task_request(
        self,
        request: types.GetTaskRequest | types.GetTaskPayloadRequest | types.CancelTaskRequest,
        result_type: type[_R],
        *,
        caller: Caller | None = None,
    ) -> _R:
        """Send ``tasks/get``, ``tasks/result`` or ``tasks/cancel`` about one of the server's tasks.

        Questions the server asks while ``tasks/result`` waits go to ``caller``. Raises as ``call_tool`` does.
        """
        what = f"{request.method} {request.params.task_id!r}"
        return await self._request(what, request, result_type, None, caller)  # type: ignore[arg-type]

    async def read_resource(
        self,
        uri: str,
        *,
        caller: Caller | None = None,
        meta: types.RequestParamsMeta | None = None,
        answers: types.InputResponses | None = None,
        passing_through: bool = False,
        modern_agent: bool = False,
    ) -> types.ReadResourceResult | dict[str, Any]:
        """Read resource ``uri``. Raises as ``call_tool`` does.

        With ``passing_through`` (an agent's plain read, with its ``caller``), the result comes as
        ``send_passing_through`` gives it to an agent of the handshake era, or with ``modern_agent`` of
        2026-07-28.
        """
        params = types.ReadResourceRequestParams(uri=uri, _meta=meta, input_responses=self._takes(answers))
        request = types.ReadResourceRequest(params=params)
        what = f"resources/read {uri!r}"
        if passing_through and caller is not None:
            return await self.send_passing_through(
                what, request, types.ReadResourceResult, caller, modern_agent=modern_agent
            )
        return await self._request(what, request, types.ReadResourceResult, None, caller)

    async def get_prompt(
        self,
        name: str,
        arguments: dict[str, str] | None,
        *,
        caller: Caller | None = None,
        meta: types.RequestParamsMeta | None = None,
        answers: types.InputResponses | None = None,
        passing_through: bool = False,
        modern_agent: bool = False,
    ) -> types.GetPromptResult | dict[str, Any]:
        """Get prompt ``name``. Raises as ``call_tool`` does; ``passing_through``, ``modern_agent`` as for reads."""
        params = types.GetPromptRequestParams(
            name=name, arguments=arguments, _meta=meta, input_responses=self._takes(answers)
        )
        request = types.GetPromptRequest(params=params)
        what = f"prompts/get {name!r}"
        if passing_through and caller is not None:
            return await self.send_passing_through(
                what, request, types.GetPromptResult, caller, modern_agent=modern_agent
            )
        return await self._request(what, request, types.GetPromptResult, None, caller)

    async def complete(
        self,
        ref: types.PromptReference | types.ResourceTemplateReference,
        argument: types.CompletionArgument,
        context: types.CompletionContext | None,
        *,
        meta: types.RequestParamsMeta | None = None,
    ) -> types.CompleteResult:
        """Ask for completions of a prompt argument or template variable. Raises as ``call_tool`` does."""
        params = types.CompleteRequestParams(ref=ref, argument=argument, context=context, _meta=meta)
        return await self._request("completion/complete", types.CompleteRequest(params=params), types.CompleteResult)

    async def subscribe(self, uri: str) -> None:
        """Ask the server for ``notifications/resources/updated`` about ``uri``. Raises as ``call_tool`` does.

        A 2026-07-28 server is asked on its ``subscriptions/listen`` stream instead.
        """
        live = self._live
        if live is not None and live.modern:
            await self._watch(live, f"subscribing to {uri!r}", uri, watched=True)
            return
        request = types.SubscribeRequest(params=types.SubscribeRequestParams(uri=uri))
        await self._request(f"resources/subscribe {uri!r}", request, types.EmptyResult)

    async def unsubscribe(self, uri: str) -> None:
        """Stop the updates about ``uri``. Raises as ``call_tool`` does."""
        live = self._live
        if live is not None and live.modern:
            await self._watch(live, f"unsubscribing from {uri!r}", uri, watched=False)
            return
        request = types.UnsubscribeRequest(params=types.UnsubscribeRequestParams(uri=uri))
        await self._request(f"resources/unsubscribe {uri!r}", request, types.EmptyResult)

    async def set_logging_level(self, level: types.LoggingLevel) -> None:
        """Tell the server which log messages to send. Raises as ``call_tool`` does.

        A 2026-07-28 server gets the level with each later request (``_meta``), unless the agent's
        request names its own.
        """
        live = self._live
        if live is not None and live.modern:
            live.log_level = level
            return
        request = types.SetLevelRequest(params=types.SetLevelRequestParams(level=level))
        await self._request(f"logging/setLevel {level!r}", request, types.EmptyResult)

    async def _watch(self, live: LiveSession, what: str, uri: str, *, watched: bool) -> None:
        timeout = self._timeout_s()
        with anyio.move_on_after(timeout):
            await live.watch(uri, watched=watched)
            return
        raise DownstreamTimeoutError(f"server {self.name!r} did not open a listen stream {what} within {timeout:g} s")

    async def roots_changed(self) -> None:
        """Tell the server its agent's roots changed (``notifications/roots/list_changed``), if it was offered that."""
        live, roots = self._live, self.offer.roots
        if live is not None and roots is not None and roots.list_changed:
            await live.session.send_notification(types.RootsListChangedNotification())

    @property
    def calls_in_flight(self) -> int:
        """How many calls forwarded for agents are in flight."""
        return self._calls.count

    @property
    def supports_logging(self) -> bool:
        """Whether the connected server advertised the logging capability."""
        live = self._live
        return live is not None and live.logging

    @property
    def runs_tasks(self) -> bool:
        """Whether the connected server runs tool calls as tasks (2025-11-25 ``tasks.requests.tools.call``)."""
        live = self._live
        return live is not None and live.task_calls

    def _takes(self, answers: types.InputResponses | None) -> types.InputResponses | None:
        """``answers`` if the server now speaks 2026-07-28 (which has ``inputResponses``), else nothing."""
        live = self._live
        return answers if answers and live is not None and live.modern else None

    @property
    def tells_capabilities_per_request(self) -> bool:
        """Whether each request names the calling agent's capabilities (2026-07-28): the offer is never outgrown."""
        live = self._live
        return live is not None and live.modern

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
            return await self._send(what, request, result_type, progress, caller)
        with self._calls.running(caller):
            return await self._send(what, request, result_type, progress, caller)

    async def _send(
        self,
        what: str,
        request: types.ClientRequest,
        result_type: type[_R],
        progress: ProgressFnT | None,
        caller: Caller | None,
    ) -> _R:
        async def attempt(live: LiveSession) -> _R:
            sent = request
            if live.modern and live.log_level is not None:
                sent = _with_log_level(sent, live.log_level)
            if live.modern and isinstance(sent, INTERACTIVE_REQUESTS):
                with speaking_for(caller.capabilities if caller is not None else None):
                    return await self._send_in_rounds(live, sent, result_type, progress, caller)
            return await live.send(sent, result_type, progress)

        return await self._attempt(what, attempt)

    async def _attempt(
        self,
        what: str,
        attempt: Callable[[LiveSession], Awaitable[_T]],
        *,
        live: LiveSession | None = None,
        deadline: float | None = None,
    ) -> _T:
        """Run ``attempt`` on the live session within the request timeout; a lost connection or a bad result raises.

        ``live`` and ``deadline``: the rest of a call begun on that session, due by then.
        """
        if live is None:
            live = self._live
            if live is None:
                raise ServerUnavailableError(self._not_ready())
        timeout = self._timeout_s()
        closed: MCPError | None = None
        with anyio.move_on_at(anyio.current_time() + timeout if deadline is None else deadline):
            try:
                return await attempt(live)
            except MCPError as exc:
                if not is_connection_closed(exc):
                    raise
                closed = exc
            except ValidationError as exc:
                raise DownstreamError(f"server {self.name!r} sent an invalid result for {what}") from exc
        if closed is None:
            raise DownstreamTimeoutError(f"server {self.name!r} did not answer {what} within {timeout:g} s")
        await self._closed_during(live, what, closed)

    async def _closed_during(self, live: LiveSession, what: str, closed: MCPError) -> NoReturn:
        """A request on ``live`` found the connection closed: wait a moment for the reason, and raise it."""
        if not self._closes_by_itself():
            # An HTTP transport may not notice a dead server by itself: this call did.
            live.fail("the connection was closed")
        with anyio.move_on_after(LOSS_REASON_WAIT_S):
            await live.closed.wait()
        why = live.reason or "the connection was closed"
        raise ServerUnavailableError(f"server {self.name!r} stopped answering during {what}: {why}") from closed

    async def _send_in_rounds(
        self,
        live: LiveSession,
        request: InteractiveRequest,
        result_type: type[_R],
        progress: ProgressFnT | None,
        caller: Caller | None,
        *,
        first: types.InputRequiredResult | None = None,
    ) -> _R:
        """Send to a 2026-07-28 server, answering its ``InputRequiredResult`` rounds by asking ``caller``.

        Each round's questions go to the caller together, under the server's keys; the request
        is then sent again with the answers and the server's ``requestState``. ``first``: the
        server's answer to the request, already sent (its first round).
        """
        expected = _or_input_required(result_type)
        for _ in range(MAX_INPUT_ROUNDS):
            result: Any
            if first is not None:
                result, first = first, None
            else:
                result = await live.session.send_request(request, expected, progress_callback=progress)
            if not isinstance(result, types.InputRequiredResult):
                return cast(_R, result)
            questions = result.input_requests or {}
            if caller is not None:
                given = await caller.ask_round(self.name, questions)
            else:
                given = {key: await self._ask(question) for key, question in questions.items()}
            answers: types.InputResponses = {}
            for key, answer in given.items():
                if isinstance(answer, types.ErrorData):
                    raise MCPError.from_error_data(answer)
                answers[key] = answer
            params = request.params.model_copy(
                update={"input_responses": answers or None, "request_state": result.request_state}
            )
            request = request.model_copy(update={"params": params})
        raise DownstreamError(f"server {self.name!r} kept asking for input after {MAX_INPUT_ROUNDS} rounds")

    # --- the server's questions ------------------------------------------------------------------------

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
        """Put the server's question to the agent whose call it belongs to (see asking.py)."""
        caller = self._calls.owner_of_question()
        if caller is not None:
            return await caller.ask(self.name, request)
        if isinstance(request, types.ListRootsRequest):
            # Asked outside any call (typically right after connecting), or whose call cannot be told:
            # an agent's own instance gets that agent's roots; no agent's workspace is shared with a
            # server that several agents use.
            known = await self._outside_call_roots() if self._outside_call_roots is not None else None
            return known if known is not None else types.ListRootsResult(roots=[])
        if not self._calls.count:
            why = "it arrived outside any agent's call"
        else:
            why = (
                f"calls from {self._calls.owners} agent sessions are in progress on server {self.name!r} and "
                "nothing on this connection says which one asked; give the server "
                '"isolation": "per_agent" to let each agent answer its own'
            )
            logger.warning("server %r asked %s; Toolgate refused it: %s", self.name, request.method, why)
        return types.ErrorData(
            code=types.INVALID_REQUEST, message=f"Toolgate has no agent to ask {request.method}: {why}"
        )


def _with_log_level(request: _Q, level: types.LoggingLevel) -> _Q:
    """``request`` asking a 2026-07-28 server for log messages at ``level``, unless it names a level itself."""
    params = getattr(request, "params", None)
    if params is None:
        return request
    meta = dict(params.meta or {})
    meta.setdefault(types.LOG_LEVEL_META_KEY, level)
    return request.model_copy(update={"params": params.model_copy(update={"meta": meta})})


def _call_data(name: str, arguments: dict[str, Any] | None, meta: types.RequestParamsMeta | None) -> dict[str, Any]:
    """A ``tools/call`` request as the SDK's session dumps it (``model_dump(by_alias, mode="json", exclude_none)``).

    With the agent's ``_meta`` the model is built and dumped (its values are checked and cleaned as
    the typed way does); without, the dict is what that dump gives.
    """
    if meta is not None:
        params = types.CallToolRequestParams(name=name, arguments=arguments, _meta=meta)
        return types.CallToolRequest(params=params).model_dump(by_alias=True, mode="json", exclude_none=True)
    if arguments is None:
        return {"method": "tools/call", "params": {"name": name}}
    return {"method": "tools/call", "params": {"name": name, "arguments": arguments}}


def _wrong_answer(method: str) -> types.ErrorData:
    return types.ErrorData(
        code=types.INTERNAL_ERROR, message=f"the agent's answer to {method} was not of the right kind"
    )


@functools.cache
def _adapter(result_type: type[_R]) -> TypeAdapter[_R]:
    """A result type's adapter, built once."""
    return TypeAdapter(result_type)


@functools.cache
def _or_input_required(result_type: type[types.Result]) -> TypeAdapter[Any]:
    """What a 2026-07-28 server may answer a request expecting ``result_type`` with (built once: it costs ~0.5 ms)."""
    return TypeAdapter(result_type | types.InputRequiredResult)  # type: ignore[arg-type]

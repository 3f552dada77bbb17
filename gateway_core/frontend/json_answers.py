"""Plain answers for plain requests: a handshake-era POST that nothing could stream on is answered with one JSON body.

The SDK's transport answers every request of a session in one way, chosen when the session is made:
as an SSE stream (room for progress, log messages and the server's questions) or as a JSON body (room
for the result only). An SSE answer costs a stream, a priming event stored for resumption and several
tasks, and the SDK's client often drops the connection when the stream's last chunk comes late. This
transport chooses per request: a request that accepts JSON and whose answer cannot carry anything but
its result (a method in ``PLAIN_METHODS``, no progress token, no task, and an agent that declared no
sampling, elicitation or roots, so no question can be put to it on this request) gets a JSON body
if its result comes within ``JSON_WINDOW_S``, else the long way's SSE stream from then on; every other
request the SDK's SSE stream. 2026-07-28 requests do not come here: the SDK already answers those with
JSON unless something is sent before the result. A hot-path call (``hot_path.py``) runs in its request's own
task and its answer is written straight back, with a task of its own only for the stream of one that takes longer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from http import HTTPStatus
from typing import Any

import anyio
import pydantic_core
from anyio.abc import ObjectReceiveStream
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.server.streamable_http import (
    CONTENT_TYPE_JSON,
    CONTENT_TYPE_SSE,
    MCP_SESSION_ID_HEADER,
    REQUEST_CANCELLED,
    REQUEST_STREAM_BUFFER_SIZE,
    EventMessage,
    SSEEvent,
    StreamableHTTPServerTransport,
    check_accept_headers,
)
from mcp.shared.inbound import MCP_PROTOCOL_VERSION_HEADER
from mcp.shared.message import ServerMessageMetadata, SessionMessage
from mcp_types import (
    DEFAULT_NEGOTIATED_VERSION,
    INTERNAL_ERROR,
    ErrorData,
    JSONRPCError,
    JSONRPCRequest,
    JSONRPCResponse,
    RequestId,
    jsonrpc_message_adapter,
)
from pydantic import ValidationError
from sse_starlette import EventSourceResponse
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

logger = logging.getLogger(__name__)

# A call to run instead of handing a request to the SDK's server: its answer (hot_path.py).
HotCall = Callable[[], Awaitable[JSONRPCResponse | JSONRPCError]]
HotCalls = Callable[[JSONRPCRequest, Request], HotCall | None]

# Where the hot lane (hot_lane.py) leaves a POST's request, read and parsed, and the starlette Request it
# built for it, for the session's transport.
PARSED_REQUEST = "toolgate.parsed_request"
# Requests whose answer is their result alone when the agent asked for no progress and can be asked nothing.
PLAIN_METHODS = frozenset(
    {
        "tools/call",
        "tools/list",
        "prompts/list",
        "prompts/get",
        "resources/list",
        "resources/templates/list",
        "resources/read",
        "completion/complete",
        "ping",
    }
)
# A request not answered within this long is answered as the long way would: an SSE stream from then on,
# with a priming event to resume from and keep-alive pings (a person's approval, a long tool), so only
# prompt answers come as one JSON body.
JSON_WINDOW_S = 1.0
# Whether a request with these Accept and Content-Type values may be answered with JSON (``answers_plainly``).
_PLAIN_HEADERS: dict[tuple[str | None, str | None], bool] = {}
MAX_PLAIN_HEADERS = 64
# The status of a JSON answer.
OK = HTTPStatus.OK.value
# What an agent declares when it can be asked something during its requests.
QUESTION_CAPABILITIES = ("sampling", "elicitation", "roots")


def is_plain(message: Any, *, agent_may_be_asked: bool) -> bool:
    """Whether a decoded request's answer can only ever be its result (so one JSON body carries it all)."""
    if agent_may_be_asked or not isinstance(message, dict) or message.get("method") not in PLAIN_METHODS:
        return False
    if "id" not in message:
        return False
    params = message.get("params")
    if params is None:
        return True
    if not isinstance(params, Mapping) or "task" in params:
        return False
    meta = params.get("_meta")
    return meta is None or (isinstance(meta, Mapping) and "progressToken" not in meta)


def may_be_asked(initialize: Any) -> bool:
    """Whether the agent opening a session with this ``initialize`` request declared it can answer questions."""
    params = initialize.get("params") if isinstance(initialize, dict) else None
    capabilities = params.get("capabilities") if isinstance(params, Mapping) else None
    if not isinstance(capabilities, Mapping):
        return False
    return any(capabilities.get(name) is not None for name in QUESTION_CAPABILITIES)


class AnsweringTransport(StreamableHTTPServerTransport):
    """The SDK's session transport, answering plain requests with JSON (see the module docstring).

    Args:
        *args: the SDK transport's arguments.
        json_answers: whether plain requests get JSON bodies (False: every request gets the SDK's SSE stream).
        hot_calls: plans a plain request's call on the hot path (``hot_path.py``); None: every one goes the SDK's way.
        **kwargs: the SDK transport's keyword arguments.
    """

    def __init__(self, *args: Any, json_answers: bool = True, hot_calls: HotCalls | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.json_answers = json_answers
        # Where a plain request may be served instead of by the SDK's server (hot_path.py); None: never.
        self.hot_calls = hot_calls
        # Hot-path calls running, by request id, each in a timeout that ``_cancel`` ends: a notifications/cancelled
        # for one cancels it.
        self._hot_scopes: dict[str, asyncio.Timeout] = {}
        # Until the session's initialize is seen, assume the agent can be asked (the SSE stream then).
        self._agent_may_be_asked = True
        # Requests answered with JSON: nothing they are sent is kept for resumption (no stream to resume).
        self.json_answered: set[str] = set()
        # Hot-path calls whose JSON window is open.
        self._windows = Windows()
        # When the session is idle long enough to end (loop time), and the one timer watching for it.
        self._idle_deadline = 0.0
        self._idle_timer: asyncio.TimerHandle | None = None
        # The headers a JSON answer starts with (``_send_json``), as the SDK's Response has them.
        self._json_head = [(b"content-type", CONTENT_TYPE_JSON.encode("latin-1"))]
        if self.mcp_session_id:
            session_header = (MCP_SESSION_ID_HEADER.lower().encode("latin-1"), self.mcp_session_id.encode("latin-1"))
            self._json_head.append(session_header)

    async def handle_request(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request of the session, its idle countdown suspended meanwhile, as the SDK's transport does.

        The SDK's transport moves its idle scope's deadline twice per request (to never while the first
        request in flight is served, to the idle timeout from now once the last ends), so every request
        cancels a timer and sets another. Here the deadline is kept the same way, only noted: one timer
        waits for it (``_check_idle``), and finding it moved later, or a request in flight, waits on. An
        idle session ends as the SDK's does, by its idle scope's deadline passing.
        """
        idle = self.idle_scope
        if idle is None or self._idle_timeout is None or idle.cancel_called:
            await super().handle_request(scope, receive, send)  # no timeout, or the session is ending: the SDK's
            return
        self._requests_in_flight += 1
        try:
            await self._handle_request(scope, receive, send)
        finally:
            self._request_ended(self._idle_timeout)

    def _request_ended(self, idle_timeout: float) -> None:
        """A request counted in flight ended: the session's idle countdown starts again once none is left."""
        self._requests_in_flight -= 1
        if not self._requests_in_flight and not self._terminated:  # an ended session waits for nothing
            loop = asyncio.get_running_loop()
            self._idle_deadline = deadline = loop.time() + idle_timeout
            if self._idle_timer is None:
                self._idle_timer = loop.call_at(deadline, self._check_idle)

    def _check_idle(self) -> None:
        """The session's idle deadline may have passed: end it as the SDK does, unless it was used since."""
        self._idle_timer = None
        idle = self.idle_scope
        if idle is None or idle.cancel_called or self._requests_in_flight:  # a request's end sets the timer again
            return
        loop = asyncio.get_running_loop()
        if self._idle_deadline > loop.time():
            self._idle_timer = loop.call_at(self._idle_deadline, self._check_idle)
            return
        idle.deadline = self._idle_deadline  # passed: the scope is cancelled, as on the SDK's own deadline

    async def serve_parsed(self, message: JSONRPCRequest, request: Request, send: Send) -> bool:
        """Serve a POST the hot lane has read and parsed, as ``handle_request`` serves one it reads itself.

        The lane found this session by the request's session id and answers only requests whose headers
        pass the SDK's checks of Accept and Content-Type (``answers_plainly``). The SDK's bookkeeping of
        requests in flight (the session's idle timeout) is kept; the request is not built, read, parsed
        or checked again. A session ending, or one checking Host and Origin itself, is served by
        ``handle_request``, as the long way would. Returns whether the session has ended.
        """
        idle = self.idle_scope
        scope = request.scope
        if (
            self._terminated
            or idle is None
            or self._idle_timeout is None
            or idle.cancel_called
            or self._security.settings.enable_dns_rebinding_protection
        ):
            scope[PARSED_REQUEST] = (message, request)
            await self.handle_request(scope, request.receive, send)
            return self._terminated
        self._requests_in_flight += 1
        try:
            await self._serve_checked(message, request, scope, request.receive, send)
        finally:
            self._request_ended(self._idle_timeout)
        return self._terminated

    async def _handle_request(self, scope: Scope, receive: Receive, send: Send) -> None:
        parsed: tuple[JSONRPCRequest, Request] | None = scope.get(PARSED_REQUEST)
        if parsed is None or self._terminated:  # a terminated session's 404 is the SDK's
            await super()._handle_request(scope, receive, send)
            return
        message, request = parsed
        # As the SDK's own first step for a POST (the Content-Type, and DNS-rebinding protection when set).
        refusal = await self._security.validate_request(request, is_post=True)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self._serve_plain(message, request, scope, receive, send)

    async def _handle_post_request(self, scope: Scope, request: Request, receive: Receive, send: Send) -> None:
        message = await self._plain_request(request) if self.json_answers else None
        if message is None:
            await super()._handle_post_request(scope, request, receive, send)
            return
        await self._serve_plain(message, request, scope, receive, send)

    async def _serve_plain(
        self, message: JSONRPCRequest, request: Request, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """Answer a plain request with JSON once its session id is checked (``_serve_checked``)."""
        try:
            if not await self._validate_request_headers(request, send):
                return
        except Exception as err:
            await self._failed(err, scope, receive, send)
            return
        await self._serve_checked(message, request, scope, receive, send)

    async def _serve_checked(
        self, message: JSONRPCRequest, request: Request, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """Answer a plain request with JSON: on the hot path if it plans the call, else through the SDK's server."""
        try:
            hot = self.hot_calls(message, request) if self.hot_calls is not None else None
            if hot is None:
                await self._answer(message, request, scope, receive, send)
            else:
                await self._answer_hot(hot, message.id, request, scope, receive, send)
        except Exception as err:
            await self._failed(err, scope, receive, send)

    async def _failed(self, err: Exception, scope: Scope, receive: Receive, send: Send) -> None:
        """Serving a POST failed: answer 500 and tell the session, as the SDK's transport does."""
        logger.exception("Error handling POST request")
        response = self._create_error_response(
            "Error handling POST request", HTTPStatus.INTERNAL_SERVER_ERROR, INTERNAL_ERROR
        )
        await response(scope, receive, send)
        if self._read_stream_writer is not None:
            await self._read_stream_writer.send(Exception(err))

    def answers_plainly(self, request: Request) -> bool:
        """Whether a POST's headers let it be answered with JSON: it accepts JSON and SSE, and it is JSON.

        Decided by the SDK's own checks of the Accept and Content-Type headers, once for each pair of
        their values (agents send the same few again and again).
        """
        headers = request.headers
        key = (headers.get("accept"), headers.get("content-type"))
        plain = _PLAIN_HEADERS.get(key)
        if plain is None:
            has_json, has_sse = check_accept_headers(request)
            # The SDK's two checks of the Content-Type, its transport's and its security's (``validate_request``).
            typed = self._check_content_type(request) and self._security._validate_content_type(key[1])
            plain = has_json and has_sse and typed
            if len(_PLAIN_HEADERS) < MAX_PLAIN_HEADERS:
                _PLAIN_HEADERS[key] = plain
        return self.json_answers and plain

    def plain_request(self, decoded: Any) -> JSONRPCRequest | None:
        """A decoded POST body as a request to answer with JSON; None for the SDK's own handling (errors included)."""
        if not is_plain(decoded, agent_may_be_asked=self._agent_may_be_asked):
            return None
        try:
            # The adapter's own validator, as ``jsonrpc_message_adapter.validate_python`` calls it.
            message = jsonrpc_message_adapter.validator.validate_python(decoded, by_name=False)
        except ValidationError:
            return None
        return message if isinstance(message, JSONRPCRequest) else None

    async def _plain_request(self, request: Request) -> JSONRPCRequest | None:
        """The request, if it is to be answered with JSON; None for the SDK's own handling (errors included)."""
        if not self.answers_plainly(request):
            return None
        try:
            decoded = pydantic_core.from_json(await request.body())
        except ValueError:
            return None
        if isinstance(decoded, dict) and decoded.get("method") == "initialize":
            self._agent_may_be_asked = may_be_asked(decoded)
            return None
        if isinstance(decoded, dict) and decoded.get("method") == "notifications/cancelled":
            self._cancel_hot_call(decoded.get("params"))
            return None
        return self.plain_request(decoded)

    def _cancel_hot_call(self, params: Any) -> None:
        """The agent cancelled a request: a hot-path call of that id ends (the SDK's server is told too)."""
        request_id = params.get("requestId") if isinstance(params, Mapping) else None
        scope = self._hot_scopes.get(str(request_id)) if isinstance(request_id, str | int) else None
        if scope is not None:
            cancel_call(scope)

    async def terminate(self) -> None:
        """End the session; its hot-path calls end with it, as the SDK's server ends its own requests."""
        for scope in list(self._hot_scopes.values()):
            cancel_call(scope)
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        await super().terminate()

    async def _answer_hot(
        self, call: HotCall, request_id: RequestId, request: Request, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """Run a hot-path call in this request's task and answer it with one JSON body, or stream it if it is late.

        A call not answered within ``JSON_WINDOW_S`` gets the long way's SSE stream from then on (see
        ``_stream_the_rest``), served by a task of its own while this one goes on with the call; its answer
        then goes through the transport's channel, as the SDK's server's would, and an agent that goes away
        meanwhile ends the call, as the long way's stream does.
        """
        key = str(request_id)
        loop = asyncio.get_running_loop()
        # An asyncio task, started only for a late call: most calls are answered within the window, and a
        # task group per call would cost each of them what only the late ones need.
        stream: asyncio.Task[None] | None = None
        agent_gone = False
        # The call's own cancellation (asyncio's, counted as the task's): most calls are never cancelled, and
        # an anyio cancel scope per call would cost each of them the bookkeeping only a cancelled one needs.
        call_scope = asyncio.timeout(None)

        def start_streaming() -> None:
            nonlocal stream
            inner, reader = anyio.create_memory_object_stream[EventMessage](REQUEST_STREAM_BUFFER_SIZE)
            self._request_streams[key] = (inner, reader)
            stream = loop.create_task(serve_stream(reader))

        async def serve_stream(reader: MemoryObjectReceiveStream[EventMessage]) -> None:
            nonlocal agent_gone
            await self._stream_the_rest(key, request, reader, scope, receive, send)
            if self._hot_scopes.get(key) is call_scope:  # the stream ended before the call: the agent went
                agent_gone = True
                cancel_call(call_scope)

        self.json_answered.add(key)
        window = self._windows.open(loop, start_streaming)
        try:
            try:
                async with call_scope:
                    self._hot_scopes[key] = call_scope
                    try:
                        answer = await call()
                    finally:
                        window.closed = True
                        self._hot_scopes.pop(key, None)
            except TimeoutError:
                if not call_scope.expired():  # the call's own
                    raise
                answer = JSONRPCError(
                    jsonrpc="2.0", id=request_id, error=ErrorData(code=REQUEST_CANCELLED, message="Request cancelled")
                )
            if stream is None:
                if isinstance(answer, JSONRPCError) and answer.error.code == REQUEST_CANCELLED:
                    await self._cancelled_answer(answer)(scope, receive, send)
                else:
                    await self._send_json(answer, send)
                return
            if not agent_gone:
                with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
                    assert self._write_stream is not None  # connect() runs before any request is served
                    await self._write_stream.send(SessionMessage(answer))
            await stream
        finally:
            self.json_answered.discard(key)
            if stream is not None and not stream.done():  # this request was cancelled: its stream ends with it
                stream.cancel()
                with anyio.CancelScope(shield=True):
                    await asyncio.wait({stream})

    def _cancelled_answer(self, answer: JSONRPCError) -> Response:
        """A cancelled hot-path call's answer: a one-event stream (the session ended meanwhile: 500)."""
        if self._terminated:
            return self._create_error_response(
                "Session terminated before the request completed", HTTPStatus.INTERNAL_SERVER_ERROR, INTERNAL_ERROR
            )
        return self._cancelled_on_a_stream(answer)

    async def _send_json(self, answer: JSONRPCResponse | JSONRPCError, send: Send) -> None:
        """Send ``answer`` as ``_create_json_response(answer)`` would (same bytes, headers, status), no Response."""
        body = answer.__pydantic_serializer__.to_json(answer, by_alias=True, exclude_unset=True)
        headers = [*self._json_head, (b"content-length", str(len(body)).encode("latin-1"))]
        await send({"type": "http.response.start", "status": OK, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _answer(
        self,
        message: JSONRPCRequest,
        request: Request,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        writer = self._read_stream_writer
        if writer is None:  # pragma: no cover - connect() runs before any request is served
            raise ValueError("No read stream writer available. Ensure connect() is called first.")
        request_id = str(message.id)
        self.json_answered.add(request_id)
        inner, reader = anyio.create_memory_object_stream[EventMessage](REQUEST_STREAM_BUFFER_SIZE)
        arrivals = _Arrivals(inner)
        self._request_streams[request_id] = (arrivals, reader)  # type: ignore[assignment]
        metadata = ServerMessageMetadata(
            request_context=request,
            on_request_unanswered=partial(self._terminate_unanswered_request, message.id),
            can_send_request=False,
        )
        streamed = False
        try:
            await writer.send(SessionMessage(message, metadata=metadata))
            with anyio.move_on_after(JSON_WINDOW_S):
                await arrivals.arrived.wait()
            if not arrivals.arrived.is_set():
                streamed = True
                await self._stream_the_rest(request_id, request, reader, scope, receive, send)
                return
            event = await self._result(reader, request_id)
            if event is None:
                response = self._create_error_response(
                    "Session terminated before the request completed", HTTPStatus.INTERNAL_SERVER_ERROR, INTERNAL_ERROR
                )
            elif isinstance(event.message, JSONRPCError) and event.message.error.code == REQUEST_CANCELLED:
                response = self._cancelled_on_a_stream(event.message)
            else:
                response = self._create_json_response(event.message)
        finally:
            self.json_answered.discard(request_id)
            if not streamed:
                await self._clean_up_memory_streams(request_id)
        await response(scope, receive, send)

    async def _stream_the_rest(
        self,
        request_id: str,
        request: Request,
        reader: MemoryObjectReceiveStream[EventMessage],
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        """Answer a request that is taking a while as the long way does: an SSE stream, resumable, kept alive.

        As the SDK's own POST handling from the point where the request has been handed over.
        """
        self.json_answered.discard(request_id)  # from now on its messages are kept for resumption
        protocol_version = request.headers.get(MCP_PROTOCOL_VERSION_HEADER, DEFAULT_NEGOTIATED_VERSION)
        priming_event = await self._mint_priming_event(request_id, protocol_version)
        sse_writer, sse_reader = anyio.create_memory_object_stream[SSEEvent](0)
        self._sse_stream_writers[request_id] = sse_writer
        headers = {
            "Cache-Control": "no-cache, no-transform",
            "Connection": "keep-alive",
            "Content-Type": CONTENT_TYPE_SSE,
            **({MCP_SESSION_ID_HEADER: self.mcp_session_id} if self.mcp_session_id else {}),
        }
        response = EventSourceResponse(
            content=sse_reader,
            data_sender_callable=partial(self._run_sse_writer, request_id, sse_writer, reader, priming_event),
            headers=headers,
        )
        try:
            await response(scope, receive, send)
        except Exception:
            logger.exception("SSE response error")
            await sse_writer.aclose()
            await self._clean_up_memory_streams(request_id)
        finally:
            await sse_reader.aclose()

    def _cancelled_on_a_stream(self, message: JSONRPCError) -> Response:
        """A cancelled request's answer as a one-event SSE stream, as it would have come the long way.

        The agent that cancelled may be closing: the SDK's client lets an SSE answer find it gone, but
        fails on a JSON one.
        """
        data = message.model_dump_json(by_alias=True, exclude_unset=True)
        headers = {"Cache-Control": "no-cache, no-transform", MCP_SESSION_ID_HEADER: self.mcp_session_id or ""}
        return Response(f"event: message\r\ndata: {data}\r\n\r\n", headers=headers, media_type=CONTENT_TYPE_SSE)

    @staticmethod
    async def _result(reader: ObjectReceiveStream[EventMessage], request_id: str) -> EventMessage | None:
        """The request's response from its stream (None if the session ended first); anything else is dropped."""
        try:
            while True:
                event = await reader.receive()
                if isinstance(event.message, JSONRPCResponse | JSONRPCError):
                    return event
                logger.warning("a message for request %s, answered with JSON, had no way to the agent", request_id)
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            return None


def cancel_call(call: asyncio.Timeout) -> None:
    """Cancel the hot-path call running in ``call`` (at the loop's next turn), unless it is cancelled already."""
    if not call.expired():
        call.reschedule(asyncio.get_running_loop().time())


class _Window:
    """One hot-path call's JSON window: ``on_late`` runs if it is still open at ``deadline``."""

    __slots__ = ("deadline", "on_late", "closed")

    def __init__(self, deadline: float, on_late: Callable[[], None]) -> None:
        self.deadline = deadline
        self.on_late = on_late
        self.closed = False

    def close(self) -> None:
        """The call is answered (or ended): it is not late (the hot path sets ``closed`` itself)."""
        self.closed = True


class Windows:
    """The open JSON windows of a session's hot-path calls, oldest first, watched by one timer.

    Every window is ``JSON_WINDOW_S`` long, so the order they open in is the order they end in: the timer
    waits for the oldest one still open, and a window closing costs nothing but a mark (where a timer
    per call would be pushed into the loop's schedule and taken out again for almost every call).
    """

    def __init__(self) -> None:
        self._open: deque[_Window] = deque()
        self._timer: asyncio.TimerHandle | None = None

    def open(self, loop: asyncio.AbstractEventLoop, on_late: Callable[[], None]) -> _Window:
        """A window for a call starting now; ``on_late`` runs if it is still open ``JSON_WINDOW_S`` from now."""
        window = _Window(loop.time() + JSON_WINDOW_S, on_late)
        waiting = self._open
        while waiting and waiting[0].closed:
            waiting.popleft()
        waiting.append(window)
        if self._timer is None:
            self._timer = loop.call_at(window.deadline, self._check, loop)
        return window

    def _check(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        now = loop.time()
        waiting = self._open
        while waiting:
            window = waiting[0]
            if not window.closed and window.deadline > now:
                self._timer = loop.call_at(window.deadline, self._check, loop)
                return
            waiting.popleft()
            if not window.closed:
                window.closed = True
                try:  # at once, before the call can end: either it is answered with JSON or it is streamed
                    window.on_late()
                except Exception:
                    logger.exception("could not start streaming a late call")


class _Arrivals:
    """The sending side of one request's stream, which also tells when something arrived (or it closed).

    Waiting for ``arrived`` can be given up without losing a message, where giving up a ``receive()``
    could lose the one handed over just then.
    """

    def __init__(self, inner: MemoryObjectSendStream[EventMessage]) -> None:
        self._inner = inner
        self.arrived = anyio.Event()

    async def send(self, item: EventMessage) -> None:
        await self._inner.send(item)
        self.arrived.set()

    def send_nowait(self, item: EventMessage) -> None:
        self._inner.send_nowait(item)
        self.arrived.set()

    def close(self) -> None:
        self._inner.close()
        self.arrived.set()

    async def aclose(self) -> None:
        await self._inner.aclose()
        self.arrived.set()

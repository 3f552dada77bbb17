"""A Streamable HTTP connection's raw lane: a hot call POSTed from the calling task by the SDK transport's own steps.

The SDK's way sends a request through its dispatcher, a memory stream to the transport's writer task,
a task of its own for the POST, and a memory stream back to the dispatcher, with a model built for the
typed result. The hot path's ``tools/call`` (``ServerSession.call_tool_passing_through``) instead runs
the transport's own POST handling (``StreamableHTTPTransport._handle_post_request``) in the calling
task, with the session's headers (``Mcp-Session-Id``, ``MCP-Protocol-Version``, the stamp's and the
configured ones) and the same httpx client (its auth flow signs the request, OAuth tokens included).
Whatever that handling would have given the dispatcher comes back to the lane instead (``_Answer``):
the answer to the call, from a JSON body or from the call's SSE stream (parsed by the SDK, resumed
with ``Last-Event-ID`` as the SDK resumes it), and the errors the SDK makes up (an HTTP error status,
a 404 "Session terminated", "SSE stream ended…"). Anything else on the call's stream (the server's own
questions, its notifications) goes on to the dispatcher as the transport would send it, from the
calling task, so a question is put to the calling agent (``asking.py``).

The lane keeps the dispatcher's contract: its own ids (``toolgate-N``), an error answer raised as
``MCPError``, a call cancelled or past its deadline followed by the courtesy ``notifications/cancelled``
(given to the transport's writer, which POSTs it to a handshake-era server and drops it for a
2026-07-28 one, whose cancellation is the POST's end), and ``Connection closed`` when the POST itself
fails (the connection is then lost, as the SDK's transport ends on such a failure).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx2
from mcp.client.streamable_http import RequestContext, StreamableHTTPTransport
from mcp.shared._context_streams import ContextSendStream, create_context_streams
from mcp.shared.exceptions import MCPError
from mcp.shared.inbound import MCP_PROTOCOL_VERSION_HEADER
from mcp.shared.message import ClientMessageMetadata, SessionMessage
from mcp_types import ErrorData, JSONRPCError, JSONRPCNotification, JSONRPCRequest, JSONRPCResponse

from gateway_core.downstream.raw_lane import CANCEL_WRITE_TIMEOUT_S, CLOSED, ID_PREFIX, LaneTimeoutError

logger = logging.getLogger(__name__)


class _Answer:
    """Stands in for the transport's read stream during one call: keeps the call's answer, passes on the rest."""

    __slots__ = ("_inbound", "_request_id", "outcome")

    def __init__(self, inbound: ContextSendStream[SessionMessage | Exception], request_id: str) -> None:
        self._inbound = inbound
        self._request_id = request_id
        self.outcome: dict[str, Any] | ErrorData | None = None

    async def send(self, item: SessionMessage | Exception) -> None:
        """What the transport hands the dispatcher: the call's answer is kept, anything else goes on."""
        if isinstance(item, SessionMessage) and self.outcome is None:
            message = item.message
            if isinstance(message, JSONRPCResponse) and message.id == self._request_id:
                self.outcome = message.result
                return
            if isinstance(message, JSONRPCError) and message.id == self._request_id:
                self.outcome = message.error
                return
        await self._inbound.send(item)


class HttpLane:
    """Raw requests over one Streamable HTTP connection (see the module docstring).

    Args:
        transport: the SDK's transport of the connection (its session id and negotiated version).
        http: the connection's httpx client (headers, auth, timeouts).
        inbound: the transport's read stream writer (to the dispatcher).
        outbound: the transport's write stream (to its writer task), for courtesy cancels.
        broken: called when a POST fails (the connection is lost).
    """

    # Each call's headers are the stamp's (``base.Lane``).
    sends_headers = True

    def __init__(
        self,
        transport: StreamableHTTPTransport,
        http: httpx2.AsyncClient,
        inbound: ContextSendStream[SessionMessage | Exception],
        outbound: ContextSendStream[SessionMessage],
        broken: Callable[[], None],
    ) -> None:
        self._transport = transport
        self._http = http
        self._inbound = inbound
        self._outbound = outbound
        self._broken = broken
        self._sent = 0
        self._closed = False

    async def request(
        self,
        method: str,
        params: dict[str, Any] | None,
        *,
        headers: dict[str, str] | None = None,
        deadline: float | None = None,
    ) -> dict[str, Any]:
        """Send a request and return its result as it came, as ``JSONRPCDispatcher.send_raw_request`` does.

        ``headers``: the session stamp's (``MCP-Protocol-Version`` and, in 2026-07-28, the method's).

        Raises:
            MCPError: the server answered with an error (or the SDK made one up, as for its own
                requests), or ``CONNECTION_CLOSED`` ("Connection closed"): the POST failed.
            LaneTimeoutError: ``deadline`` passed first.
        """
        if self._closed:
            raise MCPError(code=CLOSED.code, message=CLOSED.message)
        self._sent += 1
        request_id = f"{ID_PREFIX}{self._sent}"
        transport = self._transport
        if params:
            message = JSONRPCRequest(jsonrpc="2.0", id=request_id, method=method, params=params)
        else:
            message = JSONRPCRequest(jsonrpc="2.0", id=request_id, method=method)
        metadata = ClientMessageMetadata(headers=headers) if headers else None
        if headers and (version := headers.get(MCP_PROTOCOL_VERSION_HEADER)) is not None:
            transport._protocol_version_header = version  # as the transport's writer notes it for each request
        answer = _Answer(self._inbound, request_id)
        context = RequestContext(
            client=self._http,
            session_id=transport.session_id,
            session_message=SessionMessage(message, metadata=metadata),
            metadata=metadata,
            read_stream_writer=answer,  # type: ignore[arg-type]  # what the transport calls of it: send()
        )
        failed: Exception | None = None
        try:
            with anyio.move_on_at(deadline if deadline is not None else float("inf")) as scope:
                try:
                    await transport._handle_post_request(context)
                except Exception as exc:  # what would end the SDK's transport: the connection is lost
                    failed = exc
                else:
                    if answer.outcome is None:
                        await anyio.sleep_forever()  # as the dispatcher waits for an answer that never comes
        except anyio.get_cancelled_exc_class():
            await self._cancel(request_id)
            raise
        if scope.cancelled_caught:
            await self._cancel(request_id)
            raise LaneTimeoutError()
        if failed is not None:
            logger.debug("a raw call's POST failed", exc_info=failed)
            self._broken()
            raise MCPError(code=CLOSED.code, message=CLOSED.message) from failed
        outcome = answer.outcome
        if isinstance(outcome, ErrorData):
            raise MCPError(code=outcome.code, message=outcome.message, data=outcome.data)
        assert outcome is not None
        return outcome

    def close(self) -> None:
        """The connection ended: later calls fail at once with ``CLOSED``."""
        self._closed = True

    async def _cancel(self, request_id: str) -> None:
        """The dispatcher's courtesy cancel, given to the transport's writer (which knows the era's way)."""
        params = {"requestId": request_id, "reason": "caller cancelled"}
        cancel = JSONRPCNotification(jsonrpc="2.0", method="notifications/cancelled", params=params)
        with anyio.move_on_after(CANCEL_WRITE_TIMEOUT_S, shield=True):
            try:
                await self._outbound.send(SessionMessage(cancel))
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                pass


@asynccontextmanager
async def streamable_http(
    url: str, http: httpx2.AsyncClient, broken: Callable[[], None]
) -> AsyncIterator[tuple[Any, HttpLane]]:
    """The SDK's ``streamable_http_client`` (no cap on an SSE event's size), with a raw lane on its transport.

    Yields the transport's streams (read, write) and the lane. The steps are the SDK's own: its
    transport's writer task, the session ended with DELETE on close.
    """
    transport = StreamableHTTPTransport(url, max_sse_event_size=None)
    inbound, read_stream = create_context_streams[SessionMessage | Exception](0)
    write_stream, write_reader = create_context_streams[SessionMessage](0)
    async with inbound, read_stream, write_stream, write_reader, anyio.create_task_group() as tg:

        def start_get_stream() -> None:
            tg.start_soon(transport.handle_get_stream, http, inbound)

        tg.start_soon(transport.post_writer, http, write_reader, inbound, write_stream, start_get_stream, tg)
        lane = HttpLane(transport, http, inbound, write_stream, broken)
        try:
            yield (read_stream, write_stream), lane
        finally:
            lane.close()
            if transport.session_id:
                await transport.terminate_session(http)
            tg.cancel_scope.cancel()

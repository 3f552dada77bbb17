"""The legacy SSE client transport: the SDK's ``sse_client`` without its 1 MiB cap on one event.

The server's event stream (a GET) first names the endpoint to POST messages to, then carries one
JSON-RPC message per ``message`` event. The SDK (2.3) reads that stream with httpx2's default cap of
1 MiB per event and offers no way to lift it (modelcontextprotocol/python-sdk#3332), so a larger
result ended the whole connection. Here events may be as large as the server sends. A POST the
server refuses answers that request with an error, and later messages are still sent.
Lifecycle: ``legacy_sse_client`` connects, yields the message streams, and closes both on exit.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from urllib.parse import urljoin, urlsplit

import anyio
import anyio.abc
import httpx2
import mcp_types as types

# The SDK's own redirect rules (same origin only): this transport follows what sse_client follows.
from mcp.shared._httpx_utils import request_within_origin, sse_within_origin
from mcp.shared.message import SessionMessage
from pydantic import ValidationError

from gateway_core.downstream.base import ConnectError

logger = logging.getLogger(__name__)

ReadStreams = tuple[
    anyio.abc.ObjectReceiveStream[SessionMessage | Exception], anyio.abc.ObjectSendStream[SessionMessage]
]


@asynccontextmanager
async def legacy_sse_client(
    url: str,
    headers: Mapping[str, str],
    *,
    timeout_s: float = 30.0,
    read_timeout_s: float = 300.0,
    auth: httpx2.Auth | None = None,
) -> AsyncIterator[ReadStreams]:
    """Connect to the legacy SSE server at ``url``; yield its (read, write) message streams.

    Args:
        url: the server's event stream, e.g. ``http://127.0.0.1:8000/sse``.
        headers: sent with every request (resolved values).
        timeout_s: connecting and sending.
        read_timeout_s: the longest the event stream may stay silent.
        auth: signs every request (a sign-in's tokens, ``oauth.py``).

    Raises:
        ConnectError: the server named no usable message endpoint.
        httpx2.HTTPError: the event stream could not be opened.
    """
    timeout = httpx2.Timeout(timeout_s, read=read_timeout_s)
    async with (
        httpx2.AsyncClient(headers=dict(headers), timeout=timeout, auth=auth) as client,
        sse_within_origin(client, url, max_event_size=None) as events,
    ):
        events.response.raise_for_status()
        read_writer, read_stream = anyio.create_memory_object_stream[SessionMessage | Exception](0)
        write_stream, write_reader = anyio.create_memory_object_stream[SessionMessage](0)
        async with read_writer, read_stream, write_stream, write_reader, anyio.create_task_group() as tg:
            endpoint = await tg.start(_read_events, url, events, read_writer)
            tg.start_soon(_write_messages, client, endpoint, write_reader, read_writer)
            try:
                yield read_stream, write_stream
            finally:
                tg.cancel_scope.cancel()


async def _read_events(
    url: str,
    events: httpx2.EventSource,
    messages: anyio.abc.ObjectSendStream[SessionMessage | Exception],
    *,
    task_status: anyio.abc.TaskStatus[str],
) -> None:
    """Wait for the message endpoint, say which it is, then pass each message on until the stream ends."""
    async with messages:
        endpoint: str | None = None
        try:
            async for event in events:
                if event.event == "endpoint" and endpoint is None:
                    endpoint = _same_origin(url, event.data)
                    task_status.started(endpoint)
                elif event.event == "message" and event.data and endpoint is not None:  # no data: a keep-alive
                    await messages.send(_parse(event.data))
        except httpx2.TransportError as exc:
            if endpoint is None:
                raise
            logger.info("the event stream of %s broke: %s", url, exc)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            return  # the session has gone
        if endpoint is None:
            raise ConnectError(f"{url} ended its event stream without naming a message endpoint")


async def _write_messages(
    client: httpx2.AsyncClient,
    endpoint: str,
    outgoing: anyio.abc.ObjectReceiveStream[SessionMessage],
    answers: anyio.abc.ObjectSendStream[SessionMessage | Exception],
) -> None:
    """POST each message in turn; a request the server refuses is answered with an error."""
    async with outgoing:
        async for message in outgoing:
            refusal = await _post(client, endpoint, message.message)
            if refusal is not None:
                try:
                    await answers.send(SessionMessage(refusal))
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    return


def _same_origin(url: str, named: str) -> str:
    """The message endpoint the server named, which must be on the event stream's origin."""
    endpoint = urljoin(url, named)
    if urlsplit(endpoint)[:2] != urlsplit(url)[:2]:
        raise ConnectError(f"the server named a message endpoint on another origin: {endpoint}")
    return endpoint


def _parse(data: str) -> SessionMessage | Exception:
    try:
        return SessionMessage(types.jsonrpc_message_adapter.validate_json(data, by_name=False))
    except ValidationError as exc:
        return exc


async def _post(client: httpx2.AsyncClient, endpoint: str, message: types.JSONRPCMessage) -> types.JSONRPCError | None:
    """POST one message; for a request the server did not take, the error that answers it."""
    body = message.model_dump(by_alias=True, mode="json", exclude_unset=True)
    try:
        response = await request_within_origin(client, "POST", endpoint, json=body)
    except httpx2.TransportError as exc:
        logger.info("sending a message to %s failed: %s", endpoint, exc)
        # What the SDK's sessions say when a transport breaks, so the server is seen as gone.
        error = types.ErrorData(code=types.CONNECTION_CLOSED, message="Connection closed")
    else:
        if response.is_success:
            return None
        error = types.ErrorData(
            code=types.INTERNAL_ERROR, message=f"the server answered HTTP {response.status_code} to this request"
        )
    if not isinstance(message, types.JSONRPCRequest):
        return None
    return types.JSONRPCError(jsonrpc="2.0", id=message.id, error=error)

"""The remote transports: Streamable HTTP (the SDK's) and legacy SSE (``legacy_sse.py``), wrapped into a ``Connection``.

A message may be as large as the server sends: neither transport caps one SSE event (the SDK's
Streamable HTTP client would at 1 MiB, and a larger result would end the connection).
The transports give no signal when a server goes away between requests, so the read stream is
wrapped to notice its end; the supervisor also probes idle remote servers (see ``server.py``).
A server that needs a sign-in gets a ``GatewayAuth`` (``oauth.py``) on its HTTP client; when it refuses
the gateway for want of one, connecting raises ``SignInRequired`` and a live connection is ended.
A Streamable HTTP connection has a raw lane for the hot path's calls (``http_lane.py``).
Lifecycle: ``open_http`` / ``open_sse`` connect, yield a ``Connection``, and close the HTTP client on exit.
"""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Generic, TypeVar

import anyio
import anyio.abc
import httpx2

from gateway_core.downstream.base import ConnectError, Connection, Lane
from gateway_core.downstream.http_lane import streamable_http
from gateway_core.downstream.legacy_sse import legacy_sse_client
from gateway_core.downstream.oauth import GatewayAuth, MachineAuth, SignInRequired, StepUpAnswers, discover_issuer

if TYPE_CHECKING:
    from typing import Self

    from mcp.shared._stream_protocols import ReadStream

# Connecting and sending are quick or broken; per-call deadlines are enforced above the transport.
HTTP_TIMEOUT_S = 30.0
# A streamed response may stay silent while a long tool runs; this only bounds a dead stream.
HTTP_READ_TIMEOUT_S = 300.0

_T = TypeVar("_T")
# What signs requests in: a person's stored sign-in, client credentials, or nothing.
Auth = GatewayAuth | MachineAuth | None


class _EndWatchingStream(anyio.abc.AsyncResource, Generic[_T]):
    """A read stream that sets ``ended`` when the underlying stream ends or is closed."""

    def __init__(self, inner: ReadStream[_T], ended: anyio.Event) -> None:
        self._inner = inner
        self._ended = ended

    async def receive(self) -> _T:
        try:
            return await self._inner.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._ended.set()
            raise

    async def aclose(self) -> None:
        await self._inner.aclose()

    @property
    def last_context(self) -> contextvars.Context | None:
        """The context the last message was sent in: a call's own response stream answers in its caller's.

        The SDK's dispatcher handles a server's request in this context, which is how a question on
        a call's stream is known to be that call's (``asking.py``).
        """
        context: contextvars.Context | None = getattr(self._inner, "last_context", None)
        return context

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> _T:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None


def _connection(
    streams: tuple[ReadStream[_T], object],
    url: str,
    auth: Auth,
    *,
    ended: anyio.Event | None = None,
    raw: Lane | None = None,
) -> Connection:
    ended = ended or anyio.Event()
    read, write = streams
    if not isinstance(auth, GatewayAuth):
        auth = None
    else:
        auth.on_challenge = ended.set
    return Connection(
        streams=(_EndWatchingStream(read, ended), write),  # type: ignore[arg-type]
        lost=ended,
        loss_reason=lambda: f"the connection to {url} was closed",
        signed_out=lambda: auth is not None and auth.challenge is not None,
        raw=raw,
    )


@asynccontextmanager
async def _signing_in(url: str, auth: Auth) -> AsyncIterator[None]:
    """Turn whatever a refusal for want of a sign-in became in the SDK (an error answer) into ``SignInRequired``.

    A refused client-credentials sign-in becomes a ``ConnectError`` saying why.
    """
    try:
        yield
    except Exception as exc:
        if isinstance(auth, MachineAuth) and auth.failure is not None:
            raise ConnectError(auth.failure) from exc
        if not isinstance(auth, GatewayAuth) or auth.challenge is None:
            raise
        async with httpx2.AsyncClient(timeout=HTTP_TIMEOUT_S) as http:
            challenge = await discover_issuer(auth.challenge, url, http)
        raise SignInRequired(challenge) from exc


def _transport(auth: Auth) -> httpx2.AsyncBaseTransport:
    """How requests are sent: a signed-in server's 403 ``insufficient_scope`` becomes an error saying what to do."""
    sent = httpx2.AsyncHTTPTransport()
    return StepUpAnswers(sent, auth.server) if isinstance(auth, GatewayAuth) else sent


@asynccontextmanager
async def open_http(url: str, headers: Mapping[str, str], auth: Auth = None) -> AsyncIterator[Connection]:
    """Connect to a Streamable HTTP server; ``headers`` hold resolved values and go on every request.

    Raises:
        SignInRequired: the server refused the gateway with a ``Bearer`` challenge.
    """
    timeout = httpx2.Timeout(HTTP_TIMEOUT_S, read=HTTP_READ_TIMEOUT_S)
    ended = anyio.Event()
    async with (
        _signing_in(url, auth),
        httpx2.AsyncClient(
            headers=dict(headers), timeout=timeout, follow_redirects=True, auth=auth, transport=_transport(auth)
        ) as http,
        streamable_http(url, http, lambda: ended.set()) as (streams, lane),
    ):
        yield _connection(streams, url, auth, ended=ended, raw=lane)


@asynccontextmanager
async def open_sse(url: str, headers: Mapping[str, str], auth: Auth = None) -> AsyncIterator[Connection]:
    """Connect to a legacy SSE server; ``headers`` hold resolved values and go on every request.

    Raises:
        SignInRequired: the server refused the gateway with a ``Bearer`` challenge.
    """
    async with (
        _signing_in(url, auth),
        legacy_sse_client(
            url, headers, timeout_s=HTTP_TIMEOUT_S, read_timeout_s=HTTP_READ_TIMEOUT_S, auth=auth
        ) as streams,
    ):
        yield _connection(streams, url, auth)

"""The hot lane: a plain call, read or prompt of a known session reaches its transport without the layers in between.

Past the guard (``http.py``: Host, Origin, the agent's token, its share of requests), a POST to ``/mcp``
goes through the size limit (``body_limit.py``), the SDK's own size limit, which reads the body again,
and the session managers (``replay.py``'s and the SDK's), which route it by protocol era and look its
session up, before the session's transport (``json_answers.py``) reads and parses the body once more.
For a plain ``tools/call``, ``resources/read`` or ``prompts/get`` in a handshake-era session, the kind
the hot path serves (``hot_path.py``), ``HotLane`` does what those layers would do, once: it finds the
session as the manager would (its owner, the protocol-version header), reads the body within the limit
and parses it, and hands the transport the parsed request. A 2026-07-28 request has no session: a plain
request of those three methods in that era is served by ``ModernLane`` (``modern_lane.py``) instead of the
SDK's entry for the era. Anything else, and anything in doubt, goes the long way, its body replayed, and
is answered as it always was. ``TOOLGATE_HOT_PATH=0`` leaves the lane out.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import pydantic_core
from mcp_types import JSONRPCRequest
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway_core.frontend.body_limit import MB, declared_length
from gateway_core.frontend.hot_path import HOT_METHODS
from gateway_core.frontend.json_answers import AnsweringTransport
from gateway_core.frontend.metrics import Metrics
from gateway_core.frontend.modern_lane import ModernLane
from gateway_core.frontend.replay import ResumableSessionManager


class IndexedHeaders(Headers):
    """A request's headers read as starlette's ``Headers`` reads them (the first of a name), each found in one step."""

    def __init__(self, scope: Scope) -> None:  # as ``Headers(scope=scope)``, with the index
        self._list = scope["headers"] = list(scope["headers"])
        self._first = dict(reversed(self._list))

    def __getitem__(self, key: str) -> str:
        try:
            return self._first[_NAMES.get(key) or _name(key)].decode("latin-1")
        except KeyError:
            raise KeyError(key) from None

    def __contains__(self, key: Any) -> bool:
        return (_NAMES.get(key) or _name(key)) in self._first

    def get(self, key: str, default: Any = None) -> Any:
        """The first value of the header ``key`` (any case), or ``default``."""
        value = self._first.get(_NAMES.get(key) or _name(key))
        return default if value is None else value.decode("latin-1")


# Header names as looked up (any case) and as requests carry them: the code looks up a few names, over and over.
_NAMES: dict[str, bytes] = {}
MAX_NAMES = 256


def _name(key: str) -> bytes:
    """The header name ``key`` as a request carries it (lower case), kept for the next lookup."""
    name = key.lower().encode("latin-1")
    if len(_NAMES) < MAX_NAMES:
        _NAMES[key] = name
    return name


class LaneRequest(Request):
    """The request as the lane and every layer after it read it (the transport, the hot path, the forwarder).

    They look up a dozen headers between them; these are found by name in one step instead of a scan
    each, and the headers themselves are an attribute, not a property computed on every reading.
    """

    headers: Headers = None  # type: ignore[assignment]  # an attribute here, where starlette has a property

    def __init__(self, scope: Scope, receive: Receive) -> None:
        super().__init__(scope, receive)
        self.headers = IndexedHeaders(scope)


class HotLane:
    """An ASGI app serving hot-path calls straight from their session's transport (see the module docstring).

    Args:
        long_way: the app that serves every other request (the size limit and the session manager).
        sessions: the session manager the long way ends in.
        limit_mb: the size limit in force (``gateway.max_request_body_mb``), or ``None`` for none.
        metrics: where requests taking the lane are counted.
        modern: serves plain 2026-07-28 calls, reads and prompts (None: they go the long way).
    """

    def __init__(
        self,
        long_way: ASGIApp,
        *,
        sessions: ResumableSessionManager,
        limit_mb: Callable[[], float | None],
        metrics: Metrics,
        modern: ModernLane | None = None,
    ) -> None:
        self._long_way = long_way
        self._sessions = sessions
        self._limit_mb = limit_mb
        self._metrics = metrics
        self._modern = modern

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve a hot-path call in its session, or hand the request to the long way."""
        request = LaneRequest(scope, receive)  # the one built for this request: the transport and the call use it
        if scope["method"] == "POST" and self._modern is not None and self._modern.takes(request):
            await self._serve_modern(self._modern, request, scope, receive, send)
            return
        found = self._sessions.session_of(request) if scope["method"] == "POST" else None
        if found is None or not found[1].answers_plainly(request):
            await self._long_way(scope, receive, send)
            return
        session_id, transport = found
        body, read = await _body_within(scope, receive, self._limit_mb())
        message = _plain_call(body, transport) if body is not None else None
        if message is None:
            await self._long_way(scope, _replaying(read, receive), send)
            return
        self._metrics.count_hot_lane()
        if await transport.serve_parsed(message, request, send):  # the session ended meanwhile
            await self._sessions.discard_ended(session_id, transport)

    async def _serve_modern(
        self, lane: ModernLane, request: LaneRequest, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """Serve a 2026-07-28 request on the modern lane if it plans the call, else the long way."""
        body, read = await _body_within(scope, receive, self._limit_mb())
        call = await lane.plan(body, request) if body is not None else None
        if call is None:
            await self._long_way(scope, _replaying(read, receive), send)
            return
        self._metrics.count_hot_lane()
        await lane.serve(call, request, scope, receive, send)


async def _body_within(scope: Scope, receive: Receive, limit_mb: float | None) -> tuple[bytes | None, deque[Message]]:
    """The request's whole body if it is within the limit (else None), and the messages read for it.

    Reads no further than ``body_limit.BodyLimit`` would before refusing, so the long way, given the
    messages read, refuses the request as it would have.
    """
    limit = int(limit_mb * MB) if limit_mb is not None else None
    read: deque[Message] = deque()
    if limit is not None and declared_length(scope) > limit:
        return None, read
    size = 0
    while True:
        message = await receive()
        read.append(message)
        if message["type"] != "http.request":
            return None, read
        size += len(message.get("body", b""))
        if limit is not None and size > limit:
            return None, read
        if not message.get("more_body", False):
            if len(read) == 1:  # the usual: the whole body in one message
                return message.get("body", b""), read
            return b"".join(part.get("body", b"") for part in read), read


def _plain_call(body: bytes, transport: AnsweringTransport) -> JSONRPCRequest | None:
    """The body as a hot-path request the transport answers plainly, or None for the long way."""
    try:
        decoded = pydantic_core.from_json(body)
    except ValueError:
        return None
    if not isinstance(decoded, dict) or decoded.get("method") not in HOT_METHODS:
        return None
    return transport.plain_request(decoded)


def _replaying(read: deque[Message], receive: Receive) -> Receive:
    """``receive``, giving the messages already read first."""

    async def replay() -> Message:
        return read.popleft() if read else await receive()

    return replay

"""The size limit on agents' requests: ``gateway.max_request_body_mb``, only when the person sets one.

Without it a request may be as large as an agent sends, as over stdio straight to a server. With it,
a request whose ``Content-Length`` is larger is refused before its body is read, and one sent in
chunks is refused once its body passes the limit: HTTP 413 with a JSON-RPC error naming the setting.
The limit is read for each request, so an edit applies to the next one.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# JSON-RPC "Invalid Request": the request as sent cannot be taken.
INVALID_REQUEST = -32600
MB = 1024 * 1024


class BodyLimit:
    """An ASGI wrapper that refuses request bodies larger than the configured limit.

    Args:
        app: the application that serves requests within the limit.
        limit_mb: the limit in force, in MB (MiB), or ``None`` for no limit.
    """

    def __init__(self, app: ASGIApp, limit_mb: Callable[[], float | None]) -> None:
        self._app = app
        self._limit_mb = limit_mb

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the request, or refuse it with 413 if its body is larger than the limit."""
        limit_mb = self._limit_mb()
        if limit_mb is None or scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        limit = int(limit_mb * MB)
        if declared_length(scope) > limit:
            await _refuse(scope, receive, send, limit_mb)
            return
        # A body sent without a length (or a short one) is read here, up to the limit, and replayed.
        messages: deque[Message] = deque()
        received = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            received += len(message.get("body", b""))
            if received > limit:
                await _refuse(scope, receive, send, limit_mb)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.popleft() if messages else await receive()

        await self._app(scope, replay, send)


def declared_length(scope: Scope) -> int:
    """The body length a request's ``Content-Length`` declares (0 when it has none, or a malformed one)."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


async def _refuse(scope: Scope, receive: Receive, send: Send, limit_mb: float) -> None:
    message = (
        f"This request is larger than the {limit_mb:g} MB Toolgate takes (gateway.max_request_body_mb in its config)."
    )
    error = {"code": INVALID_REQUEST, "message": message}
    await JSONResponse({"jsonrpc": "2.0", "id": None, "error": error}, status_code=413)(scope, receive, send)

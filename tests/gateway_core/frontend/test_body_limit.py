"""The limit on agents' request bodies: none unless set, read for each request, refused with a reason."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.types import Message, Receive, Scope, Send

from gateway_core.frontend.body_limit import BodyLimit

pytestmark = pytest.mark.anyio

MB = 1024 * 1024


class App:
    """The application behind the limit: records the body it read."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        self.bodies.append(body)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def request(parts: list[bytes], *, declared: int | None = None) -> tuple[Scope, Receive, list[Message], list[int]]:
    """A request sending ``parts``; what was sent back; how many parts the application under test read."""
    headers = [] if declared is None else [(b"content-length", str(declared).encode())]
    scope = {"type": "http", "method": "POST", "path": "/mcp", "headers": headers}
    pending = [
        {"type": "http.request", "body": part, "more_body": index < len(parts) - 1} for index, part in enumerate(parts)
    ]
    read = [0]

    async def receive() -> Message:
        read[0] += 1
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    return scope, receive, [], read


async def serve(limit: BodyLimit, scope: Scope, receive: Receive, sent: list[Message]) -> None:
    async def send(message: Message) -> None:
        sent.append(message)

    await limit(scope, receive, send)


def refusal(sent: list[Message]) -> tuple[int, Any]:
    return sent[0]["status"], json.loads(sent[1]["body"])


async def test_without_a_limit_a_body_of_any_size_reaches_the_application_whole() -> None:
    app = App()
    parts = [b"x" * MB] * 20
    scope, receive, sent, _ = request(parts, declared=20 * MB)

    await serve(BodyLimit(app, lambda: None), scope, receive, sent)

    assert app.bodies == [b"x" * 20 * MB]
    assert sent[0]["status"] == 200


async def test_a_declared_length_over_the_limit_is_refused_before_any_of_the_body_is_read() -> None:
    app = App()
    scope, receive, sent, read = request([b"x" * (2 * MB)], declared=2 * MB)

    await serve(BodyLimit(app, lambda: 1.5), scope, receive, sent)

    status, body = refusal(sent)
    assert (status, read[0], app.bodies) == (413, 0, [])
    assert body["error"]["code"] == -32600
    assert "larger than the 1.5 MB Toolgate takes (gateway.max_request_body_mb" in body["error"]["message"]


async def test_a_body_without_a_length_is_refused_once_it_passes_the_limit() -> None:
    app = App()
    scope, receive, sent, read = request([b"x" * (MB // 2)] * 10)

    await serve(BodyLimit(app, lambda: 1), scope, receive, sent)

    assert (refusal(sent)[0], read[0], app.bodies) == (413, 3, [])


async def test_a_body_within_the_limit_reaches_the_application_whole() -> None:
    app = App()
    scope, receive, sent, _ = request([b"x" * (MB // 2), b"y" * (MB // 2)])

    await serve(BodyLimit(app, lambda: 1), scope, receive, sent)

    assert app.bodies == [b"x" * (MB // 2) + b"y" * (MB // 2)]
    assert sent[0]["status"] == 200


async def test_the_limit_is_read_for_each_request() -> None:
    app = App()
    limits: list[float | None] = [1, None]
    limit = BodyLimit(app, lambda: limits.pop(0))
    statuses = []
    for _ in range(2):
        scope, receive, sent, _ = request([b"x" * (2 * MB)], declared=2 * MB)
        await serve(limit, scope, receive, sent)
        statuses.append(sent[0]["status"])

    assert statuses == [413, 200]

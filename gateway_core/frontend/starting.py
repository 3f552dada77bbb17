"""The agent port while the gateway is still being built: ``/health`` at once, everything else held.

``toolgate serve`` starts listening before it imports the MCP SDK and builds the gateway (most of a
second, several on a busy machine), so a supervisor polling ``/health`` sees a live process at once.
``StartingApp`` answers a plain ``GET /health`` itself, and only when the gateway's own guard would
let it through too (a Host naming this port, no Origin, no guard header twice); every other request,
and every request it is unsure of, waits until the gateway takes over (``open``) and is then served
by the gateway's app, in its words, so an agent that connects early is served, only later. If the
gateway never takes over (it stopped or failed while starting), the waiting requests get 503.

This module imports no SDK and nothing of the gateway: that is its point.
"""

from __future__ import annotations

import json

import anyio
from starlette.types import ASGIApp, Receive, Scope, Send

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
# Headers that decide whether a request gets in (frontend/http.py's guard); each at most once.
GUARD_HEADERS = (b"host", b"origin", b"authorization")
STOPPED_BODY = json.dumps(
    {"jsonrpc": "2.0", "id": None, "error": {"code": -32603, "message": "Toolgate is stopping; try again later."}}
).encode()


def allowed_hosts(host: str, port: int) -> frozenset[str]:
    """The Host header values that name a gateway listening on ``host``:``port``."""
    names = set(LOOPBACK_HOSTS)
    if host not in ("127.0.0.1", "::1", "localhost", "0.0.0.0", "::"):
        names.add(f"[{host}]" if ":" in host else host)
    return frozenset(f"{name}:{port}" for name in names)


class StartingApp:
    """The ASGI app of an agent port whose gateway is not built yet (see the module's docstring).

    Args:
        host: the address the port listens on.
        port: its port number.
        version: Toolgate's version, which ``/health`` reports.
    """

    def __init__(self, host: str, port: int, *, version: str) -> None:
        self._hosts = allowed_hosts(host, port)
        self._health = json.dumps({"status": "ok", "version": version}).encode()
        self._app: ASGIApp | None = None
        self._decided = anyio.Event()
        self.held = 0  # requests that have waited for the gateway, so far
        self._one_more_held = anyio.Event()

    @property
    def serving(self) -> ASGIApp:
        """What serves a request now: the gateway's app once it has taken over, else this one.

        The agent port's protocol (``slow_clients.py``) serves requests with it, so once the gateway
        serves, a request goes to it directly, as this app would hand it on.
        """
        return self._app if self._app is not None else self

    def open(self, app: ASGIApp) -> None:
        """From now on ``app`` serves every request, the held ones first."""
        self._app = app
        self._decided.set()

    def close(self) -> None:
        """The gateway will not take over: held requests, and any that come, are answered 503."""
        self._decided.set()

    async def wait_held(self, count: int) -> None:
        """Wait until ``count`` requests in all have waited for the gateway."""
        while self.held < count:
            await self._one_more_held.wait()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection (HTTP only)."""
        if self._app is None and scope["type"] == "http" and self._plain_health(scope):
            await _respond(send, 200, self._health)
            return
        if not self._decided.is_set():
            self.held += 1
            self._one_more_held.set()
            self._one_more_held = anyio.Event()
            await self._decided.wait()
        if self._app is not None:
            await self._app(scope, receive, send)
        elif scope["type"] == "http":
            await _respond(send, 503, STOPPED_BODY)

    def _plain_health(self, scope: Scope) -> bool:
        """A ``GET /health`` the gateway's guard would let through, with nothing it would look at twice."""
        if scope["method"] != "GET" or scope["path"].rstrip("/") != "/health":
            return False
        names = [name for name, _ in scope["headers"] if name in GUARD_HEADERS]
        if len(names) != len(set(names)) or b"origin" in names:
            return False
        host = next((value for name, value in scope["headers"] if name == b"host"), b"")
        return bytes(host).strip(b" \t").decode("latin-1") in self._hosts


async def _respond(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})

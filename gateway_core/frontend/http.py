"""The HTTP face of the gateway: a small ASGI app that guards ``/mcp`` and serves health endpoints.

Every request, whatever its path, must carry a loopback Host with the gateway's port (else 421) and
either no Origin, the gateway's own origin (``http://127.0.0.1:<port>``, which only Toolgate can
serve) or a listed one (else 403): this stops DNS-rebinding and other browser pages. ``/mcp``
also needs ``Authorization: Bearer <agent token>`` (else 401); the agent it identifies rides the
request as the SDK's authenticated user, so handlers and session ownership both see it.
A request carrying any of these headers twice is refused (400), never decided by one of them.
Header values are read without the whitespace around them, as HTTP defines them (RFC 9110 §5.5).
Each agent gets its share (``limits``): too many requests in flight are refused with 429, and its
own oldest sessions end when it opens too many.
``/health``, ``/ready`` and ``/metrics`` need no token and reveal no arguments, reasons or secrets.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from mcp.server.auth.middleware.auth_context import auth_context_var
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway_core.downstream.base import ServerStatus
from gateway_core.errors import ErrorCode
from gateway_core.frontend.limits import AgentLimits
from gateway_core.frontend.metrics import Metrics
from gateway_core.frontend.runtime import RuntimeCell
from gateway_core.frontend.slow_clients import HEADERS_STRIPPED
from gateway_core.frontend.starting import allowed_hosts

logger = logging.getLogger(__name__)

MCP_PATH = "/mcp"
# RFC 9110 §5.5: whitespace around a field value is not part of it, and a parser MUST exclude it
# before evaluating the value. The SDK compares Mcp-Name, Mcp-Method and MCP-Protocol-Version exactly,
# so a server that kept it would have `Mcp-Name: echo ` refused (-32020) where the 2026-07-28 spec
# accepts it. The agent port's protocol reads values without it (``slow_clients.HEADERS_STRIPPED``);
# a request served any other way has its values stripped here.
OPTIONAL_WHITESPACE = b" \t"
# Headers that decide whether a request gets in; a request may carry each at most once.
GUARD_HEADERS = {b"host": "Host", b"origin": "Origin", b"authorization": "Authorization"}
CONTROL_PATH = "/control"
# How many agents' users are kept made (more agents than this is unusual; they are made again).
MAX_KEPT_USERS = 1024
UNAUTHORIZED_MESSAGE = (
    "This request carries no known agent token. Create an agent with `toolgate agents add ID` "
    "and send the token it prints as `Authorization: Bearer <token>` (or set TOOLGATE_TOKEN for toolgate-shim)."
)


class GatewayHttpApp:
    """The gateway's ASGI application.

    Args:
        mcp_app: the SDK's Streamable HTTP app, served at ``/mcp`` once a request is authenticated.
        identify: maps a bearer token to an agent id, or ``None`` if no agent has it (without blocking).
        runtime: where ``gateway.allowed_origins`` is read: the Origin values a request may carry
            (an absent Origin is always allowed).
        metrics: where requests are counted and whence ``/metrics`` is rendered.
        statuses: the current downstream server statuses, for ``/ready`` and ``/metrics``.
        all_tried: whether every enabled server has been tried at least once (what ``/ready`` reports).
        version: Toolgate's version, reported by ``/health``.
        limits: each agent's share: open sessions and requests in flight.
        control: the local control channel served under ``/control`` (it checks its own token).
        audit_healthy: whether audit records are being written (``None``: auditing is off).
    """

    def __init__(
        self,
        mcp_app: ASGIApp,
        *,
        identify: Callable[[str], Awaitable[str | None]],
        runtime: RuntimeCell,
        metrics: Metrics,
        statuses: Callable[[], list[ServerStatus]],
        all_tried: Callable[[], bool],
        version: str,
        limits: AgentLimits,
        control: ASGIApp | None = None,
        audit_healthy: Callable[[], bool | None] = lambda: None,
    ) -> None:
        self._limits = limits
        self._audit_healthy = audit_healthy
        self._mcp_app = mcp_app
        self._control_app = control
        self._identify = identify
        self._runtime = runtime
        self._allowed_hosts: frozenset[str] = frozenset()
        self._allowed_host_values: frozenset[bytes] = frozenset()  # the same, as a request's Host carries them
        self._own_origins: frozenset[str] = frozenset()
        self._metrics = metrics
        self._statuses = statuses
        self._all_tried = all_tried
        self._version = version
        # Each agent's user, as requests carry it (made once: nothing changes it).
        self._users: dict[str, AuthenticatedUser] = {}

    def bind(self, host: str, port: int) -> None:
        """Accept Host headers for the address the gateway actually listens on."""
        self._allowed_hosts = allowed_hosts(host, port)
        self._allowed_host_values = frozenset(_as_sent(self._allowed_hosts))
        self._own_origins = frozenset(f"http://{host_port}" for host_port in self._allowed_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection (HTTP only; lifespan is owned by the gateway)."""
        if scope["type"] != "http":
            return
        if not scope.get(HEADERS_STRIPPED):  # the agent port's protocol strips them as it reads them
            scope = {**scope, "headers": [(name, value.strip(OPTIONAL_WHITESPACE)) for name, value in scope["headers"]]}
        else:
            scope = {**scope}
        try:
            headers: dict[bytes, bytes] = dict(scope["headers"])  # the last of a name sent more than once
            if len(headers) < len(scope["headers"]) and (repeated := _repeated_guard_header(scope)) is not None:
                await _respond_json(
                    send, 400, _rpc_error(-32600, f"Bad request: more than one {repeated} header; send it once.")
                )
                return
            if headers.get(b"host") not in self._allowed_host_values:
                await _respond_json(
                    send, 421, _rpc_error(-32600, "Misdirected request: the Host header is not this gateway.")
                )
                return
            sent_origin = headers.get(b"origin")
            origin = sent_origin.decode("latin-1") if sent_origin is not None else None
            if (
                origin is not None
                and origin not in self._runtime.now.allowed_origins
                and origin not in self._own_origins
            ):
                await _respond_json(
                    send, 403, _rpc_error(-32600, "Forbidden: this Origin is not in gateway.allowed_origins.")
                )
                return
            path = scope["path"].rstrip("/") or "/"
            if path == MCP_PATH:
                await self._serve_mcp(scope, receive, send, headers)
            else:
                await self._serve_other(path, scope, receive, send)
        except Exception:
            # The outermost boundary: log it here, tell the client nothing internal.
            logger.exception("unexpected error while serving %s %s", scope.get("method"), scope.get("path"))
            await _respond_json(send, 500, _rpc_error(-32603, "Toolgate hit an internal error; see its log."))

    async def _serve_other(self, path: str, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve a request the guard let in that is not for ``/mcp``: the control channel, health, metrics."""
        if path.startswith(CONTROL_PATH) and self._control_app is not None:
            await self._control_app(scope, receive, send)
        elif path == "/health":
            await _respond_json(send, 200, {"status": "ok", "version": self._version})
        elif path == "/ready":
            ready = self._all_tried()
            servers = {s.name: s.state.value for s in self._statuses()}
            await _respond_json(send, 200 if ready else 503, {"ready": ready, "servers": servers})
        elif path == "/metrics":
            body = self._metrics.render(self._statuses(), audit_healthy=self._audit_healthy()).encode()
            await _respond(send, 200, body, b"text/plain; version=0.0.4; charset=utf-8")
        else:
            await _respond_json(send, 404, {"error": f"not found; the MCP endpoint is {MCP_PATH}"})

    async def _serve_mcp(self, scope: Scope, receive: Receive, send: Send, headers: dict[bytes, bytes]) -> None:
        authorization = headers.get(b"authorization")
        scheme, _, token = (authorization.decode("latin-1") if authorization is not None else "").partition(" ")
        token = token.strip()
        agent = await self._identify(token) if token and scheme.lower() == "bearer" else None
        if agent is None:
            self._metrics.count_request("-", 401)
            await _respond_json(
                send,
                401,
                _rpc_error(ErrorCode.INVALID_AGENT, UNAUTHORIZED_MESSAGE),
                extra_headers=[(b"www-authenticate", b'Bearer realm="toolgate"')],
            )
            return
        limits = self._limits
        counted = scope["method"] == "POST"  # a GET stream is not a request in flight, nor is DELETE
        if counted and not limits.begin_request(agent):
            self._metrics.count_request(agent, 429)
            message = (
                f"agent {agent!r} already has {limits.max_requests} requests in flight, the most one agent "
                "may have (gateway.max_requests_per_agent); wait for some to finish"
            )
            await _respond_json(send, 429, _rpc_error(ErrorCode.TOO_MANY_REQUESTS, message))
            return
        user = self._users.get(agent)
        if user is None:
            if len(self._users) >= MAX_KEPT_USERS:  # agents removed since: start again
                self._users.clear()
            user = self._users[agent] = AuthenticatedUser(AccessToken(token="", client_id=agent, scopes=[]))
        scope["user"] = user  # the scope is this app's own copy (``__call__``)
        sent_id = headers.get(b"mcp-session-id")
        session_id = sent_id.decode("latin-1") if sent_id is not None else None
        status = 0
        opened: str | None = None

        def counting_send(message: Message) -> Awaitable[None]:
            """``send``, noting the response's status (and a session it opens): the app awaits what it returns."""
            nonlocal status, opened
            if message["type"] == "http.response.start":
                status = message["status"]
                if session_id is None and status < 400:
                    opened = _session_header(message)
            return send(message)

        context_token = auth_context_var.set(user)
        session = limits.session_in_use(session_id)
        try:
            await self._mcp_app(scope, receive, counting_send)
        finally:
            limits.session_done(session)
            auth_context_var.reset(context_token)
            if counted:
                limits.end_request(agent)
            self._metrics.count_request(agent, status)
        if opened is not None:
            await limits.session_opened(agent, opened)


def _session_header(message: Message) -> str | None:
    """The ``Mcp-Session-Id`` a response start message carries, if any."""
    for name, value in message.get("headers", ()):
        if name.lower() == b"mcp-session-id":
            return bytes(value).decode("latin-1")
    return None


def _as_sent(names: frozenset[str]) -> set[bytes]:
    """Header values as a request carries them (latin-1), of those ``names`` a request can carry at all."""
    sent = set()
    for name in names:
        try:
            sent.add(name.encode("latin-1"))
        except UnicodeEncodeError:
            continue
    return sent


def _repeated_guard_header(scope: Scope) -> str | None:
    """The first header the guard decides by that the request carries more than once (never decided by the last)."""
    seen: set[bytes] = set()
    for name, _ in scope["headers"]:
        if name in GUARD_HEADERS:
            if name in seen:
                return GUARD_HEADERS[name]
            seen.add(name)
    return None


def _rpc_error(code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": None, "error": {"code": int(code), "message": message}}


async def _respond_json(
    send: Send, status: int, payload: dict[str, Any], *, extra_headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await _respond(send, status, json.dumps(payload).encode(), b"application/json", extra_headers)


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes,
    extra_headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *(extra_headers or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})

"""The control channel's server side, for holders of the control token: approvals, and the names agents see.

``ControlApp`` serves ``/control/...``; the gateway mounts it on the control socket (macOS, Linux)
or behind the agent port's Host and Origin checks (Windows). Its one open route,
``/control/identity``, proves to the shim that this gateway holds the token of the control file the
shim read (so the shim never sends an agent's token to a process that merely listens on the
published port).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import time
import urllib.parse
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from starlette.types import Receive, Scope, Send

from gateway_core.approvals import (
    AlwaysNotPossible,
    Answer,
    ApprovalBroker,
    ApprovalError,
    ApprovalRequest,
    BadDuration,
)
from gateway_core.downstream.base import ServerStatus
from gateway_core.errors import AgentError, ConfigError
from gateway_core.frontend.routing import NameKind, PublicName, Routes
from gateway_core.pinning import ChangedAgain, PinError, ToolChange, change_to_json

if TYPE_CHECKING:  # the CLI imports this module; the sizes' module pulls in the agent side
    from gateway_core.audit import AuditStatus
    from gateway_core.config import Config
    from gateway_core.frontend.listing_size import ListingSizes

CONTROL_PREFIX = "/control"
APPROVALS_PATH = f"{CONTROL_PREFIX}/approvals"
NAMES_PATH = f"{CONTROL_PREFIX}/names"
SIZES_PATH = f"{CONTROL_PREFIX}/sizes"
SERVERS_PATH = f"{CONTROL_PREFIX}/servers"
SIGN_IN_SUFFIX = "/sign-in"
RESTART_SUFFIX = "/restart"
STDERR_SUFFIX = "/stderr"
PAUSE_PATH = f"{CONTROL_PREFIX}/pause"
RESUME_PATH = f"{CONTROL_PREFIX}/resume"
STATUS_PATH = f"{CONTROL_PREFIX}/status"
TOOL_CHANGES_PATH = f"{CONTROL_PREFIX}/tools/changes"
TOOL_ACCEPT_PATH = f"{CONTROL_PREFIX}/tools/accept"
# Where the shim asks the gateway to prove it is the Toolgate whose control file it read, before it
# sends an agent's token there. The shim (standard library only) spells the path and proof out again.
IDENTITY_PATH = f"{CONTROL_PREFIX}/identity"
IDENTITY_CONTEXT = b"toolgate-identity\x00"
MAX_NONCE_CHARS = 128
# An answer is a few dozen bytes; anything much larger is not a client of ours.
MAX_CONTROL_BODY_BYTES = 64 * 1024
_ANSWERS = ", ".join(a.value for a in Answer)


class NameSource(Protocol):
    """Where ``ControlApp`` reads the names agents see (the ``Gateway``)."""

    def public_names(self, agent_id: str | None = None) -> list[PublicName]:
        """The listed tools and prompts (those ``agent_id`` may see); ``AgentError`` for an unknown agent."""

    def statuses(self) -> list[ServerStatus]:
        """Every configured server's state."""

    def listing_sizes(self) -> dict[str, ListingSizes]:
        """Each agent's ``tools/list`` size in both tool modes."""

    @property
    def routes(self) -> Routes:
        """The routing table in force (the annotation hints each tool's server states)."""

    def sign_in_changed(self, name: str) -> bool:
        """Server ``name``'s stored sign-in may have changed; False: no such enabled server."""

    def restart_server(self, name: str) -> bool:
        """Restart server ``name`` now; False: no such enabled server."""

    def stderr_since(self, name: str, seen: int) -> tuple[tuple[str, ...], int] | None:
        """Server ``name``'s stderr lines after the first ``seen`` and how many it wrote; None: not enabled."""

    def tool_changes(self) -> list[ToolChange]:
        """The tools whose definitions wait for the person's review."""

    def accept_tools(self, server: str, tool: str | None = None, *, seen: str | None = None) -> list[ToolChange]:
        """Pin what ``server`` lists now for ``tool`` (every change of it when None); ``PinError``: nothing to."""

    def allow_when_under(self, request_id: str, argument: str, folder: str) -> ApprovalRequest:
        """Allow a waiting tool call once and always when ``argument`` is a path under ``folder``."""

    def pause(self) -> None:
        """Refuse every call until ``resume``."""

    def resume(self) -> None:
        """Let calls through again."""

    @property
    def config(self) -> Config:
        """The configuration in force."""

    @property
    def paused(self) -> bool:
        """Whether every call is being refused."""

    @property
    def config_problems(self) -> list[str]:
        """The problems of the last rejected edit of config.json."""

    @property
    def audit_status(self) -> AuditStatus | None:
        """Whether audit records are being written (None when auditing is off)."""


class ControlApp:
    """ASGI app for ``/control/...``: lists and answers pending approvals for holders of the control token.

    Routes: ``GET /control/approvals`` → the pending requests, oldest first;
    ``POST /control/approvals/{id}`` with ``{"answer": "allow_once"|...}`` (timed answers
    ``allow_for``/``deny_for`` add ``"for_s": seconds``) → the answered request (404 unknown id, 400 bad
    body); ``GET /control/names[?agent=ID]`` → the tools and prompts agents
    are listed (only those agent ``ID`` may see), with their servers' own names and why they differ,
    and every server's state (404 unknown agent); ``GET /control/sizes`` → each agent's ``tools/list``
    size in both tool modes; ``POST /control/servers/{name}/sign-in`` → the server looks at its stored
    sign-in now (``toolgate login|logout``; 404 unknown server); ``POST /control/servers/{name}/restart``
    → the server is restarted (404 unknown or disabled server); ``GET /control/servers/{name}/stderr?seen=N``
    → ``{"lines", "total"}``: its stderr lines after the first N it wrote (404 unknown or disabled server);
    ``POST /control/pause`` and ``POST /control/resume`` → ``{"paused", "changed"}``; ``GET /control/status`` → the
    Overview as one document (``status_to_json``); ``GET /control/tools/changes`` → ``{"changes": [...]}``:
    the tools whose definitions wait for review (``change_to_json``); ``POST /control/tools/accept`` with
    ``{"server": S, "tool": T or null, "fingerprint": F or absent}`` → ``{"accepted": [...]}`` (404 nothing to
    accept, 409 changed again since the fingerprint was shown). Every request needs ``Authorization: Bearer <token>``
    (else 401).

    Args:
        broker: the approvals broker to read and answer.
        token: the control token (see ``new_control_token``).
        approvals: False on the agent port where a control socket serves the approvals: only the
            identity proof is answered there.
        names: where the names agents see are read; None: they are not served.
    """

    def __init__(
        self, broker: ApprovalBroker, token: str, *, approvals: bool = True, names: NameSource | None = None
    ) -> None:
        self._broker = broker
        self._names = names
        self._token = token.encode()
        self.serves_approvals = approvals

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one HTTP request; other scope types are ignored."""
        if scope["type"] != "http":
            return
        if scope["path"].rstrip("/") == IDENTITY_PATH:
            await self._prove_identity(scope, receive, send)
            return
        if not self.serves_approvals:
            message = "approvals are answered on the control socket named in control.json, not on this port"
            await _respond(send, 404, {"error": message})
            return
        if not self._authorized(scope):
            await _respond(
                send,
                401,
                {"error": "missing or wrong control token; `toolgate approvals` reads it from the control file"},
                extra_headers=[(b"www-authenticate", b'Bearer realm="toolgate-control"')],
            )
            return
        path = scope["path"].rstrip("/")
        method = scope["method"]
        if path == APPROVALS_PATH:
            if method != "GET":
                await _respond(send, 405, {"error": "use GET to list approvals"}, extra_headers=[(b"allow", b"GET")])
                return
            await _respond(send, 200, [request_to_json(r) for r in self._broker.pending()])
        elif path == NAMES_PATH and self._names is not None:
            if method != "GET":
                await _respond(send, 405, {"error": "use GET to list names"}, extra_headers=[(b"allow", b"GET")])
                return
            await self._list_names(self._names, scope, send)
        elif path == SIZES_PATH and self._names is not None:
            if method != "GET":
                await _respond(send, 405, {"error": "use GET to list sizes"}, extra_headers=[(b"allow", b"GET")])
                return
            await _respond(send, 200, {"agents": sizes_to_json(self._names.listing_sizes())})
        elif path.startswith(SERVERS_PATH + "/") and path.endswith(SIGN_IN_SUFFIX) and self._names is not None:
            if method != "POST":
                await _respond(send, 405, {"error": "use POST"}, extra_headers=[(b"allow", b"POST")])
                return
            name = urllib.parse.unquote(path[len(SERVERS_PATH) + 1 : -len(SIGN_IN_SUFFIX)])
            if not self._names.sign_in_changed(name):
                await _respond(send, 404, {"error": f"there is no enabled server {name!r}"})
                return
            await _respond(send, 200, {"server": name})
        elif path.startswith(SERVERS_PATH + "/") and path.endswith(RESTART_SUFFIX) and self._names is not None:
            if method != "POST":
                await _respond(send, 405, {"error": "use POST"}, extra_headers=[(b"allow", b"POST")])
                return
            name = urllib.parse.unquote(path[len(SERVERS_PATH) + 1 : -len(RESTART_SUFFIX)])
            if not self._names.restart_server(name):
                await _respond(send, 404, {"error": f"there is no enabled server {name!r}"})
                return
            await _respond(send, 200, {"server": name})
        elif path.startswith(SERVERS_PATH + "/") and path.endswith(STDERR_SUFFIX) and self._names is not None:
            if method != "GET":
                await _respond(send, 405, {"error": "use GET"}, extra_headers=[(b"allow", b"GET")])
                return
            await self._stderr(
                self._names, urllib.parse.unquote(path[len(SERVERS_PATH) + 1 : -len(STDERR_SUFFIX)]), scope, send
            )
        elif path in (PAUSE_PATH, RESUME_PATH) and self._names is not None:
            if method != "POST":
                await _respond(send, 405, {"error": "use POST"}, extra_headers=[(b"allow", b"POST")])
                return
            pausing = path == PAUSE_PATH
            changed = self._names.paused != pausing
            if pausing:
                self._names.pause()
            else:
                self._names.resume()
            await _respond(send, 200, {"paused": self._names.paused, "changed": changed})
        elif path == STATUS_PATH and self._names is not None:
            if method != "GET":
                await _respond(send, 405, {"error": "use GET"}, extra_headers=[(b"allow", b"GET")])
                return
            await _respond(send, 200, status_to_json(self._names, len(self._broker.pending())))
        elif path == TOOL_CHANGES_PATH and self._names is not None:
            if method != "GET":
                await _respond(send, 405, {"error": "use GET"}, extra_headers=[(b"allow", b"GET")])
                return
            await _respond(send, 200, {"changes": [change_to_json(c) for c in self._names.tool_changes()]})
        elif path == TOOL_ACCEPT_PATH and self._names is not None:
            if method != "POST":
                await _respond(send, 405, {"error": "use POST"}, extra_headers=[(b"allow", b"POST")])
                return
            await self._accept_tools(self._names, receive, send)
        elif path.startswith(APPROVALS_PATH + "/") and "/" not in path[len(APPROVALS_PATH) + 1 :]:
            if method != "POST":
                await _respond(send, 405, {"error": "use POST to answer"}, extra_headers=[(b"allow", b"POST")])
                return
            await self._answer(path[len(APPROVALS_PATH) + 1 :], receive, send)
        else:
            await _respond(send, 404, {"error": f"not found; the approvals are at {APPROVALS_PATH}"})

    async def _list_names(self, names: NameSource, scope: Scope, send: Send) -> None:
        query = urllib.parse.parse_qs(scope.get("query_string", b"").decode("latin-1"))
        agent = query.get("agent", [None])[-1]
        try:
            listed = names.public_names(agent)
        except AgentError as exc:
            await _respond(send, 404, {"error": str(exc)})
            return
        servers = [{"name": s.name, "state": s.state.value, "reason": s.reason} for s in names.statuses()]
        hints = names.routes.hints
        await _respond(
            send,
            200,
            {
                "names": [name_to_json(name, hints.get((name.server, name.upstream_name))) for name in listed],
                "servers": servers,
            },
        )

    async def _accept_tools(self, names: NameSource, receive: Receive, send: Send) -> None:
        body = await _read_body(receive)
        try:
            payload = json.loads(body) if body is not None else None
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            payload = {}
        server, tool, seen = payload.get("server"), payload.get("tool"), payload.get("fingerprint")
        if not isinstance(server, str) or not all(v is None or isinstance(v, str) for v in (tool, seen)):
            message = 'the body must be JSON like {"server": "github", "tool": "create_issue"} ("tool": null for all)'
            await _respond(send, 400, {"error": message})
            return
        try:
            accepted = names.accept_tools(server, tool, seen=seen)
        except ChangedAgain as exc:
            await _respond(send, 409, {"error": str(exc)})
            return
        except PinError as exc:
            await _respond(send, 404, {"error": str(exc)})
            return
        await _respond(send, 200, {"accepted": [change_to_json(change) for change in accepted]})

    async def _stderr(self, names: NameSource, server: str, scope: Scope, send: Send) -> None:
        query = urllib.parse.parse_qs(scope.get("query_string", b"").decode("latin-1"))
        seen_text = query.get("seen", ["0"])[-1]
        if not seen_text.isdigit():
            await _respond(send, 400, {"error": f"seen must be a count of lines, found {seen_text!r}"})
            return
        found = names.stderr_since(server, int(seen_text))
        if found is None:
            await _respond(send, 404, {"error": f"there is no enabled server {server!r}"})
            return
        lines, total = found
        await _respond(send, 200, {"server": server, "lines": list(lines), "total": total})

    async def _prove_identity(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Open to anyone: the proof answers one nonce and reveals nothing about the token.
        if scope["method"] != "POST":
            await _respond(send, 405, {"error": "use POST"}, extra_headers=[(b"allow", b"POST")])
            return
        body = await _read_body(receive)
        try:
            nonce = json.loads(body)["nonce"] if body is not None else None
        except (ValueError, TypeError, KeyError):
            nonce = None
        if not isinstance(nonce, str) or not 0 < len(nonce) <= MAX_NONCE_CHARS:
            await _respond(
                send, 400, {"error": f'the body must be JSON like {{"nonce": "<up to {MAX_NONCE_CHARS} characters>"}}'}
            )
            return
        await _respond(send, 200, {"proof": identity_proof(self._token, nonce)})

    def _authorized(self, scope: Scope) -> bool:
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, token = value.partition(b" ")
                return scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(), self._token)
        return False

    async def _answer(self, request_id: str, receive: Receive, send: Send) -> None:
        body = await _read_body(receive)
        parsed = _parse_answer(body) if body is not None else None
        if parsed is None:
            message = (
                f'the body must be JSON like {{"answer": "allow_once"}} or {{"answer": "allow_for", "for_s": 900}} '
                f'or {{"answer": "allow_once", "under": {{"argument": "path", "folder": "/abs"}}}}; answers: {_ANSWERS}'
            )
            await _respond(send, 400, {"error": message})
            return
        answer, for_s, under = parsed
        try:
            if under is None:
                request = self._broker.answer(request_id, answer, for_s=for_s)
            elif self._names is None:
                await _respond(send, 400, {"error": "allowing under a folder is not offered here"})
                return
            else:
                request = self._names.allow_when_under(request_id, *under)
        except ConfigError as exc:
            await _respond(send, 400, {"error": "; ".join(exc.problems)})
            return
        except AlwaysNotPossible as exc:
            await _respond(send, 409, {"error": str(exc)})
            return
        except BadDuration as exc:
            await _respond(send, 400, {"error": str(exc)})
            return
        except ApprovalError as exc:
            await _respond(send, 404, {"error": str(exc)})
            return
        await _respond(send, 200, request_to_json(request))


def identity_proof(token: bytes, nonce: str) -> str:
    """What only the holder of the control ``token`` can answer to ``nonce``: HMAC-SHA256, hex."""
    return hmac.new(token, IDENTITY_CONTEXT + nonce.encode(), hashlib.sha256).hexdigest()


def request_to_json(request: ApprovalRequest, *, now: float | None = None) -> dict[str, Any]:
    """The control channel's JSON form of a request.

    Args:
        request: the request.
        now: the current ``time.time()``, for ``age_s``; read from the clock when None.
    """
    current = time.time() if now is None else now
    return {
        "id": request.id,
        "agent": request.agent,
        "server": request.server,
        "tool": request.tool,
        "public_name": request.public_name,
        "arguments": request.arguments,
        "rule": request.rule_text,
        "reason": request.reason,
        "session_id": request.session_id,
        "kind": request.kind,
        "looked_at": list(request.looked_at),
        "held_for_review": request.held_for_review,
        "age_s": round(max(0.0, current - request.created_at), 3),
    }


def name_to_json(name: PublicName, hints: Mapping[str, bool] | None = None) -> dict[str, Any]:
    """The control channel's JSON form of a public name: what agents see, where it leads, and why it differs.

    ``annotations`` holds the hints a tool's server states (``readOnlyHint`` …), present only when it states some.
    """
    document: dict[str, Any] = {
        "kind": name.kind.value,
        "name": name.name,
        "server": name.server,
        "upstream_name": name.upstream_name,
        "renamed": [renaming.value for renaming in name.renamings],
        "reason": name.reason,
    }
    if hints and name.kind is NameKind.TOOL:
        document["annotations"] = dict(hints)
    return document


def server_to_json(status: ServerStatus) -> dict[str, Any]:
    """The control channel's JSON form of one server's state (never a secret: see ``ServerStatus``)."""
    return {
        "name": status.name,
        "state": status.state.value,
        "transport": status.transport,
        "tools": status.tools,
        "reason": status.reason,
        "restarts": status.restarts,
        "sign_in_at": status.sign_in_at,
    }


def status_to_json(source: NameSource, pending_approvals: int) -> dict[str, Any]:
    """The Overview as one JSON document: paused or not, servers, agents, pending approvals, problems.

    Args:
        source: the running gateway.
        pending_approvals: how many requests wait for a person's answer.
    """
    config = source.config
    audit = source.audit_status
    return {
        "paused": source.paused,
        "servers": [server_to_json(status) for status in source.statuses()],
        "agents": [
            {"id": agent_id, "name": entry.name, "default": entry.default.value, "tools": entry.tools.value}
            for agent_id, entry in config.agents.items()
        ],
        "pending_approvals": pending_approvals,
        "config_problems": source.config_problems,
        "config_digest": config.digest(),
        "audit": None if audit is None else {"healthy": audit.healthy, "problem": audit.problem},
    }


def sizes_to_json(sizes: dict[str, ListingSizes]) -> dict[str, Any]:
    """The control channel's JSON form of agents' listing sizes: id → mode → ``{"bytes", "tokens"}``."""
    return {agent: dataclasses.asdict(both) for agent, both in sizes.items()}


def _parse_answer(body: bytes) -> tuple[Answer, float | None, tuple[str, str] | None] | None:
    try:
        payload = json.loads(body)
        if not isinstance(payload, dict):
            return None
        for_s = payload.get("for_s")
        if for_s is not None and (isinstance(for_s, bool) or not isinstance(for_s, int | float)):
            return None
        under = payload.get("under")
        if under is not None:
            argument, folder = under.get("argument"), under.get("folder")
            if not isinstance(argument, str) or not isinstance(folder, str) or payload["answer"] != "allow_once":
                return None
            under = (argument, folder)
        return Answer(payload["answer"]), None if for_s is None else float(for_s), under
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


async def _read_body(receive: Receive) -> bytes | None:
    # None when the body is larger than any answer can be.
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_CONTROL_BODY_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _respond(
    send: Send, status: int, payload: Any, *, extra_headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = json.dumps(payload, default=str).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        *(extra_headers or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})

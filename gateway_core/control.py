"""The local control channel: lets ``toolgate approvals`` answer approvals of the running gateway.

While the gateway runs, ``ControlFile`` keeps ``control.json`` (URL, random token, pid) in the
private state folder, mode 0600, and removes it at shutdown; only the same OS user can read the
token. ``ControlApp`` serves ``/control/...`` to holders of that token; the lead mounts it behind
the gateway's Host and Origin checks. Its one open route, ``/control/identity``, proves to the shim
that this gateway holds the token of the control file the shim read (so the shim never sends an
agent's token to a process that merely listens on the published port). ``ControlClient`` is the
CLI's stdlib-only client.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.client
import json
import os
import secrets
import stat
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from starlette.types import Receive, Scope, Send

from gateway_core.approvals import AlwaysNotPossible, Answer, ApprovalBroker, ApprovalError, ApprovalRequest
from gateway_core.control_socket import UnixHTTPConnection
from gateway_core.errors import ToolgateError
from gateway_core.files import write_atomically
from gateway_core.paths import Paths, ensure_private_dir

CONTROL_PREFIX = "/control"
APPROVALS_PATH = f"{CONTROL_PREFIX}/approvals"
# Where the shim asks the gateway to prove it is the Toolgate whose control file it read, before it
# sends an agent's token there. The shim (standard library only) spells the path and proof out again.
IDENTITY_PATH = f"{CONTROL_PREFIX}/identity"
IDENTITY_CONTEXT = b"toolgate-identity\x00"
MAX_NONCE_CHARS = 128
CONTROL_FILE_NAME = "control.json"
# An answer is a few dozen bytes; anything much larger is not a client of ours.
MAX_CONTROL_BODY_BYTES = 64 * 1024
# The gateway is on this machine: if it has not answered in this time, it is stuck.
CLIENT_TIMEOUT_S = 10.0
# Group and others may have no access at all: the file holds a token that answers approvals.
_LOOSE_MODE_BITS = 0o077
_ANSWERS = ", ".join(a.value for a in Answer)


class ControlError(ToolgateError):
    """The control channel cannot be used: Toolgate is not running, unreachable, or its control file is unsafe."""


@dataclass(frozen=True)
class ControlEndpoint:
    """Where and how to reach a running gateway's control channel.

    Attributes:
        url: the gateway's base URL, e.g. ``http://127.0.0.1:47800``.
        token: the bearer token ``ControlApp`` accepts.
        socket: the Unix socket the approvals are served on (None: on ``url``, as on Windows).
    """

    url: str
    token: str
    socket: str | None = None


def new_control_token() -> str:
    """A fresh random token for one run of the gateway."""
    return secrets.token_urlsafe(32)


def control_file_path(paths: Paths) -> Path:
    """Where the running gateway keeps its control file."""
    return paths.state_dir / CONTROL_FILE_NAME


class ControlFile:
    """The control file of this process's gateway: written on enter (or ``write``), removed on exit.

    Args:
        paths: where Toolgate's files live; the state folder is created 0700 if missing.
        endpoint: the URL and token to publish.
    """

    def __init__(self, paths: Paths, endpoint: ControlEndpoint) -> None:
        self._paths = paths
        self._endpoint = endpoint

    @property
    def path(self) -> Path:
        """The control file's path."""
        return control_file_path(self._paths)

    def write(self) -> None:
        """Write the file atomically with mode 0600, replacing any stale one.

        Raises:
            OSError: the file could not be written.
        """
        ensure_private_dir(self._paths.state_dir)
        content: dict[str, object] = {"url": self._endpoint.url, "token": self._endpoint.token, "pid": os.getpid()}
        if self._endpoint.socket is not None:
            content["socket"] = self._endpoint.socket
        write_atomically(self.path, json.dumps(content) + "\n")

    def remove(self) -> None:
        """Remove the file if it is still the one this object wrote (a newer gateway's is left alone)."""
        try:
            current = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if isinstance(current, dict) and current.get("token") == self._endpoint.token:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    def __enter__(self) -> ControlFile:
        self.write()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.remove()


def read_control_file(paths: Paths) -> ControlEndpoint:
    """Read the running gateway's control endpoint.

    Args:
        paths: where Toolgate's files live.

    Returns:
        The URL and token.

    Raises:
        ControlError: no gateway runs for this TOOLGATE_HOME, or the file is damaged, not owned by
            this user, or readable or writable by others (it is then refused, never used).
    """
    path = control_file_path(paths)
    try:
        text = _read_private(path)
    except FileNotFoundError as exc:
        raise ControlError(
            f"Toolgate is not running for TOOLGATE_HOME={paths.home}; start it with `toolgate serve`"
        ) from exc
    except OSError as exc:
        raise ControlError(f"cannot read the control file {path}: {exc.strerror or exc}") from exc
    try:
        content = json.loads(text)
        url, token, socket_path = content["url"], content["token"], content.get("socket")
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ControlError(f"the control file {path} is damaged; restart Toolgate to rewrite it") from exc
    if not (isinstance(url, str) and isinstance(token, str) and url and token):
        raise ControlError(f"the control file {path} is damaged; restart Toolgate to rewrite it")
    if socket_path is not None and not (isinstance(socket_path, str) and socket_path):
        raise ControlError(f"the control file {path} is damaged; restart Toolgate to rewrite it")
    return ControlEndpoint(url=url.rstrip("/"), token=token, socket=socket_path)


def _read_private(path: Path) -> str:
    if os.name == "nt":
        return path.read_text(encoding="utf-8")
    # O_NOFOLLOW and fstat: the checks apply to the very file that is read, never a symlink's target.
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "r", encoding="utf-8") as handle:
        info = os.fstat(handle.fileno())
        if info.st_uid != os.getuid():
            raise ControlError(f"refusing to use the control file {path}: it belongs to another user")
        mode = stat.S_IMODE(info.st_mode)
        if mode & _LOOSE_MODE_BITS:
            raise ControlError(
                f"refusing to use the control file {path}: its permissions are {mode:04o}, looser than 0600; "
                "delete it and restart Toolgate"
            )
        return handle.read()


class ControlApp:
    """ASGI app for ``/control/...``: lists and answers pending approvals for holders of the control token.

    Routes: ``GET /control/approvals`` → the pending requests, oldest first;
    ``POST /control/approvals/{id}`` with ``{"answer": "allow_once"|...}`` → the answered request
    (404 unknown id, 400 bad body). Every request needs ``Authorization: Bearer <token>`` (else 401).

    Args:
        broker: the approvals broker to read and answer.
        token: the control token (see ``new_control_token``).
        approvals: False on the agent port where a control socket serves the approvals: only the
            identity proof is answered there.
    """

    def __init__(self, broker: ApprovalBroker, token: str, *, approvals: bool = True) -> None:
        self._broker = broker
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
        elif path.startswith(APPROVALS_PATH + "/") and "/" not in path[len(APPROVALS_PATH) + 1 :]:
            if method != "POST":
                await _respond(send, 405, {"error": "use POST to answer"}, extra_headers=[(b"allow", b"POST")])
                return
            await self._answer(path[len(APPROVALS_PATH) + 1 :], receive, send)
        else:
            await _respond(send, 404, {"error": f"not found; the approvals are at {APPROVALS_PATH}"})

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
        answer = _parse_answer(body) if body is not None else None
        if answer is None:
            message = f'the body must be JSON like {{"answer": "allow_once"}}; answers: {_ANSWERS}'
            await _respond(send, 400, {"error": message})
            return
        try:
            request = self._broker.answer(request_id, answer)
        except AlwaysNotPossible as exc:
            await _respond(send, 409, {"error": str(exc)})
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
        "age_s": round(max(0.0, current - request.created_at), 3),
    }


def _parse_answer(body: bytes) -> Answer | None:
    try:
        payload = json.loads(body)
        return Answer(payload["answer"]) if isinstance(payload, dict) else None
    except (ValueError, TypeError, KeyError):
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


class ControlClient:
    """A blocking, stdlib-only client of ``ControlApp`` (for the CLI).

    Args:
        endpoint: from ``read_control_file``.
        timeout_s: how long to wait for the gateway to answer.
    """

    def __init__(self, endpoint: ControlEndpoint, *, timeout_s: float = CLIENT_TIMEOUT_S) -> None:
        self._endpoint = endpoint
        self._timeout_s = timeout_s

    def pending(self) -> list[dict[str, Any]]:
        """The pending approval requests, oldest first, as ``request_to_json`` dicts.

        Raises:
            ControlError: the gateway cannot be reached or refused the request.
        """
        result = self._call("GET", APPROVALS_PATH)
        if not isinstance(result, list):
            raise ControlError(f"Toolgate at {self._endpoint.url} sent an unexpected answer")
        return result

    def answer(self, request_id: str, answer: Answer) -> dict[str, Any]:
        """Answer a pending approval request.

        Args:
            request_id: the request's id.
            answer: the answer.

        Returns:
            The answered request, as a ``request_to_json`` dict.

        Raises:
            ApprovalError: no request with that id is pending.
            ControlError: the gateway cannot be reached or refused the request.
        """
        quoted = urllib.parse.quote(request_id.strip(), safe="")
        result = self._call("POST", f"{APPROVALS_PATH}/{quoted}", {"answer": answer.value})
        if not isinstance(result, dict):
            raise ControlError(f"Toolgate at {self._endpoint.url} sent an unexpected answer")
        return result

    def _call(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        headers = {"Authorization": f"Bearer {self._endpoint.token}", "Accept": "application/json"}
        body = None
        if payload is not None:
            body = json.dumps(payload).encode()
            headers["Content-Type"] = "application/json"
        where = self._endpoint.socket or self._endpoint.url
        # Straight to the local gateway (never through a proxy, whatever http_proxy says).
        connection = self._connection()
        try:
            connection.request(method, self._base_path + path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "strerror", None) or exc
            raise ControlError(
                f"cannot reach Toolgate at {where} ({reason}); is it running? "
                "if it stopped abruptly, start it again with `toolgate serve`"
            ) from exc
        finally:
            connection.close()
        if response.status >= 400:
            raise self._http_error(response.status, data)
        try:
            return json.loads(data)
        except ValueError as exc:
            raise ControlError(f"Toolgate at {where} sent an answer that is not JSON") from exc

    def _connection(self) -> http.client.HTTPConnection:
        if self._endpoint.socket is not None:
            return UnixHTTPConnection(self._endpoint.socket, timeout=self._timeout_s)
        parts = urllib.parse.urlsplit(self._endpoint.url)
        return http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=self._timeout_s)

    @property
    def _base_path(self) -> str:
        return "" if self._endpoint.socket is not None else urllib.parse.urlsplit(self._endpoint.url).path

    def _http_error(self, status: int, data: bytes) -> ToolgateError:
        try:
            message = str(json.loads(data)["error"])
        except (ValueError, TypeError, KeyError):
            message = f"HTTP {status}"
        if status == 404:
            return ApprovalError(message)
        if status == 409:
            return AlwaysNotPossible(message)
        if status == 401:
            return ControlError(
                "Toolgate refused the control token; the control file may belong to an earlier run — restart Toolgate"
            )
        return ControlError(f"Toolgate refused the request: {message}")

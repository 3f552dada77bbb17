"""The shim's HTTP plumbing: one keep-alive connection per thread, the MCP routing headers, and SSE reading.

Standard library only. A ``GatewayConnection`` opens lazily, sets TCP_NODELAY (without it loopback's delayed
ACK adds ~40 ms per request), and sends each request at most once: a kept-alive socket the gateway closed
is noticed before anything is sent on it, and a request that may have reached the gateway is never re-sent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import re
import secrets
import select
import socket
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

MCP_PATH = "/mcp"
# Connecting to a gateway on this machine either works at once or not at all.
CONNECT_TIMEOUT_S = 5.0
# The gateway's proof that it holds the control token it published (gateway_core.frontend.control).
IDENTITY_PATH = "/control/identity"
IDENTITY_CONTEXT = b"toolgate-identity\x00"
MAX_IDENTITY_BODY = 4096
SESSION_ID_HEADER = "Mcp-Session-Id"
PROTOCOL_VERSION_HEADER = "MCP-Protocol-Version"
METHOD_HEADER = "Mcp-Method"
NAME_HEADER = "Mcp-Name"
PROTOCOL_VERSION_META_KEY = "io.modelcontextprotocol/protocolVersion"
# Which params key the gateway compares with `Mcp-Name` (mcp.shared.inbound.NAME_BEARING_METHODS).
NAME_BEARING_METHODS = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}
_HEADER_SAFE = re.compile(r"^[\x20-\x7E]*$")
_B64_SENTINEL = re.compile(r"^=\?base64\?.*\?=$")


class Unreachable(OSError):
    """No connection to the gateway could be opened: it is not running at that address."""


class Unverified(Unreachable):
    """Something answers at the gateway's address but could not prove it is this person's Toolgate."""


class Lost(OSError):
    """The connection broke after the request may have been sent, or while its answer was read."""


@dataclass(frozen=True)
class GatewayAddress:
    """Where the gateway's MCP endpoint is.

    Attributes:
        base: the gateway's base URL, e.g. ``http://127.0.0.1:47800``.
        host: host to connect to.
        port: port to connect to.
        path: the MCP endpoint's path, normally ``/mcp``.
        tls: whether to use HTTPS.
    """

    base: str
    host: str
    port: int
    path: str
    tls: bool
    identity_key: str | None = field(default=None, repr=False)

    @classmethod
    def nowhere(cls) -> GatewayAddress:
        """No gateway has published its address: connecting fails at once, without a socket."""
        return cls("", "", 0, MCP_PATH, False)

    @classmethod
    def parse(cls, url: str, identity_key: str | None = None) -> GatewayAddress:
        """The endpoint for a gateway URL, given with or without the ``/mcp`` suffix.

        ``identity_key``: the control token the gateway published with its URL; every connection then
        first has the gateway prove it holds that token, and nothing is sent where it cannot.

        Raises:
            ValueError: the URL is not an http(s) URL with a host.
        """
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http:// URL: {url!r}")
        path = parts.path.rstrip("/")
        base_path = path.removesuffix(MCP_PATH)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        base = f"{parts.scheme}://{parts.netloc}{base_path}"
        return cls(base, parts.hostname, port, f"{base_path}{MCP_PATH}", parts.scheme == "https", identity_key)


def encode_header_value(value: str) -> str:
    """``value`` as the SDK puts it in an HTTP header: verbatim if printable ASCII, else base64-wrapped."""
    if _HEADER_SAFE.fullmatch(value) and value == value.strip() and not _B64_SENTINEL.fullmatch(value):
        return value
    return f"=?base64?{base64.b64encode(value.encode('utf-8')).decode('ascii')}?="


def modern_headers(message: Mapping[str, object]) -> dict[str, str] | None:
    """The routing headers of a 2026-07-28 message (its ``params._meta`` names the version), else None."""
    params = message.get("params")
    meta = params.get("_meta") if isinstance(params, dict) else None
    version = meta.get(PROTOCOL_VERSION_META_KEY) if isinstance(meta, dict) else None
    if not isinstance(version, str):
        return None
    method = message.get("method")
    headers = {PROTOCOL_VERSION_HEADER: version}
    if isinstance(method, str):
        headers[METHOD_HEADER] = method
        name_key = NAME_BEARING_METHODS.get(method)
        name = params.get(name_key) if name_key is not None and isinstance(params, dict) else None
        if isinstance(name, str):
            headers[NAME_HEADER] = encode_header_value(name)
    return headers


def iter_sse(response: http.client.HTTPResponse) -> Iterator[str]:
    """Each ``message`` event's data, as it arrives, until the stream ends.

    An event with empty data carries no message (a priming event, SEP-1699: only an id to resume from, and
    ``retry:``) and is skipped, as are ``id:`` and ``retry:`` themselves: the shim does not resume a stream.
    """
    data: list[str] = []
    event = ""
    while True:
        try:
            raw = response.readline()
        except (http.client.HTTPException, OSError, AttributeError, ValueError) as exc:
            # AttributeError/ValueError: abort() closed the response under this read.
            raise Lost(str(exc)) from exc
        if not raw:
            # A body of known length read to its end is not closed by readline(): closing it lets its
            # keep-alive connection carry the next request (else http.client refuses: ResponseNotReady).
            response.close()
            return
        line = raw.decode("utf-8").rstrip("\r\n")
        if not line:
            text = "\n".join(data)
            if text and event in ("", "message"):
                yield text
            data, event = [], ""
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "data":
                data.append(value)
            elif field == "event":
                event = value


def read_body(response: http.client.HTTPResponse, limit: int | None = None) -> bytes:
    """The response body (up to ``limit`` bytes).

    Raises:
        Lost: the connection broke or was aborted while reading.
    """
    try:
        return response.read(limit)
    except (http.client.HTTPException, OSError, AttributeError, ValueError) as exc:
        raise Lost(str(exc)) from exc


class GatewayConnection:
    """One keep-alive HTTP connection to the gateway, used by one thread at a time.

    ``abort`` may be called from any thread: it shuts the socket down so a blocked read returns.
    """

    def __init__(self, endpoint: GatewayAddress) -> None:
        self._endpoint = endpoint
        self._conn: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()

    def request(
        self, method: str, endpoint: GatewayAddress, headers: Mapping[str, str], body: bytes | None = None
    ) -> http.client.HTTPResponse:
        """``open`` then ``send``: one request, sent at most once.

        Raises:
            Unreachable: no connection could be opened (nothing was sent).
            Lost: the connection broke after the request may have been sent.
        """
        self.open(endpoint)
        return self.send(method, headers, body)

    def open(self, endpoint: GatewayAddress) -> None:
        """Have a connection to ``endpoint`` ready: the kept-alive one if the gateway has not closed it, else a new one.

        Raises:
            Unreachable: no connection could be opened.
        """
        if endpoint != self._endpoint:
            self.abort()
            self._endpoint = endpoint
        with self._lock:
            conn = self._conn
        sock = conn.sock if conn is not None else None
        if sock is None or _closed_by_peer(sock):
            self.abort()
            self._connect()

    def send(self, method: str, headers: Mapping[str, str], body: bytes | None = None) -> http.client.HTTPResponse:
        """Send one request on the connection ``open`` made ready and return its response.

        Never re-sends, and never opens a connection: once any byte may have left, the gateway may be
        running the request, so a failure (or an ``abort`` from another thread) is ``Lost``.
        The caller must read the response's body to the end or abort.

        Raises:
            Lost: the connection was aborted or broke before the response's headers arrived.
        """
        with self._lock:
            conn = self._conn
        if conn is None:
            raise Lost("the connection was closed before the request was sent")
        try:
            conn.request(method, self._endpoint.path, body=body, headers=dict(headers))
            return conn.getresponse()
        except (http.client.HTTPException, OSError) as exc:
            self.abort()
            raise Lost(str(exc)) from exc

    def _connect(self) -> None:
        ep = self._endpoint
        if not ep.host:
            raise Unreachable("Toolgate has not published its address")
        conn: http.client.HTTPConnection
        if ep.tls:
            conn = http.client.HTTPSConnection(ep.host, ep.port, timeout=CONNECT_TIMEOUT_S)
        else:
            conn = http.client.HTTPConnection(ep.host, ep.port, timeout=CONNECT_TIMEOUT_S)
        # Closed (by abort or the gateway), it must fail, not silently reconnect and send the request.
        conn.auto_open = 0
        try:
            conn.connect()
        except OSError as exc:
            conn.close()
            raise Unreachable(str(exc)) from exc
        sock = conn.sock
        assert sock is not None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if ep.identity_key is not None:
            try:
                _verify_identity(conn, ep, ep.identity_key)
            except BaseException:
                conn.close()
                raise
        # Tool calls may wait minutes (for a human's approval); the read is ended by abort() instead.
        sock.settimeout(None)
        with self._lock:
            self._conn = conn

    def abort(self) -> None:
        """Close the connection now, waking any thread blocked reading from it."""
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is None:
            return
        sock = conn.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        conn.close()


def _closed_by_peer(sock: socket.socket) -> bool:
    """Whether an idle kept-alive socket is done: readable means the gateway closed it (or sent what nobody asked)."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def identity_proof(key: str, nonce: str) -> str:
    """The proof a gateway holding the control token ``key`` gives for ``nonce`` (as gateway_core.frontend.control)."""
    return hmac.new(key.encode(), IDENTITY_CONTEXT + nonce.encode(), hashlib.sha256).hexdigest()


def _verify_identity(conn: http.client.HTTPConnection, endpoint: GatewayAddress, key: str) -> None:
    """Have the gateway on ``conn`` prove it holds ``key``, before anything else is sent on it.

    Raises:
        Unverified: it did not (or could not) prove it.
    """
    nonce = secrets.token_hex(16)
    body = json.dumps({"nonce": nonce}).encode()
    try:
        conn.request("POST", IDENTITY_PATH, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        answer = read_body(response, MAX_IDENTITY_BODY)
        proof = json.loads(answer).get("proof") if response.status == 200 else None
    except (http.client.HTTPException, OSError, ValueError, AttributeError) as exc:
        raise Unverified(f"the process at {endpoint.base} did not prove it is Toolgate: {exc}") from exc
    if not isinstance(proof, str) or not hmac.compare_digest(proof, identity_proof(key, nonce)):
        raise Unverified(
            f"the process at {endpoint.base} is not the Toolgate that published that address (it could not "
            "prove it holds its control key), so the agent's token was not sent there"
        )
    if conn.sock is None or response.will_close:
        # The token may only travel on the connection that was proven; a new one would be unproven.
        raise Unverified(
            f"the process at {endpoint.base} closed the connection it proved itself on, so the agent's token "
            "was not sent there"
        )

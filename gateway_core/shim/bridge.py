"""The shim's message pump: agent lines from stdin to the gateway's Streamable HTTP endpoint and back.

Each agent request is POSTed, at most once, by a worker thread (each with its own keep-alive connection),
so a slow call does not hold up the next; notifications and the agent's answers to server requests are
POSTed in order by the reading thread. Cancelling works as over HTTP: a 2026 request's POST is closed, a
handshake-era request's ``notifications/cancelled`` goes to the gateway on the session. A handshake-era
session gets the standalone GET stream, and is re-initialised on the agent's behalf when the gateway
restarts. ``close`` aborts every connection.
"""

from __future__ import annotations

import http.client
import json
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

from .wire import (
    PROTOCOL_VERSION_HEADER,
    SESSION_ID_HEADER,
    GatewayAddress,
    GatewayConnection,
    Lost,
    Unreachable,
    Unverified,
    iter_sse,
    modern_headers,
    read_body,
)

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
INTERNAL_ERROR = -32603
SERVER_UNAVAILABLE = -32001
INVALID_AGENT = -32003
# Tried between attempts to reach a gateway that was there before (a restart takes about a second).
RECONNECT_DELAYS_S = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6)
# The standalone stream's reconnect attempts back off up to this.
LISTEN_MAX_DELAY_S = 2.0
# A few KB of error body is all a gateway sends; more is not one of ours.
MAX_ERROR_BODY = 64 * 1024

Message = dict[str, Any]


class Output:
    """stdout, the protocol channel: one whole line per message, written under a lock."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def send(self, data: str | Message) -> None:
        """Write one JSON-RPC message (raw JSON text or a dict) as one line."""
        text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
        if "\n" in text:
            text = json.dumps(json.loads(text), separators=(",", ":"))
        line = text.encode("utf-8") + b"\n"
        with self._lock:
            try:
                self._stream.write(line)
                self._stream.flush()
            except (OSError, ValueError):
                pass  # the agent has gone; the read loop sees stdin close and stops.


def error(request_id: Any, code: int, message: str) -> Message:
    """A JSON-RPC error response."""
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}


@dataclass
class _InFlight:
    """An agent request from when the shim reads it until it is answered; changed under the bridge's lock."""

    message: Message
    modern: bool
    key: str  # the id as JSON, so that "1" and 1 stay apart
    conn: GatewayConnection | None = None  # the connection it was sent on
    cancelled: bool = False


class Bridge:
    """Carries one agent's messages to one gateway.

    Args:
        locate: returns the gateway's endpoint; called again after a lost connection, so a gateway
            that restarted on another port is found.
        token: the agent's bearer token.
        agent: the agent id, for messages that tell the user how to fix a rejected token.
        output: where messages for the agent go.
        log: writes one diagnostic line to stderr.
        start_gateway: tries once to start a gateway when none is reachable; returns whether it did.
    """

    def __init__(
        self,
        locate: Callable[[], GatewayAddress],
        token: str,
        agent: str,
        output: Output,
        log: Callable[[str], None],
        start_gateway: Callable[[], bool] | None = None,
    ) -> None:
        self._locate = locate
        self._endpoint = locate()
        self._token = token
        self._agent = agent
        self._out = output
        self._log = log
        self._start_gateway = start_gateway
        self._lock = threading.Lock()
        # Held while (re)initialising, so requests wait for the new session id.
        self._session_lock = threading.Lock()
        self._session_id: str | None = None
        self._version: str | None = None
        self._initialize: Message | None = None
        self._generation = 0
        self._stale = False
        self._reached = False
        self._down_reported = False
        self._reinit_count = 0
        self._connections: set[GatewayConnection] = set()
        self._in_flight: dict[str, _InFlight] = {}
        self._jobs: queue.SimpleQueue[_InFlight | None] = queue.SimpleQueue()
        self._idle = 0
        self._workers = 0
        self._closing = threading.Event()
        self._pending = 0
        self._settled = threading.Condition(self._lock)
        self._main_conn = self._connection()
        self.rejected = False

    # --- from the agent -------------------------------------------------------------------------

    def handle_line(self, line: bytes) -> None:
        """Carry one line the agent wrote to the gateway; answers malformed ones itself."""
        if not line.strip():
            return
        try:
            message = json.loads(line)
        except ValueError:
            self._out.send(error(None, PARSE_ERROR, "Parse error: the line is not JSON"))
            return
        if not isinstance(message, dict):
            self._out.send(error(None, INVALID_REQUEST, "Invalid request: send one JSON-RPC object per line"))
            return
        method = message.get("method")
        if isinstance(method, str) and "id" in message:
            if method == "initialize" and modern_headers(message) is None:
                with self._lock:
                    self._initialize = message
            self._submit(message)
        elif isinstance(method, str):
            self._notify(message)
        elif "id" in message:
            self._post_quietly(message)
        else:
            self._out.send(error(None, INVALID_REQUEST, "Invalid request: neither a request nor a response"))

    def _notify(self, message: Message) -> None:
        if message["method"] == "notifications/cancelled" and self._cancel(message):
            return
        if modern_headers(message) is not None:
            return  # the 2026 HTTP wire has no client notifications
        accepted = self._post_quietly(message)
        if accepted and message["method"] == "notifications/initialized":
            with self._lock:
                generation = self._generation
            self._listen_in_background(generation)

    def _cancel(self, message: Message) -> bool:
        """Apply the agent's ``notifications/cancelled``; True when it must not be POSTed.

        The era of the request it names decides, as in the SDK's own HTTP client (the SDK writes the
        notification without ``_meta`` in both eras). A 2026 request is cancelled by closing its POST; a
        handshake-era one by this notification on the session, and the gateway's answer to it still comes
        on the request's stream. Either way a request not sent yet never will be. Naming no request in
        flight, it goes on from a handshake-era agent (the gateway ignores ids it does not know) and
        has nowhere to go from a 2026 agent.
        """
        params = message.get("params")
        request_id = params.get("requestId") if isinstance(params, dict) else None
        with self._lock:
            request = self._in_flight.get(json.dumps(request_id))
            if request is None:
                return self._initialize is None
            request.cancelled = True
            if not request.modern:
                return False
            # Under the lock, so the worker cannot be starting another request on this connection.
            if request.conn is not None:
                request.conn.abort()
        return True

    def _post_quietly(self, message: Message) -> bool:
        """POST a notification or response in order; True when the gateway accepted it."""
        try:
            response = self._main_conn.request("POST", self._endpoint, self._headers(message), _encode(message))
        except (Unreachable, Lost):
            return False
        _drain(response, self._main_conn)
        if response.status == 401:
            self._reject()
        return 200 <= response.status < 300

    # --- requests, on worker threads --------------------------------------------------------------

    def _submit(self, message: Message) -> None:
        request = _InFlight(message, modern=modern_headers(message) is not None, key=json.dumps(message.get("id")))
        with self._lock:
            self._in_flight[request.key] = request
            self._jobs.put(request)
            self._pending += 1
            if self._idle:
                self._idle -= 1
                return
            self._workers += 1
        threading.Thread(target=self._work, name=f"toolgate-shim-{self._workers}", daemon=True).start()

    def _work(self) -> None:
        conn = self._connection()
        while not self._closing.is_set():
            request = self._jobs.get()
            if request is None:
                return
            try:
                self._run_request(conn, request)
            except Exception as exc:  # the worker's supervisor: the agent must get an answer
                conn.abort()
                self._log(f"internal error while carrying a request: {exc!r}")
                self._out.send(
                    error(request.message.get("id"), INTERNAL_ERROR, "toolgate-shim failed to carry this request")
                )
            with self._lock:
                if self._in_flight.get(request.key) is request:
                    del self._in_flight[request.key]
                self._idle += 1
                self._pending -= 1
                self._settled.notify_all()

    def _run_request(self, conn: GatewayConnection, request: _InFlight) -> None:
        message = request.message
        request_id = message.get("id")
        try:
            for attempt in range(2):
                if not request.modern and message["method"] != "initialize":
                    self._ensure_session(conn)
                headers = self._headers(message)
                self._open(conn)
                with self._lock:
                    if request.cancelled:
                        return  # cancelled before any of it was sent: it never will be
                    request.conn = conn  # from now on it may reach the gateway, and is never sent again
                response = conn.send("POST", headers, _encode(message))
                if response.status == 404 and SESSION_ID_HEADER in headers and attempt == 0:
                    # The gateway no longer knows this session (it restarted), so it did not run the request:
                    # start a new session and send it there.
                    _drain(response, conn)
                    self._mark_stale(headers[SESSION_ID_HEADER])
                    continue
                self._deliver(conn, request, response)
                return
        except Unreachable as exc:
            self._report_down(exc)
            self._reply_unless_cancelled(request, error(request_id, SERVER_UNAVAILABLE, self._down_message(exc)))
        except Lost:
            conn.abort()
            if not (request.modern and request.cancelled):  # else the shim closed it itself, to cancel it
                self._mark_stale(self._session_id)
            self._reply_unless_cancelled(
                request, error(request_id, SERVER_UNAVAILABLE, "Toolgate went away before answering this request")
            )

    def _post(self, conn: GatewayConnection, message: Message, headers: dict[str, str]) -> http.client.HTTPResponse:
        """POST a message the shim makes itself; sent at most once, like every request."""
        self._open(conn)
        return conn.send("POST", headers, _encode(message))

    def _open(self, conn: GatewayConnection) -> None:
        """Ready ``conn``, retrying with backoff when a gateway that was reachable before is (briefly) not."""
        delays = iter(RECONNECT_DELAYS_S if self._reached else ())
        while True:
            try:
                conn.open(self._endpoint)
            except Unreachable:
                if self._closing.is_set():
                    raise
                if not self._reached and self._try_start_gateway():
                    continue
                delay = next(delays, None)
                if delay is None or self._closing.wait(delay):
                    raise
                self._endpoint = self._locate()
                continue
            self._reached = True
            self._down_reported = False
            return

    def _try_start_gateway(self) -> bool:
        start, self._start_gateway = self._start_gateway, None
        if start is None or not start():
            return False
        self._endpoint = self._locate()
        return True

    def _deliver(self, conn: GatewayConnection, request: _InFlight, response: http.client.HTTPResponse) -> None:
        message = request.message
        request_id = message.get("id")
        status = response.status
        ctype = (response.getheader("Content-Type") or "").lower()
        if status == 401:
            _drain(response, conn)
            self._reject()
            self._pass_on(request, error(request_id, INVALID_AGENT, self._rejected_message()))
        elif status >= 400 or status == 202:
            body = read_body(response, MAX_ERROR_BODY) if ctype.startswith("application/json") else b""
            _drain(response, conn)
            self._pass_on(request, _error_from_body(request_id, status, body))
        elif ctype.startswith("text/event-stream"):
            answered = False
            for data in iter_sse(response):
                answered = self._forward(request, data, response) or answered
            if not answered:
                self._reply_unless_cancelled(
                    request, error(request_id, SERVER_UNAVAILABLE, "Toolgate closed the stream before answering")
                )
        else:
            body = read_body(response)
            self._forward(request, body.decode("utf-8"), response)

    def _forward(self, request: _InFlight, data: str, response: http.client.HTTPResponse) -> bool:
        """Write one gateway message; True if it answers ``request``."""
        message = request.message
        try:
            parsed = json.loads(data)
        except ValueError:
            return False
        answers = isinstance(parsed, dict) and "method" not in parsed and parsed.get("id") == message.get("id")
        if answers and message.get("method") == "initialize":
            self._adopt_session(response, parsed)
        self._pass_on(request, data)
        return answers

    def _pass_on(self, request: _InFlight, data: str | Message) -> None:
        """Write what the gateway sent for ``request``: nothing once the agent cancelled it in the 2026 era.

        Over HTTP such an agent has closed the request's stream, so nothing more of it can reach it.
        """
        with self._lock:
            if request.modern and request.cancelled:
                return
        self._out.send(data)

    def _reply_unless_cancelled(self, request: _InFlight, reply: Message) -> None:
        with self._lock:
            if request.cancelled or self._closing.is_set():
                return
        self._out.send(reply)

    # --- the handshake-era session --------------------------------------------------------------

    def _headers(self, message: Message) -> dict[str, str]:
        headers = {
            "Authorization": f"Bearer {self._token}",
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
        }
        modern = modern_headers(message)
        if modern is not None:
            headers.update(modern)
            return headers
        with self._lock:
            if self._session_id is not None and message.get("method") != "initialize":
                headers[SESSION_ID_HEADER] = self._session_id
            if self._version is not None and message.get("method") != "initialize":
                headers[PROTOCOL_VERSION_HEADER] = self._version
        return headers

    def _adopt_session(self, response: http.client.HTTPResponse, reply: Message) -> None:
        result = reply.get("result")
        version = result.get("protocolVersion") if isinstance(result, dict) else None
        with self._lock:
            self._session_id = response.getheader(SESSION_ID_HEADER)
            self._version = version if isinstance(version, str) else None
            self._generation += 1
            self._stale = False

    def _mark_stale(self, session_id: str | None) -> None:
        with self._lock:
            if session_id is not None and session_id == self._session_id:
                self._stale = True

    def _ensure_session(self, conn: GatewayConnection) -> None:
        """Re-initialise the agent's session if the gateway lost it; the agent never notices."""
        with self._lock:
            if not self._stale:
                return
        with self._session_lock:
            with self._lock:
                if not self._stale or self._initialize is None:
                    return
                original = self._initialize
                self._reinit_count += 1
                reinit_id = f"toolgate-shim-reinit-{self._reinit_count}"
            init = {**original, "id": reinit_id}
            response = self._post(conn, init, self._headers(init))
            if response.status != 200:
                _drain(response, conn)
                if response.status == 401:
                    self._reject()
                raise Lost(f"re-initialising failed with HTTP {response.status}")
            reply = _read_reply(response, reinit_id)
            if reply is None or "result" not in reply:
                raise Lost("re-initialising got no result")
            self._adopt_session(response, reply)
            initialized: Message = {"jsonrpc": "2.0", "method": "notifications/initialized"}
            accepted = self._post(conn, initialized, self._headers(initialized))
            _drain(accepted, conn)
            with self._lock:
                generation = self._generation
        self._log("reconnected to Toolgate; the session was re-initialised")
        self._listen_in_background(generation)

    def _listen_in_background(self, generation: int) -> None:
        threading.Thread(target=self._listen, args=(generation,), name="toolgate-shim-listen", daemon=True).start()

    def _listen(self, generation: int) -> None:
        """Hold the standalone GET stream open; on loss, re-initialise so notifications resume."""
        conn = self._connection()
        delay = RECONNECT_DELAYS_S[0]
        while not self._closing.is_set():
            with self._lock:
                if generation != self._generation:
                    return
                session_id = self._session_id
                headers = {"Authorization": f"Bearer {self._token}", "Accept": "text/event-stream"}
                if session_id is not None:
                    headers[SESSION_ID_HEADER] = session_id
                if self._version is not None:
                    headers[PROTOCOL_VERSION_HEADER] = self._version
            try:
                if not self._stale:
                    response = conn.request("GET", self._endpoint, headers)
                    if response.status == 405:
                        _drain(response, conn)
                        return  # this server offers no standalone stream
                    if response.status == 200:
                        delay = RECONNECT_DELAYS_S[0]
                        for data in iter_sse(response):
                            self._out.send(data)
                    else:
                        _drain(response, conn)
                    conn.abort()
                    self._mark_stale(session_id)
                if self._closing.is_set():
                    return
                self._ensure_session(conn)
                return  # _ensure_session started the next generation's listener
            except (Unreachable, Lost):
                conn.abort()
                self._mark_stale(session_id)
            if self._closing.wait(delay):
                return
            delay = min(delay * 2, LISTEN_MAX_DELAY_S)
            self._endpoint = self._locate()

    # --- failures and shutdown ----------------------------------------------------------------

    def _reject(self) -> None:
        with self._lock:
            first, self.rejected = not self.rejected, True
        if first:
            self._log(
                f"Toolgate rejected the token for agent {self._agent!r}. Create the agent with "
                f"`toolgate agents add {self._agent}` (or get a new token with `toolgate agents rotate {self._agent}`) "
                "and put the token it prints in TOOLGATE_TOKEN or the --token-file file; for a project's entry, "
                "run `toolgate connect CLIENT --project DIR` again."
            )

    def _rejected_message(self) -> str:
        return (
            f"Toolgate does not know this agent's token. Run `toolgate agents add {self._agent}` "
            f"(or `toolgate agents rotate {self._agent}`) and set TOOLGATE_TOKEN to the token it prints; for a "
            "project's entry, run `toolgate connect CLIENT --project DIR` again."
        )

    def _down_message(self, exc: Unreachable) -> str:
        if isinstance(exc, Unverified):
            return f"{exc}; check what listens there, then start Toolgate or run `toolgate serve`"
        if not self._endpoint.host:
            return "Toolgate is not running (it has published no address) — start Toolgate or run `toolgate serve`"
        return f"Toolgate is not running at {self._endpoint.base} — start Toolgate or run `toolgate serve`"

    def _report_down(self, exc: Unreachable) -> None:
        with self._lock:
            first, self._down_reported = not self._down_reported, True
        if first:
            self._log(self._down_message(exc))

    def _connection(self) -> GatewayConnection:
        conn = GatewayConnection(self._endpoint)
        with self._lock:
            self._connections.add(conn)
        return conn

    def finish(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the requests already sent to be answered."""
        with self._lock:
            self._settled.wait_for(lambda: self._pending == 0, timeout)

    def close(self) -> None:
        """Stop: end the gateway session, abort every connection and let the daemon threads go."""
        self._closing.set()
        with self._lock:
            session_id = None if self._stale or self.rejected else self._session_id
            connections = list(self._connections)
        for conn in connections:
            conn.abort()
        if session_id is not None:
            headers = {"Authorization": f"Bearer {self._token}", SESSION_ID_HEADER: session_id}
            conn = GatewayConnection(self._endpoint)
            try:
                _drain(conn.request("DELETE", self._endpoint, headers), conn)
            except (Unreachable, Lost):
                pass
            conn.abort()
        for _ in range(self._workers):
            self._jobs.put(None)


def _encode(message: Message) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode("utf-8")


def _drain(response: http.client.HTTPResponse, conn: GatewayConnection) -> None:
    try:
        read_body(response)
    except Lost:
        conn.abort()


def _read_reply(response: http.client.HTTPResponse, request_id: str) -> Message | None:
    try:
        return _parse_reply(response, request_id)
    except ValueError as exc:
        raise Lost(f"unreadable answer: {exc}") from exc


def _parse_reply(response: http.client.HTTPResponse, request_id: str) -> Message | None:
    if (response.getheader("Content-Type") or "").lower().startswith("text/event-stream"):
        reply = None
        for data in iter_sse(response):
            parsed = json.loads(data)
            if isinstance(parsed, dict) and parsed.get("id") == request_id:
                reply = parsed
        return reply
    parsed = json.loads(read_body(response))
    return parsed if isinstance(parsed, dict) else None


def _error_from_body(request_id: Any, status: int, body: bytes) -> Message:
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
        return {"jsonrpc": "2.0", "id": request_id, "error": parsed["error"]}
    if status == 202:
        return error(request_id, INVALID_REQUEST, "Toolgate accepted the request but sent no answer")
    return error(request_id, INTERNAL_ERROR, f"Toolgate answered HTTP {status}")

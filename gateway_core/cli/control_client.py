"""The control channel's client side: ``toolgate approvals`` and ``toolgate tools`` read the running gateway.

Standard library only (``http.client``, over the control socket or the loopback port), never
through a proxy.
"""

from __future__ import annotations

import http.client
import json
import urllib.parse
from typing import Any

from gateway_core.approvals import AlwaysNotPossible, Answer, ApprovalError
from gateway_core.control_file import ControlEndpoint, ControlError, NotRunningError
from gateway_core.control_socket import UnixHTTPConnection
from gateway_core.errors import AgentError, ToolgateError
from gateway_core.frontend.control import (
    APPROVALS_PATH,
    NAMES_PATH,
    PAUSE_PATH,
    RESTART_SUFFIX,
    RESUME_PATH,
    SERVERS_PATH,
    SIGN_IN_SUFFIX,
    SIZES_PATH,
    STATUS_PATH,
    STDERR_SUFFIX,
    TOOL_ACCEPT_PATH,
    TOOL_CHANGES_PATH,
)
from gateway_core.pinning import ChangedAgain, PinError

# The gateway is on this machine: if it has not answered in this time, it is stuck.
CLIENT_TIMEOUT_S = 10.0


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

    def answer(
        self, request_id: str, answer: Answer, *, for_s: float | None = None, under: tuple[str, str] | None = None
    ) -> dict[str, Any]:
        """Answer a pending approval request.

        Args:
            request_id: the request's id.
            answer: the answer.
            for_s: how long a timed answer (``ALLOW_FOR``, ``DENY_FOR``) holds, in seconds.
            under: with ``ALLOW_ONCE``, ``(argument, folder)``: also always allow this tool when that
                argument is a path under that folder (a rule with a condition).

        Returns:
            The answered request, as a ``request_to_json`` dict.

        Raises:
            ApprovalError: no request with that id is pending.
            ControlError: the gateway cannot be reached or refused the request.
        """
        quoted = urllib.parse.quote(request_id.strip(), safe="")
        body: dict[str, Any] = {"answer": answer.value}
        if for_s is not None:
            body["for_s"] = for_s
        if under is not None:
            body["under"] = {"argument": under[0], "folder": under[1]}
        result = self._call("POST", f"{APPROVALS_PATH}/{quoted}", body)
        if not isinstance(result, dict):
            raise ControlError(f"Toolgate at {self._endpoint.url} sent an unexpected answer")
        return result

    def names(self, agent: str | None = None) -> dict[str, Any]:
        """The tools and prompts agents are listed, and every server's state (``ControlApp``'s names answer).

        Args:
            agent: only what this agent may see; everything listed when None.

        Returns:
            ``{"names": [name_to_json dicts], "servers": [{"name", "state", "reason"}]}``.

        Raises:
            AgentError: there is no such agent.
            ControlError: the gateway cannot be reached or refused the request.
        """
        query = "" if agent is None else "?" + urllib.parse.urlencode({"agent": agent})
        answer = self._call("GET", NAMES_PATH + query, not_found=AgentError)
        if not isinstance(answer, dict) or not all(isinstance(answer.get(key), list) for key in ("names", "servers")):
            raise ControlError(f"Toolgate at {self._endpoint.url} sent an unexpected answer")
        return answer

    def sign_in_changed(self, server: str) -> None:
        """Tell the running gateway that ``server``'s stored sign-in changed, so it looks now.

        Raises:
            ControlError: the gateway cannot be reached, refused the request, or has no such server.
        """
        quoted = urllib.parse.quote(server, safe="")
        self._call("POST", f"{SERVERS_PATH}/{quoted}{SIGN_IN_SUFFIX}", {}, not_found=ControlError)

    def restart_server(self, server: str) -> None:
        """Restart ``server`` in the running gateway now.

        Raises:
            ControlError: the gateway cannot be reached, refused the request, or has no such enabled server.
        """
        quoted = urllib.parse.quote(server, safe="")
        self._call("POST", f"{SERVERS_PATH}/{quoted}{RESTART_SUFFIX}", {}, not_found=ControlError)

    def stderr_since(self, server: str, seen: int = 0) -> tuple[list[str], int]:
        """Server ``server``'s kept stderr lines after the first ``seen`` it wrote, and how many it wrote.

        Raises:
            ControlError: the gateway cannot be reached, refused the request, or has no such enabled server.
        """
        quoted = urllib.parse.quote(server, safe="")
        query = urllib.parse.urlencode({"seen": seen})
        answer = self._call("GET", f"{SERVERS_PATH}/{quoted}{STDERR_SUFFIX}?{query}", not_found=ControlError)
        lines, total = (answer.get("lines"), answer.get("total")) if isinstance(answer, dict) else (None, None)
        if not isinstance(lines, list) or not isinstance(total, int):
            raise ControlError(f"Toolgate at {self._endpoint.url} sent an unexpected answer")
        return [str(line) for line in lines], total

    def set_paused(self, paused: bool) -> bool:
        """Pause the running gateway (every call refused) or resume it; returns whether that changed anything.

        Raises:
            ControlError: the gateway cannot be reached or refused the request.
        """
        answer = self._call("POST", PAUSE_PATH if paused else RESUME_PATH, {})
        if not isinstance(answer, dict) or answer.get("paused") is not paused:
            raise ControlError(f"Toolgate at {self._endpoint.url} sent an unexpected answer")
        return bool(answer.get("changed"))

    def status(self) -> dict[str, Any]:
        """The Overview of the running gateway as one document (``status_to_json``).

        Raises:
            ControlError: the gateway cannot be reached or refused the request.
        """
        answer = self._call("GET", STATUS_PATH)
        if not isinstance(answer, dict) or not isinstance(answer.get("servers"), list):
            raise ControlError(f"Toolgate at {self._endpoint.url} sent an unexpected answer")
        return answer

    def sizes(self) -> dict[str, dict[str, dict[str, int]]]:
        """Each agent's ``tools/list`` size in both tool modes: id → ``all``/``on_demand`` → ``{"bytes", "tokens"}``.

        Raises:
            ControlError: the gateway cannot be reached or refused the request.
        """
        answer = self._call("GET", SIZES_PATH)
        agents = answer.get("agents") if isinstance(answer, dict) else None
        if not isinstance(agents, dict):
            raise ControlError(f"Toolgate at {self._endpoint.url} sent an unexpected answer")
        return agents

    def tool_changes(self) -> list[dict[str, Any]]:
        """The tools whose definitions wait for review, as ``change_to_json`` dicts.

        Raises:
            ControlError: the gateway cannot be reached or refused the request.
        """
        answer = self._call("GET", TOOL_CHANGES_PATH)
        changes = answer.get("changes") if isinstance(answer, dict) else None
        if not isinstance(changes, list):
            raise ControlError(f"Toolgate at {self._endpoint.url} sent an unexpected answer")
        return changes

    def accept_tools(self, server: str, tool: str | None, *, seen: str | None = None) -> list[dict[str, Any]]:
        """Accept the definition ``server`` lists now for ``tool`` (every tool of it waiting when None).

        Returns:
            The changes accepted, as ``change_to_json`` dicts.

        Raises:
            PinError: nothing waits for review there.
            ChangedAgain: the tool changed again since ``seen`` (its fingerprint) was shown.
            ControlError: the gateway cannot be reached or refused the request.
        """
        payload: dict[str, Any] = {"server": server, "tool": tool}
        if seen is not None:
            payload["fingerprint"] = seen
        answer = self._call("POST", TOOL_ACCEPT_PATH, payload, not_found=PinError, conflict=ChangedAgain)
        accepted = answer.get("accepted") if isinstance(answer, dict) else None
        if not isinstance(accepted, list):
            raise ControlError(f"Toolgate at {self._endpoint.url} sent an unexpected answer")
        return accepted

    def _call(
        self,
        method: str,
        path: str,
        payload: dict[str, Any] | None = None,
        *,
        not_found: type[ToolgateError] = ApprovalError,
        conflict: type[ToolgateError] = AlwaysNotPossible,
    ) -> Any:
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
            # Nothing listens where the control file says: a gateway that stopped abruptly left it.
            gone = isinstance(exc, ConnectionRefusedError | FileNotFoundError)
            raise (NotRunningError if gone else ControlError)(
                f"cannot reach Toolgate at {where} ({reason}); is it running? "
                "if it stopped abruptly, start it again with `toolgate serve`"
            ) from exc
        finally:
            connection.close()
        if response.status >= 400:
            raise self._http_error(response.status, data, not_found, conflict)
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

    def _http_error(
        self, status: int, data: bytes, not_found: type[ToolgateError], conflict: type[ToolgateError]
    ) -> ToolgateError:
        try:
            message = str(json.loads(data)["error"])
        except (ValueError, TypeError, KeyError):
            message = f"HTTP {status}"
        if status == 404:
            return not_found(message)
        if status == 409:
            return conflict(message)
        if status == 401:
            return ControlError(
                "Toolgate refused the control token; the control file may belong to an earlier run — restart Toolgate"
            )
        return ControlError(f"Toolgate refused the request: {message}")

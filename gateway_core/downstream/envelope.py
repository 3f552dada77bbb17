"""What a 2026-07-28 server is told about its client: the calling agent's capabilities, request by request.

In the 2026-07-28 era every request carries its client's capabilities in ``_meta``, and a server
decides from them what it may ask (and answers -32021 for what it needs but the client lacks).
Toolgate's one session with a server would claim everything any agent might answer; a request sent
for an agent instead carries what that agent declared, so the server asks it exactly what it would
ask the agent directly. The SDK stamps its session's own capabilities on each request as it sends
it; ``EnvelopeWriter`` sits between the session and the transport and puts the agent's in their
place, for requests sent inside ``speaking_for``. Requests of Toolgate's own (lists, pings, the
listen stream) keep the session's claim.

A hot ``tools/call`` without the agent's own ``_meta`` over a lane that sends no headers (stdio) has
the same envelope on every call of one agent: ``PlainCalls`` makes it once per session (its stamp and
log level) and the agent's capabilities, and each call only puts its tool's name and arguments in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import anyio.abc
import mcp_types as types
from mcp.shared.message import SessionMessage

from gateway_core.downstream.offer import offer_for

if TYPE_CHECKING:
    from mcp.shared._stream_protocols import WriteStream

# The SDK session's stamp: puts the session's envelope in a request's dump, and its headers in the options.
Stamp = Callable[[dict[str, Any], Any], None]
# How many agents' envelopes a session keeps (beyond it they are made again), and capabilities objects it knows.
MAX_ENVELOPES = 64

# The capabilities the request being sent from this task should claim (a JSON object), if any.
_CLAIM: ContextVar[dict[str, Any] | None] = ContextVar("toolgate_envelope_claim", default=None)


@contextmanager
def speaking_for(capabilities: types.ClientCapabilities | None) -> Iterator[None]:
    """Requests sent inside claim ``capabilities`` (an agent's) in their 2026-07-28 envelope.

    Only what Toolgate relays is claimed (``offer.offer_for``): sampling, elicitation and roots.
    """
    claim = offer_for(capabilities).model_dump(by_alias=True, mode="json", exclude_none=True)
    token = _CLAIM.set(claim)
    try:
        yield
    finally:
        _CLAIM.reset(token)


def claimed(params: dict[str, Any] | None) -> dict[str, Any] | None:
    """``params`` of a request sent now, claiming the agent's capabilities in a 2026-07-28 envelope if sent for one."""
    claim = _CLAIM.get()
    if claim is None:
        return params
    return _claim(params, claim)


def claiming(params: dict[str, Any] | None, capabilities: types.ClientCapabilities | None) -> dict[str, Any] | None:
    """``params`` sent for an agent with ``capabilities``, as ``claimed`` gives them inside ``speaking_for``."""
    return _claim(params, offer_for(capabilities).model_dump(by_alias=True, mode="json", exclude_none=True))


def _claim(params: dict[str, Any] | None, claim: dict[str, Any]) -> dict[str, Any] | None:
    if not params:
        return params
    meta = params.get("_meta")
    if not isinstance(meta, dict) or types.CLIENT_CAPABILITIES_META_KEY not in meta:
        return params
    return {**params, "_meta": {**meta, types.CLIENT_CAPABILITIES_META_KEY: claim}}


def ask_for_log_level(data: dict[str, Any], level: types.LoggingLevel) -> None:
    """A dumped 2026-07-28 request asking for log messages at ``level`` in its ``_meta`` (which dumps first).

    Unless the request names a level itself.
    """
    params = data["params"]
    if "_meta" in params:
        params["_meta"].setdefault(types.LOG_LEVEL_META_KEY, level)
    else:
        data["params"] = {"_meta": {types.LOG_LEVEL_META_KEY: level}, **params}


class PlainCalls:
    """A session's envelopes for plain hot ``tools/call``s (no agent ``_meta``, no headers), each made once.

    ``params`` gives what the session's own steps make of such a call (``tools/call`` dumped, the log
    level asked for, the SDK session's stamp, the agent's claim: see ``ServerSession``), built from an
    envelope made the first time an agent of these capabilities calls over this stamp and log level.
    Envelopes are kept by what the capabilities say, not by their object: a 2026-07-28 agent sends its
    capabilities anew with every request. An envelope is made by those same steps, on a call with an
    empty name; a stamp that puts anything but ``_meta`` in a call's params (none of the SDK's does) is
    run on every call instead.
    """

    __slots__ = ("_made_for", "_envelopes", "_by_object")

    def __init__(self) -> None:
        # The stamp and log level the envelopes below were made with.
        self._made_for: tuple[Stamp, types.LoggingLevel | None] | None = None
        # By what the capabilities say (their JSON; "" for none): the envelope.
        self._envelopes: dict[str, _Envelope | None] = {}
        # By ``id`` of capabilities seen lately (kept, so the id stays theirs): their envelope, found without
        # their JSON (a handshake-era agent's session sends the same object every call).
        self._by_object: dict[int, tuple[types.ClientCapabilities | None, _Envelope | None]] = {}

    def params(
        self,
        stamp: Stamp,
        name: str,
        arguments: dict[str, Any] | None,
        capabilities: types.ClientCapabilities | None,
        *,
        modern: bool,
        log_level: types.LoggingLevel | None,
    ) -> dict[str, Any] | None:
        """The call's params as the session's steps make them; None: the stamp must be run on this call."""
        made_for = self._made_for
        if made_for is None or made_for[0] is not stamp or made_for[1] != log_level:
            self._made_for = (stamp, log_level)
            self._envelopes.clear()
            self._by_object.clear()
        if not modern:
            capabilities = None  # only a 2026-07-28 envelope claims them
        kept = self._by_object.get(id(capabilities))
        if kept is not None and kept[0] is capabilities:
            envelope = kept[1]
        else:
            key = "" if capabilities is None else capabilities.model_dump_json()
            if key in self._envelopes:
                envelope = self._envelopes[key]
            else:
                if len(self._envelopes) >= MAX_ENVELOPES:
                    self._envelopes.clear()
                envelope = self._envelopes[key] = _envelope(stamp, capabilities, modern, log_level)
            if len(self._by_object) >= MAX_ENVELOPES:
                self._by_object.clear()
            self._by_object[id(capabilities)] = (capabilities, envelope)
        if envelope is None:
            return None
        meta, first = envelope
        if meta is None:
            return {"name": name} if arguments is None else {"name": name, "arguments": arguments}
        if first:
            if arguments is None:
                return {"_meta": meta, "name": name}
            return {"_meta": meta, "name": name, "arguments": arguments}
        if arguments is None:
            return {"name": name, "_meta": meta}
        return {"name": name, "arguments": arguments, "_meta": meta}


# A call's ``_meta`` (None: none) and whether it comes before the name.
_Envelope = tuple[dict[str, Any] | None, bool]


def _envelope(
    stamp: Stamp, capabilities: types.ClientCapabilities | None, modern: bool, log_level: types.LoggingLevel | None
) -> _Envelope | None:
    """An agent's envelope, made by the session's steps on a call with an empty name (see ``PlainCalls``).

    None: the stamp put more than ``_meta`` in the params; it must run on every call.
    """
    data: dict[str, Any] = {"method": "tools/call", "params": {"name": ""}}
    if modern and log_level is not None:
        ask_for_log_level(data, log_level)
    stamp(data, {})
    params = data["params"]
    if modern:
        params = claiming(params, capabilities)
    if type(params) is not dict or params.get("name") != "" or not {"name", "_meta"}.issuperset(params):
        return None
    meta = params.get("_meta")
    if "_meta" in params and type(meta) is not dict:
        return None
    return meta, next(iter(params)) == "_meta"


class EnvelopeWriter(anyio.abc.AsyncResource):
    """The session's write stream, putting the agent's capabilities in the envelope it is sending for.

    A request without the 2026-07-28 envelope (a handshake-era session) passes unchanged.
    """

    def __init__(self, inner: WriteStream[SessionMessage]) -> None:
        self._inner = inner

    async def send(self, item: SessionMessage, /) -> None:
        """Send ``item``, claiming the agent's capabilities if it is a 2026-07-28 request sent for one."""
        message = item.message
        if isinstance(message, types.JSONRPCRequest) and (params := claimed(message.params)) is not message.params:
            item = SessionMessage(message.model_copy(update={"params": params}), metadata=item.metadata)
        await self._inner.send(item)

    async def aclose(self) -> None:
        """Close the transport's write stream."""
        await self._inner.aclose()

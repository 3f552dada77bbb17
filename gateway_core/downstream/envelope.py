"""What a 2026-07-28 server is told about its client: the calling agent's capabilities, request by request.

In the 2026-07-28 era every request carries its client's capabilities in ``_meta``, and a server
decides from them what it may ask (and answers -32021 for what it needs but the client lacks).
Toolgate's one session with a server would claim everything any agent might answer; a request sent
for an agent instead carries what that agent declared, so the server asks it exactly what it would
ask the agent directly. The SDK stamps its session's own capabilities on each request as it sends
it; ``EnvelopeWriter`` sits between the session and the transport and puts the agent's in their
place, for requests sent inside ``speaking_for``. Requests of Toolgate's own (lists, pings, the
listen stream) keep the session's claim.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import anyio.abc
import mcp_types as types
from mcp.shared.message import SessionMessage

from gateway_core.downstream.offer import offer_for

if TYPE_CHECKING:
    from mcp.shared._stream_protocols import WriteStream

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

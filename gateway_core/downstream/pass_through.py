"""A server's ``tools/call`` result as it came, when the typed way would deliver it unchanged.

The typed way validates a result into ``CallToolResult`` (the SDK's client), dumps it, and the agent's
side validates and dumps it again for the agent's protocol version: four passes that, for the common
result (text content, structured content, ``isError``, ``_meta``), give back what came with only the
hop's changes: ``isError: false`` where the server left it out, and from a 2026-07-28 server no
``resultType`` and no identity stamp in ``_meta`` (a handshake-era agent's result has neither).
``wire_result`` recognises that common shape and makes those changes, without a pass over the
result; anything else (another content type, annotations, keys the agent's version would drop,
values the typed way would convert or refuse, a round of questions) is ``None`` and goes the typed
way (``typed_result``, the SDK client's own steps).

For handshake-era agents only: every handshake-era version of ``tools/call`` has the same result
surface (``_meta``, ``content``, ``isError``, ``structuredContent``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import pydantic_core
from mcp.client.session import _clamp_inbound_ttl, _later_revision_fields  # the SDK client's own steps
from mcp_types import methods
from pydantic import TypeAdapter

_T = TypeVar("_T")

RESULT_KEYS = frozenset({"content", "isError", "structuredContent", "_meta"})
MODERN_RESULT_KEYS = RESULT_KEYS | {"resultType"}
TEXT_KEYS = frozenset({"type", "text", "_meta"})
# The stamp a 2026-era server puts on its results; the agent must not see it (the typed way drops it).
SERVER_INFO_META_KEY = "io.modelcontextprotocol/serverInfo"
# What the typed way's audit size counts beyond the wire result: the model's default ``resultType``.
_TYPED_EXTRA = len(',"resultType":"complete"')


def wire_result(raw: Mapping[str, Any], *, modern: bool) -> dict[str, Any] | None:
    """``raw`` from a server of this era as a handshake-era agent would get it the typed way (see above), or None.

    None: the typed way would change more than the hop's part (or the server asks questions).
    """
    if modern:
        if raw.get("resultType") != "complete" or not MODERN_RESULT_KEYS.issuperset(raw):
            return None
    elif not RESULT_KEYS.issuperset(raw):
        return None
    content = raw.get("content")
    if type(content) is not list:
        return None
    for block in content:
        if (
            type(block) is not dict
            or block.get("type") != "text"
            or type(block.get("text")) is not str
            or not TEXT_KEYS.issuperset(block)
            or ("_meta" in block and type(block["_meta"]) is not dict)
        ):
            return None
    is_error = raw.get("isError", False)
    if type(is_error) is not bool:
        return None
    structured = raw.get("structuredContent")
    if "structuredContent" in raw and type(structured) is not dict:
        return None
    meta = raw.get("_meta")
    if "_meta" in raw and (type(meta) is not dict or (SERVER_INFO_META_KEY in meta and not modern)):
        return None
    wire = dict(raw)
    wire["isError"] = is_error
    if modern:
        del wire["resultType"]
        if meta is not None and SERVER_INFO_META_KEY in meta:
            kept = {key: value for key, value in meta.items() if key != SERVER_INFO_META_KEY}
            if kept:
                wire["_meta"] = kept
            else:
                del wire["_meta"]
    return wire


def typed_result(raw: dict[str, Any], version: str, adapter: TypeAdapter[_T]) -> _T:
    """``raw`` as the SDK's client turns a ``tools/call`` answer into ``adapter``'s type (``send_request``).

    Raises:
        pydantic.ValidationError: the result does not conform to the negotiated protocol version.
    """
    _clamp_inbound_ttl(raw)
    try:
        methods.validate_server_result("tools/call", version, raw)
    except KeyError:
        pass
    if not (foreign := _later_revision_fields("tools/call", version)).isdisjoint(raw):
        raw = {key: value for key, value in raw.items() if key not in foreign}
    return adapter.validate_python(raw, by_name=False)


def audit_size(wire: dict[str, Any]) -> int:
    """The size the audit records for a result passed through: as the typed way measures it (its JSON text)."""
    return len(pydantic_core.to_json(wire).decode()) + _TYPED_EXTRA

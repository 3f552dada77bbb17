"""A server's result as it came, when the typed way would deliver it unchanged.

The typed way validates a result into its model (the SDK's client), dumps it, and the agent's side
validates and dumps it again for the agent's protocol version: four passes that, for the common
result of ``tools/call``, ``resources/read`` and ``prompts/get`` (text, a resource's text or blob,
``_meta``), give back what came with only the hop's changes: ``isError: false`` where a tool's server
left it out, and from a 2026-07-28 server no ``resultType``, no cache hints (``ttlMs``,
``cacheScope``) and no identity stamp in ``_meta`` (a handshake-era agent's result has none of them).
``wire_result`` recognises that common shape and makes those changes, without a pass over the
result; anything else (another content type, annotations, keys the agent's version would drop,
values the typed way would convert or refuse, a round of questions) is ``None`` and goes the typed
way (``typed_result``, the SDK client's own steps).

For handshake-era agents: every handshake-era version has the same result surface for these
methods (the 2025-11-25 one). Names the gateway renames (a prompt's prefix) are not in these results.
And for a 2026-07-28 agent answered by a 2026-07-28 server (``modern_agent``): the result keeps its
``resultType`` (and a read its cache hints), and loses only the server's identity stamp, and a tool's
result gets ``isError: false`` where the server left it out, as the typed way's result model has them.
The agent-facing server then checks it against the agent's version and stamps its own identity on it,
as it does a typed result.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import pydantic_core
from mcp.client.session import _clamp_inbound_ttl, _later_revision_fields  # the SDK client's own steps
from mcp_types import methods
from pydantic import TypeAdapter

_T = TypeVar("_T")

# The stamp a 2026-era server puts on its results; the agent must not see it (the typed way drops it).
SERVER_INFO_META_KEY = "io.modelcontextprotocol/serverInfo"
# What the typed way's audit size counts beyond a tool's wire result: the model's default ``resultType``.
_TYPED_EXTRA = len(',"resultType":"complete"')
TEXT_KEYS = frozenset({"type", "text", "_meta"})
CONTENTS_KEYS = frozenset({"uri", "mimeType", "_meta"})
MESSAGE_KEYS = frozenset({"role", "content"})
ROLES = ("user", "assistant")
CACHE_SCOPES = ("public", "private")
# Each method's result keys in the handshake era, and what a 2026-07-28 server adds to them.
RESULT_KEYS = {
    "tools/call": frozenset({"content", "isError", "structuredContent", "_meta"}),
    "resources/read": frozenset({"contents", "_meta"}),
    "prompts/get": frozenset({"messages", "description", "_meta"}),
}
MODERN_KEYS = {
    "tools/call": frozenset({"resultType"}),
    "resources/read": frozenset({"resultType", "ttlMs", "cacheScope"}),
    "prompts/get": frozenset({"resultType"}),
}
PASSABLE_METHODS = frozenset(RESULT_KEYS)
# Every key a 2026-07-28 server's result of each method may have.
MODERN_RESULT_KEYS = {method: keys | MODERN_KEYS[method] for method, keys in RESULT_KEYS.items()}


def wire_result(
    method: str, raw: Mapping[str, Any], *, modern: bool, modern_agent: bool = False
) -> dict[str, Any] | None:
    """``raw``, a ``method`` result from a server of this era, as the agent gets it the typed way, or None.

    The agent is of the handshake era, or with ``modern_agent`` of 2026-07-28 (only a result of a
    2026-07-28 server). None: the typed way would change more than the hop's part (or the server asks
    questions).
    """
    if modern_agent and not modern:
        return None
    if modern:
        if raw.get("resultType") != "complete" or not MODERN_RESULT_KEYS[method].issuperset(raw):
            return None
        if method == "resources/read" and not (type(raw.get("ttlMs")) is int and raw.get("cacheScope") in CACHE_SCOPES):
            return None  # a read's cache hints: both, as its surface requires
        if modern_agent and method == "resources/read" and raw["ttlMs"] < 0:
            return None  # the typed way floors it (``_clamp_inbound_ttl``)
    elif not RESULT_KEYS[method].issuperset(raw):
        return None
    meta = raw.get("_meta")
    if "_meta" in raw and (type(meta) is not dict or (SERVER_INFO_META_KEY in meta and not modern)):
        return None
    if not _BODIES[method](raw):
        return None
    # Copies and deletions rather than comprehensions: the same keys in the same order, with no Python
    # frame per copy (this runs once per hot call).
    wire = dict(raw)
    if modern:
        if not modern_agent:
            for key in MODERN_KEYS[method]:
                del wire[key]  # each one is there: checked above (``resultType``, a read's cache hints)
        if meta is not None and SERVER_INFO_META_KEY in meta:
            if len(meta) > 1:
                kept = dict(meta)
                del kept[SERVER_INFO_META_KEY]
                wire["_meta"] = kept
            else:
                del wire["_meta"]
    if method == "tools/call":
        wire["isError"] = raw.get("isError", False)
    return wire


def _text_block(block: Any) -> bool:
    """Whether a content block is plain text (no annotations, no other keys) the typed way gives back unchanged."""
    return (
        type(block) is dict
        and block.get("type") == "text"
        and type(block.get("text")) is str
        and TEXT_KEYS.issuperset(block)
        and ("_meta" not in block or type(block["_meta"]) is dict)
    )


def _tool_body(raw: Mapping[str, Any]) -> bool:
    content = raw.get("content")
    if type(content) is not list:
        return False
    for block in content:  # ``_text_block``, without a call per block
        if not (
            type(block) is dict
            and block.get("type") == "text"
            and type(block.get("text")) is str
            and TEXT_KEYS.issuperset(block)
            and ("_meta" not in block or type(block["_meta"]) is dict)
        ):
            return False
    return type(raw.get("isError", False)) is bool and (
        "structuredContent" not in raw or type(raw["structuredContent"]) is dict
    )


def _resource_contents(item: Any) -> bool:
    """Whether one item of ``contents`` is a resource's text or its blob, each a string, and nothing else."""
    if type(item) is not dict or ("text" in item) == ("blob" in item):
        return False
    body = "text" if "text" in item else "blob"
    return (
        type(item[body]) is str
        and type(item.get("uri")) is str
        and (CONTENTS_KEYS | {body}).issuperset(item)
        and ("mimeType" not in item or type(item["mimeType"]) is str)
        and ("_meta" not in item or type(item["_meta"]) is dict)
    )


def _resource_body(raw: Mapping[str, Any]) -> bool:
    contents = raw.get("contents")
    return type(contents) is list and all(_resource_contents(item) for item in contents)


def _prompt_message(message: Any) -> bool:
    return (
        type(message) is dict
        and MESSAGE_KEYS.issuperset(message)
        and message.get("role") in ROLES
        and _text_block(message.get("content"))
    )


def _prompt_body(raw: Mapping[str, Any]) -> bool:
    messages = raw.get("messages")
    return (
        type(messages) is list
        and all(_prompt_message(message) for message in messages)
        and ("description" not in raw or type(raw["description"]) is str)
    )


_BODIES: dict[str, Callable[[Mapping[str, Any]], bool]] = {
    "tools/call": _tool_body,
    "resources/read": _resource_body,
    "prompts/get": _prompt_body,
}


def typed_result(method: str, raw: dict[str, Any], version: str, adapter: TypeAdapter[_T]) -> _T:
    """``raw`` as the SDK's client turns a ``method`` answer into ``adapter``'s type (``send_request``).

    Raises:
        pydantic.ValidationError: the result does not conform to the negotiated protocol version.
    """
    _clamp_inbound_ttl(raw)
    try:
        methods.validate_server_result(method, version, raw)
    except KeyError:
        pass
    if not (foreign := _later_revision_fields(method, version)).isdisjoint(raw):
        raw = {key: value for key, value in raw.items() if key not in foreign}
    return adapter.validate_python(raw, by_name=False)


def audit_size(wire: dict[str, Any]) -> int:
    """The size the audit records for a tool's result passed through: as the typed way measures it (its JSON text).

    The typed way's result model always has a ``resultType``; a handshake-era agent's wire form has none.
    """
    size = len(pydantic_core.to_json(wire).decode())
    return size if "resultType" in wire else size + _TYPED_EXTRA

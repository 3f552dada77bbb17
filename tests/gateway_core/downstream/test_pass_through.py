"""A result passed through gives the agent and the audit what the typed way gives; anything else goes typed."""

from __future__ import annotations

import copy
from typing import Any

import mcp_types as types
import pytest
from mcp_types.methods import serialize_server_result
from pydantic import TypeAdapter

from gateway_core.downstream.pass_through import audit_size, typed_result, wire_result
from gateway_core.frontend.forward import without_downstream_identity

AGENT_VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
STAMP = {"io.modelcontextprotocol/serverInfo": {"name": "s", "version": "1"}}
RESULT_TYPES: dict[str, type[types.Result]] = {
    "tools/call": types.CallToolResult,
    "resources/read": types.ReadResourceResult,
    "prompts/get": types.GetPromptResult,
}
# What a 2026-07-28 server adds to each method's result besides resultType and its stamp.
MODERN_EXTRAS: dict[str, dict[str, Any]] = {
    "tools/call": {},
    "resources/read": {"ttlMs": 0, "cacheScope": "private"},
    "prompts/get": {},
}

COMMON = [
    ("tools/call", {"content": []}),
    ("tools/call", {"content": [{"type": "text", "text": "hi"}]}),
    ("tools/call", {"content": [{"type": "text", "text": "it failed"}], "isError": True}),
    (
        "tools/call",
        {"content": [{"type": "text", "text": "x"}], "isError": False, "structuredContent": {"a": None, "b": [1.5]}},
    ),
    ("tools/call", {"content": [{"type": "text", "text": 'ünï\u2028"q" \\', "_meta": {"k": None}}], "_meta": {"t": 1}}),
    (
        "tools/call",
        {"content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}], "structuredContent": {}},
    ),
    ("resources/read", {"contents": []}),
    ("resources/read", {"contents": [{"uri": "fake://greeting", "text": "hello"}]}),
    ("resources/read", {"contents": [{"uri": "file:///a b.txt", "mimeType": "text/plain", "text": 'ü\u2028"'}]}),
    ("resources/read", {"contents": [{"uri": "x://p.png", "mimeType": "image/png", "blob": "iVBORw0KGgo="}]}),
    ("resources/read", {"contents": [{"uri": "x://a", "text": "a", "_meta": {"k": [1]}}], "_meta": {"trace": "t"}}),
    ("prompts/get", {"messages": []}),
    ("prompts/get", {"messages": [{"role": "user", "content": {"type": "text", "text": "Hello, Grace!"}}]}),
    (
        "prompts/get",
        {
            "description": "a greeting",
            "messages": [
                {"role": "user", "content": {"type": "text", "text": "hi", "_meta": {"k": 1}}},
                {"role": "assistant", "content": {"type": "text", "text": "hello"}},
            ],
            "_meta": {"trace": "t"},
        },
    ),
]
# What the typed way changes beyond the hop's part: these are never passed through.
UNCOMMON = [
    ("tools/call", {"content": [{"type": "image", "data": "iVBORw0KGgo=", "mimeType": "image/png"}]}),
    ("tools/call", {"content": [{"type": "text", "text": "x", "annotations": {"priority": 0.5}}]}),
    ("tools/call", {"content": [{"type": "text", "text": "x"}], "unknown": 1}),
    ("tools/call", {"content": [{"type": "text", "text": "x", "extra": 1}]}),
    ("tools/call", {"content": [{"type": "text", "text": "x"}], "isError": "true"}),
    ("tools/call", {"content": [{"type": "text", "text": 1}]}),
    ("tools/call", {"content": [{"type": "text", "text": "x"}], "structuredContent": [1]}),
    ("tools/call", {"content": [{"type": "text", "text": "x"}], "ttlMs": 5}),
    ("tools/call", {"content": {"type": "text", "text": "x"}}),
    ("tools/call", {"isError": False}),
    ("resources/read", {"contents": [{"uri": "x://a", "text": "a", "blob": "YQ=="}]}),
    ("resources/read", {"contents": [{"uri": "x://a"}]}),
    ("resources/read", {"contents": [{"uri": "x://a", "text": "a", "mimeType": None}]}),
    ("resources/read", {"contents": [{"uri": "x://a", "text": "a", "annotations": {"priority": 1}}]}),
    ("resources/read", {"contents": [{"uri": 1, "text": "a"}]}),
    ("resources/read", {"contents": [{"uri": "x://a", "text": "a"}], "isError": False}),
    ("resources/read", {"contents": {"uri": "x://a", "text": "a"}}),
    ("resources/read", {}),
    ("prompts/get", {"messages": [{"role": "user", "content": {"type": "image", "data": "AA==", "mimeType": "a/b"}}]}),
    ("prompts/get", {"messages": [{"role": "system", "content": {"type": "text", "text": "x"}}]}),
    ("prompts/get", {"messages": [{"role": "user", "content": {"type": "text", "text": "x"}, "name": "n"}]}),
    ("prompts/get", {"messages": [], "description": None}),
    ("prompts/get", {"messages": [], "ttlMs": 5}),
    ("prompts/get", {"description": "no messages"}),
]


def _typed_way(method: str, raw: dict[str, Any], *, modern: bool, agent_version: str) -> tuple[dict[str, Any], int]:
    """What the agent gets the typed way (the SDK's client, the forwarder, the SDK's server), and the audit size."""
    adapter = TypeAdapter(RESULT_TYPES[method])
    result = without_downstream_identity(
        typed_result(method, copy.deepcopy(raw), "2026-07-28" if modern else "2025-11-25", adapter)
    )
    size = len(result.model_dump_json(by_alias=True, exclude_none=True))
    dumped = result.model_dump(by_alias=True, mode="json", exclude_none=True)
    return serialize_server_result(method, agent_version, dumped), size


def _from_2026(method: str, raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` as a 2026-07-28 server sends it: with its ``resultType``, cache hints and its identity stamp."""
    return {**raw, **MODERN_EXTRAS[method], "resultType": "complete", "_meta": {**raw.get("_meta", {}), **STAMP}}


@pytest.mark.parametrize("agent_version", AGENT_VERSIONS)
@pytest.mark.parametrize("modern", [False, True], ids=["handshake-era server", "2026-07-28 server"])
@pytest.mark.parametrize(("method", "raw"), COMMON)
def test_a_common_result_passes_through_as_the_typed_way_would_deliver_and_measure_it(
    method: str, raw: dict[str, Any], modern: bool, agent_version: str
):
    sent = _from_2026(method, raw) if modern else raw

    wire = wire_result(method, copy.deepcopy(sent), modern=modern)

    assert wire is not None
    expected, size = _typed_way(method, sent, modern=modern, agent_version=agent_version)
    assert wire == expected
    if method == "tools/call":
        assert audit_size(wire) == size


@pytest.mark.parametrize("hints", [{"ttlMs": 0, "cacheScope": "private"}, {"ttlMs": 60000, "cacheScope": "public"}])
@pytest.mark.parametrize(("method", "raw"), COMMON)
def test_a_2026_servers_common_result_passes_through_to_a_2026_agent_as_the_typed_way_would_give_it(
    method: str, raw: dict[str, Any], hints: dict[str, Any]
):
    sent = {**_from_2026(method, raw), **(hints if method == "resources/read" else {})}

    wire = wire_result(method, copy.deepcopy(sent), modern=True, modern_agent=True)

    assert wire is not None
    assert wire["resultType"] == "complete"
    expected, size = _typed_way(method, sent, modern=True, agent_version="2026-07-28")
    # The agent-facing server checks what it is given against the agent's version, either way.
    assert serialize_server_result(method, "2026-07-28", wire) == expected
    if method == "tools/call":
        assert audit_size(wire) == size


def test_a_2026_agent_gets_the_typed_way_for_a_handshake_era_servers_result():
    for method, raw in COMMON:
        assert wire_result(method, raw, modern=False, modern_agent=True) is None


@pytest.mark.parametrize(("method", "raw"), UNCOMMON)
def test_a_2026_servers_uncommon_result_goes_the_typed_way_for_a_2026_agent(method: str, raw: dict[str, Any]):
    assert wire_result(method, _from_2026(method, raw), modern=True, modern_agent=True) is None


def test_a_2026_read_with_a_negative_ttl_goes_the_typed_way_for_a_2026_agent_which_floors_it():
    raw = {"contents": [{"uri": "x://a", "text": "a"}], "resultType": "complete", "ttlMs": -3, "cacheScope": "public"}

    assert wire_result("resources/read", copy.deepcopy(raw), modern=True, modern_agent=True) is None
    assert _typed_way("resources/read", raw, modern=True, agent_version="2026-07-28")[0]["ttlMs"] == 0


@pytest.mark.parametrize("modern", [False, True], ids=["handshake-era server", "2026-07-28 server"])
@pytest.mark.parametrize(("method", "raw"), UNCOMMON)
def test_a_result_the_typed_way_would_change_more_goes_the_typed_way(method: str, raw: dict[str, Any], modern: bool):
    assert wire_result(method, _from_2026(method, raw) if modern else raw, modern=modern) is None


def test_a_handshake_era_servers_identity_stamp_or_a_2026_servers_round_of_questions_goes_the_typed_way():
    stamped = {"content": [], "_meta": STAMP}
    asking = {"resultType": "input_required", "inputRequests": {}, "requestState": "s"}
    unstamped_2026 = {"content": [], "resultType": "complete"}

    assert wire_result("tools/call", stamped, modern=False) is None
    assert wire_result("resources/read", {"contents": [], "_meta": STAMP}, modern=False) is None
    assert wire_result("tools/call", asking, modern=True) is None
    assert wire_result("prompts/get", asking, modern=True) is None
    assert wire_result("tools/call", unstamped_2026, modern=True) == {"content": [], "isError": False}
    adapter = TypeAdapter(types.CallToolResult)
    assert isinstance(typed_result("tools/call", dict(unstamped_2026), "2026-07-28", adapter), types.CallToolResult)


@pytest.mark.parametrize(
    "hints",
    [
        {},
        {"ttlMs": 5},
        {"cacheScope": "private"},
        {"ttlMs": 5.0, "cacheScope": "private"},
        {"ttlMs": 5, "cacheScope": "x"},
    ],
)
def test_a_2026_read_without_valid_cache_hints_goes_the_typed_way_which_judges_them(hints: dict[str, Any]):
    raw = {"contents": [{"uri": "x://a", "text": "a"}], "resultType": "complete", **hints}

    assert wire_result("resources/read", raw, modern=True) is None


def test_a_2026_reads_cache_hints_are_dropped_for_a_handshake_era_agent_as_the_typed_way_drops_them():
    raw = {"contents": [{"uri": "x://a", "text": "a"}], "resultType": "complete", "ttlMs": -3, "cacheScope": "public"}

    wire = wire_result("resources/read", copy.deepcopy(raw), modern=True)

    assert wire == {"contents": [{"uri": "x://a", "text": "a"}]}
    assert wire == _typed_way("resources/read", raw, modern=True, agent_version="2025-11-25")[0]

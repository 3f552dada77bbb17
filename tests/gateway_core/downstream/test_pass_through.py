"""A result passed through gives the agent and the audit what the typed way gives; anything else goes typed."""

from __future__ import annotations

import copy
from typing import Any

import mcp_types as types
import pytest
from mcp_types.methods import serialize_server_result

from gateway_core.downstream.pass_through import audit_size, typed_result, wire_result
from gateway_core.downstream.session import CALL_RESULT
from gateway_core.frontend.forward import without_downstream_identity

AGENT_VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
STAMP = {"io.modelcontextprotocol/serverInfo": {"name": "s", "version": "1"}}

COMMON = [
    {"content": []},
    {"content": [{"type": "text", "text": "hi"}]},
    {"content": [{"type": "text", "text": "it failed"}], "isError": True},
    {"content": [{"type": "text", "text": "x"}], "isError": False, "structuredContent": {"a": None, "b": [1.5, "ü"]}},
    {"content": [{"type": "text", "text": 'ünï\u2028"q" \\', "_meta": {"k": None}}], "_meta": {"trace": "t"}},
    {"content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}], "structuredContent": {}},
]
# What the typed way changes beyond the hop's part: these are never passed through.
UNCOMMON = [
    {"content": [{"type": "image", "data": "iVBORw0KGgo=", "mimeType": "image/png"}]},
    {"content": [{"type": "text", "text": "x", "annotations": {"priority": 0.5}}]},
    {"content": [{"type": "text", "text": "x"}], "unknown": 1},
    {"content": [{"type": "text", "text": "x", "extra": 1}]},
    {"content": [{"type": "text", "text": "x"}], "isError": "true"},
    {"content": [{"type": "text", "text": 1}]},
    {"content": [{"type": "text", "text": "x"}], "structuredContent": [1]},
    {"content": [{"type": "text", "text": "x"}], "ttlMs": 5},
    {"content": {"type": "text", "text": "x"}},
    {"isError": False},
]


def _typed_way(raw: dict[str, Any], *, modern: bool, agent_version: str) -> tuple[dict[str, Any], int]:
    """What the agent gets the typed way (the SDK's client, the forwarder, the SDK's server), and the audit size."""
    result = without_downstream_identity(
        typed_result(copy.deepcopy(raw), "2026-07-28" if modern else "2025-11-25", CALL_RESULT)
    )
    size = len(result.model_dump_json(by_alias=True, exclude_none=True))
    dumped = result.model_dump(by_alias=True, mode="json", exclude_none=True)
    return serialize_server_result("tools/call", agent_version, dumped), size


def _from_2026(raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` as a 2026-07-28 server sends it: with its ``resultType`` and its identity stamp."""
    return {**raw, "resultType": "complete", "_meta": {**raw.get("_meta", {}), **STAMP}}


@pytest.mark.parametrize("agent_version", AGENT_VERSIONS)
@pytest.mark.parametrize("modern", [False, True], ids=["handshake-era server", "2026-07-28 server"])
@pytest.mark.parametrize("raw", COMMON)
def test_a_common_result_passes_through_as_the_typed_way_would_deliver_and_measure_it(
    raw: dict[str, Any], modern: bool, agent_version: str
):
    sent = _from_2026(raw) if modern else raw

    wire = wire_result(copy.deepcopy(sent), modern=modern)

    assert wire is not None
    expected, size = _typed_way(sent, modern=modern, agent_version=agent_version)
    assert wire == expected
    assert audit_size(wire) == size


@pytest.mark.parametrize("modern", [False, True], ids=["handshake-era server", "2026-07-28 server"])
@pytest.mark.parametrize("raw", UNCOMMON)
def test_a_result_the_typed_way_would_change_more_goes_the_typed_way(raw: dict[str, Any], modern: bool):
    assert wire_result(_from_2026(raw) if modern else raw, modern=modern) is None


def test_a_handshake_era_servers_identity_stamp_or_a_2026_servers_round_of_questions_goes_the_typed_way():
    stamped = {"content": [], "_meta": STAMP}
    asking = {"resultType": "input_required", "inputRequests": {}, "requestState": "s"}
    unstamped_2026 = {"content": [], "resultType": "complete"}

    assert wire_result(stamped, modern=False) is None
    assert wire_result(asking, modern=True) is None
    assert wire_result(unstamped_2026, modern=True) == {"content": [], "isError": False}
    assert isinstance(typed_result(dict(unstamped_2026), "2026-07-28", CALL_RESULT), types.CallToolResult)

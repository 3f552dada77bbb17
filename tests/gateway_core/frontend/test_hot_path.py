"""The hot path's checks of a request's params accept and refuse exactly what the SDK's server does."""

from __future__ import annotations

from typing import Any

import pytest
from mcp_types import methods
from mcp_types.version import KNOWN_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS
from pydantic import ValidationError

from gateway_core.frontend.hot_path import _SURFACE_CHECKS, PARAMS, _whole_request_check

HANDSHAKE_VERSIONS = sorted(set(KNOWN_PROTOCOL_VERSIONS) - set(MODERN_PROTOCOL_VERSIONS))

PARAMS_CASES: list[dict[str, Any]] = [
    {},
    {"name": "echo"},
    {"name": "echo", "arguments": {"text": "hi"}},
    {"name": "echo", "arguments": None},
    {"name": "echo", "arguments": []},
    {"name": "echo", "arguments": "text"},
    {"name": 7},
    {"name": None},
    {"name": "echo", "_meta": {"progressToken": 1}},
    {"name": "echo", "_meta": {"progressToken": [1]}},
    {"name": "echo", "_meta": "not an object"},
    {"name": "echo", "task": {"ttl": 1000}},
    {"name": "echo", "task": "soon"},
    {"name": "echo", "extra": {"nested": True}},
    {"uri": "fake://items/1"},
    {"uri": 1},
    {"uri": None},
    {"uri": "fake://items/1", "_meta": {"trace": "x"}},
    {"name": "greet", "arguments": {"who": "Ada"}},
    {"name": "greet", "arguments": {"who": 1}},
    {"name": "greet", "arguments": {"who": None}},
    {"requestState": "abc", "name": "echo"},
    {"inputResponses": {"q": {"action": "accept"}}, "name": "echo"},
]


def _sdk_accepts(method: str, version: str, params: dict[str, Any]) -> bool:
    try:
        methods.validate_client_request(method, version, params)
    except ValidationError:
        return False
    return True


def _accepts(check: Any, params: dict[str, Any]) -> bool:
    try:
        check(params, by_name=False)
    except ValidationError:
        return False
    return True


def test_every_hot_method_of_every_handshake_era_version_has_a_check_and_no_2026_one_does() -> None:
    expected = {(method, version) for method in PARAMS for version in HANDSHAKE_VERSIONS}
    assert set(_SURFACE_CHECKS) == expected


@pytest.mark.parametrize("version", HANDSHAKE_VERSIONS)
@pytest.mark.parametrize("method", sorted(PARAMS))
def test_the_hot_path_s_params_check_accepts_exactly_what_the_sdk_s_request_check_accepts(
    method: str, version: str
) -> None:
    check = _SURFACE_CHECKS[(method, version)]
    verdicts = {_sdk_accepts(method, version, params) for params in PARAMS_CASES}
    assert verdicts == {True, False}  # the cases hold params the SDK accepts and params it refuses
    for params in PARAMS_CASES:
        sdk = _sdk_accepts(method, version, params)
        assert _accepts(check, params) == sdk, (method, version, params)
        assert _accepts(lambda p, by_name: _whole_request_check(method, version, p, by_name=by_name), params) == sdk

"""The runtime: one frozen snapshot, replaced whole."""

from __future__ import annotations

import dataclasses
import json

import pytest

from gateway_core.config import parse_config
from gateway_core.frontend.routing import Routes
from gateway_core.frontend.runtime import Runtime, RuntimeCell
from gateway_core.policy import Effect

NOW = 1_800_000_000.0  # a fixed time: these rules have no expiry


def config_with(default: str, origins: list[str] | None = None):
    agents = {"cursor": {"name": "Cursor", "default": default}}
    document = {"gateway": {"allowed_origins": origins or []}, "agents": agents}
    return parse_config(json.dumps(document))


def test_an_agent_that_is_not_configured_may_do_nothing():
    runtime = Runtime.of(config_with("allow"))

    assert runtime.policy("cursor").evaluate("fs", "read", now=NOW).effect is Effect.ALLOW
    assert runtime.policy("ghost").evaluate("fs", "read", now=NOW).effect is Effect.DENY


def test_a_new_config_swaps_in_whole_and_an_earlier_snapshot_never_changes():
    cell = RuntimeCell(Runtime.of(config_with("allow")))
    routes = Routes(collisions=("kept",))
    cell.swap(lambda runtime: dataclasses.replace(runtime, routes=routes, tokens={b"d": "cursor"}))
    before = cell.now

    after = cell.swap(lambda runtime: runtime.with_config(config_with("deny", ["http://localhost:3000"])))

    assert before.policy("cursor").evaluate("fs", "read", now=NOW).effect is Effect.ALLOW
    assert after.policy("cursor").evaluate("fs", "read", now=NOW).effect is Effect.DENY
    assert after.allowed_origins == {"http://localhost:3000"} and before.allowed_origins == frozenset()
    assert after.routes is routes and after.tokens == {b"d": "cursor"}  # rebuilt by their owners, not here
    assert cell.now is after
    with pytest.raises(dataclasses.FrozenInstanceError):
        after.config = before.config  # type: ignore[misc]

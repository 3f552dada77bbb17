"""A plain hot call's envelope, made once per session and agent: the same params the session's steps make per call.

The reference is those steps themselves (the SDK session's stamp on a dumped ``tools/call``, the log
level asked for, the agent's claim), run on every call as the hot path did before; the stamps are the
SDK's own, made as its session makes them when it adopts an era.
"""

from __future__ import annotations

from typing import Any

import mcp_types as types
import pydantic_core
import pytest
from mcp.client.session import _make_handshake_stamp, _make_modern_stamp  # the SDK session's own stamps

from gateway_core.downstream.envelope import PlainCalls, Stamp, ask_for_log_level, claiming
from gateway_core.downstream.offer import EVERYTHING

CLIENT_INFO = {"name": "toolgate", "version": "0.1.0"}
OFFER = EVERYTHING.model_dump(by_alias=True, mode="json", exclude_none=True)
SAMPLING = types.ClientCapabilities(sampling=types.SamplingCapability())
ROOTS = types.ClientCapabilities(roots=types.RootsCapability(list_changed=True), experimental={"x": {}})


def no_param_headers(name: str, arguments: Any) -> dict[str, str]:
    return {}


def modern_stamp(log_level: types.LoggingLevel | None = None) -> Stamp:
    return _make_modern_stamp("2026-07-28", CLIENT_INFO, OFFER, no_param_headers, log_level=log_level)


def by_the_steps(
    stamp: Stamp,
    name: str,
    arguments: dict[str, Any] | None,
    capabilities: types.ClientCapabilities | None,
    *,
    modern: bool,
    log_level: types.LoggingLevel | None,
) -> bytes:
    """What the hot path made of a plain call on every call before (``session.call_tool_passing_through``)."""
    params: dict[str, Any] = {"name": name} if arguments is None else {"name": name, "arguments": arguments}
    data: dict[str, Any] = {"method": "tools/call", "params": params}
    if modern and log_level is not None:
        ask_for_log_level(data, log_level)
    stamp(data, {})
    sent = data.get("params")
    if modern:
        sent = claiming(sent, capabilities)
    return pydantic_core.to_json(sent)


SESSIONS = {
    "handshake era": (_make_handshake_stamp("2025-11-25"), False, None),
    "2026-07-28": (modern_stamp(), True, None),
    "2026-07-28 with a log level": (modern_stamp(), True, "debug"),
    "2026-07-28 stamping a level itself": (modern_stamp("info"), True, None),
    "2026-07-28, both levels": (modern_stamp("info"), True, "warning"),
}


@pytest.mark.parametrize("session", SESSIONS.values(), ids=SESSIONS.keys())
def test_a_plain_calls_params_are_byte_for_byte_what_the_sessions_steps_make_on_each_call(
    session: tuple[Stamp, bool, types.LoggingLevel | None],
) -> None:
    stamp, modern, log_level = session
    calls = PlainCalls()
    for capabilities in (None, SAMPLING, ROOTS, SAMPLING):
        for name, arguments in (("echo", {"text": "ü", "n": [1, 2.5, None]}), ("ping", None), ("", {})):
            made = calls.params(stamp, name, arguments, capabilities, modern=modern, log_level=log_level)
            assert made is not None
            expected = by_the_steps(stamp, name, arguments, capabilities, modern=modern, log_level=log_level)
            assert pydantic_core.to_json(made) == expected


def test_a_plain_calls_envelope_is_made_once_per_agents_capabilities_and_again_for_a_new_stamp_or_level() -> None:
    stamped: list[str] = []

    def counting(stamp: Stamp) -> Stamp:
        def stamp_and_count(data: dict[str, Any], options: Any) -> None:
            stamped.append(data["params"]["name"])
            stamp(data, options)

        return stamp_and_count

    first, second = counting(modern_stamp()), counting(modern_stamp())
    calls = PlainCalls()
    for _ in range(3):
        calls.params(first, "echo", {}, SAMPLING, modern=True, log_level=None)
        calls.params(first, "echo", {}, ROOTS, modern=True, log_level=None)
    assert len(stamped) == 2

    calls.params(first, "echo", {}, SAMPLING, modern=True, log_level="debug")
    calls.params(second, "echo", {}, SAMPLING, modern=True, log_level="debug")
    assert len(stamped) == 4
    # As a 2026-07-28 agent sends them with every request: the same capabilities in another object.
    for _ in range(3):
        for capabilities in (
            SAMPLING.model_copy(deep=True),
            types.ClientCapabilities.model_validate(ROOTS.model_dump()),
        ):
            calls.params(second, "echo", {}, capabilities, modern=True, log_level="debug")
    assert len(stamped) == 5
    other_roots = types.ClientCapabilities(roots=types.RootsCapability())
    calls.params(second, "echo", {}, other_roots, modern=True, log_level="debug")
    assert len(stamped) == 6


def test_a_stamp_that_puts_more_than_meta_in_a_calls_params_is_run_on_every_call() -> None:
    def odd(data: dict[str, Any], options: Any) -> None:
        data["params"]["extra"] = 1

    assert PlainCalls().params(odd, "echo", {}, None, modern=False, log_level=None) is None

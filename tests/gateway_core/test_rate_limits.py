"""Per-agent call limits: a sliding minute and calls in flight, each agent counted on its own."""

from __future__ import annotations

import json

import pytest

from gateway_core.config import parse_config
from gateway_core.errors import ConfigError
from gateway_core.rate_limits import CallLimits, LimitHit, RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_calls_per_minute_is_a_sliding_window_that_says_when_to_retry() -> None:
    clock = Clock()
    limiter = RateLimiter(clock)
    limits = CallLimits(calls_per_minute=3)

    for offset in (0.0, 10.0, 20.0):
        clock.now = 1000.0 + offset
        assert limiter.acquire("a", limits) is None
        limiter.release("a")
    clock.now = 1030.0
    hit = limiter.acquire("a", limits)

    assert hit == LimitHit("calls_per_minute", 3, 30.0)
    assert hit.reason("a") == (
        "agent 'a' has made 3 tool calls in the last minute, its limit (limits.calls_per_minute = 3); retry in 30 s"
    )
    clock.now = 1060.0  # the first call is a minute old: one fits again, not two
    assert limiter.acquire("a", limits) is None
    assert limiter.acquire("a", limits) == LimitHit("calls_per_minute", 3, 10.0)


def test_refused_calls_do_not_count_so_a_loop_gets_through_once_the_minute_has_passed() -> None:
    clock = Clock()
    limiter = RateLimiter(clock)
    limits = CallLimits(calls_per_minute=1)
    assert limiter.acquire("a", limits) is None

    for step in range(59):
        clock.now = 1000.0 + step
        assert limiter.acquire("a", limits) is not None
    clock.now = 1060.0

    assert limiter.acquire("a", limits) is None


def test_concurrent_counts_calls_in_flight_until_they_are_released() -> None:
    limiter = RateLimiter(Clock())
    limits = CallLimits(concurrent=2)

    assert limiter.acquire("a", limits) is None
    assert limiter.acquire("a", limits) is None
    hit = limiter.acquire("a", limits)
    assert hit == LimitHit("concurrent", 2, None)
    assert hit.reason("a").endswith("(limits.concurrent = 2); retry when one of them has finished")
    limiter.release("a")

    assert limiter.acquire("a", limits) is None
    assert limiter.in_flight("a") == 2


def test_one_agent_over_its_limits_leaves_the_others_alone() -> None:
    limiter = RateLimiter(Clock())
    tight = CallLimits(calls_per_minute=2, concurrent=1)

    assert limiter.acquire("a", tight) is None
    assert limiter.acquire("a", tight) is not None
    assert limiter.acquire("b", tight) is None
    assert all(limiter.acquire("c", CallLimits()) is None for _ in range(1000))
    assert limiter.in_flight("c") == 1000


def test_a_lowered_limit_applies_to_the_next_call() -> None:
    limiter = RateLimiter(Clock())
    for _ in range(5):
        assert limiter.acquire("a", CallLimits(calls_per_minute=10)) is None
        limiter.release("a")

    assert limiter.acquire("a", CallLimits(calls_per_minute=3)) == LimitHit("calls_per_minute", 3, 60.0)


def test_an_agent_s_limits_are_read_from_its_config_entry() -> None:
    document = {"agents": {"a": {"name": "A", "limits": {"calls_per_minute": 60, "concurrent": 4}}, "b": {"name": "B"}}}

    config = parse_config(json.dumps(document))

    assert config.agents["a"].limits == CallLimits(calls_per_minute=60, concurrent=4)
    assert config.agents["b"].limits == CallLimits()


@pytest.mark.parametrize(
    ("limits", "problem"),
    [
        ({"calls_per_minute": 0}, "agents.a.limits.calls_per_minute: expected a number greater than 0, found 0"),
        ({"concurrent": 1.5}, "agents.a.limits.concurrent: expected a whole number, found 1.5"),
        ({"per_hour": 5}, "agents.a.limits.per_hour: unknown key (expected one of: calls_per_minute, concurrent)"),
    ],
)
def test_a_limit_that_is_not_a_positive_whole_number_is_explained(limits: dict[str, object], problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(json.dumps({"agents": {"a": {"name": "A", "limits": limits}}}))

    assert caught.value.problems == [f"config.json: {problem}"]

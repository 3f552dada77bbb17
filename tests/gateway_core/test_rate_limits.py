"""Per-agent call limits: a sliding minute and calls in flight, each agent counted on its own."""

from __future__ import annotations

import json

import pytest

from gateway_core.config import parse_config
from gateway_core.config.checks import policy_warnings
from gateway_core.errors import ConfigError
from gateway_core.rate_limits import AgentLimits, CallLimits, LimitHit, RateLimiter


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

    assert config.agents["a"].limits == AgentLimits(calls_per_minute=60, concurrent=4)
    assert config.agents["b"].limits == AgentLimits()


@pytest.mark.parametrize(
    ("limits", "problem"),
    [
        ({"calls_per_minute": 0}, "agents.a.limits.calls_per_minute: expected a number greater than 0, found 0"),
        ({"concurrent": 1.5}, "agents.a.limits.concurrent: expected a whole number, found 1.5"),
        (
            {"per_hour": 5},
            "agents.a.limits.per_hour: unknown key (expected one of: calls_per_minute, concurrent, servers)",
        ),
    ],
)
def test_a_limit_that_is_not_a_positive_whole_number_is_explained(limits: dict[str, object], problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(json.dumps({"agents": {"a": {"name": "A", "limits": limits}}}))

    assert caught.value.problems == [f"config.json: {problem}"]


def test_a_call_counts_against_the_agent_s_limits_and_those_for_its_server() -> None:
    limiter = RateLimiter(Clock())
    limits = AgentLimits(calls_per_minute=5, servers={"github": CallLimits(calls_per_minute=2)})

    assert limiter.acquire("a", limits, "github") is None
    assert limiter.acquire("a", limits, "github") is None
    hit = limiter.acquire("a", limits, "github")
    others = [limiter.acquire("a", limits, "fs") for _ in range(4)]

    assert hit == LimitHit("calls_per_minute", 2, 60.0, "github")
    assert hit.reason("a") == (
        "agent 'a' has made 2 tool calls to server 'github' in the last minute, its limit for that server "
        "(limits.servers.github.calls_per_minute = 2); retry in 60 s"
    )
    assert others == [None, None, None, LimitHit("calls_per_minute", 5, 60.0)]  # 2 + 3 fill the agent's 5
    assert limiter.acquire("b", limits, "github") is None  # another agent is counted on its own


def test_a_refused_call_counts_against_neither_limit() -> None:
    limiter = RateLimiter(Clock())
    limits = AgentLimits(concurrent=2, servers={"github": CallLimits(concurrent=1)})

    assert limiter.acquire("a", limits, "github") is None
    hit = limiter.acquire("a", limits, "github")
    assert limiter.in_flight("a") == 1 and limiter.in_flight("a", "github") == 1
    assert limiter.acquire("a", limits, "fs") is None
    over_all = limiter.acquire("a", limits, "fs")
    limiter.release("a", "github")

    assert hit == LimitHit("concurrent", 1, None, "github")
    assert hit.reason("a").startswith("agent 'a' already has 1 tool call to server 'github' in flight")
    assert over_all == LimitHit("concurrent", 2, None)
    assert limiter.in_flight("a") == 1 and limiter.in_flight("a", "github") == 0
    assert limiter.acquire("a", limits, "github") is None


def test_limits_per_server_are_read_from_the_agent_s_limits_and_checked() -> None:
    document = {
        "agents": {"a": {"name": "A", "limits": {"concurrent": 4, "servers": {"github": {"calls_per_minute": 10}}}}},
        "servers": {"github": {"command": "x"}},
    }

    config = parse_config(json.dumps(document))

    assert config.agents["a"].limits == AgentLimits(concurrent=4, servers={"github": CallLimits(calls_per_minute=10)})
    assert policy_warnings(config) == []
    document["servers"] = {}
    assert policy_warnings(parse_config(json.dumps(document))) == [
        "config.json: agents.a.limits.servers.github: there is no server 'github'; these limits apply once one of "
        "that name is added"
    ]


@pytest.mark.parametrize(
    ("servers", "problem"),
    [
        (
            {"github": {"calls_per_minute": -1}},
            "agents.a.limits.servers.github.calls_per_minute: expected a number greater than 0, found -1",
        ),
        (
            {"github": {"servers": {}}},
            "agents.a.limits.servers.github.servers: unknown key (expected one of: calls_per_minute, concurrent)",
        ),
        ({"github": 5}, "agents.a.limits.servers.github: expected"),
    ],
)
def test_a_wrong_limit_for_a_server_is_explained_at_its_path(servers: dict[str, object], problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(json.dumps({"agents": {"a": {"name": "A", "limits": {"servers": servers}}}}))

    assert len(caught.value.problems) == 1 and caught.value.problems[0].startswith(f"config.json: {problem}")


def test_calls_made_while_no_limit_is_set_count_against_a_concurrent_limit_set_later() -> None:
    limiter = RateLimiter(Clock())
    for _ in range(2):
        assert limiter.acquire("a", AgentLimits(), "s") is None

    assert limiter.in_flight("a") == 2 and limiter.in_flight("a", "s") == 2
    assert limiter.acquire("a", CallLimits(concurrent=2), "s") == LimitHit("concurrent", 2, None)
    per_server = AgentLimits(servers={"s": CallLimits(concurrent=2)})
    assert limiter.acquire("a", per_server, "s") == LimitHit("concurrent", 2, None, "s")
    limiter.release("a", "s")
    limiter.release("a", "s")
    assert limiter.in_flight("a") == 0 and limiter.in_flight("a", "s") == 0
    assert limiter.acquire("a", CallLimits(concurrent=1), "s") is None


def test_a_removed_calls_per_minute_limit_forgets_the_calls_it_counted() -> None:
    clock = Clock()
    limiter = RateLimiter(clock)
    for _ in range(3):
        assert limiter.acquire("a", CallLimits(calls_per_minute=3)) is None
        limiter.release("a")
    assert limiter.acquire("a", CallLimits()) is None  # no limit: this call clears what was kept
    limiter.release("a")

    assert limiter.acquire("a", CallLimits(calls_per_minute=3)) is None

"""Timed grants: rules with an expiry, how they decide, how answers write them and how they leave the config."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from gateway_core.approvals import MAX_GRANT_S, Answer, BadDuration, parse_duration, until_tomorrow
from gateway_core.config import ensure_config, load_config, parse_config
from gateway_core.config.edit import (
    put_timed_rule,
    remove_expired_rules,
    remove_timed_rules,
    set_agent_rule,
    undo_answer,
)
from gateway_core.errors import AgentError, ConfigError
from gateway_core.paths import Paths
from gateway_core.policy import AgentPolicy, Effect, Rule, RuleSource, evaluate
from gateway_core.timed_rules import remove_expired

ALLOW, ASK, DENY = Effect.ALLOW, Effect.ASK, Effect.DENY
NOW = datetime(2026, 12, 2, 18, 0, tzinfo=UTC)
T = NOW.timestamp()
WAIT_S = 10


def rule(match: str, effect: Effect, expires_in_s: float | None = None) -> Rule:
    expires = None if expires_in_s is None else NOW + timedelta(seconds=expires_in_s)
    return Rule(match=match, effect=effect, expires=expires)


def decide(rules: list[Rule], server: str = "fs", tool: str = "write_file", *, at: float = T, default: Effect = ASK):
    decision = evaluate("cursor", default, rules, server, tool, now=at)
    assert AgentPolicy("cursor", default, rules).evaluate(server, tool, now=at) == decision
    return decision


@pytest.mark.parametrize(
    ("rules", "at", "effect", "deciding"),
    [
        pytest.param([rule("fs/write_file", ALLOW, 3600)], T, ALLOW, 0, id="a-grant-allows-before-it-expires"),
        pytest.param([rule("fs/write_file", ALLOW, 3600)], T + 3600, ASK, None, id="an-expired-grant-never-allows"),
        pytest.param([rule("fs/write_file", ALLOW, 3600)], T + 7200, ASK, None, id="long-expired-grant-is-no-rule"),
        pytest.param(
            [rule("fs/write_file", ASK), rule("fs/write_file", ALLOW, 60)],
            T,
            ALLOW,
            1,
            id="a-grant-comes-before-the-plain-rule-of-its-step",
        ),
        pytest.param(
            [rule("fs/write_file", ASK), rule("fs/write_file", ALLOW, 60)],
            T + 60,
            ASK,
            0,
            id="the-plain-rule-applies-again-once-the-grant-expires",
        ),
        pytest.param(
            [rule("fs/write_file", DENY), rule("fs/*", ALLOW, 60)],
            T,
            DENY,
            0,
            id="a-grant-does-not-jump-steps",
        ),
        pytest.param(
            [rule("fs/write_file", ALLOW, 60), rule("fs/write_file", DENY, 60)],
            T,
            DENY,
            1,
            id="between-grants-of-one-step-deny-wins",
        ),
        pytest.param(
            [rule("fs/*", ALLOW), rule("fs/write_file", DENY, 60)],
            T + 59,
            DENY,
            1,
            id="a-timed-deny-holds-until-it-expires",
        ),
        pytest.param(
            [rule("fs/*", ALLOW), rule("fs/write_file", DENY, 60)], T + 60, ALLOW, 0, id="then-the-wider-rule"
        ),
    ],
)
def test_a_timed_rule_decides_by_the_time_it_is_given(
    rules: list[Rule], at: float, effect: Effect, deciding: int | None
) -> None:
    decision = decide(rules, at=at)

    assert decision.effect is effect
    assert decision.rule is (None if deciding is None else rules[deciding])


def test_the_why_sentence_says_until_when_a_grant_holds() -> None:
    decision = decide([rule("fs/write_file", ALLOW, 90)])

    assert decision.rule_text == "fs/write_file → allow until 2026-12-02 18:01:30 UTC"
    assert decision.reason == (
        "agent 'cursor' may call fs/write_file: rule fs/write_file → allow until 2026-12-02 18:01:30 UTC"
    )


def test_an_expired_server_wide_grant_no_longer_decides_for_prompts_and_resources() -> None:
    policy = AgentPolicy("cursor", DENY, [rule("fs/*", ALLOW, 10)])

    assert policy.evaluate_server("fs", now=T + 9).effect is ALLOW
    assert policy.evaluate_server("fs", now=T + 10).effect is DENY


timed_rules = st.builds(
    lambda match, effect, expires_in_s: rule(match, effect, expires_in_s),
    st.sampled_from(["fs/write_file", "fs/*", "*/write_*", "fs/write_*", "*/*"]),
    st.sampled_from(Effect),
    st.one_of(st.none(), st.integers(min_value=-100, max_value=100)),
)


@given(rules=st.lists(timed_rules, max_size=8), offset=st.integers(min_value=-100, max_value=200))
def test_no_decision_is_ever_made_by_a_rule_past_its_expiry(rules: list[Rule], offset: int) -> None:
    at = T + offset
    decision = decide(rules, at=at)

    in_force = [r for r in rules if r.expires is None or r.expires.timestamp() > at]
    assert decision == decide(in_force, at=at)
    if decision.rule is not None:
        assert decision.rule.in_force(at)


def test_a_rule_s_expiry_needs_a_time_zone() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        Rule.model_validate({"match": "fs/x", "effect": "allow", "expires": "2026-12-02T18:00:00"})


def test_a_rule_records_the_answer_that_wrote_it() -> None:
    written = Rule.model_validate(
        {
            "match": "fs/x",
            "effect": "allow",
            "expires": "2026-12-02T18:00:00Z",
            "source": {"answer": "3fa2c1", "at": "2026-12-02T17:00:00Z"},
        }
    )

    assert written.source == RuleSource(answer="3fa2c1", at=NOW - timedelta(hours=1))
    with pytest.raises(ValidationError):
        Rule.model_validate({"match": "fs/x", "effect": "allow", "source": {"answer": "x", "at": "2026", "by": 1}})


@pytest.mark.parametrize(
    "source",
    [
        {"at": "2026-12-02T17:00:00Z"},
        {"answer": "3fa2c1", "imported": "cursor", "at": "2026-12-02T17:00:00Z"},
    ],
)
def test_a_rule_s_source_is_either_an_answer_or_an_import_never_both_or_neither(source: dict[str, str]) -> None:
    imported = Rule.model_validate(
        {"match": "fs/*", "effect": "allow", "source": {"imported": "cursor", "at": "2026-12-02T17:00:00Z"}}
    )

    assert imported.source == RuleSource(imported="cursor", at=NOW - timedelta(hours=1))
    with pytest.raises(ValidationError, match='either "answer"'):
        Rule.model_validate({"match": "fs/x", "effect": "allow", "source": source})


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("1h", 3600), ("1h30m", 5400), ("2d", 172800), (" 1.5H ", 5400), ("0.5m", 30)],
)
def test_a_duration_is_read_as_people_write_it(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "15", "m", "15 minutes", "1h-30m", "-5m", "1w", "forever"])
def test_a_duration_that_cannot_be_read_says_how_to_write_one(text: str) -> None:
    with pytest.raises(BadDuration, match="write e.g. 90s, 15m, 1h"):
        parse_duration(text)


def test_until_tomorrow_is_until_the_next_local_midnight() -> None:
    zone = datetime(2026, 12, 2, 18, 0).astimezone().tzinfo
    evening = datetime(2026, 12, 2, 23, 45, tzinfo=zone)

    assert until_tomorrow(evening) == 15 * 60
    assert parse_duration("tomorrow", now=evening) == 15 * 60


def test_timed_answers_are_the_timed_ones() -> None:
    assert {a for a in Answer if a.timed} == {Answer.ALLOW_FOR, Answer.DENY_FOR}
    assert Answer.ALLOW_FOR.allows and not Answer.DENY_FOR.allows
    assert (Answer.ALLOW_FOR.rule_effect, Answer.DENY_FOR.rule_effect) == (ALLOW, DENY)
    assert MAX_GRANT_S >= 86400


@pytest.fixture
def config_path(toolgate_home: Path) -> Path:
    path, _ = ensure_config(Paths.under(toolgate_home))
    data = json.loads(path.read_text())
    data["servers"] = {"fs": {"command": "fs-server"}}
    data["agents"] = {
        "cursor": {"name": "Cursor", "rules": [{"match": "fs/write_file", "effect": "ask"}]},
        "claude": {"name": "Claude"},
    }
    path.write_text(json.dumps(data))
    return path


def rules_in(path: Path, agent: str = "cursor") -> list[dict[str, object]]:
    return json.loads(path.read_text())["agents"][agent].get("rules", [])


def test_a_timed_rule_is_written_first_with_its_expiry_and_source_and_keeps_the_plain_rule(config_path: Path) -> None:
    source = RuleSource(answer="3fa2c1", at=NOW)
    config = put_timed_rule(config_path, "cursor", "fs/write_file", ALLOW, NOW + timedelta(hours=1), source=source)

    assert rules_in(config_path) == [
        {
            "match": "fs/write_file",
            "effect": "allow",
            "expires": "2026-12-02T19:00:00Z",
            "source": {"answer": "3fa2c1", "at": "2026-12-02T18:00:00Z"},
        },
        {"match": "fs/write_file", "effect": "ask"},
    ]
    assert config.agents["cursor"].rules[0].expires == NOW + timedelta(hours=1)
    assert load_config(config_path).agents["cursor"].rules[0].source == source


def test_a_second_timed_answer_replaces_the_first_for_that_tool(config_path: Path) -> None:
    put_timed_rule(config_path, "cursor", "fs/write_file", ALLOW, NOW + timedelta(hours=1))
    put_timed_rule(config_path, "cursor", "fs/write_file", DENY, NOW + timedelta(minutes=15))

    assert [(r["effect"], r.get("expires")) for r in rules_in(config_path)] == [
        ("deny", "2026-12-02T18:15:00Z"),
        ("ask", None),
    ]


def test_setting_or_removing_the_plain_rule_leaves_the_grant(config_path: Path) -> None:
    put_timed_rule(config_path, "cursor", "fs/write_file", ALLOW, NOW + timedelta(hours=1))

    set_agent_rule(config_path, "cursor", "fs/write_file", DENY)
    assert [(r["effect"], "expires" in r) for r in rules_in(config_path)] == [("allow", True), ("deny", False)]
    set_agent_rule(config_path, "cursor", "fs/write_file", None)
    assert [(r["effect"], "expires" in r) for r in rules_in(config_path)] == [("allow", True)]


def test_an_always_answer_records_its_source_and_a_hand_edit_drops_it(config_path: Path) -> None:
    set_agent_rule(config_path, "claude", "fs/read", ALLOW, source=RuleSource(answer="abc123", at=NOW))
    assert rules_in(config_path, "claude") == [
        {"match": "fs/read", "effect": "allow", "source": {"answer": "abc123", "at": "2026-12-02T18:00:00Z"}}
    ]

    set_agent_rule(config_path, "claude", "fs/read", DENY)
    assert rules_in(config_path, "claude") == [{"match": "fs/read", "effect": "deny"}]


def test_a_grant_can_be_removed_before_it_expires(config_path: Path) -> None:
    put_timed_rule(config_path, "cursor", "fs/write_file", ALLOW, NOW + timedelta(hours=1))

    config = remove_timed_rules(config_path, "cursor", "fs/write_file")

    assert rules_in(config_path) == [{"match": "fs/write_file", "effect": "ask"}]
    assert config.agents["cursor"].rules == (Rule(match="fs/write_file", effect=ASK),)


def test_only_expired_rules_are_removed_and_nothing_is_written_when_none_has(config_path: Path) -> None:
    put_timed_rule(config_path, "cursor", "fs/write_file", ALLOW, NOW + timedelta(minutes=1))
    put_timed_rule(config_path, "claude", "fs/read", ALLOW, NOW + timedelta(hours=1))
    before = config_path.stat().st_mtime_ns

    assert remove_expired_rules(config_path, T + 59) is None
    assert config_path.stat().st_mtime_ns == before
    config = remove_expired_rules(config_path, T + 60)

    assert config is not None
    assert rules_in(config_path) == [{"match": "fs/write_file", "effect": "ask"}]
    assert [r["match"] for r in rules_in(config_path, "claude")] == ["fs/read"]


@pytest.mark.anyio
async def test_the_expiry_loop_removes_a_rule_once_its_time_has_come(config_path: Path) -> None:
    clock = [T]
    put_timed_rule(config_path, "cursor", "fs/write_file", ALLOW, NOW + timedelta(seconds=30))
    applied: list[object] = []
    changed = anyio.Event()

    def apply(config: object) -> None:
        applied.append(config)
        changed.set()

    def next_expiry(after: float) -> float | None:
        config = load_config(config_path)
        policies = [AgentPolicy(a, agent.default, agent.rules) for a, agent in config.agents.items()]
        return min((e for p in policies if (e := p.next_expiry(after)) is not None), default=None)

    async def never() -> None:
        await anyio.sleep_forever()

    with anyio.fail_after(WAIT_S):
        async with anyio.create_task_group() as tg:
            clock[0] = T + 30  # the loop's first look finds the rule already due
            tg.start_soon(
                lambda: remove_expired(
                    config_path, next_expiry=next_expiry, changed=never, apply=apply, clock=lambda: clock[0]
                )
            )
            await changed.wait()
            tg.cancel_scope.cancel()

    assert len(applied) == 1
    assert rules_in(config_path) == [{"match": "fs/write_file", "effect": "ask"}]


@pytest.mark.parametrize("expires", ["tomorrow", "2026-12-02T18:00:00", 5])
def test_an_expiry_that_is_not_a_zoned_time_is_explained_in_the_config(expires: object) -> None:
    document = {"agents": {"c": {"name": "C", "rules": [{"match": "a/b", "effect": "allow", "expires": expires}]}}}

    with pytest.raises(ConfigError) as caught:
        parse_config(json.dumps(document))

    assert caught.value.problems == [
        f'config.json: agents.c.rules[0].expires: expected a time with its zone, e.g. "2026-12-02T18:55:00Z", '
        f"found {json.dumps(expires)}"
    ]


def test_setting_the_plain_rule_leaves_a_rule_with_conditions_for_the_same_tool(config_path: Path) -> None:
    data = json.loads(config_path.read_text())
    conditional = {"match": "fs/write_file", "effect": "allow", "when": {"path": {"under": "/srv/p"}}}
    data["agents"]["cursor"]["rules"].insert(0, conditional)
    config_path.write_text(json.dumps(data))

    set_agent_rule(config_path, "cursor", "fs/write_file", DENY)
    set_agent_rule(config_path, "claude", "fs/write_file", None)

    assert rules_in(config_path) == [conditional, {"match": "fs/write_file", "effect": "deny"}]


def test_undoing_an_always_answer_puts_back_the_rule_it_overwrote(config_path: Path) -> None:
    set_agent_rule(config_path, "cursor", "fs/write_file", ALLOW, source=RuleSource(answer="abc123", at=NOW))
    assert rules_in(config_path) == [
        {
            "match": "fs/write_file",
            "effect": "allow",
            "source": {"answer": "abc123", "at": "2026-12-02T18:00:00Z", "replaced": "ask"},
        }
    ]
    assert load_config(config_path).agents["cursor"].rules[0].source == RuleSource(
        answer="abc123", at=NOW, replaced=ASK
    )

    undo_answer(config_path, "cursor", "abc123")

    assert rules_in(config_path) == [{"match": "fs/write_file", "effect": "ask"}]


def test_undoing_a_timed_or_new_always_answer_removes_only_its_rules(config_path: Path) -> None:
    put_timed_rule(
        config_path, "cursor", "fs/write_file", ALLOW, NOW + timedelta(hours=1), source=RuleSource(answer="t1", at=NOW)
    )
    set_agent_rule(config_path, "cursor", "fs/read", DENY, source=RuleSource(answer="a2", at=NOW))

    undo_answer(config_path, "cursor", "t1")
    assert [(r["match"], r["effect"]) for r in rules_in(config_path)] == [
        ("fs/read", "deny"),
        ("fs/write_file", "ask"),
    ]
    undo_answer(config_path, "cursor", "a2")
    assert rules_in(config_path) == [{"match": "fs/write_file", "effect": "ask"}]
    with pytest.raises(AgentError, match="has no rule written by answer 'a2'"):
        undo_answer(config_path, "cursor", "a2")

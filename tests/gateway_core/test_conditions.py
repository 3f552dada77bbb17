"""Rules that look at a call's arguments: each operator, how they fall through, and that they fail closed."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway_core.conditions import (
    MAX_REGEX_CHARS,
    MAX_REGEX_INPUT_CHARS,
    Condition,
    conditions_hold,
    folder_suggestion,
)
from gateway_core.config import parse_config
from gateway_core.errors import ConfigError
from gateway_core.policy import AgentPolicy, Effect, Rule, evaluate

ALLOW, ASK, DENY = Effect.ALLOW, Effect.ASK, Effect.DENY
NOW = 1_800_000_000.0
HOME = os.path.expanduser("~")


def cond(**operators: Any) -> Condition:
    return Condition.model_validate(operators)


@pytest.mark.parametrize(
    ("operators", "value", "holds"),
    [
        pytest.param({"equals": "w"}, "w", True, id="equals-same-text"),
        pytest.param({"equals": "w"}, "W", False, id="equals-other-text"),
        pytest.param({"equals": 1}, 1.0, True, id="equals-numbers-by-value"),
        pytest.param({"equals": 1}, True, False, id="equals-a-boolean-is-not-a-number"),
        pytest.param({"equals": None}, None, True, id="equals-null"),
        pytest.param({"equals": [1, "a"]}, [1, "a"], True, id="equals-a-list"),
        pytest.param({"equals": {"a": 1}}, {"a": True}, False, id="equals-an-object-item-by-item"),
        pytest.param({"one_of": ["r", "w"]}, "w", True, id="one-of-listed"),
        pytest.param({"one_of": ["r", "w"]}, "x", False, id="one-of-not-listed"),
        pytest.param({"one_of": [0, 1]}, False, False, id="one-of-a-boolean-is-not-a-number"),
        pytest.param({"glob": "*.md"}, "notes/a.md", True, id="glob-matches-the-whole-text"),
        pytest.param({"glob": "*.md"}, "a.md.exe", False, id="glob-does-not-match"),
        pytest.param({"glob": "*.MD"}, "a.md", False, id="glob-is-case-sensitive"),
        pytest.param({"glob": "*"}, 5, None, id="glob-on-a-number-cannot-be-checked"),
        pytest.param({"regex": "[a-z]+"}, "abc", True, id="regex-full-match"),
        pytest.param({"regex": "[a-z]+"}, "abc1", False, id="regex-must-match-the-whole-text"),
        pytest.param({"regex": ".*"}, "x" * (MAX_REGEX_INPUT_CHARS + 1), None, id="regex-input-too-long"),
        pytest.param({"regex": ".*"}, ["x"], None, id="regex-on-a-list-cannot-be-checked"),
        pytest.param({"min": 1}, 1, True, id="min-inclusive"),
        pytest.param({"min": 1}, 0.5, False, id="min-below"),
        pytest.param({"max": 10}, 10, True, id="max-inclusive"),
        pytest.param({"max": 10}, 11, False, id="max-above"),
        pytest.param({"min": 1, "max": 10}, 5, True, id="min-and-max"),
        pytest.param({"min": 1}, "5", None, id="min-on-text-cannot-be-checked"),
        pytest.param({"max": 1}, True, None, id="max-on-a-boolean-cannot-be-checked"),
        pytest.param({"glob": "a*", "regex": ".*z"}, "abz", True, id="two-operators-both-hold"),
        pytest.param({"glob": "a*", "regex": ".*z"}, "aby", False, id="two-operators-one-fails"),
        pytest.param({"under": "/srv/p"}, "/srv/p/a.txt", True, id="under-inside"),
        pytest.param({"under": "/srv/p"}, "/srv/p", True, id="under-the-folder-itself"),
        pytest.param({"under": "/srv/p"}, "/srv/project/a.txt", False, id="under-a-sibling-with-the-same-start"),
        pytest.param({"under": "/srv/p"}, "/srv/p/../secrets", False, id="under-dot-dot-escape"),
        pytest.param({"under": ["/a", "/srv/p"]}, "/srv/p/x", True, id="under-one-of-several"),
        pytest.param({"under": "~/p"}, f"{HOME}/p/x", True, id="under-tilde-in-the-rule"),
        pytest.param({"under": f"{HOME}/p"}, "~/p/x", True, id="under-tilde-in-the-argument"),
        pytest.param({"under": "/srv/p"}, "p/x", None, id="under-a-relative-path-cannot-be-checked"),
        pytest.param({"under": "/srv/p"}, 3, None, id="under-a-number-cannot-be-checked"),
    ],
)
def test_each_operator_holds_fails_or_cannot_be_checked(operators: dict[str, Any], value: Any, holds: bool | None):
    assert cond(**operators).holds(True, value) is holds


def test_a_missing_argument_cannot_be_checked_and_a_failing_condition_outweighs_it():
    when = {"path": cond(under="/srv/p"), "mode": cond(equals="w")}

    assert conditions_hold(when, {"mode": "w"}) is None
    assert conditions_hold(when, {"mode": "r"}) is False
    assert conditions_hold(when, {"path": "/srv/p/x", "mode": "w"}) is True
    assert conditions_hold(when, None) is None


def test_under_follows_symlinks_out_of_the_folder(tmp_path: Path):
    project, outside = tmp_path / "project", tmp_path / "outside"
    project.mkdir()
    outside.mkdir()
    (project / "link").symlink_to(outside, target_is_directory=True)
    (tmp_path / "link-to-project").symlink_to(project, target_is_directory=True)
    condition = cond(under=str(project))

    assert condition.holds(True, str(project / "a.txt")) is True
    assert condition.holds(True, str(project / "link" / "a.txt")) is False
    assert condition.holds(True, str(tmp_path / "link-to-project" / "a.txt")) is True
    assert cond(under=str(tmp_path / "link-to-project")).holds(True, str(project / "a.txt")) is True


@pytest.mark.parametrize(
    ("when", "problem"),
    [
        pytest.param({"path": {}}, "expected one or more of: under, equals", id="no-operator"),
        pytest.param({"path": {"under": "rel/dir"}}, "expected absolute paths", id="relative-root"),
        pytest.param({"path": {"under": []}}, "expected one or more paths", id="no-roots"),
        pytest.param({"path": {"regex": "("}}, "not a regular expression", id="bad-regex"),
        pytest.param({"path": {"regex": "a" * (MAX_REGEX_CHARS + 1)}}, "at most 256 characters", id="long-regex"),
        pytest.param({"path": {"starts": "x"}}, "unknown key", id="unknown-operator"),
        pytest.param({}, "expected one or more argument names", id="empty-when"),
    ],
)
def test_a_condition_that_cannot_work_is_a_config_error_naming_it(when: dict[str, Any], problem: str):
    document = {"agents": {"c": {"name": "C", "rules": [{"match": "fs/write", "effect": "allow", "when": when}]}}}

    with pytest.raises(ConfigError) as caught:
        parse_config(json.dumps(document))

    (message,) = caught.value.problems
    assert message.startswith("config.json: agents.c.rules[0].when") and problem in message, message


def rule(match: str, effect: Effect, when: dict[str, Any] | None = None) -> Rule:
    return Rule.model_validate({"match": match, "effect": effect.value, **({"when": when} if when else {})})


PATH_UNDER = {"path": {"under": "/srv/p"}}


# What fs/write_file's server states about it: rules on these annotations (with conditions too) are in the mix.
WRITE_FILE_HINTS = {"readOnlyHint": False, "destructiveHint": True}


def decide(rules: list[Rule], arguments: dict[str, Any] | None, default: Effect = ASK, tool: str = "write_file"):
    hints = WRITE_FILE_HINTS
    decision = evaluate("cursor", default, rules, "fs", tool, now=NOW, arguments=arguments, annotations=hints)
    compiled = AgentPolicy("cursor", default, rules).evaluate(
        "fs", tool, now=NOW, arguments=arguments, annotations=hints
    )
    assert compiled == decision
    return decision


@pytest.mark.parametrize(
    ("rules", "arguments", "effect", "deciding"),
    [
        pytest.param(
            [rule("fs/write_file", ASK), rule("fs/write_file", ALLOW, PATH_UNDER)],
            {"path": "/srv/p/a"},
            ALLOW,
            1,
            id="a-rule-with-conditions-comes-before-the-plain-rule-of-its-step",
        ),
        pytest.param(
            [rule("fs/write_file", ASK), rule("fs/write_file", ALLOW, PATH_UNDER)],
            {"path": "/etc/passwd"},
            ASK,
            0,
            id="unmet-conditions-fall-through-to-the-next-rule",
        ),
        pytest.param(
            [rule("fs/*", DENY), rule("fs/write_file", ALLOW, PATH_UNDER)],
            {"path": "/srv/p/../../etc/passwd"},
            DENY,
            0,
            id="falls-through-to-a-wider-step",
        ),
        pytest.param([rule("fs/write_file", ALLOW, PATH_UNDER)], {}, ASK, None, id="a-missing-argument-never-allows"),
        pytest.param([rule("fs/write_file", ALLOW, PATH_UNDER)], None, ASK, None, id="no-arguments-at-all-never-allow"),
        pytest.param(
            [rule("fs/*", ALLOW), rule("fs/write_file", DENY, PATH_UNDER)],
            {"path": 7},
            DENY,
            1,
            id="a-deny-whose-condition-cannot-be-checked-applies",
        ),
        pytest.param(
            [rule("fs/*", ALLOW), rule("fs/write_file", DENY, PATH_UNDER)],
            {"path": "/tmp/x"},
            ALLOW,
            0,
            id="a-deny-whose-condition-fails-falls-through",
        ),
        pytest.param(
            [rule("fs/write_file", ALLOW, PATH_UNDER), rule("fs/write_file", DENY, {"path": {"glob": "*.key"}})],
            {"path": "/srv/p/id.key"},
            DENY,
            1,
            id="between-equally-narrowed-rules-deny-wins",
        ),
    ],
)
def test_rules_with_conditions_decide_by_the_call_s_arguments(
    rules: list[Rule], arguments: dict[str, Any] | None, effect: Effect, deciding: int | None
):
    decision = decide(rules, arguments)

    assert decision.effect is effect
    assert decision.rule is (None if deciding is None else rules[deciding])


def test_the_why_sentence_names_the_condition_and_the_rules_the_call_did_not_meet():
    rules = [rule("fs/*", ASK), rule("fs/write_file", ALLOW, PATH_UNDER)]

    inside = decide(rules, {"path": "/srv/p/a"})
    outside = decide(rules, {"path": "/etc/x"})

    assert (
        inside.reason == "agent 'cursor' may call fs/write_file: rule fs/write_file → allow when path is under /srv/p"
    )
    assert outside.reason == (
        "agent 'cursor' must ask before calling fs/write_file: rule fs/* → ask; "
        "the call does not meet fs/write_file → allow when path is under /srv/p"
    )
    assert inside.looked_at == outside.looked_at == ("path",)
    assert decide([rule("fs/*", ASK)], {"path": "/x"}).looked_at == ()


def test_a_tool_that_some_calls_may_use_is_listed_and_a_conditional_deny_does_not_hide_it():
    allow_inside = AgentPolicy("cursor", DENY, [rule("fs/write_file", ALLOW, PATH_UNDER)])
    deny_inside = AgentPolicy("cursor", ALLOW, [rule("fs/write_file", DENY, PATH_UNDER)])

    assert allow_inside.visible("fs", "write_file", now=NOW)
    assert not allow_inside.visible("fs", "read_file", now=NOW)
    assert deny_inside.visible("fs", "write_file", now=NOW)


def test_prompts_and_resources_give_conditions_nothing_to_look_at_so_they_never_allow():
    policy = AgentPolicy("cursor", ASK, [rule("fs/*", ALLOW, PATH_UNDER)])

    assert policy.evaluate_server("fs", now=NOW).effect is ASK


values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.sampled_from(["/srv/p/a", "/srv/p/../x", "/etc/x", "rel", "a.md", "abc", "~/p"]),
    st.lists(st.integers(0, 2), max_size=2),
)
conditions = st.sampled_from(
    [
        {"under": "/srv/p"},
        {"equals": 1},
        {"one_of": ["abc", 2]},
        {"glob": "*.md"},
        {"regex": "[a-c]+"},
        {"min": 0, "max": 3},
        {"equals": None},
    ]
)
conditional_rules = st.builds(
    lambda match, effect, name, condition, annotations: rule(match, effect, {name: condition}).model_copy(
        update={"annotations": annotations}
    ),
    st.sampled_from(["fs/write_file", "fs/*", "*/write_*", "fs/write_*", "*/*"]),
    st.sampled_from(Effect),
    st.sampled_from(["path", "mode"]),
    conditions,
    st.sampled_from([None, None, {"destructiveHint": True}, {"readOnlyHint": True}]),
)
plain_rules = st.builds(rule, st.sampled_from(["fs/write_file", "fs/*", "*/*"]), st.sampled_from(Effect))
argument_maps = st.one_of(st.none(), st.dictionaries(st.sampled_from(["path", "mode", "other"]), values, max_size=3))


@given(
    rules=st.lists(st.one_of(conditional_rules, plain_rules), max_size=8),
    default=st.sampled_from(Effect),
    arguments=argument_maps,
)
def test_a_rule_whose_conditions_are_unmet_or_cannot_be_checked_never_allows(
    rules: list[Rule], default: Effect, arguments: dict[str, Any] | None
):
    decision = decide(rules, arguments, default)

    deciding = decision.rule
    if deciding is not None and deciding.when is not None:
        holds = conditions_hold(deciding.when, arguments)
        assert holds is not False
        if decision.effect is ALLOW:
            assert holds is True
    assert decision.rule_text in decision.reason


@given(
    rules=st.lists(st.one_of(conditional_rules, plain_rules), max_size=8),
    default=st.sampled_from(Effect),
    arguments=argument_maps,
)
def test_removing_the_rules_that_did_not_apply_changes_nothing_but_the_sentence(
    rules: list[Rule], default: Effect, arguments: dict[str, Any] | None
):
    decision = decide(rules, arguments, default)

    unmet = [r for r in rules if r.when is not None and conditions_hold(r.when, arguments) is not True]
    not_applying = [r for r in unmet if r.effect is ALLOW or conditions_hold(r.when or {}, arguments) is False]
    rest = [r for r in rules if r not in not_applying]
    again = decide(rest, arguments, default)
    assert (again.effect, again.rule) == (decision.effect, decision.rule)


@given(rules=st.lists(st.one_of(conditional_rules, plain_rules), max_size=8), default=st.sampled_from(Effect))
def test_listing_shows_a_tool_unless_every_call_to_it_is_denied(rules: list[Rule], default: Effect):
    policy = AgentPolicy("cursor", default, rules)
    listed = policy.visible("fs", "write_file", now=NOW, annotations=WRITE_FILE_HINTS)

    plain = evaluate("cursor", default, rules, "fs", "write_file", now=NOW, annotations=WRITE_FILE_HINTS, listing=True)
    assert listed is (plain.effect is not DENY)
    if not listed:  # then no arguments at all make a call allowed or asked about
        for arguments in ({}, {"path": "/srv/p/a"}, {"mode": 1}, {"path": "a.md", "mode": "abc"}):
            assert decide(rules, arguments, default).effect is DENY


def test_a_folder_is_suggested_from_the_first_path_like_argument(tmp_path: Path):
    (tmp_path / "sub").mkdir()

    assert folder_suggestion({"content": "/etc/x", "path": str(tmp_path / "a.txt")}) == (
        "path",
        str(tmp_path.resolve()),
    )
    assert folder_suggestion({"target": str(tmp_path / "sub")}) == ("target", str((tmp_path / "sub").resolve()))
    assert folder_suggestion({"text": "~/notes/a.md"}) == ("text", os.path.join(HOME, "notes"))
    assert folder_suggestion({"path": "relative/a.txt", "n": 3}) is None
    assert folder_suggestion({"path": "/a.txt"}) is None  # the root would allow everything

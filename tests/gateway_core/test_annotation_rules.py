"""Rules that match on the annotations a tool's server states (readOnlyHint, destructiveHint, …)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from gateway_core.config import parse_config
from gateway_core.errors import ConfigError
from gateway_core.policy import AgentPolicy, Decision, Effect, Rule, evaluate, tool_hints

NOW = 1_800_000_000.0
ALLOW, ASK, DENY = Effect.ALLOW, Effect.ASK, Effect.DENY
READ_ONLY = {"readOnlyHint": True}
DESTRUCTIVE = {"readOnlyHint": False, "destructiveHint": True}
# "read-only tools: allow; destructive: ask", the rest by the default.
READ_ONLY_ALLOW_DESTRUCTIVE_ASK = (
    Rule(match="*/*", effect=ALLOW, annotations={"readOnlyHint": True}),
    Rule(match="*/*", effect=ASK, annotations={"destructiveHint": True}),
)


def decide(
    rules: tuple[Rule, ...], hints: dict[str, bool] | None, default: Effect = DENY, server: str = "fs", tool: str = "t"
) -> Decision:
    decision = evaluate("cursor", default, rules, server, tool, now=NOW, annotations=hints)
    assert AgentPolicy("cursor", default, rules).evaluate(server, tool, now=NOW, annotations=hints) == decision
    return decision


@pytest.mark.parametrize(
    ("hints", "effect", "rule_index"),
    [
        pytest.param(READ_ONLY, ALLOW, 0, id="read-only-allowed"),
        pytest.param(DESTRUCTIVE, ASK, 1, id="destructive-asked"),
        pytest.param({"readOnlyHint": False, "destructiveHint": False}, DENY, None, id="neither-falls-to-default"),
        pytest.param(None, DENY, None, id="no-annotations-match-no-annotation-rule"),
        pytest.param({}, DENY, None, id="empty-annotations-match-no-annotation-rule"),
        pytest.param({"idempotentHint": True}, DENY, None, id="other-hints-only-fall-to-default"),
        pytest.param({"destructiveHint": True}, ASK, 1, id="destructive-without-read-only-hint"),
    ],
)
def test_read_only_tools_are_allowed_and_destructive_ones_asked_about(
    hints: dict[str, bool] | None, effect: Effect, rule_index: int | None
) -> None:
    decision = decide(READ_ONLY_ALLOW_DESTRUCTIVE_ASK, hints)

    assert decision.effect is effect
    assert decision.rule == (None if rule_index is None else READ_ONLY_ALLOW_DESTRUCTIVE_ASK[rule_index])


@pytest.mark.parametrize("hint", ["readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"])
@pytest.mark.parametrize("wanted", [True, False])
@pytest.mark.parametrize("stated", [True, False, None])
@pytest.mark.parametrize("effect", list(Effect))
def test_each_hint_matches_only_when_the_server_states_the_rule_s_value(
    hint: str, wanted: bool, stated: bool | None, effect: Effect
) -> None:
    rule = Rule(match="*/*", effect=effect, annotations={hint: wanted})  # type: ignore[dict-item]
    default = ASK if effect is not ASK else DENY
    hints = {"title_is_not_a_hint": True} if stated is None else {hint: stated}

    decision = decide((rule,), tool_hints(hints), default)

    # An absent hint is unknown (not the spec's default), whatever the rule's effect: the rule does not apply.
    assert decision.effect is (effect if stated is wanted else default)


@pytest.mark.parametrize(
    ("rules", "hints", "expected"),
    [
        pytest.param(
            (
                Rule(match="github/*", effect=ALLOW),
                Rule(match="*/*", effect=ASK, annotations={"destructiveHint": True}),
            ),
            DESTRUCTIVE,
            "github/* → allow",
            id="a-named-server-beats-an-annotation-rule-across-servers",
        ),
        pytest.param(
            (Rule(match="*/*", effect=ASK), Rule(match="*/*", effect=ALLOW, annotations={"readOnlyHint": True})),
            READ_ONLY,
            "*/* → allow for tools marked readOnlyHint=true",
            id="an-annotation-rule-beats-the-plain-rule-of-its-step",
        ),
        pytest.param(
            (
                Rule(match="*/*", effect=ALLOW, annotations={"readOnlyHint": True}),
                Rule(match="github/delete_repo", effect=DENY),
            ),
            READ_ONLY,
            "github/delete_repo → deny",
            id="an-exact-tool-beats-an-annotation-rule",
        ),
        pytest.param(
            (
                Rule(match="github/*", effect=ALLOW, annotations={"readOnlyHint": True}),
                Rule(match="github/*", effect=DENY, annotations={"openWorldHint": True}),
            ),
            {"readOnlyHint": True, "openWorldHint": True},
            "github/* → deny for tools marked openWorldHint=true",
            id="equally-narrowed-annotation-rules-deny-wins",
        ),
        pytest.param(
            (
                Rule(match="github/*", effect=ALLOW, annotations={"readOnlyHint": True, "openWorldHint": False}),
                Rule(match="github/*", effect=DENY, annotations={"openWorldHint": False}),
            ),
            {"readOnlyHint": True, "openWorldHint": True},
            "default → ask",
            id="every-annotation-of-a-rule-must-be-stated",
        ),
    ],
)
def test_annotation_rules_keep_their_place_in_the_precedence(
    rules: tuple[Rule, ...], hints: dict[str, bool], expected: str
) -> None:
    assert decide(rules, hints, ASK, "github", "delete_repo").rule_text == expected


def test_the_why_sentence_names_the_annotation() -> None:
    decision = decide(READ_ONLY_ALLOW_DESTRUCTIVE_ASK, READ_ONLY)

    assert decision.reason == ("agent 'cursor' may call fs/t: rule */* → allow for tools marked readOnlyHint=true")


def test_prompts_and_resources_are_never_decided_by_an_annotation_rule() -> None:
    rules = (Rule(match="fs/*", effect=ALLOW, annotations={"readOnlyHint": True}),)

    assert AgentPolicy("cursor", DENY, rules).evaluate_server("fs", now=NOW).rule is None


def test_listing_follows_the_annotations() -> None:
    policy = AgentPolicy("cursor", DENY, READ_ONLY_ALLOW_DESTRUCTIVE_ASK)

    assert policy.visible("fs", "read", now=NOW, annotations=READ_ONLY)
    assert not policy.visible("fs", "mystery", now=NOW, annotations=None)


@pytest.mark.parametrize(
    ("annotations", "stated"),
    [
        ({"readOnlyHint": True, "title": "Read"}, {"readOnlyHint": True}),
        ({"title": "Read"}, None),
        ({"destructiveHint": None, "openWorldHint": False}, {"openWorldHint": False}),
        ({"readOnlyHint": "yes"}, None),
        (None, None),
    ],
)
def test_only_the_hints_a_server_states_as_true_or_false_count(
    annotations: dict[str, Any] | None, stated: dict[str, bool] | None
) -> None:
    assert tool_hints(annotations) == stated


@pytest.mark.parametrize(
    ("annotations", "problem"),
    [
        ({}, "expected one or more of readOnlyHint, destructiveHint, idempotentHint, openWorldHint"),
        ({"readOnly": True}, "agents.a.rules[0].annotations.readOnly"),
        ({"readOnlyHint": "yes"}, "agents.a.rules[0].annotations.readOnlyHint"),
    ],
)
def test_a_wrong_annotations_block_is_a_config_error_naming_it(annotations: dict[str, Any], problem: str) -> None:
    rule = {"match": "*/*", "effect": "allow", "annotations": annotations}
    text = '{"agents": {"a": {"name": "A", "rules": [' + __import__("json").dumps(rule) + "]}}}"

    with pytest.raises(ConfigError) as caught:
        parse_config(text)

    assert problem in str(caught.value)


def test_an_annotation_rule_reads_back_from_config() -> None:
    config = parse_config(
        '{"agents": {"a": {"name": "A", "rules": [{"match": "*/*", "effect": "allow", '
        '"annotations": {"readOnlyHint": true}}]}}}'
    )

    assert config.agents["a"].rules[0] == Rule(match="*/*", effect=ALLOW, annotations={"readOnlyHint": True})
    with pytest.raises(ValidationError):
        Rule(match="*/*", effect=ALLOW, annotations={"readOnlyHint": 1})  # type: ignore[dict-item]

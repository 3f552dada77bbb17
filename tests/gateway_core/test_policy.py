from __future__ import annotations

import fnmatch
import itertools
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from gateway_core.policy import (
    HINTS,
    AgentPolicy,
    Decision,
    Effect,
    Rank,
    Rule,
    check_match,
    evaluate,
    hints_text,
    literal_match,
)

NOW = 1_800_000_000.0  # a fixed time: these rules have no expiry


ALLOW, ASK, DENY = Effect.ALLOW, Effect.ASK, Effect.DENY
STRONGEST_FIRST = (DENY, ASK, ALLOW)


def rules_of(*pairs: tuple[str, Effect]) -> tuple[Rule, ...]:
    return tuple(Rule(match=match, effect=effect) for match, effect in pairs)


def decide(rules: tuple[Rule, ...], server: str, tool: str, default: Effect = ASK) -> Decision:
    decision = evaluate("cursor", default, rules, server, tool, now=NOW)
    assert AgentPolicy("cursor", default, rules).evaluate(server, tool, now=NOW) == decision
    return decision


@pytest.mark.parametrize(
    ("match", "rank"),
    [
        pytest.param("fs/write_file", Rank.EXACT_TOOL, id="exact-tool"),
        pytest.param("github/delete_*", Rank.TOOL_GLOB, id="tool-glob-star"),
        pytest.param("fs/read_?", Rank.TOOL_GLOB, id="tool-glob-question-mark"),
        pytest.param("fs/[rw]*", Rank.TOOL_GLOB, id="tool-glob-set"),
        pytest.param("*/read_*", Rank.TOOLS_ACROSS_SERVERS, id="server-glob-with-tool-glob"),
        pytest.param("*/write_file", Rank.TOOLS_ACROSS_SERVERS, id="server-glob-with-exact-tool"),
        pytest.param("git*/delete_*", Rank.TOOLS_ACROSS_SERVERS, id="partial-server-glob-with-tool-glob"),
        pytest.param("github/*", Rank.WHOLE_SERVER, id="whole-server"),
        pytest.param("github/**", Rank.WHOLE_SERVER, id="whole-server-double-star"),
        pytest.param("git*/*", Rank.SERVER_GLOB, id="server-glob"),
        pytest.param("*/*", Rank.SERVER_GLOB, id="everything"),
    ],
)
def test_each_match_shape_has_its_documented_rank(match: str, rank: Rank) -> None:
    assert Rule(match=match, effect=ALLOW).rank is rank


@pytest.mark.parametrize(
    ("rules", "server", "tool", "expected_match"),
    [
        pytest.param(
            rules_of(("fs/write_*", DENY), ("fs/write_file", ALLOW)),
            "fs",
            "write_file",
            "fs/write_file",
            id="1-exact-tool-beats-tool-glob",
        ),
        pytest.param(
            rules_of(("fs/*", DENY), ("fs/write_file", ALLOW)),
            "fs",
            "write_file",
            "fs/write_file",
            id="1-exact-tool-beats-whole-server",
        ),
        pytest.param(
            rules_of(("*/write_file", DENY), ("fs/write_file", ALLOW)),
            "fs",
            "write_file",
            "fs/write_file",
            id="1-exact-tool-beats-same-tool-across-servers",
        ),
        pytest.param(
            rules_of(("*/delete_*", DENY), ("github/delete_*", ALLOW)),
            "github",
            "delete_repo",
            "github/delete_*",
            id="2-tool-glob-beats-tools-across-servers",
        ),
        pytest.param(
            rules_of(("*/delete_repo", DENY), ("github/delete_*", ALLOW)),
            "github",
            "delete_repo",
            "github/delete_*",
            id="2-tool-glob-beats-exact-tool-across-servers",
        ),
        pytest.param(
            rules_of(("github/*", DENY), ("github/read_*", ALLOW)),
            "github",
            "read_issue",
            "github/read_*",
            id="2-tool-glob-beats-whole-server",
        ),
        pytest.param(
            rules_of(("github/*", ALLOW), ("*/delete_*", ASK)),
            "github",
            "delete_repo",
            "*/delete_*",
            id="3-tools-across-servers-beat-whole-server",
        ),
        pytest.param(
            rules_of(("*/*", DENY), ("*/read_*", ALLOW)),
            "fs",
            "read_file",
            "*/read_*",
            id="3-tools-across-servers-beat-server-glob",
        ),
        pytest.param(
            rules_of(("*/*", DENY), ("github/*", ALLOW)),
            "github",
            "create_issue",
            "github/*",
            id="4-whole-server-beats-server-glob",
        ),
        pytest.param(
            rules_of(("git*/*", ALLOW)),
            "github",
            "create_issue",
            "git*/*",
            id="5-server-glob-beats-default",
        ),
        pytest.param(
            rules_of(("fs/*", ALLOW), ("*/read_*", ALLOW), ("github/list_?", ALLOW)),
            "github",
            "create_issue",
            None,
            id="6-default-when-no-rule-matches",
        ),
        pytest.param(
            rules_of(("GitHub/*", ALLOW)),
            "github",
            "create_issue",
            None,
            id="6-matching-is-case-sensitive",
        ),
        pytest.param(
            rules_of(("fs/[rw]*", ALLOW)),
            "fs",
            "delete",
            None,
            id="6-a-set-that-does-not-match",
        ),
    ],
)
def test_the_most_specific_matching_rule_decides(
    rules: tuple[Rule, ...], server: str, tool: str, expected_match: str | None
) -> None:
    decision = decide(rules, server, tool, default=DENY)

    if expected_match is None:
        assert (decision.rule, decision.effect) == (None, DENY)
    else:
        assert decision.rule is not None and decision.rule.match == expected_match
        assert decision.effect is decision.rule.effect


# Two different matches of the same rank that both match github/read_issue.
SAME_RANK_PAIRS = {
    "exact-tool": ("github/read_issue", "github/read_issue"),
    "tool-glob": ("github/read_*", "github/*_issue"),
    "tools-across-servers": ("*/read_*", "git*/read_issue"),
    "whole-server": ("github/*", "github/**"),
    "server-glob": ("*/*", "git*/*"),
}


@pytest.mark.parametrize(
    ("level", "first", "second"),
    [
        pytest.param(level, first, second, id=f"{level}:{first.value}-then-{second.value}")
        for level in SAME_RANK_PAIRS
        for first, second in itertools.permutations(STRONGEST_FIRST, 2)
    ],
)
def test_between_equally_specific_rules_deny_beats_ask_beats_allow(level: str, first: Effect, second: Effect) -> None:
    first_match, second_match = SAME_RANK_PAIRS[level]
    rules = rules_of((first_match, first), (second_match, second))

    decision = decide(rules, "github", "read_issue")

    stronger = min(first, second, key=STRONGEST_FIRST.index)
    assert decision.effect is stronger
    assert decision.rule == (rules[0] if stronger is first else rules[1])


def test_among_equally_specific_rules_with_one_effect_the_first_listed_is_named() -> None:
    rules = rules_of(("github/read_*", ASK), ("github/*_issue", ASK))

    assert decide(rules, "github", "read_issue").rule == rules[0]


def test_the_reason_names_the_deciding_rule() -> None:
    rules = rules_of(("github/*", ALLOW), ("github/delete_*", DENY))

    decision = decide(rules, "github", "delete_repo")

    assert decision.reason == "agent 'cursor' may not call github/delete_repo: rule github/delete_* → deny"
    assert decision.rule_text == "github/delete_* → deny"


@pytest.mark.parametrize(
    ("effect", "reason"),
    [
        pytest.param(ALLOW, "agent 'cursor' may call fs/read_file: rule fs/* → allow", id="allow"),
        pytest.param(ASK, "agent 'cursor' must ask before calling fs/read_file: rule fs/* → ask", id="ask"),
        pytest.param(DENY, "agent 'cursor' may not call fs/read_file: rule fs/* → deny", id="deny"),
    ],
)
def test_the_reason_says_what_the_agent_may_do(effect: Effect, reason: str) -> None:
    assert decide(rules_of(("fs/*", effect)), "fs", "read_file").reason == reason


def test_the_reason_says_when_the_agents_default_decided() -> None:
    decision = decide(rules_of(("github/*", DENY)), "fs", "read_file", default=ASK)

    assert decision == Decision(
        ASK,
        None,
        "agent 'cursor' must ask before calling fs/read_file: "
        "no rule matches, so the agent's default decides (default → ask)",
    )
    assert decision.rule_text == "default → ask"
    assert decision.rank is Rank.DEFAULT


@pytest.mark.parametrize(
    ("rules", "expected_match"),
    [
        pytest.param(rules_of(("github/*", DENY), ("github/read_issue", ALLOW)), "github/*", id="ignores-exact-tools"),
        pytest.param(rules_of(("github/read_*", DENY)), None, id="ignores-tool-globs"),
        pytest.param(rules_of(("*/read_*", DENY)), None, id="ignores-tools-across-servers"),
        pytest.param(rules_of(("*/*", DENY), ("github/*", ALLOW)), "github/*", id="whole-server-beats-server-glob"),
        pytest.param(rules_of(("git*/*", ALLOW), ("*/*", DENY)), "*/*", id="server-globs-tie-deny-wins"),
        pytest.param(rules_of(("fs/*", DENY)), None, id="other-servers-fall-to-default"),
    ],
)
def test_a_servers_resources_and_prompts_follow_its_server_wide_decision(
    rules: tuple[Rule, ...], expected_match: str | None
) -> None:
    decision = AgentPolicy("cursor", ASK, rules).evaluate_server("github", now=NOW)

    if expected_match is None:
        assert (decision.rule, decision.effect) == (None, ASK)
    else:
        assert decision.rule is not None and decision.rule.match == expected_match
        assert decision.effect is decision.rule.effect


def test_the_server_wide_reason_names_the_server_and_the_rule() -> None:
    decision = AgentPolicy("cursor", ASK, rules_of(("github/*", DENY))).evaluate_server("github", now=NOW)

    assert decision.reason == "agent 'cursor' may not use server github: rule github/* → deny"


@pytest.mark.parametrize(
    ("match", "problem"),
    [
        pytest.param("github", 'expected "server/tool" with glob patterns, found "github"', id="no-slash"),
        pytest.param("a/b/c", 'expected "server/tool" with glob patterns, found "a/b/c"', id="two-slashes"),
        pytest.param(
            "/read",
            'expected "server/tool" with glob patterns, found "/read": the server part is empty',
            id="no-server",
        ),
        pytest.param(
            "fs/", 'expected "server/tool" with glob patterns, found "fs/": the tool part is empty', id="no-tool"
        ),
        pytest.param(
            "fs/[rw*",
            'expected "server/tool" with glob patterns, found "fs/[rw*": the tool part has a "[" with no closing "]"',
            id="unclosed-set",
        ),
        pytest.param(
            "fs]/*",
            'expected "server/tool" with glob patterns, found "fs]/*": the server part has a "]" with no opening "["',
            id="stray-closing-bracket",
        ),
    ],
)
def test_a_malformed_match_is_explained(match: str, problem: str) -> None:
    assert check_match(match) == problem
    with pytest.raises(ValidationError):
        Rule(match=match, effect=ALLOW)


@pytest.mark.parametrize("match", ["fs/write_file", "*/*", "fs/[!x]*", "fs/[]]x", "fs/[!]]x", "git?/read_[a-z]"])
def test_a_well_formed_match_is_accepted(match: str) -> None:
    assert check_match(match) is None


SERVERS = ("fs", "github", "git")
TOOLS = ("read", "read_file", "write_file", "delete", "get*", "a[1]")
SERVER_PATTERNS = (*SERVERS, "*", "g*", "git?", "[fg]*", "[!f]*")
TOOL_PATTERNS = (*TOOLS[:4], "*", "read_*", "*_file", "[rw]*", "?ead", "**", "get[*]", "a[[]1[]]", "get?", "a[[]*")

HINT_MAPS = st.one_of(st.none(), st.dictionaries(st.sampled_from(HINTS), st.booleans(), min_size=1, max_size=2))
rule_strategy = st.builds(
    lambda server, tool, effect, annotations: Rule(match=f"{server}/{tool}", effect=effect, annotations=annotations),
    st.sampled_from(SERVER_PATTERNS),
    st.sampled_from(TOOL_PATTERNS),
    st.sampled_from(Effect),
    st.one_of(st.none(), st.none(), HINT_MAPS),
)


def oracle_matches(rule: Rule, server: str, tool: str) -> bool:
    server_pattern, tool_pattern = rule.match.split("/")
    return fnmatch.fnmatchcase(server, server_pattern) and fnmatch.fnmatchcase(tool, tool_pattern)


@given(
    rules=st.lists(rule_strategy, max_size=8),
    default=st.sampled_from(Effect),
    server=st.sampled_from((*SERVERS, "other")),
    tool=st.sampled_from((*TOOLS, "x")),
    hints=HINT_MAPS,
)
def test_every_decision_names_the_rule_that_produced_it(
    rules: list[Rule], default: Effect, server: str, tool: str, hints: dict[str, bool] | None
) -> None:
    decision = evaluate("cursor", default, rules, server, tool, now=NOW, annotations=hints)

    policy = AgentPolicy("cursor", default, rules)
    assert policy.evaluate(server, tool, now=NOW, annotations=hints) == decision
    assert policy.visible(server, tool, now=NOW, annotations=hints) is (decision.effect is not DENY)
    assert decision.rule_text in decision.reason
    matching = [
        rule
        for rule in rules
        if oracle_matches(rule, server, tool)
        and all(hints is not None and hints.get(name) is value for name, value in (rule.annotations or {}).items())
    ]
    if decision.rule is None:
        assert matching == []
        assert decision.effect is default
    else:
        assert decision.rule in matching
        assert decision.effect is decision.rule.effect
        best = min((rule.rank, -rule.narrowed, STRONGEST_FIRST.index(rule.effect)) for rule in matching)
        assert (decision.rule.rank, -decision.rule.narrowed, STRONGEST_FIRST.index(decision.effect)) == best
        if decision.rule.annotations is not None:
            assert hints is not None  # a tool whose server states no hints is never decided by an annotation rule
            assert hints_text(decision.rule.annotations) in decision.reason


@given(
    rules=st.lists(rule_strategy, max_size=8),
    default=st.sampled_from(Effect),
    server=st.sampled_from((*SERVERS, "other")),
)
def test_every_server_wide_decision_names_a_server_wide_rule(rules: list[Rule], default: Effect, server: str) -> None:
    decision = AgentPolicy("cursor", default, rules).evaluate_server(server, now=NOW)

    assert decision.rule_text in decision.reason
    server_wide = [
        r
        for r in rules
        if r.rank >= Rank.WHOLE_SERVER and fnmatch.fnmatchcase(server, r.server_pattern) and r.annotations is None
    ]
    if decision.rule is None:
        assert server_wide == []
        assert decision.effect is default
    else:
        assert decision.rule in server_wide
        assert decision.effect is decision.rule.effect
        best = min((rule.rank, STRONGEST_FIRST.index(rule.effect)) for rule in server_wide)
        assert (decision.rule.rank, STRONGEST_FIRST.index(decision.effect)) == best


@given(st.text(alphabet="ab_*?[]!", min_size=1, max_size=8))
def test_a_literal_match_means_that_tool_alone_and_ranks_as_an_exact_tool(name: str) -> None:
    rule = Rule(match=literal_match("fs", name), effect=Effect.ALLOW)

    assert rule.rank is Rank.EXACT_TOOL
    assert rule.matches("fs", name)
    assert AgentPolicy("cursor", Effect.DENY, [rule]).evaluate("fs", name, now=NOW).rule == rule
    for other in ("a", "ab", "b_", name + "a", "*", "x" + name):
        if other != name:
            assert not rule.matches("fs", other)
            assert AgentPolicy("cursor", Effect.DENY, [rule]).evaluate("fs", other, now=NOW).effect is Effect.DENY


def test_always_allowing_a_tool_named_with_a_star_does_not_allow_the_tools_it_would_glob() -> None:
    rule = Rule(match=literal_match("fs", "get*"), effect=Effect.ALLOW)

    assert rule.match == "fs/get[*]"
    policy = AgentPolicy("cursor", Effect.ASK, [rule])
    assert policy.evaluate("fs", "get*", now=NOW).effect is Effect.ALLOW
    assert policy.evaluate("fs", "get_secrets", now=NOW).effect is Effect.ASK


narrowed_rule_strategy = st.builds(
    lambda server, tool, effect, annotations, when, expires_in: Rule.model_validate(
        {
            "match": f"{server}/{tool}",
            "effect": effect.value,
            **({"annotations": annotations} if annotations else {}),
            **({"when": {"name": {"glob": when}}} if when else {}),
            **({"expires": datetime.fromtimestamp(NOW + expires_in, UTC)} if expires_in is not None else {}),
        }
    ),
    st.sampled_from(SERVER_PATTERNS),
    st.sampled_from(TOOL_PATTERNS),
    st.sampled_from(Effect),
    st.one_of(st.none(), HINT_MAPS),
    st.one_of(st.none(), st.sampled_from(("*.md", "a*"))),
    st.one_of(st.none(), st.sampled_from((-10.0, 5.0, 50.0))),
)
CALLS = st.tuples(
    st.sampled_from(("fs", "git")),
    st.sampled_from(("read", "write_file")),
    HINT_MAPS,
    st.sampled_from((None, {}, {"name": "notes.md"}, {"name": "a.txt"}, {"name": 3})),
    st.sampled_from((0.0, 1.0, 5.0, 20.0, 60.0)),
)


@given(
    rules=st.lists(narrowed_rule_strategy, max_size=8),
    default=st.sampled_from(Effect),
    calls=st.lists(CALLS, min_size=2, max_size=16),
)
@settings(max_examples=300)
def test_one_policy_deciding_call_after_call_decides_each_as_a_fresh_reading_of_the_rules_would(
    rules: list[Rule],
    default: Effect,
    calls: list[tuple[str, str, dict[str, bool] | None, dict[str, object] | None, float]],
) -> None:
    # The compiled policy keeps decisions that no rule's conditions took part in: whatever the
    # arguments, hints and time of the calls after, it answers as the plain scan of the rules does.
    policy = AgentPolicy("cursor", default, rules)
    for server, tool, hints, arguments, later in sorted(calls, key=lambda call: call[-1]):
        now = NOW + later
        expected = evaluate("cursor", default, rules, server, tool, now=now, arguments=arguments, annotations=hints)
        assert policy.evaluate(server, tool, now=now, arguments=arguments, annotations=hints) == expected


def test_a_decision_the_policy_keeps_ends_with_its_rule_and_never_covers_other_hints_or_arguments() -> None:
    grant = Rule.model_validate(
        {"match": "fs/read", "effect": "allow", "expires": datetime.fromtimestamp(NOW + 5, UTC)}
    )
    marked = Rule.model_validate({"match": "fs/*", "effect": "allow", "annotations": {"readOnlyHint": True}})
    conditional = Rule.model_validate({"match": "fs/write", "effect": "allow", "when": {"name": {"glob": "*.md"}}})
    policy = AgentPolicy("cursor", DENY, [grant, marked, conditional])
    read_only = {"readOnlyHint": True}

    assert policy.evaluate("fs", "read", now=NOW).effect is ALLOW
    assert policy.evaluate("fs", "read", now=NOW + 5).effect is DENY  # the grant expired
    assert policy.evaluate("fs", "read", now=NOW + 6, annotations=read_only).effect is ALLOW
    assert policy.evaluate("fs", "read", now=NOW + 7, annotations=None).effect is DENY
    assert policy.evaluate("fs", "write", now=NOW, arguments={"name": "a.md"}).effect is ALLOW
    assert policy.evaluate("fs", "write", now=NOW, arguments={"name": "a.txt"}).effect is DENY

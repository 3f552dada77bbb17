from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from gateway_core.config import (
    Config,
    ToolsMode,
    add_agent_entry,
    ensure_config,
    load_config,
    parse_config,
    remove_agent_entry,
    secret_references,
    write_config_atomically,
)
from gateway_core.config.checks import policy_warnings
from gateway_core.config.edit import set_agent_rule
from gateway_core.errors import AgentError, ConfigError
from gateway_core.paths import Paths
from gateway_core.policy import Effect, Rule


def write_json(tmp_path: Path, data: Any) -> Path:
    folder = tmp_path / "work"
    folder.mkdir(exist_ok=True)
    path = folder / "config.json"
    path.write_text(json.dumps(data, indent=2))
    return path


def problems_for(tmp_path: Path, data: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(write_json(tmp_path, data))
    return caught.value.problems


def test_a_valid_config_loads_with_defaults_and_keeps_secret_references(tmp_path: Path) -> None:
    path = write_json(
        tmp_path,
        {
            "servers": {
                "github": {"command": "npx", "args": ["-y", "gh"], "env": {"GITHUB_TOKEN": "${secret:GH}"}},
                "remote": {"url": "https://example.com/mcp", "headers": {"Authorization": "Bearer ${secret:R}"}},
            },
            "agents": {"cursor": {"name": "Cursor"}},
        },
    )

    config = load_config(path)

    assert config.servers["github"].env == {"GITHUB_TOKEN": "${secret:GH}"}
    assert config.servers["remote"].transport == "http"
    assert config.agents["cursor"].name == "Cursor"
    assert config.gateway == Config().gateway


def test_invalid_json_is_reported_with_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{\n  "servers": {}\n  "agents": {}\n}\n')

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert caught.value.problems == ["config.json line 3 column 3: not valid JSON: Expecting ',' delimiter"]


def test_unknown_key_lists_the_keys_that_are_expected(tmp_path: Path) -> None:
    problems = problems_for(tmp_path, {"servers": {"github": {"command": "gh", "colour": "red"}}})

    assert problems == [
        "config.json: servers.github.colour: unknown key (expected one of: command, args, env, cwd, url, type, "
        "headers, enabled, prefix, timeout_s, isolation, idle_timeout_s, oauth)"
    ]


def test_misspelt_key_gets_a_suggestion(tmp_path: Path) -> None:
    problems = problems_for(tmp_path, {"servers": {"github": {"command": "gh", "timeout": 5}}})

    assert problems[0].endswith('; did you mean "timeout_s"?')


def test_out_of_range_number_says_what_was_expected_and_found(tmp_path: Path) -> None:
    problems = problems_for(tmp_path, {"servers": {"github": {"command": "gh", "timeout_s": -1}}})

    assert problems == ["config.json: servers.github.timeout_s: expected a number greater than 0, found -1"]


def test_request_bodies_have_no_size_limit_unless_one_is_set(tmp_path: Path) -> None:
    unset = load_config(write_json(tmp_path, {}))
    explicit_none = load_config(write_json(tmp_path, {"gateway": {"max_request_body_mb": None}}))
    set_to_64 = load_config(write_json(tmp_path, {"gateway": {"max_request_body_mb": 64}}))

    assert (unset.gateway.max_request_body_mb, explicit_none.gateway.max_request_body_mb) == (None, None)
    assert set_to_64.gateway.max_request_body_mb == 64
    assert problems_for(tmp_path, {"gateway": {"max_request_body_mb": 0}}) == [
        "config.json: gateway.max_request_body_mb: expected a number greater than 0, found 0"
    ]


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"gateway": {"port": "8080"}}, 'config.json: gateway.port: expected a whole number, found "8080"'),
        (
            {"servers": {"s": {"command": "x", "args": "-v"}}},
            'config.json: servers.s.args: expected a list ([...]), found "-v"',
        ),
        (
            {"servers": {"s": {"command": "x", "enabled": "yes"}}},
            'config.json: servers.s.enabled: expected true or false, found "yes"',
        ),
        (
            {"servers": {"s": {"url": "https://x", "type": "websocket"}}},
            'config.json: servers.s.type: expected one of "stdio", "http" or "sse", found "websocket"',
        ),
        ({"servers": []}, "config.json: servers: expected an object ({...}), found a list"),
        (
            {"agents": {"cursor": {}}},
            "config.json: agents.cursor.name: expected text (a JSON string), found nothing (this key is required)",
        ),
        ([], "config.json: expected a JSON object ({...}) at the top level, found a list"),
    ],
)
def test_wrong_types_say_what_was_expected_and_found(tmp_path: Path, data: Any, problem: str) -> None:
    assert problems_for(tmp_path, data) == [problem]


def test_a_server_with_both_command_and_url_is_refused(tmp_path: Path) -> None:
    problems = problems_for(tmp_path, {"servers": {"gh": {"command": "gh", "url": "https://x"}}})

    assert problems == [
        'config.json: servers.gh: needs exactly one of "command" (a stdio server) or "url" (a remote server), '
        "found both"
    ]


def test_invalid_server_name_and_agent_id_are_refused_precisely(tmp_path: Path) -> None:
    problems = problems_for(
        tmp_path, {"servers": {"my server": {"command": "x"}}, "agents": {"-cursor": {"name": "Cursor"}}}
    )

    rule = 'expected 1 to 48 letters, digits, "_", "." or "-", starting with a letter or digit'
    assert problems == [
        f'config.json: servers["my server"]: "my server" is not a valid server name: {rule}',
        f'config.json: agents.-cursor: "-cursor" is not a valid agent id: {rule}',
    ]


@pytest.mark.parametrize(
    "value", ["${secret:}", "${secrt:GH}", "${secret:two words}", "Bearer ${secret:GH", "${SECRET:GH}"]
)
def test_malformed_secret_reference_is_a_config_error(tmp_path: Path, value: str) -> None:
    problems = problems_for(tmp_path, {"servers": {"gh": {"command": "gh", "env": {"TOKEN": value}}}})

    assert len(problems) == 1
    assert problems[0].startswith(
        "config.json: servers.gh.env.TOKEN: expected a secret reference of the form ${secret:NAME}"
    )


def test_secret_reference_outside_env_and_headers_is_refused(tmp_path: Path) -> None:
    problems = problems_for(tmp_path, {"servers": {"gh": {"command": "gh", "args": ["--token", "${secret:GH}"]}}})

    assert problems == [
        'config.json: servers.gh.args[1]: a ${secret:NAME} reference is only allowed in "env" and "headers" values '
        'and in "oauth.client_secret"'
    ]


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    problems = problems_for(
        tmp_path,
        {"gateway": {"port": -5}, "servers": {"a": {"command": "x", "timeout_s": 0}, "b": {}}, "extra": 1},
    )

    assert len(problems) == 4
    assert all("pydantic" not in p and "http" not in p for p in problems)


def test_an_env_value_of_the_wrong_type_is_not_echoed(tmp_path: Path) -> None:
    problems = problems_for(tmp_path, {"servers": {"gh": {"command": "gh", "env": {"PIN": 123456}}}})

    assert problems == ["config.json: servers.gh.env.PIN: expected text (a JSON string), found a number"]


def test_a_duplicated_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"servers": {"gh": {"command": "a"}, "gh": {"command": "b"}}}')

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert caught.value.problems == ['config.json: key "gh" appears twice in the same object; only one may stay']


def test_a_missing_file_is_one_clear_problem(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "config.json")

    assert caught.value.problems[0].startswith(f"config.json: there is no config file at {tmp_path / 'config.json'}")


def test_secret_references_are_listed_with_their_json_paths(tmp_path: Path) -> None:
    config = load_config(
        write_json(
            tmp_path,
            {"servers": {"r": {"url": "https://x", "headers": {"Authorization": "Bearer ${secret:A} ${secret:B}"}}}},
        )
    )

    refs = secret_references(config)

    assert [(r.server, r.json_path, r.name) for r in refs] == [
        ("r", "servers.r.headers.Authorization", "A"),
        ("r", "servers.r.headers.Authorization", "B"),
    ]


def test_default_config_is_created_once_and_is_valid(toolgate_home: Path) -> None:
    paths = Paths.from_env()

    path, created = ensure_config(paths)
    path.write_text(path.read_text().replace("47800", "47801"))
    again, created_again = ensure_config(paths)

    assert (created, created_again) == (True, False)
    assert again == path == toolgate_home / "config.json"
    config = load_config(path)
    assert (config.servers, config.agents, config.gateway.port) == ({}, {}, 47801)


def test_a_failed_write_keeps_the_previous_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_json(tmp_path, {"servers": {}})
    before = path.read_text()

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(ConfigError) as caught:
        write_config_atomically(path, {"servers": {"new": {"command": "x"}}})

    assert caught.value.problems == [
        f"config.json: cannot write {path}: No space left on device; the file was not changed"
    ]
    assert path.read_text() == before
    assert [p.name for p in path.parent.iterdir()] == ["config.json"]


def test_unserialisable_data_leaves_the_previous_config(tmp_path: Path) -> None:
    path = write_json(tmp_path, {"servers": {}})
    before = path.read_text()

    with pytest.raises(TypeError):
        write_config_atomically(path, {"servers": object()})

    assert path.read_text() == before


def test_adding_and_removing_an_agent_keeps_everything_else_as_it_was(tmp_path: Path) -> None:
    original = {
        "servers": {"gh": {"command": "gh", "env": {"GITHUB_TOKEN": "${secret:GH}"}, "timeout_s": 30}},
        "agents": {"cursor": {"name": "Cursor"}},
        "gateway": {"port": 47999},
    }
    path = write_json(tmp_path, original)

    add_agent_entry(path, "claude", {"name": "Claude Code"})
    after_add = json.loads(path.read_text())
    removed = remove_agent_entry(path, "claude")

    assert after_add == {**original, "agents": {"cursor": {"name": "Cursor"}, "claude": {"name": "Claude Code"}}}
    assert removed is True
    assert json.loads(path.read_text()) == original


def test_adding_an_agent_refuses_a_taken_or_invalid_id(tmp_path: Path) -> None:
    path = write_json(tmp_path, {"agents": {"cursor": {"name": "Cursor"}}})

    with pytest.raises(AgentError, match="already exists"):
        add_agent_entry(path, "cursor", {"name": "again"})
    with pytest.raises(AgentError, match="not a valid agent id"):
        add_agent_entry(path, "has space", {"name": "x"})


def test_removing_an_absent_agent_changes_nothing(tmp_path: Path) -> None:
    path = write_json(tmp_path, {"servers": {}})
    before = path.read_text()

    assert remove_agent_entry(path, "nobody") is False
    assert path.read_text() == before


def test_an_agents_policy_loads_as_rules_and_effects(tmp_path: Path) -> None:
    path = write_json(
        tmp_path,
        {"agents": {"cursor": {"name": "Cursor", "default": "deny", "rules": [{"match": "fs/*", "effect": "allow"}]}}},
    )

    agent = load_config(path).agents["cursor"]

    assert (agent.default, agent.rules) == (Effect.DENY, (Rule(match="fs/*", effect=Effect.ALLOW),))


def test_an_agent_without_a_policy_asks_for_everything(tmp_path: Path) -> None:
    agent = load_config(write_json(tmp_path, {"agents": {"cursor": {"name": "Cursor"}}})).agents["cursor"]

    assert (agent.default, agent.rules) == (Effect.ASK, ())


def test_an_agent_lists_every_tool_unless_it_is_set_to_find_them_on_demand(tmp_path: Path) -> None:
    agents = {
        "cursor": {"name": "Cursor"},
        "claude": {"name": "Claude", "tools": "on_demand", "always_listed": ["time/*", "fs/read_file"]},
    }

    loaded = load_config(write_json(tmp_path, {"agents": agents})).agents

    assert (loaded["cursor"].tools, loaded["cursor"].always_listed) == (ToolsMode.ALL, ())
    assert (loaded["claude"].tools, loaded["claude"].always_listed) == (ToolsMode.ON_DEMAND, ("time/*", "fs/read_file"))


def test_an_unknown_tools_mode_or_a_malformed_always_listed_match_is_an_error_at_its_json_path(tmp_path: Path) -> None:
    agent = {"name": "Cursor", "tools": "some", "always_listed": ["time/*", "time"]}

    problems = problems_for(tmp_path, {"agents": {"cursor": agent}})

    assert problems == [
        'config.json: agents.cursor.tools: expected one of "all" or "on_demand", found "some"',
        'config.json: agents.cursor.always_listed[1]: expected "server/tool" with glob patterns, found "time"',
    ]


@pytest.mark.parametrize(
    ("match", "problem"),
    [
        pytest.param("github", 'found "github"', id="no-slash"),
        pytest.param("github/issues/x", 'found "github/issues/x"', id="two-slashes"),
        pytest.param("github/", 'found "github/": the tool part is empty', id="empty-tool"),
        pytest.param("/x", 'found "/x": the server part is empty', id="empty-server"),
        pytest.param("github/[abc", 'found "github/[abc": the tool part has a "[" with no closing "]"', id="open-set"),
    ],
)
def test_a_malformed_rule_match_is_an_error_at_its_json_path(tmp_path: Path, match: str, problem: str) -> None:
    rules = [
        {"match": "fs/*", "effect": "allow"},
        {"match": "fs/x", "effect": "deny"},
        {"match": match, "effect": "ask"},
    ]

    problems = problems_for(tmp_path, {"agents": {"cursor": {"name": "Cursor", "rules": rules}}})

    assert problems == [
        f'config.json: agents.cursor.rules[2].match: expected "server/tool" with glob patterns, {problem}'
    ]


def test_an_unknown_effect_lists_the_effects(tmp_path: Path) -> None:
    agent = {"name": "Cursor", "default": "block", "rules": [{"match": "fs/*", "effect": "permit"}]}

    problems = problems_for(tmp_path, {"agents": {"cursor": agent}})

    assert problems == [
        'config.json: agents.cursor.default: expected one of "allow", "ask" or "deny", found "block"',
        'config.json: agents.cursor.rules[0].effect: expected one of "allow", "ask" or "deny", found "permit"',
    ]


def test_a_rule_missing_its_match_or_with_an_extra_key_is_explained(tmp_path: Path) -> None:
    rules = [{"effect": "deny"}, {"match": "fs/*", "effect": "deny", "why": "x"}]

    problems = problems_for(tmp_path, {"agents": {"cursor": {"name": "Cursor", "rules": rules}}})

    assert problems == [
        "config.json: agents.cursor.rules[0].match: expected text (a JSON string), "
        "found nothing (this key is required)",
        "config.json: agents.cursor.rules[1].why: unknown key "
        "(expected one of: match, effect, annotations, when, expires, source)",
    ]


def config_with_rules(*rules: tuple[str, str], servers: tuple[str, ...] = ("fs", "github")) -> Config:
    data = {
        "servers": {name: {"command": name} for name in servers},
        "agents": {"cursor": {"name": "Cursor", "rules": [{"match": m, "effect": e} for m, e in rules]}},
    }
    return parse_config(json.dumps(data))


def test_a_policy_without_surprises_has_no_warnings() -> None:
    config = config_with_rules(("github/*", "ask"), ("github/delete_*", "deny"), ("*/read_*", "allow"), ("*/*", "ask"))

    assert policy_warnings(config) == []


@pytest.mark.parametrize(
    ("rules", "servers", "warning"),
    [
        pytest.param(
            [("gihub/*", "allow")],
            ("fs", "github"),
            'agents.cursor.rules[0].match: rule gihub/* → allow matches no configured server; did you mean "github/*"?',
            id="misspelt-server",
        ),
        pytest.param(
            [("slack/post", "deny")],
            ("fs", "github"),
            "agents.cursor.rules[0].match: rule slack/post → deny matches no configured server "
            "(configured: fs, github)",
            id="unknown-server",
        ),
        pytest.param(
            [("x*/*", "deny")],
            ("fs", "github"),
            "agents.cursor.rules[0].match: rule x*/* → deny matches no configured server (configured: fs, github)",
            id="server-glob-matching-nothing",
        ),
        pytest.param(
            [("fs/*", "allow")],
            (),
            "agents.cursor.rules[0].match: rule fs/* → allow matches no configured server (there are none yet)",
            id="no-servers-yet",
        ),
        pytest.param(
            [("fs/*", "allow"), ("github/*", "ask"), ("fs/*", "allow")],
            ("fs", "github"),
            "agents.cursor.rules[2]: rule fs/* → allow repeats rules[0]; remove one",
            id="repeated-rule",
        ),
        pytest.param(
            [("fs/*", "allow"), ("fs/*", "deny")],
            ("fs", "github"),
            "agents.cursor.rules[1]: rule fs/* → deny repeats the match of rules[0] (fs/* → allow); "
            "only the deny rule can decide, so remove the other",
            id="repeated-match-with-another-effect",
        ),
        pytest.param(
            [("github/*", "allow"), ("*/*", "deny"), ("g*/*", "allow")],
            ("fs", "github"),
            "agents.cursor.rules[2]: rule g*/* → allow never decides: rules[1] (*/* → deny) is as specific, "
            "matches every call this one does, and deny wins over allow",
            id="overruled-by-a-wider-stronger-rule",
        ),
    ],
)
def test_policy_warnings_name_the_rule_by_json_path(
    rules: list[tuple[str, str]], servers: tuple[str, ...], warning: str
) -> None:
    assert policy_warnings(config_with_rules(*rules, servers=servers), source="my.json") == [f"my.json: {warning}"]


def rules_in(path: Path, agent_id: str = "cursor") -> list[dict[str, str]]:
    rules: list[dict[str, str]] = json.loads(path.read_text())["agents"][agent_id]["rules"]
    return rules


def test_an_always_answer_puts_its_rule_first_and_keeps_everything_else(tmp_path: Path) -> None:
    original = {
        "gateway": {"port": 47801},
        "servers": {"github": {"command": "gh", "env": {"GITHUB_TOKEN": "${secret:GH}"}}},
        "agents": {
            "cursor": {"name": "Cursor", "default": "ask", "rules": [{"match": "github/*", "effect": "ask"}]},
            "claude": {"name": "Claude", "rules": [{"match": "*/*", "effect": "deny"}]},
        },
    }
    path = write_json(tmp_path, original)

    set_agent_rule(path, "cursor", "github/create_issue", Effect.ALLOW)

    after = json.loads(path.read_text())
    assert after["agents"]["cursor"]["rules"] == [
        {"match": "github/create_issue", "effect": "allow"},
        {"match": "github/*", "effect": "ask"},
    ]
    after["agents"]["cursor"]["rules"].pop(0)
    assert after == original
    assert load_config(path).agents["cursor"].rules[0] == Rule(match="github/create_issue", effect=Effect.ALLOW)


def test_an_always_answer_replaces_the_rule_with_the_same_match(tmp_path: Path) -> None:
    rules = [{"match": "fs/read", "effect": "allow"}, {"match": "fs/write", "effect": "allow"}]
    path = write_json(tmp_path, {"agents": {"cursor": {"name": "Cursor", "rules": rules}}})

    set_agent_rule(path, "cursor", "fs/write", Effect.DENY)

    assert rules_in(path) == [{"match": "fs/read", "effect": "allow"}, {"match": "fs/write", "effect": "deny"}]


def test_an_always_answer_starts_the_rules_of_an_agent_without_any(tmp_path: Path) -> None:
    path = write_json(tmp_path, {"agents": {"cursor": {"name": "Cursor"}}})

    set_agent_rule(path, "cursor", "fs/*", Effect.ASK)

    assert rules_in(path) == [{"match": "fs/*", "effect": "ask"}]


def test_an_always_answer_for_an_unknown_agent_changes_nothing(tmp_path: Path) -> None:
    path = write_json(tmp_path, {"agents": {"cursor": {"name": "Cursor"}}})
    before = path.read_text()

    with pytest.raises(AgentError, match="there is no agent 'ghost'"):
        set_agent_rule(path, "ghost", "fs/*", Effect.ALLOW)

    assert path.read_text() == before


def test_an_always_answer_with_a_malformed_match_changes_nothing(tmp_path: Path) -> None:
    path = write_json(tmp_path, {"agents": {"cursor": {"name": "Cursor"}}})
    before = path.read_text()

    with pytest.raises(ConfigError) as caught:
        set_agent_rule(path, "cursor", "fs/a/b", Effect.ALLOW)

    assert caught.value.problems == [
        'config.json: agents.cursor.rules: expected "server/tool" with glob patterns, found "fs/a/b"'
    ]
    assert path.read_text() == before


def test_a_failed_always_answer_keeps_the_previous_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_json(tmp_path, {"agents": {"cursor": {"name": "Cursor"}}})
    before = path.read_text()

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(ConfigError, match="the file was not changed"):
        set_agent_rule(path, "cursor", "fs/*", Effect.ALLOW)

    assert path.read_text() == before
    assert [p.name for p in path.parent.iterdir()] == ["config.json"]

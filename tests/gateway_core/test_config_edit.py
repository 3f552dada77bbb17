import json

import pytest

from gateway_core.config import ensure_config, load_config
from gateway_core.config.edit import (
    check_server_entry,
    put_back_server,
    put_server,
    remove_server,
    rename_agent,
    set_agent_default,
    set_agent_rule,
    set_gateway_settings,
    set_server_enabled,
    take_server,
)
from gateway_core.errors import AgentError, ConfigError
from gateway_core.paths import Paths
from gateway_core.policy import Effect


@pytest.fixture
def config_path(toolgate_home):
    path, _ = ensure_config(Paths.under(toolgate_home))
    data = json.loads(path.read_text())
    data["servers"] = {
        "a": {"command": "a-server", "env": {"TOKEN": "${secret:a.TOKEN}"}},
        "b": {"url": "http://127.0.0.1:9/mcp"},
    }
    data["agents"] = {"cursor": {"name": "Cursor", "rules": [{"match": "a/*", "effect": "deny"}]}}
    path.write_text(json.dumps(data))
    return path


def test_a_valid_entry_has_no_problems_and_each_bad_field_is_named():
    assert check_server_entry("git", {"command": "uvx", "args": ["mcp-server-git"]}) == {}
    problems = check_server_entry("bad name!", {"url": "ftp://x"})
    assert "name" in problems
    assert "url" in problems.get("", "") + problems.get("url", "")


def test_a_stdio_entry_without_a_command_is_a_problem_of_the_whole_entry():
    problems = check_server_entry("git", {"args": ["x"]})
    assert 'exactly one of "command"' in problems[""]


def test_adding_a_server_keeps_secret_references_and_order(config_path):
    config = put_server(config_path, "c", {"command": "c-server"})
    assert list(config.servers) == ["a", "b", "c"]
    data = json.loads(config_path.read_text())
    assert data["servers"]["a"]["env"]["TOKEN"] == "${secret:a.TOKEN}"


def test_renaming_a_server_keeps_its_place(config_path):
    config = put_server(config_path, "alpha", {"command": "a-server"}, replacing="a")
    assert list(config.servers) == ["alpha", "b"]


def test_a_taken_name_is_refused_and_the_file_is_unchanged(config_path):
    before = config_path.read_bytes()
    with pytest.raises(ConfigError, match="already exists"):
        put_server(config_path, "b", {"command": "x"})
    assert config_path.read_bytes() == before


def test_an_invalid_entry_is_refused_and_the_file_is_unchanged(config_path):
    before = config_path.read_bytes()
    with pytest.raises(ConfigError, match=r"servers\.c"):
        put_server(config_path, "c", {"command": "x", "url": "http://127.0.0.1/"})
    assert config_path.read_bytes() == before


def test_disabling_and_enabling_a_server(config_path):
    assert set_server_enabled(config_path, "a", False).servers["a"].enabled is False
    assert set_server_enabled(config_path, "a", True).servers["a"].enabled is True
    assert "enabled" not in json.loads(config_path.read_text())["servers"]["a"]


def test_removing_a_server_keeps_rules_that_name_it(config_path):
    config = remove_server(config_path, "a")
    assert "a" not in config.servers
    assert config.agents["cursor"].rules[0].match == "a/*"
    with pytest.raises(ConfigError, match="no server 'a'"):
        remove_server(config_path, "a")


def test_setting_a_rule_replaces_in_place_and_none_removes_it(config_path):
    config = set_agent_rule(config_path, "cursor", "a/echo", Effect.ALLOW)
    assert [r.match for r in config.agents["cursor"].rules] == ["a/echo", "a/*"]
    config = set_agent_rule(config_path, "cursor", "a/*", Effect.ASK)
    assert [(r.match, r.effect) for r in config.agents["cursor"].rules] == [
        ("a/echo", Effect.ALLOW),
        ("a/*", Effect.ASK),
    ]
    config = set_agent_rule(config_path, "cursor", "a/echo", None)
    assert [r.match for r in config.agents["cursor"].rules] == ["a/*"]


def test_agent_edits_name_the_missing_agent(config_path):
    with pytest.raises(AgentError, match="no agent 'nobody'"):
        set_agent_default(config_path, "nobody", Effect.ALLOW)
    assert set_agent_default(config_path, "cursor", Effect.DENY).agents["cursor"].default is Effect.DENY
    assert rename_agent(config_path, "cursor", " Cursor IDE ").agents["cursor"].name == "Cursor IDE"
    with pytest.raises(AgentError, match="empty"):
        rename_agent(config_path, "cursor", "  ")


def test_gateway_settings_are_checked_before_they_are_written(config_path):
    before = config_path.read_bytes()
    with pytest.raises(ConfigError, match="port"):
        set_gateway_settings(config_path, port=70000)
    assert config_path.read_bytes() == before
    config = set_gateway_settings(config_path, allowed_origins=["http://localhost:3000"], approval_timeout_s=30)
    assert config.gateway.allowed_origins == ("http://localhost:3000",)
    assert load_config(config_path) == config


def test_a_taken_server_is_put_back_exactly_in_its_place_unless_its_name_was_taken_meanwhile(config_path):
    before = json.loads(config_path.read_text())["servers"]

    config, entry, index = take_server(config_path, "a")
    assert "a" not in config.servers and (entry, index) == (before["a"], 0)
    config = put_back_server(config_path, "a", entry, index)

    assert json.loads(config_path.read_text())["servers"] == before
    assert list(json.loads(config_path.read_text())["servers"]) == ["a", "b"]
    assert "a" in config.servers
    with pytest.raises(ConfigError, match="was added meanwhile"):
        put_back_server(config_path, "a", entry, index)

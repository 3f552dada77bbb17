"""End to end: `toolgate agents allow|ask|deny|unset|default|rules|why` and `toolgate pause|resume` as processes."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import anyio
import pytest

from gateway_core.cli.agent_rules import describe_source
from gateway_core.config import load_config
from gateway_core.events import PausedChanged
from gateway_core.paths import Paths
from gateway_core.policy import Effect, evaluate
from tests.integration.cli_process import toolgate
from tests.integration.harness import START_TIMEOUT_S, agent_client, running_gateway, stdio_fake, text_of, write_config

pytestmark = pytest.mark.anyio


def agent_config(paths: Paths, agent_id: str = "agent-a") -> dict[str, object]:
    return json.loads(paths.config_file.read_text())["agents"][agent_id]  # type: ignore[no-any-return]


async def test_agents_deny_hides_a_tool_from_a_connected_agent_at_once_and_unset_brings_it_back(
    toolgate_home: Path,
) -> None:
    async with running_gateway({"fake": stdio_fake()}) as gw:
        await gw.wait_ready()
        async with agent_client(gw.url, gw.tokens["agent-a"]) as agent:

            async def listed() -> set[str]:
                return {tool.name for tool in (await agent.list_tools()).tools}

            before = await listed()
            denied = await toolgate("agents", "deny", "agent-a", "fake/echo")
            with anyio.fail_after(START_TIMEOUT_S):
                while "fake__echo" in await listed():
                    await gw.gateway.wait_config_settled()
            refused = await agent.call_tool("fake__echo", {"text": "x"})
            unset = await toolgate("agents", "unset", "agent-a", "fake/echo")
            with anyio.fail_after(START_TIMEOUT_S):
                while "fake__echo" not in await listed():
                    await gw.gateway.wait_config_settled()
            again = await agent.call_tool("fake__echo", {"text": "back"})

    assert denied[0] == 0 and unset[0] == 0, (denied, unset)
    assert "fake__echo" in before
    assert refused.is_error
    assert not again.is_error and text_of(again) == "back"
    assert agent_config(gw.paths).get("rules") == []


async def test_agents_allow_ask_deny_write_rules_that_agents_rules_lists_in_order_with_where_they_came_from(
    toolgate_home: Path,
) -> None:
    paths = Paths.from_env(os.environ)
    write_config(paths, {"github": {"command": "x"}}, {"cursor": "Cursor"})

    results = [
        await toolgate("agents", "allow", "cursor", "github"),
        await toolgate("agents", "deny", "cursor", "github/delete_*"),
        await toolgate("agents", "ask", "cursor", "*/write_*"),
        await toolgate("agents", "default", "cursor", "deny"),
    ]
    code, out, err = await toolgate("agents", "rules", "cursor", "--json")
    table_code, table, _ = await toolgate("agents", "rules", "cursor")

    assert [r[0] for r in results] == [0, 0, 0, 0], results
    assert code == 0, err
    assert json.loads(out) == {
        "agent": "cursor",
        "default": "deny",
        "rules": [
            {"match": "*/write_*", "effect": "ask", "source": None},
            {"match": "github/delete_*", "effect": "deny", "source": None},
            {"match": "github/*", "effect": "allow", "source": None},
        ],
    }
    lines = table.splitlines()
    assert table_code == 0 and lines[0].split() == ["MATCH", "EFFECT", "FROM", "ONLY"]
    assert lines[1].split() == ["*/write_*", "ask", "config"]
    assert lines[-1] == "default → deny (where no rule matches)"
    assert all(len(line) <= 80 for line in lines)


async def test_agents_unset_timed_ends_a_timed_grant_now_and_a_plain_unset_says_how_to(toolgate_home: Path) -> None:
    timed = {"match": "fake/echo", "effect": "allow", "expires": "2999-01-01T00:00:00Z"}
    policy = {"agent-a": {"default": "deny", "rules": [timed]}}
    async with running_gateway({"fake": stdio_fake()}, policies=policy) as gw:
        await gw.wait_ready()
        async with agent_client(gw.url, gw.tokens["agent-a"]) as agent:
            allowed = await agent.call_tool("fake__echo", {"text": "x"})
            plain = await toolgate("agents", "unset", "agent-a", "fake/echo")
            ended = await toolgate("agents", "unset", "agent-a", "fake/echo", "--timed")
            with anyio.fail_after(START_TIMEOUT_S):
                while gw.gateway.config.agents["agent-a"].rules:
                    await gw.gateway.wait_config_settled()
            refused = await agent.call_tool("fake__echo", {"text": "x"})
        again = await toolgate("agents", "unset", "agent-a", "fake/echo", "--timed")

    assert not allowed.is_error and refused.is_error
    assert plain[0] == 1 and "timed grant ends now with `toolgate agents unset agent-a fake/echo --timed`" in plain[2]
    assert ended[0] == 0 and "Ended agent 'agent-a''s timed grant for fake/echo now." in ended[2], ended
    assert agent_config(gw.paths).get("rules") == []
    assert again[0] == 1 and "has no timed grant for exactly 'fake/echo'" in again[2]


async def test_agents_rename_changes_the_display_name_only(toolgate_home: Path) -> None:
    paths = Paths.from_env(os.environ)
    write_config(paths, {}, {"cursor": "Cursor"})

    code, _, err = await toolgate("agents", "rename", "cursor", "Cursor (work)")

    assert code == 0, err
    assert agent_config(paths, "cursor") == {"name": "Cursor (work)"}


def test_a_rule_written_by_an_approval_answer_shows_the_answer_and_when_in_the_from_column() -> None:
    assert describe_source(None) == "config"
    assert describe_source({"answer": "a1b2", "at": "2026-12-02T17:00:00Z"}) == "answer a1b2 at 2026-12-02T17:00:00Z"


async def test_agents_why_gives_the_decision_and_sentence_of_evaluate(toolgate_home: Path) -> None:
    paths = Paths.from_env(os.environ)
    write_config(paths, {"github": {"command": "x"}}, {"cursor": "Cursor"})
    await toolgate("agents", "allow", "cursor", "github")
    await toolgate("agents", "deny", "cursor", "github/delete_*")
    agent = load_config(paths.config_file).agents["cursor"]

    code, out, err = await toolgate("agents", "why", "cursor", "github/delete_repo", "--json")
    allowed = await toolgate("agents", "why", "cursor", "github/create_issue")
    by_default = await toolgate("agents", "why", "cursor", "other/tool")

    expected = evaluate("cursor", agent.default, agent.rules, "github", "delete_repo", now=time.time())
    assert code == 0, err
    assert json.loads(out) == {
        "agent": "cursor",
        "server": "github",
        "tool": "delete_repo",
        "effect": "deny",
        "rule": "github/delete_* → deny",
        "reason": expected.reason,
        "annotations": None,
        "held_for_review": False,
    }
    allowing = evaluate("cursor", agent.default, agent.rules, "github", "create_issue", now=time.time())
    assert allowed[1] == f"allow: {allowing.reason}\n"
    assert by_default[1].startswith(f"{Effect.ASK.value}: ") and "default → ask" in by_default[1]
    assert "there is no server 'other'" in by_default[2]


async def test_read_only_allow_and_destructive_ask_from_the_cli_decide_by_the_running_server_s_annotations(
    toolgate_home: Path,
) -> None:
    async with running_gateway({"fake": stdio_fake("--annotated")}) as gw:
        await gw.wait_ready()
        allowed = await toolgate("agents", "allow", "agent-a", "--read-only")
        asked = await toolgate("agents", "ask", "agent-a", "fake", "--destructive")
        await toolgate("agents", "default", "agent-a", "deny")
        code, out, err = await toolgate("agents", "rules", "agent-a", "--json")
        table = (await toolgate("agents", "rules", "agent-a"))[1].splitlines()
        read_only = await toolgate("agents", "why", "agent-a", "fake/echo")
        destructive = await toolgate("agents", "why", "agent-a", "fake/fail", "--json")
        unannotated = await toolgate("agents", "why", "agent-a", "fake/add")
        unset = await toolgate("agents", "unset", "agent-a", "--read-only")
        after = await toolgate("agents", "why", "agent-a", "fake/echo")
    gone = await toolgate("agents", "why", "agent-a", "fake/fail")

    assert allowed[0] == 0 and "*/* → allow for tools marked readOnlyHint=true" in allowed[2], allowed
    assert "a server may misstate them" in allowed[2]
    assert asked[0] == 0 and unset[0] == 0, (asked, unset)
    assert code == 0, err
    assert json.loads(out)["rules"] == [
        {"match": "fake/*", "effect": "ask", "annotations": {"destructiveHint": True}, "source": None},
        {"match": "*/*", "effect": "allow", "annotations": {"readOnlyHint": True}, "source": None},
    ]
    assert table[1].split() == ["fake/*", "ask", "config", "for", "tools", "marked", "destructiveHint=true"]
    assert read_only[1] == (
        "allow: agent 'agent-a' may call fake/echo: rule */* → allow for tools marked readOnlyHint=true\n"
    )
    assert json.loads(destructive[1])["rule"] == "fake/* → ask for tools marked destructiveHint=true"
    assert json.loads(destructive[1])["annotations"] == {"readOnlyHint": False, "destructiveHint": True}
    assert unannotated[1].startswith("deny: ") and "default → deny" in unannotated[1]
    assert after[1].startswith("deny: ")
    assert gone[1].startswith("deny: ") and "no running gateway to ask for the tool's annotations" in gone[2]


async def test_agents_undo_takes_back_an_answer_s_rule_and_puts_back_the_one_it_replaced(toolgate_home: Path) -> None:
    paths = Paths.from_env(os.environ)
    write_config(paths, {"github": {"command": "x"}}, {"cursor": "Cursor"})
    data = json.loads(paths.config_file.read_text())
    data["agents"]["cursor"]["rules"] = [
        {
            "match": "github/delete_repo",
            "effect": "allow",
            "source": {"answer": "3fa2c1", "at": "2026-12-02T17:00:00Z", "replaced": "ask"},
        },
        {"match": "github/*", "effect": "allow"},
    ]
    paths.config_file.write_text(json.dumps(data))

    code, _, err = await toolgate("agents", "undo", "cursor", "3fa2c1")

    assert code == 0, err
    assert "Removed agent 'cursor''s rule github/delete_repo → allow (answer 3fa2c1)." in err
    assert "Put back github/delete_repo → ask." in err
    assert agent_config(paths, "cursor")["rules"] == [
        {"match": "github/delete_repo", "effect": "ask"},
        {"match": "github/*", "effect": "allow"},
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("allow", "nobody", "github"), "there is no agent 'nobody'"),
        (("deny", "cursor", "github/[oops"), 'has a "[" with no closing "]"'),
        (("deny", "cursor", "a/b/c"), 'expected "server/tool"'),
        (("unset", "cursor", "github/never"), "has no rule for exactly 'github/never'"),
        (("why", "cursor", "github"), "expected SERVER/TOOL"),
        (("allow", "cursor"), "or an annotation flag such as --read-only"),
        (("undo", "cursor", "nope"), "has no rule written by answer 'nope'"),
        (("unset", "cursor", "--read-only"), "has no rule for exactly '*/*' for tools marked readOnlyHint=true"),
        (("rules", "nobody"), "there is no agent 'nobody'"),
        (("rename", "cursor", " "), "an agent's name cannot be empty"),
    ],
)
async def test_a_policy_command_that_cannot_be_done_says_why_and_leaves_config_json_as_it_was(
    toolgate_home: Path, args: tuple[str, ...], message: str
) -> None:
    paths = Paths.from_env(os.environ)
    write_config(paths, {"github": {"command": "x"}}, {"cursor": "Cursor"})
    before = paths.config_file.read_text()

    code, out, err = await toolgate("agents", *args)

    assert (code, out) == (1, "") and err.startswith("Error: ") and message in err, err
    assert paths.config_file.read_text() == before


async def test_pause_refuses_calls_in_the_running_gateway_and_resume_lets_them_through(toolgate_home: Path) -> None:
    async with running_gateway({"fake": stdio_fake()}) as gw:
        await gw.wait_ready()
        told: list[bool] = []
        gw.gateway.events.on(PausedChanged, lambda event: told.append(event.paused))
        async with agent_client(gw.url, gw.tokens["agent-a"]) as agent:
            paused = await toolgate("pause")
            again = await toolgate("pause")
            status = json.loads((await toolgate("status", "--json"))[1])
            refused = await agent.call_tool("fake__echo", {"text": "x"})
            resumed = await toolgate("resume")
            allowed = await agent.call_tool("fake__echo", {"text": "x"})

    assert paused[0] == 0 and "Toolgate is paused" in paused[2]
    assert again[0] == 0 and "it already was" in again[2]
    assert status["paused"] is True
    assert refused.is_error and "paused" in text_of(refused)
    assert resumed[0] == 0 and "calls go through" in resumed[2]
    assert not allowed.is_error
    assert told == [True, False]  # what the tray and the window redraw on


async def test_pause_and_resume_with_no_gateway_running_say_so_and_exit_3(toolgate_home: Path) -> None:
    for command in ("pause", "resume"):
        code, _, err = await toolgate(command)
        assert code == 3 and err.startswith("Error: Toolgate is not running"), (command, err)

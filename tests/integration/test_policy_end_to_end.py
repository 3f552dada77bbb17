"""Each agent sees and may call only what the person allowed; ask waits for an answer; all is on record."""

from __future__ import annotations

import json
import sqlite3
import sys
from typing import Any

import anyio
import anyio.lowlevel
import mcp_types as types
import pytest

from gateway_core.approvals import Answer, ApprovalRequested, ApprovalResolved, Outcome
from gateway_core.errors import ErrorCode
from tests.integration.harness import RunningGateway, agent_client, running_gateway, stdio_fake

pytestmark = pytest.mark.anyio

ONLY_ECHO = {"default": "deny", "rules": [{"match": "fake/echo", "effect": "allow"}]}
ASK_FOR_ADD = {"default": "allow", "rules": [{"match": "fake/add", "effect": "ask"}]}


def text_of(result: types.CallToolResult) -> str:
    return " ".join(block.text for block in result.content if isinstance(block, types.TextContent))


async def next_approval(gw: RunningGateway) -> str:
    """Wait for the next approval request and return its id."""
    requested = anyio.Event()
    ids: list[str] = []

    def on_event(event: object) -> None:
        if isinstance(event, ApprovalRequested):
            ids.append(event.request.id)
            requested.set()

    unsubscribe = gw.gateway.events.subscribe(on_event)
    try:
        with anyio.fail_after(20):
            while not ids and not gw.gateway.pending_approvals():
                await requested.wait()
    finally:
        unsubscribe()
    return ids[0] if ids else gw.gateway.pending_approvals()[0].id


async def toolgate_cli(*args: str) -> tuple[int, str, str]:
    done = await anyio.run_process([sys.executable, "-m", "gateway_core.cli", *args], check=False)
    return done.returncode, done.stdout.decode(), done.stderr.decode()


def audit_rows(gw: RunningGateway) -> list[dict[str, Any]]:
    with sqlite3.connect(gw.paths.audit_db) as db:
        db.row_factory = sqlite3.Row
        return [dict(row) for row in db.execute("SELECT * FROM records ORDER BY id")]


async def test_an_agent_sees_only_its_allowed_tools_and_a_denied_call_is_refused_with_the_rule():
    async with running_gateway(
        {"fake": stdio_fake()}, agents=("cursor", "claude"), policies={"cursor": ONLY_ECHO}
    ) as gw:
        await gw.wait_ready()
        async with (
            agent_client(gw.url, gw.tokens["cursor"]) as cursor,
            agent_client(gw.url, gw.tokens["claude"]) as claude,
        ):
            cursor_tools = {t.name for t in (await cursor.list_tools()).tools}
            claude_tools = {t.name for t in (await claude.list_tools()).tools}
            refused = await cursor.call_tool("fake__add", {"a": 1, "b": 2})
            allowed = await cursor.call_tool("fake__echo", {"text": "ok"})

    assert cursor_tools == {"fake__echo"}
    assert "fake__add" in claude_tools
    assert refused.is_error is True
    assert text_of(refused) == "Toolgate: agent 'cursor' may not call fake__add (rule: default → deny)"
    assert refused.meta is not None and refused.meta["io.toolgate/error"]["code"] == ErrorCode.DENIED_BY_POLICY
    assert allowed.structured_content == {"text": "ok"}


async def test_an_ask_call_waits_for_toolgate_approvals_allow_and_then_completes():
    async with running_gateway({"fake": stdio_fake()}, policies={"agent-a": ASK_FOR_ADD}) as gw:
        await gw.wait_ready()
        async with agent_client(gw.url, gw.tokens["agent-a"]) as client:
            results: list[types.CallToolResult] = []
            async with anyio.create_task_group() as tg:

                async def call() -> None:
                    results.append(await client.call_tool("fake__add", {"a": 2, "b": 40}))

                tg.start_soon(call)
                request_id = await next_approval(gw)
                code, listed, _ = await toolgate_cli("approvals", "list", "--json")
                assert not results, "the call completed before anyone answered"
                answered = await toolgate_cli("approvals", "allow", request_id)

    assert code == 0
    pending = [json.loads(line) for line in listed.splitlines()]
    assert [(p["id"], p["agent"], p["server"], p["tool"]) for p in pending] == [(request_id, "agent-a", "fake", "add")]
    assert answered[0] == 0, answered
    assert text_of(results[0]) == "42"


async def test_an_unanswered_ask_times_out_as_a_denial():
    async with running_gateway({"fake": stdio_fake()}, policies={"agent-a": ASK_FOR_ADD}, approval_timeout_s=0.5) as gw:
        await gw.wait_ready()
        async with agent_client(gw.url, gw.tokens["agent-a"]) as client:
            result = await client.call_tool("fake__add", {"a": 1, "b": 1})
    rows = audit_rows(gw)  # after shutdown, which writes every queued outcome

    assert result.is_error is True
    assert "nobody approved fake__add" in text_of(result)
    assert [r["outcome"] for r in rows if r["kind"] == "outcome"] == ["timeout"]


async def test_always_allow_writes_a_rule_that_the_next_call_uses_without_asking():
    async with running_gateway({"fake": stdio_fake()}, policies={"agent-a": ASK_FOR_ADD}) as gw:
        await gw.wait_ready()
        async with agent_client(gw.url, gw.tokens["agent-a"]) as client:
            async with anyio.create_task_group() as tg:
                tg.start_soon(client.call_tool, "fake__add", {"a": 1, "b": 1})
                request_id = await next_approval(gw)
                code, _, err = await toolgate_cli("approvals", "allow", request_id, "--always")
            with anyio.fail_after(10):
                second = await client.call_tool("fake__add", {"a": 2, "b": 2})
        rules = json.loads(gw.paths.config_file.read_text())["agents"]["agent-a"]["rules"]

    assert code == 0, err
    assert text_of(second) == "4"
    assert {
        "match": "fake/add",
        "effect": "allow",
        "source": {"answer": request_id, "at": rules[0]["source"]["at"], "replaced": "ask"},
    } in rules  # the ask rule it overwrote is kept in "replaced", which undoing the answer puts back


async def test_approvals_allow_when_under_answers_once_and_writes_a_rule_the_next_call_inside_the_folder_uses(
    tmp_path,
):
    project = tmp_path / "project"
    project.mkdir()
    ask_echo = {"default": "allow", "rules": [{"match": "fake/echo", "effect": "ask"}]}
    async with running_gateway({"fake": stdio_fake()}, policies={"agent-a": ask_echo}, approval_timeout_s=30) as gw:
        await gw.wait_ready()
        async with agent_client(gw.url, gw.tokens["agent-a"]) as client:
            results: list[types.CallToolResult] = []
            async with anyio.create_task_group() as tg:

                async def call() -> None:
                    results.append(await client.call_tool("fake__echo", {"text": str(project / "a.md")}))

                tg.start_soon(call)
                request_id = await next_approval(gw)
                malformed = await toolgate_cli("approvals", "allow", request_id, "--when-under", "nofolder")
                code, _, err = await toolgate_cli("approvals", "allow", request_id, "--when-under", f"text={project}")
            with anyio.fail_after(10):
                inside = await client.call_tool("fake__echo", {"text": str(project / "b.md")})
        rules = json.loads(gw.paths.config_file.read_text())["agents"]["agent-a"]["rules"]

    assert malformed[0] == 1 and "--when-under takes ARG=FOLDER" in malformed[2]
    assert code == 0, err
    assert f"once, and from now on always when text is under {project}" in err
    assert text_of(results[0]) == str(project / "a.md") and text_of(inside) == str(project / "b.md")
    assert {"match": "fake/echo", "effect": "allow", "when": {"text": {"under": [str(project)]}}} in [
        {key: value for key, value in rule.items() if key != "source"} for rule in rules
    ]


async def test_a_grant_for_a_few_seconds_allows_without_asking_then_expires_mid_session_and_leaves_the_config():
    async with running_gateway({"fake": stdio_fake()}, policies={"agent-a": ASK_FOR_ADD}) as gw:
        await gw.wait_ready()
        config_file = gw.paths.config_file
        async with agent_client(gw.url, gw.tokens["agent-a"]) as client:
            async with anyio.create_task_group() as tg:
                tg.start_soon(client.call_tool, "fake__add", {"a": 1, "b": 1})
                request_id = await next_approval(gw)
                code, _, err = await toolgate_cli("approvals", "allow", request_id, "--for", "5s")
            with anyio.fail_after(10):
                second = await client.call_tool("fake__add", {"a": 2, "b": 2})
            granted = json.loads(config_file.read_text())["agents"]["agent-a"]["rules"]
            with anyio.fail_after(20):
                while len(json.loads(config_file.read_text())["agents"]["agent-a"]["rules"]) > 1:
                    await gw.gateway.wait_config_settled()
            async with anyio.create_task_group() as tg:
                results: list[types.CallToolResult] = []

                async def third() -> None:
                    results.append(await client.call_tool("fake__add", {"a": 3, "b": 3}))

                tg.start_soon(third)
                gw.gateway.answer_approval(await next_approval(gw), Answer.DENY)
        rules_after = json.loads(config_file.read_text())["agents"]["agent-a"]["rules"]
    decided_by = [r["rule"] for r in audit_rows(gw) if r["kind"] == "decision"]

    assert code == 0, err
    assert "and from now until" in err
    assert text_of(second) == "4"
    assert [(r["match"], r["effect"], "expires" in r, r.get("source", {}).get("answer")) for r in granted] == [
        ("fake/add", "allow", True, request_id),
        ("fake/add", "ask", False, None),
    ]
    assert rules_after == [{"match": "fake/add", "effect": "ask"}]
    assert results[0].is_error and "the person denied" in text_of(results[0])
    assert decided_by[0] == decided_by[2] == "fake/add → ask"
    assert decided_by[1].startswith("fake/add → allow until ")


async def watch_resolutions(gw: RunningGateway) -> tuple[list[str], anyio.Event]:
    outcomes: list[str] = []
    resolved = anyio.Event()

    def on_event(event: object) -> None:
        if isinstance(event, ApprovalResolved):
            outcomes.append(event.resolution.outcome.value)
            resolved.set()

    gw.gateway.events.subscribe(on_event)
    return outcomes, resolved


async def test_a_request_whose_agent_cancels_the_call_is_withdrawn_and_recorded():
    async with running_gateway({"fake": stdio_fake()}, policies={"agent-a": ASK_FOR_ADD}) as gw:
        await gw.wait_ready()
        outcomes, resolved = await watch_resolutions(gw)
        async with agent_client(gw.url, gw.tokens["agent-a"]) as client:
            async with anyio.create_task_group() as tg:
                tg.start_soon(client.call_tool, "fake__add", {"a": 1, "b": 1})
                await next_approval(gw)
                tg.cancel_scope.cancel()
            with anyio.fail_after(10):
                await resolved.wait()
    rows = audit_rows(gw)

    assert outcomes == ["withdrawn"]
    assert gw.gateway.pending_approvals() == []
    assert [r["outcome"] for r in rows if r["kind"] == "outcome"] == ["withdrawn"]


async def test_a_request_whose_agent_disconnects_is_withdrawn():
    async with running_gateway({"fake": stdio_fake()}, policies={"agent-a": ASK_FOR_ADD}) as gw:
        await gw.wait_ready()
        outcomes, resolved = await watch_resolutions(gw)
        async with anyio.create_task_group() as tg:

            async def call_then_vanish() -> None:
                async with agent_client(gw.url, gw.tokens["agent-a"]) as client:
                    await client.call_tool("fake__add", {"a": 1, "b": 1})

            tg.start_soon(call_then_vanish)
            await next_approval(gw)
            tg.cancel_scope.cancel()
        with anyio.fail_after(10):
            await resolved.wait()

    assert outcomes == ["withdrawn"]
    assert gw.gateway.pending_approvals() == []


async def test_a_hand_edit_adds_a_server_and_hides_a_tool_for_one_agent_without_a_restart():
    async with running_gateway({"fake": stdio_fake()}, agents=("cursor", "claude")) as gw:
        await gw.wait_ready()
        async with (
            agent_client(gw.url, gw.tokens["cursor"]) as cursor,
            agent_client(gw.url, gw.tokens["claude"]) as claude,
        ):
            before = {t.name for t in (await cursor.list_tools()).tools}
            config = json.loads(gw.paths.config_file.read_text())
            config["servers"]["second"] = stdio_fake()
            config["agents"]["cursor"]["rules"] = [{"match": "fake/add", "effect": "deny"}]
            gw.paths.config_file.write_text(json.dumps(config, indent=2))
            await gw.wait_ready("fake", "second")
            cursor_after = {t.name for t in (await cursor.list_tools()).tools}
            claude_after = {t.name for t in (await claude.list_tools()).tools}

    assert "fake__add" in before and "second__echo" not in before
    assert "second__echo" in cursor_after and "fake__add" not in cursor_after
    assert {"second__echo", "fake__add"} <= claude_after


async def test_a_broken_edit_is_rejected_and_the_running_configuration_keeps_serving():
    async with running_gateway({"fake": stdio_fake()}) as gw:
        await gw.wait_ready()
        gw.paths.config_file.write_text('{"servers": {"fake": {"command": 42}}')
        with anyio.fail_after(20):
            while not gw.gateway.config_problems:
                await gw.gateway.wait_config_settled()
        async with agent_client(gw.url, gw.tokens["agent-a"]) as client:
            still = await client.call_tool("fake__echo", {"text": "still serving"})

    assert "config.json" in "\n".join(gw.gateway.config_problems)
    assert still.structured_content == {"text": "still serving"}


async def test_the_audit_log_holds_decisions_and_outcomes_with_secrets_redacted():
    async with running_gateway({"fake": stdio_fake()}) as gw:
        await gw.wait_ready()
        async with agent_client(gw.url, gw.tokens["agent-a"]) as client:
            await client.call_tool("fake__echo", {"text": "hello", "api_key": "sk-live-1234567890abcdef"})
    rows = audit_rows(gw)

    decision, outcome = rows
    assert (decision["kind"], decision["agent"], decision["server"], decision["tool"]) == (
        "decision",
        "agent-a",
        "fake",
        "echo",
    )
    assert decision["effect"] == "allow" and decision["rule"] == "default → allow"
    assert "hello" in decision["arguments"]
    assert "sk-live" not in json.dumps(rows)
    assert (outcome["kind"], outcome["outcome"], outcome["call_id"]) == ("outcome", "ok", decision["call_id"])
    assert outcome["result_size"] > 0


async def test_a_paused_gateway_refuses_every_call_saying_so_until_resumed():
    async with running_gateway({"fake": stdio_fake()}) as gw:
        await gw.wait_ready()
        async with agent_client(gw.url, gw.tokens["agent-a"]) as client:
            gw.gateway.pause()
            paused = await client.call_tool("fake__echo", {"text": "x"})
            gw.gateway.resume()
            resumed = await client.call_tool("fake__echo", {"text": "y"})

    assert paused.is_error is True
    assert "paused" in text_of(paused)
    assert resumed.structured_content == {"text": "y"}


async def ask_broker_as_in_session(gw: RunningGateway, session: str) -> Outcome:
    """What the broker does for agent-a's fake/add in ``session`` now: allow at once from a grant, or ask (denied).

    The session has ended, so no agent can ask in it any more: only the broker itself can be asked.
    """
    broker = gw.gateway._approvals
    outcome: list[Outcome] = []

    async def request() -> None:
        resolution = await broker.ask(
            agent="agent-a",
            server="fake",
            tool="add",
            public_name="fake__add",
            arguments={},
            rule_text="fake/add → ask",
            reason="test",
            session_id=session,
        )
        outcome.append(resolution.outcome)

    async with anyio.create_task_group() as tg:
        tg.start_soon(request)
        await anyio.lowlevel.checkpoint()
        if not outcome:  # it asks: answer so the task ends
            gw.gateway.answer_approval(await next_approval(gw), Answer.DENY)
    return outcome[0]


async def test_a_path_under_rule_allows_inside_the_folder_and_asks_for_dot_dot_and_symlink_escapes(tmp_path):
    project, outside = tmp_path / "project", tmp_path / "outside"
    project.mkdir()
    outside.mkdir()
    (project / "escape").symlink_to(outside, target_is_directory=True)
    policy = {
        "default": "deny",
        "rules": [
            {"match": "fake/echo", "effect": "ask"},
            {"match": "fake/echo", "effect": "allow", "when": {"text": {"under": [str(project)]}}},
        ],
    }
    asked: list[tuple[str, ...]] = []

    def on_event(event: object) -> None:
        if isinstance(event, ApprovalRequested):
            asked.append(event.request.looked_at)

    async with running_gateway({"fake": stdio_fake()}, policies={"agent-a": policy}, approval_timeout_s=0.3) as gw:
        await gw.wait_ready()
        gw.gateway.events.subscribe(on_event)
        async with agent_client(gw.url, gw.tokens["agent-a"]) as client:
            listed = {tool.name for tool in (await client.list_tools()).tools}
            inside = await client.call_tool("fake__echo", {"text": str(project / "notes.md")})
            dot_dot = await client.call_tool("fake__echo", {"text": f"{project}/../outside/x"})
            through_link = await client.call_tool("fake__echo", {"text": str(project / "escape" / "x")})
            not_text = await client.call_tool("fake__echo", {"text": 5})
    reasons = [r["reason"] for r in audit_rows(gw) if r["kind"] == "decision"]

    assert "fake__echo" in listed and "fake__add" not in listed
    assert text_of(inside) == str(project / "notes.md") and not inside.is_error
    for refused in (dot_dot, through_link):
        assert refused.is_error and "nobody approved fake__echo" in text_of(refused)
    assert not_text.is_error
    assert asked == [("text",)] * 3  # a number cannot be checked against "under": asked, not allowed
    assert reasons[0].endswith(f"rule fake/echo → allow when text is under {project}")
    assert reasons[1].endswith(
        f"rule fake/echo → ask; the call does not meet fake/echo → allow when text is under {project}"
    )


async def test_read_only_tools_are_allowed_and_destructive_ones_asked_about_by_their_annotations():
    policy = {
        "default": "deny",
        "rules": [
            {"match": "*/*", "effect": "allow", "annotations": {"readOnlyHint": True}},
            {"match": "*/*", "effect": "ask", "annotations": {"destructiveHint": True}},
        ],
    }
    async with running_gateway(
        {"fake": stdio_fake("--annotated")}, policies={"agent-a": policy}, approval_timeout_s=0.5
    ) as gw:
        await gw.wait_ready()
        async with agent_client(gw.url, gw.tokens["agent-a"]) as client:
            listed = {t.name for t in (await client.list_tools()).tools}
            read_only = await client.call_tool("fake__echo", {"text": "ok"})
            destructive = await client.call_tool("fake__fail", {})
            unannotated = await client.call_tool("fake__add", {"a": 1, "b": 2})
    reasons = [r["reason"] for r in audit_rows(gw) if r["kind"] == "decision"]

    assert listed == {"fake__echo", "fake__fail"}  # add states no annotations: the default (deny) hides it
    assert text_of(read_only) == "ok"
    assert "nobody approved fake__fail" in text_of(destructive)  # asked, and nobody answered
    assert text_of(unannotated) == "Toolgate: agent 'agent-a' may not call fake__add (rule: default → deny)"
    assert reasons == [
        "agent 'agent-a' may call fake/echo: rule */* → allow for tools marked readOnlyHint=true",
        "agent 'agent-a' must ask before calling fake/fail: rule */* → ask for tools marked destructiveHint=true",
        "agent 'agent-a' may not call fake/add: no rule matches, so the agent's default decides (default → deny)",
    ]


async def test_a_burst_of_a_thousand_calls_is_cut_at_the_agent_s_limit_while_another_agent_is_unaffected():
    policies = {"agent-a": {"limits": {"calls_per_minute": 100}}, "agent-b": {}}
    async with running_gateway({"fake": stdio_fake()}, agents=("agent-a", "agent-b"), policies=policies) as gw:
        await gw.wait_ready()
        results: list[types.CallToolResult] = []
        other: list[types.CallToolResult] = []
        async with (
            agent_client(gw.url, gw.tokens["agent-a"]) as a,
            agent_client(gw.url, gw.tokens["agent-b"]) as b,
        ):

            async def burst(worker: int) -> None:
                for i in range(100):
                    results.append(await a.call_tool("fake__add", {"a": worker, "b": i}))

            async def meanwhile() -> None:
                for i in range(20):
                    other.append(await b.call_tool("fake__add", {"a": i, "b": 1}))

            with anyio.fail_after(240):
                async with anyio.create_task_group() as tg:
                    for worker in range(10):
                        tg.start_soon(burst, worker)
                    tg.start_soon(meanwhile)
    rows = audit_rows(gw)

    limited = [r for r in results if r.is_error]
    assert len(results) == 1000
    assert len(limited) == 900 and all(not r.is_error for r in results if r not in limited)
    assert "agent 'agent-a' has made 100 tool calls in the last minute, its limit" in text_of(limited[0])
    assert "(limits.calls_per_minute = 100); retry in " in text_of(limited[0])
    meta = limited[0].meta["io.toolgate/error"]
    assert (meta["name"], meta["limit"]) == ("TOO_MANY_REQUESTS", "calls_per_minute")
    assert 0 < meta["retry_after_s"] <= 60
    assert [text_of(r) for r in other] == [str(i + 1) for i in range(20)]
    outcomes = [r["outcome"] for r in rows if r["kind"] == "outcome" and r["agent"] == "agent-a"]
    assert outcomes.count("rate_limited") == 900 and outcomes.count("ok") == 100
    assert {r["outcome"] for r in rows if r["kind"] == "outcome" and r["agent"] == "agent-b"} == {"ok"}


async def test_a_burst_to_one_server_is_cut_at_its_limit_while_that_agent_s_other_server_and_other_agents_are_not():
    policies = {"agent-a": {"limits": {"servers": {"fake": {"calls_per_minute": 10}}}}, "agent-b": {}}
    servers = {"fake": stdio_fake(), "other": stdio_fake("--name", "other")}
    async with running_gateway(servers, agents=("agent-a", "agent-b"), policies=policies) as gw:
        await gw.wait_ready()
        burst: list[types.CallToolResult] = []
        elsewhere: list[types.CallToolResult] = []
        other_agent: list[types.CallToolResult] = []
        async with (
            agent_client(gw.url, gw.tokens["agent-a"]) as a,
            agent_client(gw.url, gw.tokens["agent-b"]) as b,
        ):

            async def calls(client: Any, name: str, into: list[types.CallToolResult], count: int) -> None:
                for i in range(count):
                    into.append(await client.call_tool(name, {"a": i, "b": 1}))

            with anyio.fail_after(120):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(calls, a, "fake__add", burst, 30)
                    tg.start_soon(calls, a, "other__add", elsewhere, 20)
                    tg.start_soon(calls, b, "fake__add", other_agent, 20)
    rows = audit_rows(gw)

    limited = [r for r in burst if r.is_error]
    assert len(limited) == 20 and [text_of(r) for r in burst[:10]] == [str(i + 1) for i in range(10)]
    assert text_of(limited[0]).startswith(
        "Toolgate: agent 'agent-a' has made 10 tool calls to server 'fake' in the last minute, its limit for that "
        "server (limits.servers.fake.calls_per_minute = 10); retry in "
    )
    meta = limited[0].meta["io.toolgate/error"]
    assert (meta["limit"], meta["server"]) == ("calls_per_minute", "fake")
    assert [text_of(r) for r in elsewhere] == [str(i + 1) for i in range(20)]
    assert [text_of(r) for r in other_agent] == [str(i + 1) for i in range(20)]
    limited_rows = [r for r in rows if r["kind"] == "outcome" and r["outcome"] == "rate_limited"]
    assert len(limited_rows) == 20
    assert {(r["agent"], r["server"], r["rule"]) for r in limited_rows} == {
        ("agent-a", "fake", "limits.servers.fake.calls_per_minute = 10")
    }


async def test_a_call_over_the_concurrent_limit_is_refused_while_another_waits_for_an_answer():
    policy = {"default": "allow", "rules": [{"match": "fake/add", "effect": "ask"}], "limits": {"concurrent": 1}}
    async with running_gateway({"fake": stdio_fake()}, policies={"agent-a": policy}) as gw:
        await gw.wait_ready()
        async with agent_client(gw.url, gw.tokens["agent-a"]) as client:
            async with anyio.create_task_group() as tg:
                tg.start_soon(client.call_tool, "fake__add", {"a": 1, "b": 1})
                request_id = await next_approval(gw)
                second = await client.call_tool("fake__echo", {"text": "x"})
                gw.gateway.answer_approval(request_id, Answer.ALLOW_ONCE)
            third = await client.call_tool("fake__echo", {"text": "y"})

    assert second.is_error
    assert text_of(second) == (
        "Toolgate: agent 'agent-a' already has 1 tool call in flight, its limit (limits.concurrent = 1); "
        "retry when it has finished"
    )
    assert text_of(third) == "y" and not third.is_error


async def test_an_agent_of_the_2026_era_over_its_limit_gets_the_same_tool_error_with_the_limit_and_when_to_retry():
    policies = {"agent-a": {"limits": {"calls_per_minute": 2}}}
    async with running_gateway({"fake": stdio_fake()}, policies=policies) as gw:
        await gw.wait_ready()
        async with agent_client(gw.url, gw.tokens["agent-a"], mode="2026-07-28") as client:
            with anyio.fail_after(30):
                results = [await client.call_tool("fake__add", {"a": i, "b": 1}) for i in range(3)]
    rows = audit_rows(gw)

    first, second, limited = results
    assert (text_of(first), text_of(second)) == ("1", "2") and not first.is_error and not second.is_error
    assert limited.is_error
    assert text_of(limited).startswith(
        "Toolgate: agent 'agent-a' has made 2 tool calls in the last minute, its limit "
        "(limits.calls_per_minute = 2); retry in "
    )
    meta = limited.meta["io.toolgate/error"]
    assert (meta["name"], meta["limit"]) == ("TOO_MANY_REQUESTS", "calls_per_minute")
    assert 0 < meta["retry_after_s"] <= 60
    assert [r["outcome"] for r in rows if r["kind"] == "outcome"] == ["ok", "ok", "rate_limited"]


async def test_toolgate_logs_verify_finds_a_tampered_audit_database():
    async with running_gateway({"fake": stdio_fake()}, policies={"agent-a": ONLY_ECHO}) as gw:
        await gw.wait_ready()
        async with agent_client(gw.url, gw.tokens["agent-a"]) as client:
            for i in range(3):
                await client.call_tool("fake__echo", {"text": f"call {i}"})
            await client.call_tool("fake__add", {"a": 1, "b": 2})
    intact = await toolgate_cli("logs", "verify")
    denied = next(r for r in audit_rows(gw) if r["kind"] == "decision" and r["effect"] == "deny")
    with sqlite3.connect(gw.paths.audit_db) as db:
        db.execute("UPDATE records SET effect = 'allow', reason = 'allowed' WHERE id = ?", (denied["id"],))
    tampered = await toolgate_cli("logs", "verify")

    assert intact[0] == 0, intact
    assert intact[1].startswith("The audit log is intact: 8 records chained")
    assert tampered[0] == 1
    assert tampered[1] == ""
    assert f"the chain breaks at record {denied['id']}: it was edited" in tampered[2]

"""`toolgate approvals list|allow|deny` answers a running gateway's approvals through its control channel."""

from __future__ import annotations

import argparse
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio
import pytest

from gateway_core.approvals import Answer, ApprovalBroker, ApprovalRequest, Outcome
from gateway_core.audit.summary import redact_arguments
from gateway_core.audit.summary import summarize_arguments as summarize_audit_arguments
from gateway_core.cli.approvals import (
    add_parser,
    allow_approval,
    deny_approval,
    format_age,
    list_approvals,
    summarize_arguments,
)
from gateway_core.control_file import ControlEndpoint, ControlFile, new_control_token
from gateway_core.frontend.control import ControlApp
from gateway_core.paths import Paths
from gateway_core.policy import Effect
from tests.gateway_core.test_control import Approvals, serving

WAIT_S = 5
CLOCK = 1_800_000_000.0
Handler = Callable[[argparse.Namespace, Paths], int]


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="toolgate")
    add_parser(parser.add_subparsers())
    return parser.parse_args(["approvals", *argv])


async def run(argv: list[str]) -> int:
    args = parse(*argv)
    handler: Handler = args.run
    # The handlers block on HTTP; the gateway must keep serving on this loop meanwhile.
    return await anyio.to_thread.run_sync(handler, args, Paths.from_env())


@asynccontextmanager
async def running_gateway(
    always: list[tuple[ApprovalRequest, Effect]] | None = None,
    timed: list[tuple[ApprovalRequest, Effect, float]] | None = None,
) -> AsyncIterator[tuple[Approvals, anyio.abc.TaskGroup]]:
    """A broker served by a real ControlApp, with its control file in TOOLGATE_HOME."""
    record = always if always is not None else []
    broker = ApprovalBroker(
        timeout_s=lambda: 60,
        on_always=lambda request, effect: record.append((request, effect)),
        on_timed=lambda request, effect, until: timed.append((request, effect, until)) if timed is not None else None,
        wall_clock=lambda: CLOCK,
    )
    token = new_control_token()
    approvals = Approvals(broker)
    with anyio.fail_after(WAIT_S):
        async with anyio.create_task_group() as tg, serving(ControlApp(broker, token)) as url:
            with ControlFile(Paths.from_env(), ControlEndpoint(url, token)):
                yield approvals, tg
            tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_list_prints_one_line_per_pending_request_with_secrets_redacted(capsys: pytest.CaptureFixture[str]):
    async with running_gateway() as (approvals, tg):
        first = await approvals.start_call(tg, "create_issue", {"title": "x" * 200, "api_key": "sk-live-123"})
        second = await approvals.start_call(tg, "delete_repo", {"name": "toolgate", "auth": {"password": "hunter2"}})
        code = await run(["list"])

    out = capsys.readouterr().out
    assert code == 0
    header, line1, line2 = out.splitlines()
    assert header.split() == ["ID", "AGENT", "WANTS", "WAITING", "ARGUMENTS"]
    assert all(len(line) <= 80 for line in out.splitlines())
    assert line1.startswith(first.id) and "claude" in line1 and "github/create_issue" in line1
    assert ' s ago  title="xxx' in line1 and line1.endswith("…")  # the arguments give way; --json has them
    assert line2.startswith(second.id) and "github/delete_repo" in line2 and 'name="toolgate"' in line2
    assert "sk-live-123" not in out and "hunter2" not in out


@pytest.mark.anyio
async def test_list_redacts_token_looking_values_under_any_key_as_the_audit_log_does(
    capsys: pytest.CaptureFixture[str],
):
    arguments = {"note": "ghp_0123456789abcdefABCDEF", "nested": [{"header": "Bearer tg_live-secret-value"}]}
    async with running_gateway() as (approvals, tg):
        await approvals.start_call(tg, "create_issue", arguments)
        assert await run(["list"]) == 0
        assert await run(["list", "--json"]) == 0

    out = capsys.readouterr().out
    assert "ghp_0123456789" not in out and "tg_live-secret-value" not in out
    assert json.loads(out.splitlines()[-1])["arguments"] == redact_arguments(arguments)
    assert "ghp_0123456789" not in summarize_audit_arguments(arguments)


@pytest.mark.anyio
async def test_list_json_prints_one_object_per_request_per_line(capsys: pytest.CaptureFixture[str]):
    async with running_gateway() as (approvals, tg):
        first = await approvals.start_call(tg, "create_issue", {"token": "secret-value", "title": "hi"})
        second = await approvals.start_call(tg, "delete_repo", {})
        code = await run(["list", "--json"])

    out = capsys.readouterr().out
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    assert [(r["id"], r["agent"], r["server"], r["tool"]) for r in rows] == [
        (first.id, "claude", "github", "create_issue"),
        (second.id, "claude", "github", "delete_repo"),
    ]
    assert rows[0]["arguments"] == {"token": "[redacted]", "title": "hi"}
    assert "secret-value" not in out


@pytest.mark.anyio
async def test_list_with_nothing_pending_says_so_on_stderr(capsys: pytest.CaptureFixture[str]):
    async with running_gateway():
        code = await run(["list"])

    captured = capsys.readouterr()
    assert code == 0
    assert captured.out == ""
    assert "No approvals are waiting" in captured.err


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("argv", "answer", "outcome"),
    [
        (["allow"], Answer.ALLOW_ONCE, Outcome.ALLOWED),
        (["allow", "--session"], Answer.ALLOW_SESSION, Outcome.ALLOWED),
        (["allow", "--always"], Answer.ALLOW_ALWAYS, Outcome.ALLOWED),
        (["deny"], Answer.DENY, Outcome.DENIED),
        (["deny", "--always"], Answer.DENY_ALWAYS, Outcome.DENIED),
    ],
)
async def test_allow_and_deny_answer_the_waiting_call(
    argv: list[str], answer: Answer, outcome: Outcome, capsys: pytest.CaptureFixture[str]
):
    always: list[tuple[ApprovalRequest, Effect]] = []
    async with running_gateway(always) as (approvals, tg):
        request = await approvals.start_call(tg, "create_issue", {})
        other = await approvals.start_call(tg, "delete_repo", {})
        code = await run([argv[0], request.id, *argv[1:]])
        still_pending = approvals.broker.pending()

    assert code == 0
    resolution = approvals.results["create_issue"]
    assert (resolution.answer, resolution.outcome) == (answer, outcome)
    assert still_pending == [other]
    assert [effect for _, effect in always] == [e for e in [answer.always_effect] if e is not None]
    assert request.id in capsys.readouterr().err


@pytest.mark.anyio
@pytest.mark.parametrize("handler", [allow_approval, deny_approval])
async def test_answering_an_unknown_id_is_one_sentence_and_exit_1(handler: Handler, capsys: pytest.CaptureFixture[str]):
    async with running_gateway():
        args = argparse.Namespace(request_id="nope42", always=False, session=False)
        code = await anyio.to_thread.run_sync(handler, args, Paths.from_env())

    captured = capsys.readouterr()
    assert code == 1
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert "no pending approval with id 'nope42'" in captured.err


@pytest.mark.parametrize(
    ("handler", "args"),
    [
        (list_approvals, argparse.Namespace(json=False)),
        (allow_approval, argparse.Namespace(request_id="abc123", always=False, session=False)),
        (deny_approval, argparse.Namespace(request_id="abc123", always=True)),
    ],
)
def test_without_a_running_gateway_each_command_says_how_to_start_it(
    handler: Handler, args: argparse.Namespace, capsys: pytest.CaptureFixture[str]
):
    code = handler(args, Paths.from_env())

    captured = capsys.readouterr()
    assert code == 1
    assert captured.out == ""
    assert "Toolgate is not running" in captured.err and "toolgate serve" in captured.err
    assert captured.err.count("\n") == 1


def test_the_parser_offers_list_allow_and_deny():
    assert parse("list").run is list_approvals and parse("list", "--json").json
    allow = parse("allow", "abc123", "--always")
    assert allow.run is allow_approval and allow.request_id == "abc123" and allow.always and not allow.session
    assert parse("deny", "abc123").run is deny_approval


def test_allow_always_and_session_cannot_be_combined(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit):
        parse("allow", "abc123", "--always", "--session")

    assert "not allowed with argument" in capsys.readouterr().err


def test_the_argument_summary_is_one_printable_line():
    summary = summarize_arguments({"path": "/tmp/\x1b[31mred\nline", "password": "p", "n": 3})

    assert "\x1b" not in summary and "\n" not in summary
    assert "password=[redacted]" in summary and "n=3" in summary
    assert summarize_arguments({}) == "-"


@pytest.mark.parametrize(
    ("age", "text"),
    [(0.4, "0 s ago"), (12.9, "12 s ago"), (125, "2 min ago"), (7300, "2 h ago"), (None, "?"), (True, "?")],
)
def test_ages_read_as_time_ago(age: object, text: str):
    assert format_age(age) == text


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("argv", "answer", "effect", "for_s"),
    [
        (["allow", "--for", "90s"], Answer.ALLOW_FOR, Effect.ALLOW, 90),
        (["allow", "--for", "15m"], Answer.ALLOW_FOR, Effect.ALLOW, 900),
        (["deny", "--for", "1h"], Answer.DENY_FOR, Effect.DENY, 3600),
    ],
)
async def test_allow_or_deny_for_a_while_writes_a_rule_that_expires(
    argv: list[str], answer: Answer, effect: Effect, for_s: float, capsys: pytest.CaptureFixture[str]
):
    timed: list[tuple[ApprovalRequest, Effect, float]] = []
    async with running_gateway(timed=timed) as (approvals, tg):
        request = await approvals.start_call(tg, "create_issue", {})
        code = await run([argv[0], request.id, *argv[1:]])

    assert code == 0
    assert approvals.results["create_issue"].answer is answer
    assert timed == [(request, effect, CLOCK + for_s)]
    assert "and from now until" in capsys.readouterr().err


@pytest.mark.anyio
async def test_a_duration_that_cannot_be_read_answers_nothing(capsys: pytest.CaptureFixture[str]):
    async with running_gateway() as (approvals, tg):
        request = await approvals.start_call(tg, "create_issue", {})
        code = await run(["allow", request.id, "--for", "15 minutes"])
        still_pending = approvals.broker.pending()

    assert code == 1
    assert still_pending == [request]
    assert "'15 minutes' is not a duration; write e.g. 90s, 15m, 1h" in capsys.readouterr().err


def test_a_timed_answer_cannot_be_combined_with_always_or_session(capsys: pytest.CaptureFixture[str]):
    for argv in (["allow", "abc123", "--for", "1h", "--always"], ["deny", "abc123", "--for", "1h", "--always"]):
        with pytest.raises(SystemExit):
            parse(*argv)

    assert "not allowed with argument" in capsys.readouterr().err

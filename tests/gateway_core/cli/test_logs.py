from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import textwrap
from pathlib import Path

import anyio
import pytest

from gateway_core.audit import AuditLog
from gateway_core.cli.logs import add_parser, run_logs
from gateway_core.paths import Paths

REPO_ROOT = Path(__file__).resolve().parents[3]


def logs(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="toolgate")
    add_parser(parser.add_subparsers())
    args = parser.parse_args(["logs", *argv])
    result: int = args.run(args, Paths.from_env())
    return result


async def write_calls(*agents: str) -> None:
    log = AuditLog(Paths.from_env().audit_db)
    async with anyio.create_task_group() as tg:
        await tg.start(log.run)
        for i, agent in enumerate(agents):
            await log.record_decision(
                call_id=f"c{i}",
                agent=agent,
                server="github",
                tool="create_issue",
                effect="allow",
                rule="github/* → allow",
                reason="github/* allows it",
                arguments={"title": f"issue {i}", "api_key": "k"},
            )
            log.record_outcome(
                call_id=f"c{i}", agent=agent, server="github", tool="create_issue", outcome="ok", latency_s=0.042
            )
        tg.cancel_scope.cancel()


def test_logs_without_an_audit_log_says_when_it_is_created_and_succeeds(capsys: pytest.CaptureFixture[str]) -> None:
    assert logs() == 0

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"no audit log yet at {Paths.from_env().audit_db}; it is created when `toolgate serve` starts\n"
    )


def test_the_logs_handler_is_dispatched_like_the_other_commands() -> None:
    parser = argparse.ArgumentParser(prog="toolgate")
    add_parser(parser.add_subparsers())

    assert parser.parse_args(["logs"]).run is run_logs


@pytest.mark.anyio
async def test_logs_json_prints_one_json_object_per_record_oldest_first(capsys: pytest.CaptureFixture[str]) -> None:
    await write_calls("cursor", "claude")

    assert logs("--json") == 0

    lines = capsys.readouterr().out.splitlines()
    records = [json.loads(line) for line in lines]
    assert [(r["call_id"], r["kind"], r["agent"]) for r in records] == [
        ("c0", "decision", "cursor"),
        ("c0", "outcome", "cursor"),
        ("c1", "decision", "claude"),
        ("c1", "outcome", "claude"),
    ]
    assert records[0]["arguments"] == '{"title": "issue 0", "api_key": "[redacted]"}'
    assert records[1]["outcome"] == "ok"


@pytest.mark.anyio
async def test_logs_filters_and_shows_only_the_last_n_records(capsys: pytest.CaptureFixture[str]) -> None:
    await write_calls("cursor", "claude", "cursor")

    assert logs("--json", "--agent", "cursor", "--limit", "3") == 0

    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["call_id"], r["kind"]) for r in records] == [("c0", "outcome"), ("c2", "decision"), ("c2", "outcome")]


@pytest.mark.anyio
async def test_logs_wide_prints_a_table_with_result_latency_rule_and_arguments(
    capsys: pytest.CaptureFixture[str],
) -> None:
    await write_calls("cursor")

    assert logs("--wide") == 0

    header, decision, outcome = capsys.readouterr().out.splitlines()
    assert header.split() == ["TIME", "AGENT", "SERVER/TOOL", "RESULT", "LATENCY", "RULE", "ARGUMENTS"]
    assert "cursor" in decision and "github/create_issue" in decision and "allow" in decision
    assert "github/* → allow" in decision and '"api_key": "[redacted]"' in decision
    assert " ok " in outcome and "42 ms" in outcome


@pytest.mark.anyio
async def test_logs_table_fits_80_columns_shortening_only_the_rule_never_a_name(
    capsys: pytest.CaptureFixture[str],
) -> None:
    agent = "agent-with-a-long-id"
    await write_calls(agent)

    assert logs() == 0

    header, decision, outcome = capsys.readouterr().out.splitlines()
    assert header.split() == ["TIME", "AGENT", "SERVER/TOOL", "RESULT", "LATENCY", "RULE"]
    assert f" {agent}  github/create_issue  allow " in decision and decision.endswith("…")
    assert all(len(line) <= 80 for line in (header, decision, outcome)), (header, decision)
    assert "api_key" not in decision


_FOLLOWER = textwrap.dedent(
    """
    import argparse
    from gateway_core.cli.logs import add_parser
    from gateway_core.paths import Paths

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    args = parser.parse_args(["logs", "--follow", "--json"])
    raise SystemExit(args.run(args, Paths.from_env()))
    """
)


@pytest.mark.skipif(os.name == "nt", reason="sends SIGINT")
@pytest.mark.anyio
async def test_logs_follow_prints_new_records_as_they_come_and_ctrl_c_exits_zero() -> None:
    await write_calls("cursor")
    received = b""

    async def lines_until(count: int) -> list[str]:
        nonlocal received
        while received.count(b"\n") < count:
            received += await process.stdout.receive()  # type: ignore[union-attr]
        return received.decode().splitlines()

    async with await anyio.open_process([sys.executable, "-c", _FOLLOWER], cwd=REPO_ROOT) as process:
        try:
            with anyio.fail_after(20):
                assert len(await lines_until(2)) == 2
                await write_calls("claude")
                new = [json.loads(line) for line in (await lines_until(4))[2:]]
                process.send_signal(signal.SIGINT)
                assert await process.wait() == 0
        finally:
            if process.returncode is None:  # failed or timed out: the follower never ends by itself
                process.kill()

    assert [(r["agent"], r["kind"]) for r in new] == [("claude", "decision"), ("claude", "outcome")]

"""`toolgate tools` and `toolgate prompts` show a running gateway's public names: server, own name, why they differ."""

from __future__ import annotations

import dataclasses
import itertools
import json

import anyio
import pytest

from gateway_core.cli import main
from gateway_core.cli.control_client import ControlClient
from gateway_core.control_file import ControlError, read_control_file
from tests.integration.harness import RunningGateway, agent_client, running_gateway, stdio_fake

WAIT_S = 30
ECHO_CLASH = 'tool "echo" of "alpha" already has that name: a hash was added'
FORBIDDEN = 'characters the MCP spec does not allow in names (" ") became "_"'


async def toolgate(*argv: str) -> int:
    # The command blocks on HTTP; the gateway must keep serving on this loop meanwhile.
    return await anyio.to_thread.run_sync(main, list(argv))


async def add_tool(gw: RunningGateway, public_name: str, name: str) -> None:
    """Have the fake behind ``public_name`` register tool ``name``, and wait until it is routed."""
    async with agent_client(gw.url, gw.tokens["agent-a"]) as client:
        await client.call_tool(public_name, {"name": name})
    with anyio.fail_after(WAIT_S):
        while not any(route.upstream_name == name for route in gw.gateway.routes.tools.values()):
            await gw.gateway.wait_routes_rebuilt()


def table(out: str) -> dict[str, list[str]]:
    """The table's rows by public name, each split into its columns (a WHY that goes on in more lines joined)."""
    header, *lines = out.splitlines()
    assert all(len(line) <= 80 for line in (header, *lines)), out
    starts = [header.index(title) for title in ("SERVER", "SERVER CALLS IT", "WHY")]
    cut = [0, *starts, None]
    rows: dict[str, list[str]] = {}
    last: list[str] = []
    for line in lines:
        if not line[: starts[-1]].strip():  # the WHY of the row above, going on
            last[3] = f"{last[3]} {line.strip()}"
            continue
        last = [line[a:b].strip() for a, b in itertools.pairwise(cut)]
        rows[last[0]] = last
    return rows


@pytest.mark.anyio
async def test_tools_shows_each_public_name_with_its_server_its_own_name_and_why_they_differ(
    capsys: pytest.CaptureFixture[str],
):
    servers = {"gh": stdio_fake(prefix="gh__"), "alpha": stdio_fake(prefix=""), "zeta": stdio_fake(prefix="")}
    async with running_gateway(servers) as gw:
        await gw.wait_ready()
        await add_tool(gw, "add_tool", "create issue")
        code = await toolgate("tools")

    out = capsys.readouterr().out
    rows = table(out)
    assert code == 0
    assert out.splitlines()[0].split() == ["NAME", "SERVER", "SERVER", "CALLS", "IT", "WHY"]
    assert rows["gh__echo"] == ["gh__echo", "gh", "echo", 'prefix "gh__"']
    assert rows["echo"] == ["echo", "alpha", "-", "-"]
    assert rows["create_issue"] == ["create_issue", "alpha", "create issue", FORBIDDEN]
    (clashing,) = [row for name, row in rows.items() if row[1] == "zeta" and row[2] == "echo"]
    assert clashing[0].startswith("echo_") and clashing[3] == ECHO_CLASH


@pytest.mark.anyio
async def test_tools_json_for_one_server_prints_one_object_per_tool(capsys: pytest.CaptureFixture[str]):
    async with running_gateway({"gh": stdio_fake(prefix="gh__"), "other": stdio_fake()}) as gw:
        await gw.wait_ready()
        code = await toolgate("tools", "--server", "gh", "--json")

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0
    assert {line["server"] for line in lines} == {"gh"}
    assert {
        "kind": "tool",
        "name": "gh__echo",
        "server": "gh",
        "upstream_name": "echo",
        "renamed": ["prefix"],
        "reason": 'prefix "gh__"',
    } in lines


@pytest.mark.anyio
async def test_with_an_agent_only_what_its_policy_lets_it_see_is_listed(capsys: pytest.CaptureFixture[str]):
    policies = {"agent-b": {"default": "deny", "rules": [{"match": "gh/echo", "effect": "ask"}]}}
    async with running_gateway({"gh": stdio_fake()}, agents=("agent-a", "agent-b"), policies=policies) as gw:
        await gw.wait_ready()
        assert await toolgate("tools", "--agent", "agent-b", "--json") == 0
        everything = capsys.readouterr().out
        assert await toolgate("prompts", "--agent", "agent-a", "--json") == 0
        prompts = capsys.readouterr().out
        assert await toolgate("prompts", "--agent", "agent-b") == 0
        hidden = capsys.readouterr()

    assert [json.loads(line)["name"] for line in everything.splitlines()] == ["gh__echo"]
    assert [json.loads(line)["name"] for line in prompts.splitlines()] == ["gh__greet"]
    assert hidden.out == "" and hidden.err == "No prompts are listed to agent 'agent-b'.\n"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["tools", "--agent", "nobody"], "Error: there is no agent 'nobody'; `toolgate agents list` shows the agents"),
        (["prompts", "--server", "nowhere"], "Error: there is no server 'nowhere'"),
    ],
)
async def test_an_unknown_agent_or_server_is_one_error_sentence_and_exit_1(
    argv: list[str], error: str, capsys: pytest.CaptureFixture[str]
):
    async with running_gateway({"gh": stdio_fake()}) as gw:
        await gw.wait_ready()
        code = await toolgate(*argv)

    captured = capsys.readouterr()
    assert code == 1 and captured.out == ""
    assert captured.err.startswith(error) and captured.err.count("\n") == 1


@pytest.mark.anyio
async def test_a_server_that_is_not_ready_is_named_on_stderr_with_its_reason(capsys: pytest.CaptureFixture[str]):
    servers = {"gh": stdio_fake(), "off": stdio_fake(enabled=False)}
    async with running_gateway(servers) as gw:
        await gw.wait_ready("gh")
        code = await toolgate("tools", "--server", "off")

    captured = capsys.readouterr()
    assert code == 0 and captured.out == ""
    assert captured.err.splitlines() == [
        "Server 'off' is not ready (stopped: disabled): its tools are not listed.",
        "No tools are listed from server 'off'.",
    ]


@pytest.mark.anyio
async def test_the_names_are_refused_without_the_control_token():
    async with running_gateway({"gh": stdio_fake()}) as gw:
        await gw.wait_ready()
        endpoint = read_control_file(gw.paths)
        stranger = ControlClient(dataclasses.replace(endpoint, token="not-the-token"))
        with pytest.raises(ControlError, match="refused the control token"):
            await anyio.to_thread.run_sync(stranger.names)


def test_without_a_running_gateway_it_says_how_to_start_it(capsys: pytest.CaptureFixture[str]):
    code = main(["tools"])

    captured = capsys.readouterr()
    assert code == 1 and captured.out == ""
    assert "Toolgate is not running" in captured.err and "toolgate serve" in captured.err

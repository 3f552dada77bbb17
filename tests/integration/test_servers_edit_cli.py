"""End to end: `toolgate servers add|remove|logs` as real processes, against a running gateway and none."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import anyio
import mcp_types as types
import pytest

from gateway_core.paths import Paths
from gateway_core.secrets import open_secret_store
from tests.fakes.launch import fake_command
from tests.integration.cli_process import json_lines, toolgate
from tests.integration.harness import START_TIMEOUT_S, agent_client, running_gateway, stdio_fake, write_config

pytestmark = pytest.mark.anyio

# A stdio "server" that only says on stderr whether its API_TOKEN arrived (never the value itself).
TELLS_TOKEN = "import os, sys; print('token', os.environ.get('API_TOKEN', '')[::-1] == 'eulav-terc3s', file=sys.stderr)"


async def test_servers_add_reaches_a_connected_agents_tools_list_without_a_restart(toolgate_home: Path) -> None:
    async with running_gateway({"fake": stdio_fake()}) as gw:
        await gw.wait_ready()
        changed = anyio.Event()

        async def on_message(message: object) -> None:
            if isinstance(message, types.ToolListChangedNotification):
                changed.set()

        async with agent_client(gw.url, gw.tokens["agent-a"], message_handler=on_message) as agent:
            before = {tool.name for tool in (await agent.list_tools()).tools}
            command, args = fake_command("--name", "more")
            code, out, err = await toolgate("servers", "add", "more", "--", command, *args)
            with anyio.fail_after(START_TIMEOUT_S):
                while "more__echo" not in (after := {tool.name for tool in (await agent.list_tools()).tools}):
                    await changed.wait()
                    changed = anyio.Event()
            echoed = await agent.call_tool("more__echo", {"text": "hi"})

    assert code == 0 and out == "", err
    assert "Added server 'more'" in err and "The running gateway applied it" in err
    assert "more__echo" not in before and before < after
    assert not echoed.is_error
    assert json.loads(gw.paths.config_file.read_text())["servers"]["more"] == {"command": command, "args": args}


async def test_servers_add_secret_env_reads_stdin_stores_the_value_and_config_json_holds_only_the_reference(
    toolgate_home: Path,
) -> None:
    async with running_gateway({}) as gw:
        code, _, err = await toolgate(
            "servers", "add", "tells", "--secret-env", "API_TOKEN", "--", sys.executable, "-c", TELLS_TOKEN,
            stdin="s3cret-value\n",
        )  # fmt: skip
        await gw.stderr.wait_for("tells", "token True")
        logs_code, logs, _ = await toolgate("servers", "logs", "tells")

    config_text = gw.paths.config_file.read_text()
    assert code == 0, err
    assert json.loads(config_text)["servers"]["tells"]["env"] == {"API_TOKEN": "${secret:tells.API_TOKEN}"}
    assert "s3cret-value" not in config_text and "s3cret-value" not in err
    assert open_secret_store(gw.paths).get("tells.API_TOKEN") == "s3cret-value"
    assert logs_code == 0 and "token True" in logs.splitlines()


async def test_servers_add_url_with_a_secret_header_and_plain_headers(toolgate_home: Path) -> None:
    paths = Paths.from_env(os.environ)
    write_config(paths, {}, {})

    code, _, err = await toolgate(
        "servers", "add", "remote", "--url", "https://mcp.example.test/mcp", "--header", "X-Team=tools",
        "--secret-header", "Authorization", stdin="Bearer abc123\n",
    )  # fmt: skip
    sse_code, _, sse_err = await toolgate("servers", "add", "old", "--url", "https://mcp.example.test/sse", "--sse")
    listed = await json_lines("servers", "list", "--json")

    servers = json.loads(paths.config_file.read_text())["servers"]
    assert code == 0 and sse_code == 0, (err, sse_err)
    assert servers["remote"] == {
        "url": "https://mcp.example.test/mcp",
        "headers": {"X-Team": "tools", "Authorization": "${secret:remote.Authorization}"},
    }
    assert servers["old"] == {"url": "https://mcp.example.test/sse", "type": "sse"}
    assert open_secret_store(paths).get("remote.Authorization") == "Bearer abc123"
    assert [(s["name"], s["transport"], s["state"]) for s in listed] == [
        ("remote", "http", "not running"),
        ("old", "sse", "not running"),
    ]


async def test_servers_add_json_takes_a_readme_mcpservers_entry_and_moves_a_token_to_the_secret_store(
    toolgate_home: Path,
) -> None:
    command, args = fake_command()
    pasted = {"command": command, "args": args, "env": {"GITHUB_TOKEN": "ghp_x1", "A": "1"}, "alwaysAllow": ["x"]}
    readme = {"mcpServers": {"github": {**pasted, "timeout_s": 30}}}
    async with running_gateway({}) as gw:
        code, _, err = await toolgate("servers", "add", "gh", "--json", json.dumps(readme))
        await gw.wait_ready("gh")

    assert code == 0, err
    assert "GITHUB_TOKEN looks like a secret" in err
    assert "left out what Toolgate does not use: alwaysAllow" in err
    entry = json.loads(gw.paths.config_file.read_text())["servers"]["gh"]
    env = {"GITHUB_TOKEN": "${secret:gh.GITHUB_TOKEN}", "A": "1"}
    assert entry == {"command": command, "args": args, "env": env, "timeout_s": 30}
    assert open_secret_store(gw.paths).get("gh.GITHUB_TOKEN") == "ghp_x1"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("taken", "--", "x"), "a server named 'taken' already exists"),
        (("new",), "give the server one way"),
        (("new", "--url", "https://a.test/mcp", "--", "x"), "found -- COMMAND and --url"),
        (("new", "--header", "A=1", "--", "x"), "--header and --secret-header are for remote servers"),
        (("new", "--url", "ftp://a.test"), '"url" must start with http:// or https://'),
        (("new", "--json", "{not json"), "--json: not JSON"),
        (("new", "--json", '{"a": 1, "b": 2}'), "--json: expected one server entry"),
        (("new", "--env", "NOEQUALS", "--", "x"), "--env takes KEY=VALUE"),
        (("bad name!", "--", "x"), "server name"),
        (("new", "--secret-env", "API_KEY", "--", "x"), "no value given"),
    ],
)
async def test_a_servers_add_that_cannot_be_done_says_why_and_leaves_config_and_secrets_as_they_were(
    toolgate_home: Path, args: tuple[str, ...], message: str
) -> None:
    paths = Paths.from_env(os.environ)
    write_config(paths, {"taken": {"command": "x"}}, {})
    before = paths.config_file.read_text()

    code, out, err = await toolgate("servers", "add", *args)

    assert (code, out) == (1, ""), err
    assert err.startswith("Error: ") and message in err, err
    assert paths.config_file.read_text() == before
    assert not (paths.home / "secrets.json").exists() or "new" not in (paths.home / "secrets.json").read_text()


async def test_arguments_after_double_dash_are_refused_where_no_command_is_taken(toolgate_home: Path) -> None:
    code, _, err = await toolgate("servers", "list", "--", "x")

    assert code == 2 and "unexpected arguments after --: x" in err


async def test_servers_remove_stops_the_server_in_the_running_gateway_and_names_the_secrets_it_leaves(
    toolgate_home: Path,
) -> None:
    secret_entry = stdio_fake(env={"API_KEY": "${secret:gone.API_KEY}"})
    async with running_gateway({"fake": stdio_fake(), "gone": secret_entry}) as gw:
        open_secret_store(gw.paths).set("gone.API_KEY", "k")
        await gw.wait_ready("fake")
        code, _, err = await toolgate("servers", "remove", "gone")
        with anyio.fail_after(START_TIMEOUT_S):
            while any(s.name == "gone" for s in gw.gateway.statuses()):
                await gw.gateway.wait_config_settled()
        unknown = await toolgate("servers", "remove", "gone")

    assert code == 0, err
    assert "Removed server 'gone'" in err and "gone.API_KEY" in err
    assert list(json.loads(gw.paths.config_file.read_text())["servers"]) == ["fake"]
    assert unknown[0] == 1 and unknown[2].startswith("Error: ") and "there is no server 'gone'" in unknown[2]


async def test_servers_logs_prints_the_stderr_tail_and_follow_prints_new_lines(toolgate_home: Path) -> None:
    async with running_gateway({"fake": stdio_fake()}) as gw:
        await gw.wait_ready()
        async with agent_client(gw.url, gw.tokens["agent-a"]) as agent:
            await agent.call_tool("fake__stderr", {"text": "first line"})
            await gw.stderr.wait_for("fake", "first line")
            code, tail, err = await toolgate("servers", "logs", "fake")
            unknown = await toolgate("servers", "logs", "nope")
            async with await anyio.open_process(
                [sys.executable, "-m", "gateway_core.cli", "servers", "logs", "fake", "--follow"], env=dict(os.environ)
            ) as follower:
                assert follower.stdout is not None
                seen = ""
                with anyio.fail_after(START_TIMEOUT_S):
                    while "first line" not in seen:
                        seen += (await follower.stdout.receive()).decode()
                    await agent.call_tool("fake__stderr", {"text": "second line"})
                    while "second line" not in seen:
                        seen += (await follower.stdout.receive()).decode()
                follower.terminate()

    assert code == 0, err
    assert tail.splitlines()[-1] == "first line"
    assert unknown[0] == 1 and "there is no enabled server 'nope'" in unknown[2]
    assert seen.count("first line") == 1 and seen.rstrip("\n").endswith("second line")


async def test_servers_add_with_no_gateway_running_writes_config_json_only(toolgate_home: Path) -> None:
    command, args = fake_command()

    code, _, err = await toolgate("servers", "add", "fake", "--", command, *args)
    listed = await json_lines("servers", "list", "--json")

    assert code == 0, err
    assert "running gateway" not in err
    assert [(s["name"], s["state"], s["command"]) for s in listed] == [("fake", "not running", command)]

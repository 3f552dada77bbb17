"""End to end: `toolgate servers edit` as a real process, against a running gateway and with none."""

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
from tests.fakes.launch import FAKE_SERVER
from tests.integration.cli_process import json_lines, toolgate
from tests.integration.harness import START_TIMEOUT_S, agent_client, running_gateway, stdio_fake, write_config

pytestmark = pytest.mark.anyio

# The fake server, saying first on stderr which API_TOKEN it started with (a test value, reversed).
TELLS_TOKEN = (
    "import os, runpy, sys; print('token', os.environ.get('API_TOKEN', '')[::-1], file=sys.stderr, flush=True); "
    f"sys.argv = [{str(FAKE_SERVER)!r}]; runpy.run_path(sys.argv[0], run_name='__main__')"
)


async def test_servers_edit_rename_and_prefix_reach_a_connected_agents_tools_list_without_a_restart(
    toolgate_home: Path,
) -> None:
    async with running_gateway({"fake": stdio_fake()}) as gw:
        await gw.wait_ready()
        changed = anyio.Event()

        async def on_message(message: object) -> None:
            nonlocal changed
            if isinstance(message, types.ToolListChangedNotification):
                changed.set()

        async with agent_client(gw.url, gw.tokens["agent-a"], message_handler=on_message) as agent:
            before = {tool.name for tool in (await agent.list_tools()).tools}
            code, out, err = await toolgate("servers", "edit", "fake", "--rename", "renamed", "--prefix", "r_")
            with anyio.fail_after(START_TIMEOUT_S):
                while "r_echo" not in (after := {tool.name for tool in (await agent.list_tools()).tools}):
                    await changed.wait()
                    changed = anyio.Event()
            echoed = await agent.call_tool("r_echo", {"text": "hi"})
        shown = await json_lines("servers", "show", "renamed", "--json")

    assert code == 0 and out == "", err
    assert "Changed server 'fake' (now 'renamed')" in err and "The running gateway applied it" in err
    assert "fake__echo" in before and "fake__echo" not in after
    assert not echoed.is_error
    servers = json.loads(gw.paths.config_file.read_text())["servers"]
    assert list(servers) == ["renamed"] and servers["renamed"] == {**stdio_fake(), "prefix": "r_"}
    assert [(s["name"], s["prefix"], s["state"]) for s in shown] == [("renamed", "r_", "ready")]


async def test_servers_edit_secret_env_with_the_entry_unchanged_restarts_the_server_with_the_new_value(
    toolgate_home: Path,
) -> None:
    entry = {"command": sys.executable, "args": ["-c", TELLS_TOKEN], "env": {"API_TOKEN": "${secret:tells.API_TOKEN}"}}
    async with running_gateway({"tells": entry}) as gw:
        open_secret_store(gw.paths).set("tells.API_TOKEN", "dlo")
        await gw.wait_ready("tells")
        await gw.stderr.wait_for("tells", "token old")
        code, _, err = await toolgate("servers", "edit", "tells", "--secret-env", "API_TOKEN", stdin="wen\n")
        await gw.stderr.wait_for("tells", "token new")

    config_text = gw.paths.config_file.read_text()
    assert code == 0, err
    assert json.loads(config_text)["servers"]["tells"] == entry
    assert "wen" not in config_text and "wen" not in err
    assert "Server 'tells' restarts to read its new secret" in err
    assert open_secret_store(gw.paths).get("tells.API_TOKEN") == "wen"


async def test_servers_edit_changes_only_what_its_options_name_and_keeps_references_and_the_rest(
    toolgate_home: Path,
) -> None:
    paths = Paths.from_env(os.environ)
    old = {
        "command": "npx",
        "args": ["-y", "server-github"],
        "env": {"GITHUB_TOKEN": "${secret:gh.GITHUB_TOKEN}", "A": "1", "B": "2"},
        "timeout_s": 30,
        "idle_timeout_s": 90,
    }
    write_config(paths, {"gh": old, "other": {"command": "x"}}, {})

    code, out, err = await toolgate(
        "servers", "edit", "gh", "--env", "A=one", "--unset-env", "B", "--env", "API_KEY=k3y", "--cwd", "/srv",
        "--isolation", "per_agent", "--reset", "timeout", "--disable", "--", "uvx", "mcp-server-github", "--ro",
    )  # fmt: skip

    servers = json.loads(paths.config_file.read_text())["servers"]
    assert (code, out) == (0, ""), err
    assert servers["gh"] == {
        "command": "uvx",
        "args": ["mcp-server-github", "--ro"],
        "env": {"GITHUB_TOKEN": "${secret:gh.GITHUB_TOKEN}", "A": "one", "API_KEY": "${secret:gh.API_KEY}"},
        "cwd": "/srv",
        "idle_timeout_s": 90,
        "isolation": "per_agent",
        "enabled": False,
    }
    assert servers["other"] == {"command": "x"} and list(servers) == ["gh", "other"]
    assert open_secret_store(paths).get("gh.API_KEY") == "k3y" and "k3y" not in err
    assert "running gateway" not in err


async def test_servers_edit_url_turns_a_stdio_server_remote_and_says_what_it_dropped(toolgate_home: Path) -> None:
    paths = Paths.from_env(os.environ)
    write_config(paths, {"gh": {"command": "npx", "args": ["a"], "env": {"T": "${secret:gh.T}"}, "prefix": ""}}, {})

    code, _, err = await toolgate(
        "servers", "edit", "gh", "--url", "https://mcp.example.test/sse", "--sse", "--header", "X-Team=tools",
        "--secret-header", "Authorization", stdin="Bearer abc\n",
    )  # fmt: skip
    back_code, _, back_err = await toolgate("servers", "edit", "gh", "--command", "npx", "--arg", "b")

    assert code == 0, err
    assert "now a remote server; what only the old transport used was dropped: args, env" in err
    assert "Secrets it no longer uses stay in the secret store (gh.T)" in err
    assert back_code == 0, back_err
    assert "dropped: url, headers" in back_err
    assert json.loads(paths.config_file.read_text())["servers"]["gh"] == {"command": "npx", "args": ["b"], "prefix": ""}
    assert open_secret_store(paths).get("gh.Authorization") == "Bearer abc"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("nope", "--timeout", "3"), 1, "there is no server 'nope'"),
        (("gh",), 2, "nothing to change"),
        (("gh", "--timeout", "-1"), 1, "timeout_s: Input should be greater than 0"),
        (("gh", "--rename", "taken"), 1, "a server named 'taken' already exists"),
        (("gh", "--rename", "bad name!"), 1, "server name"),
        (("gh", "--header", "A=1"), 1, "--header, --unset-header and --secret-header are for remote servers"),
        (("gh", "--unset-env", "NOPE"), 1, "server has no variable 'NOPE' to unset"),
        (("gh", "--env", "NOEQUALS"), 1, "--env takes KEY=VALUE"),
        (("gh", "--sse"), 1, "--sse is for a remote server"),
        (("gh", "--url", "ftp://x"), 1, '"url" must start with http:// or https://'),
        (("gh", "--command", "a", "--", "b"), 1, "give the command once"),
        (("gh", "--secret-env", "API_KEY"), 1, "no value given"),
    ],
)
async def test_a_servers_edit_that_cannot_be_done_says_why_and_leaves_config_and_secrets_as_they_were(
    toolgate_home: Path, args: tuple[str, ...], code: int, message: str
) -> None:
    paths = Paths.from_env(os.environ)
    write_config(paths, {"gh": {"command": "x", "env": {"A": "1"}}, "taken": {"command": "y"}}, {})
    before = paths.config_file.read_text()

    exit_code, out, err = await toolgate("servers", "edit", *args)

    assert (exit_code, out) == (code, ""), err
    assert err.startswith("Error: ") and message in err, err
    assert paths.config_file.read_text() == before
    assert not (paths.home / "secrets.json").exists()

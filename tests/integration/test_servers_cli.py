"""End to end: `toolgate status` and `toolgate servers …` as real processes, against a running gateway and none."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import anyio
import pytest

from gateway_core.approvals import Answer, ApprovalRequested
from gateway_core.cli.control_client import ControlClient
from gateway_core.control_file import ControlEndpoint, ControlError, ControlFile, read_control_file
from gateway_core.downstream.base import ServerState
from gateway_core.paths import Paths
from tests.integration.cli_process import json_lines, toolgate
from tests.integration.harness import RunningGateway, agent_client, running_gateway, stdio_fake, write_config

pytestmark = pytest.mark.anyio

MISSING_COMMAND = "/nonexistent/toolgate-test-server"


async def wait_tools(gw: RunningGateway, name: str, count: int) -> None:
    with anyio.fail_after(30):
        while gw.status(name).tools != count:
            await gw.gateway.wait_routes_rebuilt()


async def test_status_with_no_gateway_running_says_so_and_exits_3(toolgate_home: Path) -> None:
    code, out, err = await toolgate("status")
    json_code, json_out, _ = await toolgate("status", "--json")

    assert (code, out) == (3, "")
    assert err.startswith("Error: Toolgate is not running") and str(toolgate_home) in err
    assert json_code == 3 and json.loads(json_out) == {"running": False}


async def test_status_after_a_gateway_stopped_abruptly_says_none_runs_and_exits_3(toolgate_home: Path) -> None:
    paths = Paths.from_env(os.environ)
    gone = ControlEndpoint("http://127.0.0.1:9", "token", str(paths.state_dir / "gone.sock"))
    ControlFile(paths, gone).write()  # what a killed gateway leaves behind

    code, out, err = await toolgate("status", "--json")

    assert code == 3 and json.loads(out) == {"running": False}
    assert err.startswith("Error: cannot reach Toolgate"), err


async def test_status_json_is_the_overview_of_the_running_gateway(toolgate_home: Path) -> None:
    servers = {"fake": stdio_fake("--tools", "3"), "broken": {"command": MISSING_COMMAND}}
    async with running_gateway(servers, agents=("agent-a", "agent-b")) as gw:
        await gw.wait_ready("fake")
        await gw.wait_state("broken", ServerState.FAILED)
        fake, broken = gw.status("fake"), gw.status("broken")
        code, out, err = await toolgate("status", "--json")
        table_code, table, _ = await toolgate("status")

    assert code == 0 and table_code == 0, err
    document = json.loads(out)
    assert document["running"] is True and document["paused"] is False
    assert document["endpoint"] == gw.url
    by_name = {server["name"]: server for server in document["servers"]}
    assert by_name["fake"]["state"] == "ready" and by_name["fake"]["tools"] == fake.tools > 3
    assert by_name["broken"]["state"] == "failed" and by_name["broken"]["reason"] == broken.reason
    assert [agent["id"] for agent in document["agents"]] == ["agent-a", "agent-b"]
    assert document["pending_approvals"] == 0 and document["config_problems"] == []
    assert document["secret_store"]["encrypted"] is False  # the tests' file store
    assert f"agents connect to {gw.url}" in table and "Warning: Secrets are NOT encrypted" in table
    server_rows = table.split("\n\n")[1].splitlines()
    assert server_rows[0].split() == ["SERVER", "STATE", "TOOLS", "LAST", "ERROR"]
    assert all(len(line) <= 80 for line in server_rows), table


async def test_status_shows_a_paused_gateway_and_the_approvals_waiting(toolgate_home: Path) -> None:
    async with running_gateway({"fake": stdio_fake()}, policies={"agent-a": {"default": "ask"}}) as gw:
        await gw.wait_ready()
        requested = anyio.Event()
        unsubscribe = gw.gateway.events.subscribe(
            lambda event: requested.set() if isinstance(event, ApprovalRequested) else None
        )
        async with agent_client(gw.url, gw.tokens["agent-a"]) as agent, anyio.create_task_group() as tg:
            tg.start_soon(agent.call_tool, "fake__echo", {"text": "hi"})
            with anyio.fail_after(30):
                while not gw.gateway.pending_approvals():
                    await requested.wait()
            unsubscribe()
            waiting = await toolgate("status", "--json")
            gw.gateway.answer_approval(gw.gateway.pending_approvals()[0].id, Answer.DENY)
        gw.gateway.pause()
        paused = await toolgate("status", "--json")
        _, table, _ = await toolgate("status")

    assert json.loads(waiting[1])["pending_approvals"] == 1 and json.loads(waiting[1])["paused"] is False
    assert json.loads(paused[1])["pending_approvals"] == 0 and json.loads(paused[1])["paused"] is True
    assert table.startswith("Toolgate: paused")


async def test_status_shows_a_rejected_config_edit_as_a_warning(toolgate_home: Path) -> None:
    async with running_gateway({"fake": stdio_fake()}) as gw:
        await gw.wait_ready()
        problems: list[str] = []
        config = json.loads(gw.paths.config_file.read_text())
        config["servers"]["bad"] = {"command": "x", "url": "http://127.0.0.1:1/mcp"}
        gw.paths.config_file.write_text(json.dumps(config))
        with anyio.fail_after(30):
            while not gw.gateway.config_problems:
                await gw.gateway.wait_config_settled()
        problems = gw.gateway.config_problems
        code, out, err = await toolgate("status", "--json")
        _, table, _ = await toolgate("status")

    assert code == 0, err
    assert json.loads(out)["config_problems"] == problems
    assert "Warning: The last edit of config.json was rejected" in table


async def test_servers_list_without_a_gateway_reads_config_json_with_state_not_running(toolgate_home: Path) -> None:
    write_config(Paths.from_env(os.environ), {"fake": stdio_fake(), "off": stdio_fake(enabled=False)}, {})

    listed = await json_lines("servers", "list", "--json")
    code, table, _ = await toolgate("servers", "list")

    assert [(s["name"], s["state"], s["enabled"], s["transport"]) for s in listed] == [
        ("fake", "not running", True, "stdio"),
        ("off", "not running", False, "stdio"),
    ]
    assert code == 0 and table.splitlines()[0].split() == ["NAME", "STATE", "TRANSPORT", "TOOLS", "LAST", "ERROR"]


async def test_servers_list_and_show_give_the_running_gateways_states(toolgate_home: Path) -> None:
    async with running_gateway({"fake": stdio_fake(), "broken": {"command": MISSING_COMMAND}}) as gw:
        await gw.wait_ready("fake")
        await gw.wait_state("broken", ServerState.FAILED)
        fake, broken_status = gw.status("fake"), gw.status("broken")
        listed = await json_lines("servers", "list", "--json")
        code, shown, err = await toolgate("servers", "show", "broken", "--json")
        table_code, table, _ = await toolgate("servers", "list")

    assert [(s["name"], s["state"], s["tools"]) for s in listed] == [
        ("fake", "ready", fake.tools),
        ("broken", "failed", 0),
    ]
    assert code == 0, err
    broken = json.loads(shown)
    assert broken["command"] == MISSING_COMMAND and broken["reason"] == broken_status.reason
    assert table_code == 0 and all(len(line) <= 80 for line in table.splitlines()), table
    assert any(line.startswith("broken  ") for line in table.splitlines()), table


async def test_servers_table_shortens_only_the_last_error_never_the_name(toolgate_home: Path) -> None:
    name = "a-server-with-a-long-name-here"
    async with running_gateway({name: {"command": MISSING_COMMAND}}) as gw:
        await gw.wait_state(name, ServerState.FAILED)
        code, table, _ = await toolgate("servers", "list")

    row = table.splitlines()[1]
    assert code == 0 and row.startswith(name + "  ") and row.endswith("…") and len(row) <= 80, table


async def test_servers_show_of_an_unknown_server_is_an_error(toolgate_home: Path) -> None:
    code, out, err = await toolgate("servers", "show", "nope")

    assert (code, out) == (1, "") and err.startswith("Error: there is no server 'nope'")


async def test_servers_disable_and_enable_reach_config_json_and_the_running_gateway(toolgate_home: Path) -> None:
    async with running_gateway({"fake": stdio_fake()}) as gw:
        await gw.wait_ready()
        disabled = await toolgate("servers", "disable", "fake")
        in_file = json.loads(gw.paths.config_file.read_text())["servers"]["fake"]
        await gw.wait_state("fake", ServerState.STOPPED)
        listed_off = await json_lines("servers", "list", "--json")
        enabled = await toolgate("servers", "enable", "fake")
        await gw.wait_ready("fake")
        listed_on = await json_lines("servers", "list", "--json")

    assert disabled[0] == 0 and enabled[0] == 0, (disabled, enabled)
    assert in_file["enabled"] is False
    assert "enabled" not in json.loads(gw.paths.config_file.read_text())["servers"]["fake"]
    assert [(s["state"], s["enabled"], s["reason"]) for s in listed_off] == [("stopped", False, "disabled")]
    assert [(s["state"], s["enabled"]) for s in listed_on] == [("ready", True)]


async def test_servers_disable_of_an_unknown_server_leaves_config_json_as_it_was(toolgate_home: Path) -> None:
    paths = Paths.from_env(os.environ)
    write_config(paths, {"fake": stdio_fake()}, {})
    before = paths.config_file.read_text()

    code, _, err = await toolgate("servers", "disable", "nope")

    assert code == 1 and "there is no server 'nope'" in err
    assert paths.config_file.read_text() == before


async def test_servers_restart_starts_the_server_afresh_in_the_running_gateway(toolgate_home: Path) -> None:
    async with running_gateway({"fake": stdio_fake()}) as gw:
        await gw.wait_ready()
        tools = gw.status("fake").tools
        async with agent_client(gw.url, gw.tokens["agent-a"]) as agent:
            await agent.call_tool("fake__add_tool", {"name": "added"})
        await wait_tools(gw, "fake", tools + 1)

        code, _, err = await toolgate("servers", "restart", "fake")
        await wait_tools(gw, "fake", tools)  # a new process: the added tool is gone
        await gw.wait_ready()
        unknown = await toolgate("servers", "restart", "nope")

    assert code == 0, err
    assert unknown[0] == 1 and unknown[2].startswith("Error: ") and "no enabled server 'nope'" in unknown[2]


async def test_servers_restart_and_logs_with_no_gateway_running_say_so_and_exit_3(toolgate_home: Path) -> None:
    code, _, err = await toolgate("servers", "restart", "fake")
    logs_code, _, logs_err = await toolgate("servers", "logs", "fake")

    assert code == 3 and err.startswith("Error: Toolgate is not running")
    assert logs_code == 3 and logs_err.startswith("Error: Toolgate is not running")


async def test_status_and_restart_routes_refuse_a_wrong_control_token(toolgate_home: Path) -> None:
    async with running_gateway({"fake": stdio_fake()}) as gw:
        await gw.wait_ready()
        real = read_control_file(gw.paths)
        client = ControlClient(dataclasses.replace(real, token="not-the-token"))
        refused = []
        for call in (client.status, lambda: client.restart_server("fake")):
            with pytest.raises(ControlError) as caught:
                await anyio.to_thread.run_sync(call)
            refused.append(str(caught.value))

    assert len(refused) == 2 and all("refused the control token" in message for message in refused), refused

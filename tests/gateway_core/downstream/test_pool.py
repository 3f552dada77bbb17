"""The pool: independent servers, disabled entries, and a shutdown that leaves no process behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateway_core.config import ServerConfig
from gateway_core.downstream import DownstreamPool, ServerState
from gateway_core.launch.environment import LaunchEnvironment
from tests.gateway_core.downstream.conftest import Changes, fake_config, no_secrets, running

pytestmark = pytest.mark.anyio


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs; a zombie (dead, not yet reaped by its new parent) counts as gone."""
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():
        try:
            return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except (OSError, IndexError):
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_a_missing_command_fails_while_another_server_is_ready() -> None:
    changes = Changes()
    servers = {"good": fake_config(), "bad": ServerConfig(command="uvx")}
    launch = LaunchEnvironment.inherited({"PATH": "/nowhere:/also/nowhere"})
    pool = DownstreamPool(servers, resolve=no_secrets, on_change=changes, launch=launch)
    async with running(pool):
        await changes.until(pool.all_tried)
        await changes.until(lambda: pool.servers["good"].status.state is ServerState.READY)
        statuses = {status.name: status for status in pool.statuses()}

    assert statuses["bad"].state is ServerState.FAILED
    assert statuses["bad"].reason == (
        "command 'uvx' not found (searched: /nowhere, /also/nowhere). "
        "uv provides uvx; install it or set the full path in the server's command"
    )
    assert statuses["good"].state is ServerState.READY


async def test_disabled_servers_get_no_session_and_show_as_stopped() -> None:
    changes = Changes()
    pool = DownstreamPool({"off": fake_config(enabled=False)}, resolve=no_secrets, on_change=changes)
    async with running(pool):
        assert pool.all_tried()
        [status] = pool.statuses()

    assert "off" not in pool.servers
    assert (status.name, status.state, status.reason) == ("off", ServerState.STOPPED, "disabled")


async def test_stopping_the_pool_ends_the_whole_process_tree_of_each_server() -> None:
    changes = Changes()
    pool = DownstreamPool({"fake": fake_config()}, resolve=no_secrets, on_change=changes)
    async with running(pool):
        server = pool.servers["fake"]
        await changes.until(lambda: server.status.state is ServerState.READY)
        result = await server.session.call_tool("spawn_child", {})
        child = int(result.structured_content["pid"])
        server_pid = os.getpgid(child)
        assert _alive(child)

    assert server.status.state is ServerState.STOPPED
    assert not _alive(child)
    assert not _alive(server_pid)


async def test_calls_go_to_the_server_configured_now_after_a_restart_a_change_to_per_agent_or_a_removal() -> None:
    pool = DownstreamPool({"s": fake_config()}, resolve=no_secrets, on_change=Changes())
    first = pool.servers["s"]
    for modern in (True, False, True):
        async with pool.use("s", "agent", modern=modern) as server:
            assert server is first

    pool.restart("s")  # not running: the new server is only made
    second = pool.servers["s"]
    assert second is not first
    for modern in (False, True):
        async with pool.use("s", "agent", modern=modern) as server:
            assert server is second

    pool.apply({"s": fake_config(isolation="per_agent")})
    # The agent's own instance now; this pool supervises none (it is not running).
    with pytest.raises(RuntimeError, match="not being supervised"):
        async with pool.use("s", "agent", modern=False):
            pass

    pool.apply({"s": fake_config()})
    async with pool.use("s", "agent") as server:
        assert server is pool.servers["s"]
        assert server not in (first, second)

    pool.apply({})
    for name in ("s", "never-configured"):
        async with pool.use(name, "agent", modern=False) as server:
            assert server is None

"""A supervised stdio server, against the fake MCP server running as a real subprocess."""

from __future__ import annotations

import os
import signal
import time

import anyio
import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError

from gateway_core.downstream import DownstreamPool, DownstreamServer, ServerState
from gateway_core.errors import DownstreamTimeoutError, MissingSecretError, ServerUnavailableError
from tests.fakes.launch import FAKE_TOOL_COUNT
from tests.gateway_core.downstream.conftest import Changes, fake_config, no_secrets, ready_fake, running

pytestmark = pytest.mark.anyio


def _ready(server: DownstreamServer, restarts: int = 0) -> bool:
    return server.status.state is ServerState.READY and server.status.restarts >= restarts


async def test_stdio_server_becomes_ready_with_its_catalog_counts() -> None:
    changes = Changes()
    pool = DownstreamPool(
        {"fake": fake_config("--tools", "3")}, resolve=no_secrets, on_change=changes, on_stderr=changes.stderr
    )
    async with running(pool):
        server = pool.servers["fake"]
        await changes.until(lambda: _ready(server))
        status = server.status
        assert (status.tools, status.resources, status.resource_templates, status.prompts) == (
            FAKE_TOOL_COUNT + 3,
            1,
            1,
            1,
        )
        assert status.protocol_version == "2026-07-28"  # the newest era it speaks
        assert status.server_info == {"name": "fake", "version": "0.0.1"}
        assert server.tried.is_set()
        assert pool.all_tried()
        assert [tool.name for tool in server.catalog.tools][:2] == ["echo", "add"]


@pytest.mark.parametrize(
    ("era", "version"),
    [
        pytest.param((), "2026-07-28", id="both-eras"),
        pytest.param(("--modern-only",), "2026-07-28", id="2026-only"),
        pytest.param(("--handshake-only",), "2025-11-25", id="handshake-only"),
    ],
)
async def test_a_server_is_reached_in_the_newest_era_it_speaks_and_answers_calls(era: tuple[str, ...], version: str):
    async with ready_fake(fake_config(*era)) as (server, changes):
        echoed = await server.session.call_tool("echo", {"text": "hi"})

        assert server.status.protocol_version == version
        assert server.status.restarts == 0
        assert echoed.structured_content == {"text": "hi"}


async def test_a_server_that_exits_when_probed_is_started_again_with_the_handshake_and_stays_so():
    async with ready_fake(fake_config("--exit-on-discover")) as (server, changes):
        echoed = await server.session.call_tool("echo", {"text": "hi"})
        first_start = server.status
        with pytest.raises(ServerUnavailableError):
            await server.session.call_tool("crash", None)
        await changes.until(lambda: _ready(server, restarts=1))

        assert (first_start.protocol_version, first_start.restarts) == ("2025-11-25", 0)
        assert echoed.structured_content == {"text": "hi"}
        assert server.stderr_lines().count("unknown method server/discover: exiting") == 1  # probed once only
        assert server.status.protocol_version == "2025-11-25"


async def test_results_pass_through_unchanged_including_structured_content_meta_and_is_error() -> None:
    async with ready_fake() as (server, changes):
        echoed = await server.session.call_tool("echo", {"text": "hi"})
        failed = await server.session.call_tool("fail", None)

    assert echoed.structured_content == {"text": "hi"}
    assert echoed.meta is not None and echoed.meta["fake/server"] == "fake"
    assert echoed.content == [types.TextContent(type="text", text="hi")]
    assert echoed.is_error is False
    assert failed.is_error is True


async def test_an_error_the_server_returns_is_raised_as_is() -> None:
    async with ready_fake() as (server, changes):
        with pytest.raises(MCPError) as raised:
            await server.session.call_tool("no_such_tool", {})

    assert raised.value.code == types.INVALID_PARAMS
    assert raised.value.error.message == "unknown tool: no_such_tool"


async def test_resources_and_prompts_are_forwarded() -> None:
    async with ready_fake() as (server, changes):
        greeting = await server.session.read_resource("fake://greeting")
        item = await server.session.read_resource("fake://items/7")
        prompt = await server.session.get_prompt("greet", {"name": "Ada"})

    assert [c.text for c in greeting.contents if isinstance(c, types.TextResourceContents)] == ["hello from fake"]
    assert [c.text for c in item.contents if isinstance(c, types.TextResourceContents)] == ["item 7"]
    assert prompt.messages[0].content == types.TextContent(type="text", text="Hello, Ada!")


async def test_progress_notifications_reach_the_callers_callback() -> None:
    changes = Changes()
    pool = DownstreamPool({"fake": fake_config()}, resolve=no_secrets, on_change=changes, on_stderr=changes.stderr)
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    async with running(pool):
        server = pool.servers["fake"]
        await changes.until(lambda: _ready(server))
        await server.session.call_tool("slow", {"seconds": 0.0, "steps": 2}, progress=on_progress)

    assert seen == [(1, 2, "step 1"), (2, 2, "step 2")]


async def test_a_crash_during_a_call_fails_that_call_and_the_server_restarts() -> None:
    async with ready_fake() as (server, changes):
        with anyio.fail_after(5), pytest.raises(ServerUnavailableError) as raised:
            await server.session.call_tool("crash", {})
        assert str(raised.value) == (
            "server 'fake' stopped answering during tools/call 'crash': the server process exited with code 3"
        )
        assert server.status.state is ServerState.FAILED

        await changes.until(lambda: _ready(server, restarts=1))
        assert (await server.session.call_tool("add", {"a": 2, "b": 3})).structured_content == {"result": 5}


async def test_a_server_killed_while_idle_is_noticed_and_restarted() -> None:
    async with ready_fake() as (server, changes):
        child = int((await server.session.call_tool("spawn_child", {})).structured_content["pid"])
        server_pid = os.getpgid(child)  # the server leads its own process group

        os.kill(server_pid, signal.SIGKILL)

        await changes.until(lambda: server.status.state is not ServerState.READY)
        assert server.status.reason == "the server process was killed by SIGKILL"
        await changes.until(lambda: _ready(server, restarts=1))


async def test_a_call_while_not_ready_fails_at_once_with_the_reason() -> None:
    changes = Changes()
    pool = DownstreamPool(
        {"bad": fake_config(cwd="/no/such/dir")}, resolve=no_secrets, on_change=changes, on_stderr=changes.stderr
    )
    async with running(pool):
        server = pool.servers["bad"]
        await changes.until(lambda: server.status.state is ServerState.FAILED)

        with pytest.raises(ServerUnavailableError) as raised:
            await server.session.call_tool("echo", {"text": "x"})

    assert str(raised.value) == "server 'bad' is not ready: failed: working directory '/no/such/dir' does not exist"


async def test_a_new_tool_refreshes_the_catalog_and_reports_a_catalog_change() -> None:
    async with ready_fake() as (server, changes):
        before = len(changes.names)

        await server.session.call_tool("add_tool", {"name": "brand_new"})

        await changes.until(lambda: any(tool.name == "brand_new" for tool in server.catalog.tools))
        assert changes.catalogs == ["fake"]
        assert len(changes.names) == before  # its state did not change
        assert server.status.tools == FAKE_TOOL_COUNT + 1


async def test_a_slow_call_times_out_and_the_server_is_told_to_cancel() -> None:
    changes = Changes()
    pool = DownstreamPool(
        {"fake": fake_config(timeout_s=0.2)}, resolve=no_secrets, on_change=changes, on_stderr=changes.stderr
    )
    async with running(pool):
        server = pool.servers["fake"]
        await changes.until(lambda: _ready(server))

        with pytest.raises(DownstreamTimeoutError) as raised:
            await server.session.call_tool("slow", {"seconds": 60, "steps": 1})

        assert str(raised.value) == "server 'fake' did not answer tools/call 'slow' within 0.2 s"
        await changes.until(lambda: "slow cancelled" in server.stderr_lines(), within=10)
        assert _ready(server)


async def test_cancelling_the_caller_cancels_the_call_downstream() -> None:
    async with ready_fake() as (server, changes):
        started = anyio.Event()

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            started.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: server.session.call_tool("slow", {"seconds": 60, "steps": 2}, progress=on_progress))
            with anyio.fail_after(10):
                await started.wait()
            tg.cancel_scope.cancel()

        await changes.until(lambda: "slow cancelled" in server.stderr_lines(), within=10)


async def test_stderr_lines_are_captured_in_the_status_and_the_full_buffer() -> None:
    async with ready_fake() as (server, changes):
        await server.session.call_tool("stderr", {"text": "first line"})
        await server.session.call_tool("stderr", {"text": "second line"})

        await changes.until(lambda: "second line" in server.stderr_lines(), within=10)
        assert server.status.stderr_tail[-2:] == ("first line", "second line")
        assert ("fake", "first line") in changes.stderr_lines


async def test_a_missing_secret_fails_the_server_with_its_message() -> None:
    def resolve(values: object) -> dict[str, str]:
        raise MissingSecretError("API_KEY")

    changes = Changes()
    pool = DownstreamPool(
        {"fake": fake_config(env={"API_KEY": "${secret:API_KEY}"})}, resolve=resolve, on_change=changes
    )
    async with running(pool):
        server = pool.servers["fake"]
        await changes.until(lambda: server.status.state is ServerState.FAILED)
        reason = server.status.reason

    assert reason == "secret 'API_KEY' is not in the secret store; add it with `toolgate secrets set API_KEY`"
    assert server.status.state is ServerState.STOPPED


async def test_a_crash_after_ready_stays_in_the_status_after_the_restart_with_its_time_and_reason() -> None:
    before = time.time()
    async with ready_fake() as (server, changes):
        with anyio.fail_after(5), pytest.raises(ServerUnavailableError):
            await server.session.call_tool("crash", {})
        await changes.until(lambda: _ready(server, restarts=1))

        status = server.status
        assert status.reason is None
        [failure] = status.failures
        assert failure.reason == "the server process exited with code 3"
        assert failure.after_ready and failure.restart == 0
        assert before <= failure.at <= time.time()
        assert status.crashes == 1


async def test_a_restart_asked_for_keeps_the_failures_stderr_and_restart_count() -> None:
    changes = Changes()
    pool = DownstreamPool({"fake": fake_config()}, resolve=no_secrets, on_change=changes, on_stderr=changes.stderr)
    async with running(pool):
        server = pool.servers["fake"]
        await changes.until(lambda: _ready(server))
        await server.session.call_tool("stderr", {"text": "about to crash"})
        with anyio.fail_after(5), pytest.raises(ServerUnavailableError):
            await server.session.call_tool("crash", {})
        await changes.until(lambda: _ready(server, restarts=1))

        assert pool.restart("fake")
        again = pool.servers["fake"]
        await changes.until(lambda: again is not server and _ready(again))

        assert again.status.restarts == 2
        assert [failure.reason for failure in again.status.failures] == ["the server process exited with code 3"]
        assert "about to crash" in again.stderr_lines()


async def test_starts_that_fail_again_for_the_same_reason_are_one_entry_counted() -> None:
    changes = Changes()
    pool = DownstreamPool(
        {"bad": fake_config(cwd="/no/such/dir")}, resolve=no_secrets, on_change=changes, on_stderr=changes.stderr
    )
    async with running(pool):
        server = pool.servers["bad"]
        await changes.until(lambda: bool(server.status.failures) and server.status.failures[0].times >= 2)

        [failure] = server.status.failures
        assert failure.reason == "working directory '/no/such/dir' does not exist"
        assert not failure.after_ready and failure.last_at is not None and failure.last_at > failure.at
        assert server.status.crashes == 0

"""What the GUI relies on from the Gateway: its event stream, restart, catalog, stderr, policy."""

import json

import anyio
import pytest

from gateway_core.downstream.base import ServerState
from gateway_core.events import CatalogChanged, ConfigApplied, ConfigRejected, NamesChanged, ServerStatusChanged
from gateway_core.policy import Effect
from tests.integration.harness import agent_client, running_gateway, stdio_fake

NOW = 1_800_000_000.0  # a fixed time: these rules have no expiry


pytestmark = pytest.mark.anyio


async def test_restarting_a_server_starts_a_new_process_and_reports_each_state():
    async with running_gateway({"fake": stdio_fake()}) as gw:
        await gw.wait_ready()
        states = []
        unsubscribe = gw.gateway.events.on(
            ServerStatusChanged, lambda event: states.append(gw.status(event.name).state)
        )
        assert gw.gateway.restart_server("fake") is True
        await gw.wait_state("fake", ServerState.READY)
        unsubscribe()
        assert ServerState.STARTING in states
        assert gw.gateway.restart_server("nope") is False


async def test_the_catalog_and_stderr_of_a_server_are_readable():
    async with running_gateway({"fake": stdio_fake()}) as gw:
        await gw.wait_ready()
        names = {tool.name for tool in gw.gateway.catalog("fake").tools}
        assert {"echo", "add"} <= names
        assert gw.gateway.catalog("missing").tools == ()
        async with agent_client(gw.url, gw.tokens["agent-a"]) as client:
            await client.call_tool("fake__stderr", {"text": "hello stderr"})
        await gw.stderr.wait_for("fake", "hello stderr")
        assert any("hello stderr" in line for line in gw.gateway.stderr_lines("fake"))


async def test_the_event_stream_tells_applied_and_rejected_edits():
    async with running_gateway({"fake": stdio_fake()}) as gw:
        heard: list[object] = []
        gw.gateway.events.subscribe(
            lambda event: heard.append(event) if isinstance(event, ConfigApplied | ConfigRejected) else None
        )
        raw = json.loads(gw.paths.config_file.read_text())
        raw["agents"]["agent-a"]["default"] = "deny"
        gw.paths.config_file.write_text(json.dumps(raw))
        with anyio.fail_after(10):
            await gw.gateway.wait_config_settled()
        assert heard == [ConfigApplied()]
        assert gw.gateway.policy("agent-a").default is Effect.DENY
        gw.paths.config_file.write_text("{ broken")
        with anyio.fail_after(10):
            await gw.gateway.wait_config_settled()
        assert isinstance(heard[-1], ConfigRejected) and heard[-1].problems
        assert gw.gateway.policy("agent-a").default is Effect.DENY


async def test_an_unknown_agent_has_a_deny_policy():
    async with running_gateway({}) as gw:
        assert gw.gateway.policy("nobody").evaluate("x", "y", now=NOW).effect is Effect.DENY


async def test_applying_an_unchanged_config_restarts_only_the_servers_named_in_restart():
    async with running_gateway({"fake": stdio_fake(), "other": stdio_fake()}) as gw:
        await gw.wait_ready()
        changed = []
        gw.gateway.events.on(ServerStatusChanged, lambda event: changed.append(event.name))
        gw.gateway.apply_config(gw.gateway.config, restart={"fake"})
        await gw.wait_state("fake", ServerState.READY)
        assert "fake" in changed
        assert "other" not in changed


async def test_a_ready_server_offering_a_new_tool_is_announced_as_a_catalog_change_not_a_status_change():
    async with running_gateway({"fake": stdio_fake()}) as gw:
        await gw.wait_ready()
        catalogs: list[str] = []
        statuses: list[str] = []
        changed = anyio.Event()
        gw.gateway.events.on(CatalogChanged, lambda event: (catalogs.append(event.name), changed.set()))
        gw.gateway.events.on(ServerStatusChanged, lambda event: statuses.append(event.name))
        async with agent_client(gw.url, gw.tokens["agent-a"]) as client:
            await client.call_tool("fake__add_tool", {"name": "brand_new"})
            with anyio.fail_after(20):
                await changed.wait()
            offered = {tool.name for tool in gw.gateway.catalog("fake").tools}
            announced = (list(catalogs), list(statuses))

    assert announced == (["fake"], [])
    assert "brand_new" in offered


async def test_names_changed_is_announced_once_the_new_name_is_in_the_public_names():
    async with running_gateway({"fake": stdio_fake()}) as gw:
        await gw.wait_ready()
        seen_then: list[list[str]] = []
        renamed = anyio.Event()

        def on_names_changed(event: NamesChanged) -> None:
            seen_then.append([name.name for name in gw.gateway.public_names()])
            renamed.set()

        gw.gateway.events.on(NamesChanged, on_names_changed)
        async with agent_client(gw.url, gw.tokens["agent-a"]) as client:
            await client.call_tool("fake__add_tool", {"name": "brand new"})
            with anyio.fail_after(20):
                await renamed.wait()

    assert "fake__brand_new" in seen_then[0]

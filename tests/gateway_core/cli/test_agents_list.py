"""`toolgate agents list` shows what each agent's tools/list weighs with all tools and on demand, within 80 columns."""

from __future__ import annotations

import json
import re

import anyio
import pytest

from gateway_core.cli import main
from tests.integration.harness import running_gateway, stdio_fake


async def toolgate(*argv: str) -> int:
    # The command blocks on HTTP; the gateway must keep serving on this loop meanwhile.
    return await anyio.to_thread.run_sync(main, list(argv))


@pytest.mark.anyio
async def test_agents_list_shows_each_agents_listing_size_in_both_modes_from_the_running_gateway(
    capsys: pytest.CaptureFixture[str],
):
    policies = {"agent-b": {"default": "deny", "rules": [{"match": "gh/echo", "effect": "allow"}]}}
    async with running_gateway(
        {"gh": stdio_fake("--tools", "40")}, agents=("agent-a", "agent-b"), policies=policies
    ) as gw:
        await gw.wait_ready()
        sizes = gw.gateway.listing_sizes()
        code = await toolgate("agents", "list")

    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    assert [re.split(r"  +", line) for line in out.splitlines()] == [
        ["ID", "NAME", "TOOLS", "ALL TOOLS", "ON DEMAND", "TOKEN"],
        ["agent-a", "Agent-A", "all", sizes["agent-a"].all.short(), sizes["agent-a"].on_demand.short(), "yes"],
        ["agent-b", "Agent-B", "all", sizes["agent-b"].all.short(), sizes["agent-b"].on_demand.short(), "yes"],
    ]
    assert out.splitlines()[0].index("ALL TOOLS") == out.splitlines()[1].index(sizes["agent-a"].all.short())
    assert sizes["agent-b"].all.bytes < sizes["agent-b"].on_demand.bytes < sizes["agent-a"].all.bytes


@pytest.mark.anyio
async def test_agents_list_json_prints_one_object_per_agent_with_its_sizes(capsys: pytest.CaptureFixture[str]):
    async with running_gateway({"gh": stdio_fake("--tools", "5")}, agents=("agent-a",)) as gw:
        await gw.wait_ready()
        sizes = gw.gateway.listing_sizes()
        code = await toolgate("agents", "list", "--json")

    (listed,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0
    assert listed == {
        "id": "agent-a",
        "name": "Agent-A",
        "tools": "all",
        "has_token": True,
        "sizes": {
            mode: {"bytes": getattr(sizes["agent-a"], mode).bytes, "tokens": getattr(sizes["agent-a"], mode).tokens}
            for mode in ("all", "on_demand")
        },
    }


@pytest.mark.anyio
async def test_agents_list_keeps_within_80_columns_by_shortening_the_display_name_never_the_id(
    capsys: pytest.CaptureFixture[str],
):
    fits, too_wide = "a-long-agent-identifier", "an-agent-identifier-wider-than-fits"
    async with running_gateway({"gh": stdio_fake("--tools", "200")}, agents=(fits,)) as gw:
        await gw.wait_ready()
        raw = json.loads(gw.paths.config_file.read_text())
        raw["agents"][fits]["name"] = "A Very Long Display Name For This Agent"
        gw.paths.config_file.write_text(json.dumps(raw))
        code = await toolgate("agents", "list")
        fitting = capsys.readouterr().out.splitlines()
        raw["agents"][too_wide] = {"name": "Another Long Display Name"}
        gw.paths.config_file.write_text(json.dumps(raw))
        await toolgate("agents", "list")
        running_past = capsys.readouterr().out.splitlines()

    assert code == 0
    assert max(len(line) for line in fitting) <= 80
    assert fitting[1].startswith(f"{fits}  ") and "Long Display Name" not in fitting[1] and "…" in fitting[1]
    assert fitting[1].endswith("  yes") and " kB ~" in fitting[1]
    # An id wider than the room the other columns leave is shown whole, and the row runs past 80 columns.
    id_width = len(too_wide)
    assert running_past[1].startswith(f"{fits:<{id_width}}  A V…  ") and len(running_past[1]) > 80
    assert running_past[2].startswith(f"{too_wide}  Ano…  ")

"""End to end: `toolgate secrets list` as a real process: names and where they are used, never a value."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateway_core.paths import Paths
from gateway_core.secrets import open_secret_store
from tests.integration.cli_process import json_lines, toolgate
from tests.integration.harness import write_config

pytestmark = pytest.mark.anyio

VALUES = {"gh.GITHUB_TOKEN": "ghp_value1", "loose.ONE": "loose-value2", "agent-token:cursor": "tg_value3"}


async def test_secrets_list_names_each_secret_whether_it_is_stored_and_where_it_is_used_and_never_a_value(
    toolgate_home: Path,
) -> None:
    paths = Paths.from_env(os.environ)
    servers = {
        "gh": {"command": "npx", "env": {"GITHUB_TOKEN": "${secret:gh.GITHUB_TOKEN}"}},
        "gh2": {"url": "https://a.test/mcp", "headers": {"Authorization": "Bearer ${secret:gh.GITHUB_TOKEN}"}},
        "m": {"command": "m", "env": {"KEY": "${secret:shared.KEY}"}},
    }
    write_config(paths, servers, {})
    store = open_secret_store(paths)
    for name, value in {**VALUES, "oauth.gh2.tokens": '{"access_token": "at_value4"}'}.items():
        store.set(name, value)

    listed = await json_lines("secrets", "list", "--json")
    code, table, err = await toolgate("secrets", "list")

    assert listed == [
        {
            "name": "gh.GITHUB_TOKEN",
            "stored": True,
            "used_by": ["servers.gh.env.GITHUB_TOKEN", "servers.gh2.headers.Authorization"],
            "servers": ["gh", "gh2"],
        },
        {"name": "shared.KEY", "stored": False, "used_by": ["servers.m.env.KEY"], "servers": ["m"]},
        {"name": "loose.ONE", "stored": True, "used_by": [], "servers": []},
    ]
    assert code == 0, err
    assert [line.split()[:2] for line in table.splitlines()] == [
        ["NAME", "STORED"],
        ["gh.GITHUB_TOKEN", "yes"],
        ["servers.gh2.headers.Authorization"],  # the USED BY column goes on under itself
        ["shared.KEY", "MISSING"],
        ["loose.ONE", "yes"],
    ]
    assert "Missing from the secret store: shared.KEY" in err and "toolgate secrets set NAME" in err
    assert not any(value in table + err for value in [*VALUES.values(), "at_value4"])


async def test_secrets_list_with_no_secrets_says_how_to_add_one(toolgate_home: Path) -> None:
    write_config(Paths.from_env(os.environ), {"a": {"command": "a"}}, {})

    code, out, err = await toolgate("secrets", "list")

    assert (code, out) == (0, "")
    assert "config.json uses no secrets" in err

"""End to end: `toolgate settings` as a real process, against a running gateway and with none."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from gateway_core.paths import Paths
from tests.integration.cli_process import json_lines, toolgate
from tests.integration.harness import running_gateway, write_config
from tests.security.test_http_front import post

pytestmark = pytest.mark.anyio

ORIGIN = "http://localhost:5173"


async def test_settings_set_allowed_origins_lets_that_origin_in_at_once_and_port_waits_for_a_restart(
    toolgate_home: Path,
) -> None:
    async with running_gateway({}) as gw:
        refused = await post(gw.url, token=gw.tokens["agent-a"], Origin=ORIGIN)
        code, out, err = await toolgate("settings", "set", "allowed_origins", ORIGIN, "http://localhost:3000")
        accepted = await post(gw.url, token=gw.tokens["agent-a"], Origin=ORIGIN)
        port_code, _, port_err = await toolgate("settings", "set", "gateway.port", "47999")
        running_port = gw.gateway.config.gateway.port

    assert refused.status_code == 403 and accepted.status_code == 200
    assert (code, out) == (0, ""), err
    assert "gateway.allowed_origins is http://localhost:5173 http://localhost:3000" in err
    assert "The running gateway applied it" in err
    assert port_code == 0 and "takes effect when Toolgate restarts" in port_err
    assert running_port == 47999  # config.json's value is in the running config; the socket stays where it was
    gateway = json.loads(gw.paths.config_file.read_text())["gateway"]
    assert gateway["allowed_origins"] == [ORIGIN, "http://localhost:3000"] and gateway["port"] == 47999


async def test_settings_list_get_set_and_unset_read_and_write_config_json(toolgate_home: Path) -> None:
    paths = Paths.from_env(os.environ)
    write_config(paths, {}, {}, approval_timeout_s=30)

    before = {row["key"]: row for row in await json_lines("settings", "list", "--json")}
    set_codes = [
        (await toolgate("settings", "set", "audit.retention_days", "90"))[0],
        (await toolgate("settings", "set", "max_request_body_mb", "none"))[0],
        (await toolgate("settings", "set", "audit.enabled", "off"))[0],
    ]
    unset_code, _, unset_err = await toolgate("settings", "unset", "approval_timeout_s")
    get_code, got, _ = await toolgate("settings", "get", "retention_days")
    table_code, table, _ = await toolgate("settings")

    assert before["gateway.approval_timeout_s"] == {
        "key": "gateway.approval_timeout_s",
        "value": 30,
        "default": 120.0,
        "applies": "now",
    }
    assert before["audit.retention_days"]["applies"] == "on restart" and len(before) == 11
    assert set_codes == [0, 0, 0] and unset_code == 0
    assert "is back to its default, 120" in unset_err
    assert (get_code, json.loads(got)) == (0, 90.0)
    document = json.loads(paths.config_file.read_text())
    assert "approval_timeout_s" not in document["gateway"] and document["gateway"]["max_request_body_mb"] is None
    assert document["audit"] == {"retention_days": 90.0, "enabled": False}
    assert table_code == 0 and table.splitlines()[0].split() == ["KEY", "VALUE", "DEFAULT", "APPLIES"]
    assert all(len(line) <= 80 for line in table.splitlines())


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("set", "port", "abc"), 1, "gateway.port takes a whole number, found 'abc'"),
        (("set", "port", "70000"), 1, "gateway.port: expected a number of at most 65535"),
        (("set", "approval_timeout_s", "0"), 1, "gateway.approval_timeout_s"),
        (("set", "audit.enabled", "maybe"), 1, "audit.enabled takes true or false"),
        (("set", "port", "1", "2"), 1, "gateway.port takes one value, found 2"),
        (("set", "nope", "1"), 2, "invalid choice: 'nope'"),
    ],
)
async def test_a_settings_change_that_cannot_be_done_says_why_and_leaves_config_json_as_it_was(
    toolgate_home: Path, args: tuple[str, ...], code: int, message: str
) -> None:
    paths = Paths.from_env(os.environ)
    write_config(paths, {}, {})
    before = paths.config_file.read_text()

    exit_code, out, err = await toolgate("settings", *args)

    assert (exit_code, out) == (code, ""), err
    assert message in err, err
    assert paths.config_file.read_text() == before

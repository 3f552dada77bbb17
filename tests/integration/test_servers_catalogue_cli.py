"""End to end: `toolgate servers catalogue` and `servers add NAME --catalogue ID` as real processes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from gateway_core.catalogue import load_catalogue
from gateway_core.paths import Paths
from gateway_core.secrets import open_secret_store
from tests.integration.cli_process import json_lines, toolgate
from tests.integration.harness import write_config

pytestmark = pytest.mark.anyio


async def test_servers_catalogue_lists_the_panels_catalogue(toolgate_home: Path) -> None:
    listed = await json_lines("servers", "catalogue", "--json")
    code, table, _ = await toolgate("servers", "catalogue")

    assert [item["id"] for item in listed] == [item.id for item in load_catalogue()]
    github = next(item for item in listed if item["id"] == "github")
    assert github["inputs"] == [{"id": "token", "label": "Personal access token", "required": True, "secret": True}]
    assert code == 0 and "token (secret)" in table and all(len(line) <= 80 for line in table.splitlines())


async def test_servers_add_catalogue_fills_the_inputs_and_keeps_a_secret_input_in_the_secret_store(
    toolgate_home: Path, tmp_path: Path
) -> None:
    paths = Paths.from_env(os.environ)
    write_config(paths, {}, {})

    fs = await toolgate("servers", "add", "files", "--catalogue", "filesystem", "--input", f"folder={tmp_path}")
    gh = await toolgate("servers", "add", "gh", "--catalogue", "github", stdin="ghp_s3cret\n")

    servers = json.loads(paths.config_file.read_text())["servers"]
    assert fs[0] == 0 and gh[0] == 0, (fs, gh)
    filesystem = ["-y", "@modelcontextprotocol/server-filesystem", str(tmp_path)]
    assert servers["files"] == {"command": "npx", "args": filesystem}
    reference = {"Authorization": "${secret:gh.Authorization}"}
    assert servers["gh"] == {"url": "https://api.githubcopilot.com/mcp/", "headers": reference}
    assert open_secret_store(paths).get("gh.Authorization") == "Bearer ghp_s3cret"
    assert "ghp_s3cret" not in gh[1] + gh[2] + paths.config_file.read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("x", "--catalogue", "nope"), "the catalogue has no server 'nope'"),
        (("x", "--catalogue", "filesystem"), "Fill in: Folder it may use. (--input folder=…)"),
        (("x", "--catalogue", "github", "--input", "token=abc"), "token is a secret: leave it out and type it"),
        (("x", "--catalogue", "time", "--input", "zone=UTC"), "--input takes ID=VALUE with an input of 'time' (none)"),
        (("x", "--input", "a=b", "--", "cmd"), "--input goes with --catalogue ID"),
        (("x", "--catalogue", "time", "--url", "https://a.test/mcp"), "found --url and --catalogue"),
        (("x", "--catalogue", "github"), "no value given"),
    ],
)
async def test_a_catalogue_add_that_cannot_be_done_says_why_and_changes_nothing(
    toolgate_home: Path, args: tuple[str, ...], message: str
) -> None:
    paths = Paths.from_env(os.environ)
    write_config(paths, {}, {})
    before = paths.config_file.read_text()

    code, out, err = await toolgate("servers", "add", *args)

    assert (code, out) == (1, ""), err
    assert err.startswith("Error: ") and message in err, err
    assert paths.config_file.read_text() == before
    assert not (paths.home / "secrets.json").exists()

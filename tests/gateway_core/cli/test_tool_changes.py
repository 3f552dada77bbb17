"""`toolgate tools changes` with no Toolgate running shows what the last one saved; `accept` needs one running."""

from __future__ import annotations

import json

import mcp_types as types
import pytest

from gateway_core.cli import main
from gateway_core.files import write_atomically
from gateway_core.paths import Paths
from gateway_core.pin_file import pins_path
from gateway_core.pinning import ToolPins


def save_a_change(paths: Paths) -> None:
    echo = types.Tool(name="echo", description="Echo.", input_schema={"type": "object"})
    pins = ToolPins()
    pins.observe("fake", [echo], lambda server, tool: False)
    pins.observe("fake", [echo.model_copy(update={"description": "Echo, then leak."})], lambda server, tool: False)
    paths.state_dir.mkdir(parents=True, exist_ok=True)
    write_atomically(pins_path(paths), json.dumps(pins.to_json()))


def test_changes_with_no_toolgate_running_shows_the_diff_the_last_one_saved(capsys: pytest.CaptureFixture[str]):
    save_a_change(Paths.from_env())

    code = main(["tools", "changes"])

    captured = capsys.readouterr()
    assert code == 0
    assert captured.out.splitlines()[0].startswith("fake/echo: description changed since it was accepted (seen ")
    assert '-  "description": "Echo.",' in captured.out.splitlines()
    assert '+  "description": "Echo, then leak.",' in captured.out.splitlines()
    assert captured.err.startswith("Toolgate is not running: these are the changes it recorded when it last ran")


def test_changes_with_nothing_saved_says_so_and_accept_needs_a_running_toolgate(capsys: pytest.CaptureFixture[str]):
    assert main(["tools", "changes", "--json"]) == 0
    listed = capsys.readouterr()
    assert main(["tools", "accept", "fake/echo"]) == 3
    refused = capsys.readouterr()

    assert listed.out == ""
    assert refused.err.startswith("Error: Toolgate is not running")


def test_a_damaged_pins_file_is_one_error_sentence(capsys: pytest.CaptureFixture[str]):
    paths = Paths.from_env()
    paths.state_dir.mkdir(parents=True, exist_ok=True)
    pins_path(paths).write_text("{damaged")

    code = main(["tools", "changes"])

    captured = capsys.readouterr()
    assert code == 1 and captured.out == ""
    assert captured.err.splitlines()[-1].startswith("Error: the pinned tools in ")

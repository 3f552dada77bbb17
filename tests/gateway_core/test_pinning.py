"""Pinned tools: a tool's definition is fingerprinted, a changed one waits for review and asks, accepting pins it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest

from gateway_core.pin_file import UNREADABLE_SUFFIX, PinFile
from gateway_core.pinning import (
    CHANGED_RULE,
    ChangedAgain,
    ChangeKind,
    PinError,
    ToolPins,
    definition,
    fingerprint,
    held_for_review,
)
from gateway_core.policy import AgentPolicy, Effect, Rule

SCHEMA: dict[str, Any] = {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}


def tool(name: str = "write_file", **changes: Any) -> types.Tool:
    fields: dict[str, Any] = {"name": name, "description": "Write a file.", "input_schema": SCHEMA, **changes}
    return types.Tool(**fields)


def never(server: str, tool: str) -> bool:
    return False


def always(server: str, tool: str) -> bool:
    return True


def test_a_fingerprint_is_the_same_whatever_order_the_keys_come_in():
    one = {"description": "d", "inputSchema": {"type": "object", "properties": {"a": {}, "b": {}}}}
    other = json.loads('{"inputSchema": {"properties": {"b": {}, "a": {}}, "type": "object"}, "description": "d"}')

    assert fingerprint(one) == fingerprint(other)


@pytest.mark.parametrize(
    "changed",
    [
        {"description": "Write a file, and mail ~/.ssh to someone."},
        {"title": "Writer"},
        {"input_schema": {**SCHEMA, "properties": {"path": {"type": "string"}, "mode": {"type": "string"}}}},
        {"output_schema": {"type": "object"}},
        {"annotations": types.ToolAnnotations(destructive_hint=True)},
    ],
    ids=["description", "title", "input schema", "output schema", "annotations"],
)
def test_a_fingerprint_changes_with_each_part_of_the_definition(changed: dict[str, Any]):
    assert fingerprint(definition(tool(**changed))) != fingerprint(definition(tool()))


def test_meta_and_icons_are_not_part_of_the_definition():
    decorated = tool(_meta={"x": 1}, icons=[types.Icon(src="https://example.com/i.png")])

    assert fingerprint(definition(decorated)) == fingerprint(definition(tool()))


def test_the_first_listing_of_a_server_pins_its_tools_without_a_change_to_review():
    pins = ToolPins()

    fresh = pins.observe("fs", [tool(), tool("read_file")], always)

    assert fresh == [] and pins.changes() == []
    assert set(pins.pins()["fs"]) == {"write_file", "read_file"}


def test_a_changed_description_waits_for_review_and_going_back_ends_it():
    pins = ToolPins()
    pins.observe("fs", [tool()], never)

    fresh = pins.observe("fs", [tool(description="Now also uploads it.")], never)
    again = pins.observe("fs", [tool(description="Now also uploads it.")], never)
    change = pins.change("fs", "write_file")
    pins.observe("fs", [tool()], never)

    assert [c.kind for c in fresh] == [ChangeKind.CHANGED] and again == []
    assert change is not None and change.fields == ("description",)
    assert change.old == definition(tool()) and change.new["description"] == "Now also uploads it."
    assert pins.change("fs", "write_file") is None


def test_accepting_pins_what_the_server_lists_now():
    pins = ToolPins()
    pins.observe("fs", [tool()], never)
    pins.observe("fs", [tool(annotations=types.ToolAnnotations(destructive_hint=True))], never)

    accepted = pins.accept("fs", "write_file")
    fresh = pins.observe("fs", [tool(annotations=types.ToolAnnotations(destructive_hint=True))], never)

    assert [c.tool for c in accepted] == ["write_file"] and fresh == [] and pins.changes() == []
    assert pins.pins()["fs"]["write_file"].definition["annotations"] == {"destructiveHint": True}


def test_accepting_what_changed_again_since_it_was_shown_accepts_nothing():
    pins = ToolPins()
    pins.observe("fs", [tool()], never)
    pins.observe("fs", [tool(description="v2")], never)
    shown = pins.changes()[0].fingerprint
    pins.observe("fs", [tool(description="v3")], never)

    with pytest.raises(ChangedAgain):
        pins.accept("fs", "write_file", seen=shown)
    with pytest.raises(PinError, match="no change waiting for review"):
        pins.accept("fs", "read_file")
    assert pins.change("fs", "write_file") is not None


def test_a_new_tool_on_a_known_server_is_listed_as_new_only_when_an_agent_may_call_it_unasked():
    pins = ToolPins()
    pins.observe("fs", [tool()], always)

    pins.observe("fs", [tool(), tool("delete_file")], always)
    pins.observe("fs", [tool(), tool("delete_file"), tool("chmod")], never)

    assert [(c.tool, c.kind) for c in pins.changes()] == [("delete_file", ChangeKind.NEW)]
    assert held_for_review(decision(Effect.ALLOW), pins.change("fs", "delete_file")).effect is Effect.ALLOW
    assert [c.tool for c in pins.accept("fs")] == ["delete_file"] and pins.changes() == []


def decision(effect: Effect) -> Any:
    policy = AgentPolicy("cursor", Effect.DENY, [Rule(match="fs/*", effect=effect)])
    return policy.evaluate("fs", "write_file", now=0.0)


def test_a_changed_tool_asks_where_it_was_allowed_and_a_deny_stays_a_deny():
    pins = ToolPins()
    pins.observe("fs", [tool()], never)
    pins.observe("fs", [tool(description="v2")], never)
    change = pins.change("fs", "write_file")

    held = held_for_review(decision(Effect.ALLOW), change)

    assert held.effect is Effect.ASK
    assert held.rule_text == f"{CHANGED_RULE} (fs/* → allow)"
    assert "the definition of fs/write_file changed since it was accepted (description)" in held.reason
    assert "`toolgate tools accept fs/write_file`" in held.reason
    assert held_for_review(decision(Effect.DENY), change).effect is Effect.DENY
    assert held_for_review(decision(Effect.ALLOW), None).effect is Effect.ALLOW


def test_pins_and_changes_read_back_as_they_were_written():
    pins = ToolPins()
    pins.observe("fs", [tool()], always)
    pins.observe("fs", [tool(description="v2"), tool("new")], always)

    again = ToolPins.from_json(json.loads(json.dumps(pins.to_json())))

    assert again.changes() == pins.changes()
    assert again.pins() == pins.pins()


@pytest.mark.anyio
async def test_the_pin_file_is_written_in_one_step_and_replaces_a_planted_link(tmp_path: Path):
    target = tmp_path / "elsewhere.txt"
    target.write_text("not yours")
    path = tmp_path / "state" / "pins.json"
    path.parent.mkdir()
    os.symlink(target, path)
    pin_file = PinFile(path)
    pin_file.pins.observe("fs", [tool()], never)
    pin_file.save_soon()

    await pin_file._save()
    loaded = PinFile(path).load()

    assert target.read_text() == "not yours" and not path.is_symlink()
    assert loaded.pins() == pin_file.pins.pins()


def test_an_unreadable_pin_file_is_kept_aside_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    path = tmp_path / "pins.json"
    path.write_text("{not json")

    with caplog.at_level("WARNING"):
        pins = PinFile(path).load()

    assert pins.pins() == {} and not path.exists()
    assert path.with_name("pins.json" + UNREADABLE_SUFFIX).read_text() == "{not json"
    assert "are not readable" in caplog.text


@pytest.mark.anyio
async def test_a_server_not_listed_in_this_run_keeps_its_pins_and_its_change_when_the_file_is_saved(tmp_path: Path):
    path = tmp_path / "pins.json"
    first = PinFile(path)
    first.pins.observe("down", [tool()], never)
    first.pins.observe("down", [tool(description="v2")], never)
    first.save_soon()
    await first._save()

    second = PinFile(path)
    second.load()
    second.pins.observe("up", [tool("read_file")], never)
    second.save_soon()
    await second._save()
    third = PinFile(path).load()

    assert set(third.pins()) == {"down", "up"}
    assert [(c.server, c.tool, c.kind) for c in third.changes()] == [("down", "write_file", ChangeKind.CHANGED)]

"""Undo of an answer that wrote a rule: from the window that comes right after it, and later from the agent's tree."""

import json

import mcp_types as types
import pytest
from PySide6.QtCore import Qt

from app.panels.agents import AgentsPanel
from app.panels.permissions_model import EFFECTIVE, FILTER_ROLE, NAME
from app.prompt import ApprovalPrompt
from app.undo_toast import UndoToast
from tests.app.harness import connected_agent, eventually, run_async

# Qt raises every newly shown tool window; the offscreen platform used by tests says it cannot.
pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support raise\(\)")

ASKS_FOR_ECHO = {"name": "Cursor", "default": "allow", "rules": [{"match": "fake/echo", "effect": "ask"}]}


def text_of(result: types.CallToolResult) -> str:
    return " ".join(block.text for block in result.content if isinstance(block, types.TextContent))


def rules_in_file(bridge) -> list[dict[str, object]]:
    return json.loads(bridge.config_path.read_text())["agents"]["cursor"].get("rules", [])


def windows(bridge, qtbot) -> tuple[ApprovalPrompt, UndoToast]:
    prompt = ApprovalPrompt(bridge)
    qtbot.addWidget(prompt)
    toast = UndoToast(bridge)
    qtbot.addWidget(toast)
    toast.set_tray(None, avoid=prompt)
    return prompt, toast


async def answerable(prompt: ApprovalPrompt) -> None:
    await eventually(lambda: prompt.isVisible() and prompt.current is not None, "the prompt to show a request")
    await eventually(lambda: prompt.answerable, "the prompt to take answers")


def test_undo_right_after_always_allow_puts_back_the_ask_rule_and_the_next_call_asks_again(qloop, qtbot):
    async def scenario():
        async with connected_agent("cursor", ASKS_FOR_ECHO) as (bridge, cursor):
            prompt, toast = windows(bridge, qtbot)
            first = cursor.start_call("fake__echo", {"text": "first"})
            await answerable(prompt)
            assert not toast.isVisible()  # nothing to undo while the person is still asked
            request_id = prompt.current.id
            qtbot.mouseClick(prompt.allow_always_button, Qt.MouseButton.LeftButton)
            assert text_of(await first.result()) == "first"
            await eventually(toast.isVisible, "the offer to undo")

            assert toast.offered == ("cursor", request_id)
            assert toast.message.text() == "Cursor: fake/echo → allow (was: ask)."
            assert [(r["match"], r["effect"]) for r in rules_in_file(bridge)] == [("fake/echo", "allow")]
            qtbot.mouseClick(toast.undo_button, Qt.MouseButton.LeftButton)

            assert rules_in_file(bridge) == [{"match": "fake/echo", "effect": "ask"}]
            assert toast.message.text().startswith("Undone.")
            second = cursor.start_call("fake__echo", {"text": "second"})
            await answerable(prompt)  # asked again: the "always" is gone
            qtbot.mouseClick(prompt.deny_button, Qt.MouseButton.LeftButton)
            assert (await second.result()).is_error
            await eventually(lambda: not toast.isVisible(), "the undo window to go")

    run_async(qloop, scenario())


def test_a_timed_grant_kept_at_first_is_undone_later_from_the_agent_s_tree(qloop, qtbot):
    async def scenario():
        async with connected_agent("cursor", {"name": "Cursor", "default": "ask"}) as (bridge, cursor):
            prompt, toast = windows(bridge, qtbot)
            first = cursor.start_call("fake__echo", {"text": "first"})
            await answerable(prompt)
            prompt.allow_for_button.menu().actions()[0].trigger()  # "For 15 minutes"
            assert text_of(await first.result()) == "first"
            await eventually(toast.isVisible, "the offer to undo")
            assert toast.message.text().startswith("Cursor: fake/echo → allow until ")
            qtbot.mouseClick(toast.dismiss_button, Qt.MouseButton.LeftButton)
            assert not toast.isVisible() and len(rules_in_file(bridge)) == 1

            agents = AgentsPanel(bridge)
            qtbot.addWidget(agents)
            agents.select_agent("cursor")
            pane = agents.permissions
            server = next(
                pane.proxy.index(r, NAME)
                for r in range(pane.proxy.rowCount())
                if pane.proxy.index(r, NAME).data(FILTER_ROLE) == "fake"
            )
            echo = next(
                pane.proxy.index(r, NAME, server)
                for r in range(pane.proxy.rowCount(server))
                if pane.proxy.index(r, NAME, server).data() == "echo"
            )
            menu = pane.grant_menu(echo)
            assert menu is not None
            undo = menu.actions()[1]
            assert undo.text().startswith("Undo the answer of ") and undo.text().endswith(
                " that wrote " + (bridge.api.config.agents["cursor"].rules[0].text)
            )
            undo.trigger()

            assert rules_in_file(bridge) == []
            assert echo.siblingAtColumn(EFFECTIVE).data() == "Ask"
            again = cursor.start_call("fake__echo", {"text": "again"})
            await answerable(prompt)  # asked again: the grant is gone
            qtbot.mouseClick(prompt.deny_button, Qt.MouseButton.LeftButton)
            assert (await again.result()).is_error

    run_async(qloop, scenario())

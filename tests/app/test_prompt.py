import json
import re
import time
from datetime import datetime

import mcp_types as types
import pytest
from PySide6.QtCore import QPoint, QRect, QSize, Qt
from PySide6.QtWidgets import QApplication, QSystemTrayIcon

from app import prompt as prompt_module
from app.common import fold
from app.panels.agents import AgentsPanel
from app.panels.permissions_model import EFFECTIVE, FILTER_ROLE, GRANT_ROLE, NAME
from app.prompt import ApprovalPrompt, fit_inside, prompt_position
from app.window import MainWindow
from gateway_core import Answer
from tests.app.harness import connected_agent, eventually, run_async
from tests.app.test_window import mnemonic, visible_buttons
from tests.integration.harness import stdio_fake

# Qt raises every newly shown tool window; the offscreen platform used by tests says it cannot.
pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support raise\(\)")

CURSOR = {"name": "Cursor", "default": "ask"}


class RecordingTray(QSystemTrayIcon):
    """The OS tray (outside the product): supports messages and records the ones shown."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def supportsMessages(self) -> bool:
        return True

    def showMessage(self, title: str, text: str, *_: object) -> None:  # type: ignore[override]
        self.messages.append(f"{title}: {text}")


def text_of(result: types.CallToolResult) -> str:
    return " ".join(block.text for block in result.content if isinstance(block, types.TextContent))


def tool_row(pane, server: str, tool: str):
    proxy = pane.proxy
    parent = next(
        proxy.index(r, NAME) for r in range(proxy.rowCount()) if proxy.index(r, NAME).data(FILTER_ROLE) == server
    )
    return next(
        proxy.index(r, NAME, parent)
        for r in range(proxy.rowCount(parent))
        if proxy.index(r, NAME, parent).data() == tool
    )


def make_prompt(bridge, qtbot) -> ApprovalPrompt:
    prompt = ApprovalPrompt(bridge)
    qtbot.addWidget(prompt)
    return prompt


async def shown_and_answerable(prompt: ApprovalPrompt) -> None:
    await eventually(lambda: prompt.isVisible() and prompt.current is not None, "the prompt to show a request")
    await eventually(lambda: prompt.answerable, "the prompt to take answers")


def test_an_ask_call_shows_the_prompt_and_allow_once_completes_the_call(qloop, qtbot):
    async def scenario():
        async with connected_agent("cursor", CURSOR) as (bridge, cursor):
            prompt = make_prompt(bridge, qtbot)
            shown = []
            prompt.shown.connect(shown.append)
            call = cursor.start_call("fake__echo", {"text": "hi"})
            await shown_and_answerable(prompt)
            assert prompt.windowTitle() == "Approval needed"
            assert prompt.headline.text() == "Cursor wants to run fake__echo"
            assert json.loads(prompt.arguments_view.toPlainText()) == {"text": "hi"}
            assert prompt.rule_label.text() == "Rule: default → ask"
            assert not prompt.queue_label.isVisible()
            assert shown == [bridge.api.pending_approvals()[0].id]
            qtbot.mouseClick(prompt.allow_once_button, Qt.MouseButton.LeftButton)
            result = await call.result()
            assert text_of(result) == "hi" and not result.is_error
            assert not prompt.isVisible()

    run_async(qloop, scenario())


def test_a_prompt_request_offers_no_always_answer_and_says_what_is_wanted(qloop, qtbot):
    async def scenario():
        async with connected_agent("cursor", CURSOR) as (bridge, cursor):
            prompt = make_prompt(bridge, qtbot)
            request = cursor.start(cursor.client.get_prompt, "fake__greet", {"name": "Ada"})
            await shown_and_answerable(prompt)
            assert prompt.headline.text() == "Cursor wants the prompt fake__greet"
            assert prompt.details.text() == "Server: fake · prompt fake__greet"
            assert not prompt.allow_always_button.isVisible()
            assert not prompt.deny_always_button.isVisible()
            assert prompt.allow_session_button.isVisible()
            qtbot.mouseClick(prompt.allow_once_button, Qt.MouseButton.LeftButton)
            assert (await request.result()).messages

    run_async(qloop, scenario())


def test_always_allow_writes_the_rule_and_the_next_call_goes_through_without_a_prompt(qloop, qtbot):
    async def scenario():
        async with connected_agent("cursor", CURSOR) as (bridge, cursor):
            prompt = make_prompt(bridge, qtbot)
            shown = []
            prompt.shown.connect(shown.append)
            first = cursor.start_call("fake__echo", {"text": "first"})
            await shown_and_answerable(prompt)
            qtbot.mouseClick(prompt.allow_always_button, Qt.MouseButton.LeftButton)
            assert text_of(await first.result()) == "first"
            (rule,) = json.loads(bridge.config_path.read_text())["agents"]["cursor"]["rules"]
            assert (rule["match"], rule["effect"], rule["source"]["answer"]) == ("fake/echo", "allow", shown[0])
            assert text_of(await cursor.client.call_tool("fake__echo", {"text": "second"})) == "second"
            assert len(shown) == 1
            assert not prompt.isVisible()

    run_async(qloop, scenario())


def test_allow_for_15_minutes_writes_a_timed_rule_the_tree_shows_counting_down_until_it_is_ended(qloop, qtbot):
    async def scenario():
        async with connected_agent("cursor", CURSOR) as (bridge, cursor):
            prompt = make_prompt(bridge, qtbot)
            shown = []
            prompt.shown.connect(shown.append)
            first = cursor.start_call("fake__echo", {"text": "first"})
            await shown_and_answerable(prompt)
            request_id = prompt.current.id
            assert prompt.allow_for_button.isVisible() and prompt.deny_for_button.isVisible()
            before = time.time()
            prompt.allow_for_button.menu().actions()[0].trigger()  # "For 15 minutes"
            assert text_of(await first.result()) == "first"

            (rule,) = json.loads(bridge.config_path.read_text())["agents"]["cursor"]["rules"]
            assert (rule["match"], rule["effect"], rule["source"]["answer"]) == ("fake/echo", "allow", request_id)
            expires = datetime.fromisoformat(rule["expires"]).timestamp()
            assert before + 900 - 1 <= expires <= time.time() + 900
            assert text_of(await cursor.client.call_tool("fake__echo", {"text": "second"})) == "second"
            assert len(shown) == 1

            agents = AgentsPanel(bridge)
            qtbot.addWidget(agents)
            agents.select_agent("cursor")
            pane = agents.permissions
            pane.set_agent("cursor")
            echo = tool_row(pane, "fake", "echo")
            assert echo.siblingAtColumn(EFFECTIVE).data() in ("Allow · 15 min left", "Allow · 14 min left")
            assert echo.siblingAtColumn(EFFECTIVE).data(GRANT_ROLE) == expires
            assert pane.grant_menu(tool_row(pane, "fake", "add")) is None
            menu = pane.grant_menu(echo)
            assert menu is not None and menu.actions()[0].text() == "End the timed grant for fake/echo now"
            menu.actions()[0].trigger()

            assert json.loads(bridge.config_path.read_text())["agents"]["cursor"]["rules"] == []
            assert tool_row(pane, "fake", "echo").siblingAtColumn(EFFECTIVE).data() == "Ask"
            third = cursor.start_call("fake__echo", {"text": "third"})
            await eventually(lambda: len(shown) == 2, "the prompt to ask again")
            await shown_and_answerable(prompt)
            qtbot.mouseClick(prompt.deny_button, Qt.MouseButton.LeftButton)
            assert (await third.result()).is_error

    run_async(qloop, scenario())


def test_always_allow_when_the_path_is_under_its_folder_writes_a_conditional_rule(qloop, qtbot, tmp_path):
    project = tmp_path / "project"
    project.mkdir()

    async def scenario():
        async with connected_agent("cursor", CURSOR) as (bridge, cursor):
            prompt = make_prompt(bridge, qtbot)
            shown = []
            prompt.shown.connect(shown.append)
            first = cursor.start_call("fake__echo", {"text": str(project / "a.md")})
            await shown_and_answerable(prompt)
            assert prompt.allow_under_button.isVisible()
            assert prompt.allow_under_button.text() == f"Always allow &when text is under {project.resolve()}"
            letters = [mnemonic(button.text()) for button in visible_buttons(prompt)]
            assert None not in letters and len(set(letters)) == len(letters) == 8  # each answer its own key
            qtbot.mouseClick(prompt.allow_under_button, Qt.MouseButton.LeftButton)
            assert text_of(await first.result()) == str(project / "a.md")

            (rule,) = json.loads(bridge.config_path.read_text())["agents"]["cursor"]["rules"]
            assert rule["when"] == {"text": {"under": [str(project.resolve())]}}
            assert (rule["match"], rule["effect"], rule["source"]["answer"]) == ("fake/echo", "allow", shown[0])
            inside = await cursor.client.call_tool("fake__echo", {"text": str(project / "b.md")})
            assert text_of(inside) == str(project / "b.md") and len(shown) == 1
            outside = cursor.start_call("fake__echo", {"text": str(tmp_path / "c.md")})
            await eventually(lambda: len(shown) == 2, "the prompt to ask about a path outside the folder")
            await shown_and_answerable(prompt)
            assert prompt.rule_label.text().endswith("(the rules looked at: text)")
            qtbot.mouseClick(prompt.deny_button, Qt.MouseButton.LeftButton)
            assert (await outside.result()).is_error

    run_async(qloop, scenario())


def test_enter_allows_once_and_escape_denies(qloop, qtbot):
    async def scenario():
        async with connected_agent("cursor", CURSOR) as (bridge, cursor):
            prompt = make_prompt(bridge, qtbot)
            yes = cursor.start_call("fake__echo", {"text": "yes"})
            await shown_and_answerable(prompt)
            qtbot.keyClick(prompt, Qt.Key.Key_Return)
            allowed = await yes.result()
            await eventually(lambda: not prompt.isVisible(), "the prompt to hide")
            no = cursor.start_call("fake__echo", {"text": "no"})
            await shown_and_answerable(prompt)
            qtbot.keyClick(prompt, Qt.Key.Key_Escape)
            denied = await no.result()
            assert text_of(allowed) == "yes" and not allowed.is_error
            assert denied.is_error and "denied" in text_of(denied)

    run_async(qloop, scenario())


def test_a_key_pressed_as_the_prompt_appears_is_ignored(qloop, qtbot, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(prompt_module, "ANSWER_DELAY_S", 60.0)

    async def scenario():
        async with connected_agent("cursor", CURSOR) as (bridge, cursor):
            prompt = make_prompt(bridge, qtbot)
            call = cursor.start_call("fake__echo", {"text": "hi"})
            await eventually(lambda: prompt.isVisible(), "the prompt to show")
            qtbot.keyClick(prompt, Qt.Key.Key_Return)
            assert not prompt.allow_once_button.isEnabled()
            [request] = bridge.api.pending_approvals()
            bridge.api.answer_approval(request.id, Answer.DENY)
            assert prompt.note_label.text() == "Denied elsewhere"
            assert (await call.result()).is_error

    run_async(qloop, scenario())


def test_two_waiting_calls_queue_in_one_window_and_answering_the_first_shows_the_second(qloop, qtbot):
    async def scenario():
        async with connected_agent("cursor", CURSOR) as (bridge, cursor):
            prompt = make_prompt(bridge, qtbot)
            echo = cursor.start_call("fake__echo", {"text": "one"})
            await shown_and_answerable(prompt)
            add = cursor.start_call("fake__add", {"a": 2, "b": 3})
            await eventually(lambda: prompt.queue_label.isVisible(), "the queue count")
            assert prompt.queue_label.text() == "1 of 2 waiting"
            assert prompt.headline.text() == "Cursor wants to run fake__echo"
            qtbot.mouseClick(prompt.allow_once_button, Qt.MouseButton.LeftButton)
            assert prompt.isVisible()
            assert prompt.headline.text() == "Cursor wants to run fake__add"
            assert not prompt.queue_label.isVisible()
            await shown_and_answerable(prompt)
            qtbot.mouseClick(prompt.deny_button, Qt.MouseButton.LeftButton)
            assert text_of(await echo.result()) == "one"
            assert (await add.result()).is_error
            assert not prompt.isVisible()

    run_async(qloop, scenario())


def test_a_request_answered_elsewhere_says_so_and_then_the_next_one_shows(qloop, qtbot):
    async def scenario():
        async with connected_agent("cursor", CURSOR) as (bridge, cursor):
            prompt = make_prompt(bridge, qtbot)
            shown = []
            prompt.shown.connect(shown.append)
            echo = cursor.start_call("fake__echo", {"text": "one"})
            await shown_and_answerable(prompt)
            add = cursor.start_call("fake__add", {"a": 2, "b": 3})
            await eventually(lambda: prompt.waiting_count == 2, "the second request")
            bridge.api.answer_approval(shown[0], Answer.ALLOW_ONCE)
            assert prompt.note_label.text() == "Allowed elsewhere"
            assert prompt.queue_label.text() == "1 more waiting"
            await eventually(lambda: len(shown) == 2, "the second request to show")
            assert prompt.headline.text() == "Cursor wants to run fake__add"
            assert not prompt.note_label.isVisible()
            await shown_and_answerable(prompt)
            qtbot.keyClick(prompt, Qt.Key.Key_Return)
            assert text_of(await echo.result()) == "one"
            assert text_of(await add.result()) == "5"
            assert not prompt.isVisible()

    run_async(qloop, scenario())


def test_a_withdrawn_request_says_so_and_the_prompt_closes_itself(qloop, qtbot):
    async def scenario():
        # A 2026 agent: see test_a_withdrawn_request_leaves_the_list_and_shows_in_recent_answers.
        async with connected_agent("cursor", CURSOR, mode="2026-07-28") as (bridge, cursor):
            prompt = make_prompt(bridge, qtbot)
            call = cursor.start_call("fake__echo", {"text": "hi"})
            await shown_and_answerable(prompt)
            await call.withdraw()
            await eventually(lambda: prompt.note_label.isVisible(), "the withdrawn note")
            assert prompt.note_label.text() == "Withdrawn by the agent"
            assert not prompt.answerable and not prompt.allow_once_button.isEnabled()
            await eventually(lambda: not prompt.isVisible(), "the prompt to close itself")
            assert bridge.api.pending_approvals() == []

    run_async(qloop, scenario())


def test_the_countdown_runs_down_and_a_timeout_denies_and_closes_the_prompt(qloop, qtbot):
    async def scenario():
        async with connected_agent("cursor", CURSOR, approval_timeout_s=2) as (bridge, cursor):
            prompt = make_prompt(bridge, qtbot)
            call = cursor.start_call("fake__echo", {"text": "hi"})
            await eventually(lambda: prompt.isVisible(), "the prompt to show")
            assert re.fullmatch(r"Denied automatically in 0:0[12]", prompt.countdown_label.text())
            await eventually(lambda: prompt.countdown_label.text().endswith("0:01"), "the countdown to tick")
            await eventually(lambda: prompt.note_label.isVisible(), "the timed-out note")
            assert prompt.note_label.text() == "Timed out — denied"
            await eventually(lambda: not prompt.isVisible(), "the prompt to close itself")
            assert (await call.result()).is_error

    run_async(qloop, scenario())


def test_long_arguments_are_folded_until_the_person_asks_for_everything(qloop, qtbot):
    async def scenario():
        async with connected_agent("cursor", CURSOR) as (bridge, cursor):
            prompt = make_prompt(bridge, qtbot)
            long_text = "x" * 1000
            cursor.start_call("fake__echo", {"text": long_text})
            await shown_and_answerable(prompt)
            assert "(600 more characters)" in prompt.arguments_view.toPlainText()
            assert prompt.show_all_button.isVisible()
            qtbot.mouseClick(prompt.show_all_button, Qt.MouseButton.LeftButton)
            assert json.loads(prompt.arguments_view.toPlainText()) == {"text": long_text}
            assert not prompt.show_all_button.isVisible()
            prompt.deny_button.click()

    run_async(qloop, scenario())


def test_a_prompt_made_while_a_call_waits_shows_it_on_request_and_closing_leaves_it_waiting(qloop, qtbot):
    async def scenario():
        async with connected_agent("a", {"default": "ask"}) as (bridge, agent):
            call = agent.start_call("fake__echo", {"text": "hi"})
            await eventually(lambda: bridge.api.pending_approvals(), "the waiting call")
            prompt = make_prompt(bridge, qtbot)
            assert not prompt.isVisible() and prompt.waiting_count == 1
            prompt.show_pending()
            assert prompt.headline.text() == "a wants to run fake__echo"
            prompt.close()
            assert len(bridge.api.pending_approvals()) == 1
            prompt.show_pending()
            await shown_and_answerable(prompt)
            prompt.allow_once_button.click()
            assert text_of(await call.result()) == "hi"

    run_async(qloop, scenario())


def test_the_prompt_sits_beside_the_tray_icon_or_in_a_screen_corner():
    screen = QRect(0, 0, 1920, 1040)  # a 40 px panel at the bottom
    size = QSize(560, 300)
    assert prompt_position(size, screen, None, top=False) == QPoint(1920 - 560 - 12, 1040 - 300 - 12)
    assert prompt_position(size, screen, None, top=True) == QPoint(1920 - 560 - 12, 12)
    bottom_tray = QRect(1800, 1045, 24, 24)
    assert prompt_position(size, screen, bottom_tray, top=False) == QPoint(1920 - 560 - 12, 1040 - 300 - 12)
    top_tray = QRect(1000, 2, 24, 24)
    assert prompt_position(size, QRect(0, 30, 1920, 1050), top_tray, top=True) == QPoint(1011 - 280, 30 + 12)


def test_folding_shortens_long_strings_and_lists_and_says_how_much():
    folded = fold({"body": "a" * 450, "items": list(range(60)), "n": 3})
    assert folded["body"] == "a" * 400 + "… (50 more characters)"
    assert folded["items"][-1] == "… (10 more items)" and len(folded["items"]) == 51
    assert folded["n"] == 3


def test_no_balloon_covers_the_prompt_while_it_is_on_screen_and_one_comes_when_it_is_closed(
    qloop, qtbot, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(prompt_module, "NOTIFY_AFTER_MS", 50)

    async def scenario():
        async with connected_agent("cursor", CURSOR) as (bridge, cursor):
            prompt = make_prompt(bridge, qtbot)
            tray = RecordingTray()
            prompt.set_tray(tray)
            checked = []
            real_check = prompt._notify_if_unseen
            monkeypatch.setattr(prompt, "_notify_if_unseen", lambda: (real_check(), checked.append(1)))
            first = cursor.start_call("fake__echo", {"text": "one"})
            await shown_and_answerable(prompt)
            second = cursor.start_call("fake__add", {"a": 1, "b": 2})
            await eventually(lambda: prompt.waiting_count == 2, "the second request")
            await eventually(lambda: len(checked) == 2, "the prompt to check it is on screen")
            assert prompt.on_screen() and tray.messages == []
            prompt.close()
            assert not prompt.on_screen()
            third = cursor.start_call("fake__echo", {"text": "three"})
            await eventually(lambda: prompt.waiting_count == 3, "the third request")
            await shown_and_answerable(prompt)  # a new request brings the prompt back …
            await eventually(lambda: len(checked) == 3, "the check for the third request")
            assert tray.messages == []
            prompt.hide()  # … and when it is not on screen at the check (e.g. closed at once), the tray says so
            real_check()
            assert tray.messages == ["Approval needed: Cursor wants to run fake__echo"]
            real_check()
            assert len(tray.messages) == 1  # once per request
            for call in (first, second, third):
                prompt.show_pending()
                await shown_and_answerable(prompt)
                prompt.deny_button.click()
                assert (await call.result()).is_error

    run_async(qloop, scenario())


def test_the_whole_prompt_frame_stays_inside_the_work_area_and_still_while_the_queue_changes(qloop, qtbot):
    async def scenario():
        async with connected_agent("cursor", CURSOR) as (bridge, cursor):
            prompt = make_prompt(bridge, qtbot)
            first = cursor.start_call("fake__echo", {"text": "x" * 1000})  # folded: a taller prompt
            await shown_and_answerable(prompt)
            prompt._settle()
            work_area = prompt.screen().availableGeometry()
            frame = prompt.frameGeometry()
            assert frame != prompt.geometry(), "the offscreen platform draws a frame"
            assert work_area.contains(frame)
            assert frame.bottom() == work_area.bottom() - prompt_module.SCREEN_MARGIN
            second = cursor.start_call("fake__add", {"a": 2, "b": 3})
            await eventually(lambda: prompt.queue_label.isVisible(), "the queue count")
            assert prompt.frameGeometry() == frame
            prompt.allow_once_button.click()
            await shown_and_answerable(prompt)
            assert prompt.headline.text() == "Cursor wants to run fake__add"
            assert prompt.frameGeometry() == frame  # a shorter request neither shrinks nor moves it
            prompt.allow_once_button.click()
            assert text_of(await first.result()).startswith("xxx")
            assert text_of(await second.result()) == "5"

    run_async(qloop, scenario())


def test_a_frame_outside_the_work_area_is_moved_inside_it():
    area = QRect(0, 0, 1920, 1040)
    assert fit_inside(QRect(1348, 740, 560, 300), area) == QPoint(1348, 728)
    assert fit_inside(QRect(100, 100, 560, 300), area) == QPoint(100, 100)
    assert fit_inside(QRect(1800, -20, 560, 300), area) == QPoint(1920 - 560 - 12, 12)
    assert fit_inside(QRect(0, 900, 560, 2000), area) == QPoint(12, 12)


def test_the_first_tab_does_not_reach_an_answer_and_space_there_answers_nothing(qloop, qtbot):
    async def scenario():
        async with connected_agent("cursor", CURSOR) as (bridge, cursor):
            prompt = make_prompt(bridge, qtbot)
            call = cursor.start_call("fake__echo", {"text": "hi"})
            await shown_and_answerable(prompt)
            answers = set(prompt._answers)
            assert QApplication.focusWidget() is prompt
            qtbot.keyClick(prompt, Qt.Key.Key_Space)
            qtbot.keyClick(prompt, Qt.Key.Key_Tab)
            focused = QApplication.focusWidget()
            assert focused is prompt.arguments_view
            qtbot.keyClick(focused, Qt.Key.Key_Space)
            assert len(bridge.api.pending_approvals()) == 1
            # The buttons' Tab order puts Deny before the allowing answers.
            chain, widget = [], prompt.arguments_view
            for _ in range(100):
                widget = widget.nextInFocusChain()
                if widget in answers and widget.text() not in chain:
                    chain.append(widget.text())
            assert chain[:5] == ["&Deny", "Always de&ny", "Allow &once", "Allow this &session", "&Always allow"]
            qtbot.keyClick(prompt, Qt.Key.Key_O, Qt.KeyboardModifier.AltModifier)  # the mnemonic of Allow once
            assert text_of(await call.result()) == "hi"

    run_async(qloop, scenario())


def test_a_call_held_for_a_changed_definition_offers_review_change_which_opens_the_servers_changes_tab(qloop, qtbot):
    async def scenario():
        entry = {"name": "Cursor", "default": "allow", "rules": [{"match": "fake/add", "effect": "ask"}]}
        servers = {"fake": stdio_fake("--redescribable")}
        async with connected_agent("cursor", entry, servers=servers) as (bridge, cursor):
            prompt = make_prompt(bridge, qtbot)
            window = MainWindow(bridge, hide_to_tray=lambda: False, quit_app=lambda: None)
            qtbot.addWidget(window)
            prompt.review_requested.connect(window.show_changes)  # as the app session wires them

            plain = cursor.start_call("fake__add", {"a": 1, "b": 2})
            await shown_and_answerable(prompt)
            offered_for_plain_ask = not prompt.review_button.isHidden()
            qtbot.mouseClick(prompt.deny_button, Qt.MouseButton.LeftButton)
            await plain.result()

            await cursor.client.call_tool("fake__redescribe", {"name": "echo", "description": "Echo; mail ~/.ssh."})
            await eventually(lambda: len(bridge.api.tool_changes()) == 1, "the tool's change to wait for review")
            held = cursor.start_call("fake__echo", {"text": "hi"})
            await eventually(lambda: prompt.current is not None and prompt.current.tool == "echo", "the held call")
            await shown_and_answerable(prompt)
            offered = prompt.review_button.isVisible()
            qtbot.mouseClick(prompt.review_button, Qt.MouseButton.LeftButton)
            servers_panel = window.panels["servers"]
            detail = servers_panel.detail
            opened = (
                window.isVisible(),
                window.current_panel(),
                servers_panel.selected_server(),
                detail.tabs.currentWidget() is detail.review,
                [change.tool for change in detail.review.changes],
            )
            still_waiting = [request.tool for request in bridge.api.pending_approvals()]
            qtbot.mouseClick(prompt.deny_button, Qt.MouseButton.LeftButton)
            await held.result()

        assert offered_for_plain_ask is False
        assert offered is True
        assert opened == (True, "servers", "fake", True, ["echo"])
        # Opening the review answers nothing: the call still waits for the person's answer.
        assert still_waiting == ["echo"]

    run_async(qloop, scenario())

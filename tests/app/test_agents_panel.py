import json

import anyio
import pytest
from mcp import types
from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QComboBox, QWidget

from app.panels.agents import AgentsPanel
from app.panels.permissions_model import EFFECTIVE, FILTER_ROLE, NAME, SETTING, WHY
from gateway_core import Effect, Rule, ToolsMode, load_config
from gateway_core.config.edit import set_agent_tools
from tests.app.harness import WAIT_S, eventually, run_async, running_bridge
from tests.fakes.fake_server import FakeServer
from tests.fakes.launch import FAKE_TOOL_COUNT
from tests.integration.harness import agent_client, stdio_fake

NOW = 1_800_000_000.0  # a fixed time: these rules have no expiry


FAKE_TOOLS = [tool.name for tool in FakeServer("fake", extra_tools=0).tools]  # in the order the fake lists them


def make_panel(bridge, qtbot):
    # A layout-less host window: the offscreen platform warns when a top-level window's size hints
    # change (as they do when inline forms open), and Qt warnings fail tests.
    host = QWidget()
    qtbot.addWidget(host)
    panel = AgentsPanel(bridge, host)
    panel.resize(1000, 700)
    host.resize(1000, 700)
    host.show()
    panel.test_host = host  # qtbot holds widgets weakly; the host must live as long as the panel
    return panel


def clipboard():
    return QGuiApplication.clipboard().text()


def server_index(panel, server, column=NAME):
    proxy = panel.permissions.proxy
    for row in range(proxy.rowCount()):
        if proxy.index(row, NAME).data(FILTER_ROLE) == server:
            return proxy.index(row, column)
    return QModelIndex()


def tool_names(panel, server):
    proxy = panel.permissions.proxy
    parent = server_index(panel, server)
    return [proxy.index(row, NAME, parent).data() for row in range(proxy.rowCount(parent))]


def tool_index(panel, server, tool, column=NAME):
    proxy = panel.permissions.proxy
    parent = server_index(panel, server)
    row = tool_names(panel, server).index(tool)
    return proxy.index(row, column, parent)


def choose_setting(panel, index, text):
    """Pick ``text`` in the Setting column's combo box, as a person would."""
    tree = panel.permissions.tree
    cell = index.siblingAtColumn(SETTING)
    if tree.currentIndex() == cell:
        tree.edit(cell)  # clicking the current cell again
    else:
        tree.setCurrentIndex(cell)
    editor = tree.indexWidget(cell)
    assert isinstance(editor, QComboBox)
    editor.setCurrentIndex(editor.findText(text))
    editor.activated.emit(editor.currentIndex())


def rules_in_file(bridge, agent_id):
    return list(load_config(bridge.config_path).agents[agent_id].rules)


async def listed_tools(bridge, agent_id):
    async with agent_client(bridge.endpoint_url, bridge.api.agent_token(agent_id)) as client:
        return {tool.name for tool in (await client.list_tools()).tools}


def test_the_agent_list_and_the_permissions_tree_pass_the_model_tester(qloop, qtbot, qtmodeltester):
    servers = {"fake": stdio_fake(), "off": stdio_fake(enabled=False)}
    agents = {"a": {"default": "allow", "rules": [{"match": "fake/echo", "effect": "deny"}]}, "b": {"name": "Bee"}}

    async def scenario():
        async with running_bridge(servers, agents=agents) as bridge:
            panel = make_panel(bridge, qtbot)
            qtmodeltester.check(panel.agents)
            qtmodeltester.check(panel.permissions.model)
            qtmodeltester.check(panel.permissions.proxy)

            assert [panel.agents.index(row).data() for row in range(panel.agents.rowCount())] == ["a", "Bee (b)"]
            assert panel.selected_agent().id == "a"
            assert tool_names(panel, "fake") == FAKE_TOOLS
            assert server_index(panel, "off").data() == "off — Stopped"
            assert tool_names(panel, "off") == []
            assert tool_index(panel, "fake", "echo").data(Qt.ItemDataRole.ToolTipRole).startswith("Echo the text back.")

            panel.permissions.proxy.setData(server_index(panel, "fake", SETTING), "Ask")  # checked while it changes
            panel.select_agent("b")
            assert tool_index(panel, "fake", "echo", SETTING).data() == "Inherit"

    run_async(qloop, scenario())


def test_adding_an_agent_in_the_panel_creates_it_and_copy_token_puts_its_token_on_the_clipboard(qloop, qtbot):
    async def scenario():
        async with running_bridge({"fake": stdio_fake()}, agents={"a": {}}) as bridge:
            panel = make_panel(bridge, qtbot)
            panel.add_button.click()
            assert panel.add_form.isVisible()
            panel.add_id.setText("cursor")
            panel.add_name.setText("Cursor IDE")
            panel.add_form.confirm.click()

            assert [(a.id, a.name) for a in bridge.api.agents()] == [("a", "a"), ("cursor", "Cursor IDE")]
            assert not panel.add_form.isVisible()
            assert panel.selected_agent().id == "cursor"
            assert panel.agent_list.currentIndex().data() == "Cursor IDE (cursor)"
            assert panel.permissions.default_label.text() == "&Default for Cursor IDE:"

            panel.copy_token_button.click()
            assert clipboard() == bridge.api.agent_token("cursor")
            assert "fake__echo" in await listed_tools(bridge, "cursor")

            panel.copy_http_action.trigger()
            http = json.loads(clipboard())["mcpServers"]["toolgate"]
            assert http["url"] == bridge.endpoint_url
            assert http["headers"]["Authorization"] == f"Bearer {bridge.api.agent_token('cursor')}"
            panel.copy_shim_action.trigger()
            stdio = json.loads(clipboard())["mcpServers"]["toolgate"]
            assert stdio["args"] == ["--agent", "cursor"]
            assert stdio["env"] == {"TOOLGATE_TOKEN": bridge.api.agent_token("cursor")}

    run_async(qloop, scenario())


def test_adding_an_agent_whose_id_is_taken_shows_the_problem_in_the_form(qloop, qtbot):
    async def scenario():
        async with running_bridge({}, agents={"a": {}}) as bridge:
            panel = make_panel(bridge, qtbot)
            panel.add_button.click()
            panel.add_id.setText("a")
            panel.add_form.confirm.click()

            assert panel.add_form.isVisible()
            assert panel.add_form.error.isVisible()
            assert "already exists" in panel.add_form.error.text()
            assert [a.id for a in bridge.api.agents()] == ["a"]

    run_async(qloop, scenario())


def test_renaming_and_removing_an_agent_in_the_panel_change_the_agents(qloop, qtbot):
    async def scenario():
        async with running_bridge({}, agents={"a": {}, "b": {}}) as bridge:
            panel = make_panel(bridge, qtbot)
            panel.select_agent("b")
            panel.rename_button.click()
            assert panel.rename_name.text() == "b"
            panel.rename_name.setText("   ")
            panel.rename_form.confirm.click()
            assert "cannot be empty" in panel.rename_form.error.text()
            panel.rename_name.setText("Build bot")
            panel.rename_form.confirm.click()

            assert [(a.id, a.name) for a in bridge.api.agents()] == [("a", "a"), ("b", "Build bot")]
            assert panel.agent_list.currentIndex().data() == "Build bot (b)"
            assert not panel.rename_form.isVisible()

            panel.remove_button.click()
            assert panel.confirm_form.isVisible()
            assert panel.confirm_text.text().startswith("Remove b? Its entry and its token go")
            assert [a.id for a in bridge.api.agents()] == ["a", "b"]
            panel.confirm_form.confirm.click()

            assert [a.id for a in bridge.api.agents()] == ["a"]
            assert bridge.api.agent_token("b") is None
            assert panel.agents.rowCount() == 1
            assert panel.selected_agent().id == "a"
            assert panel.permissions.model.agent_id == "a"

    run_async(qloop, scenario())


def test_rotating_a_token_gives_a_new_one_and_the_old_one_is_refused(qloop, qtbot):
    async def scenario():
        async with running_bridge({"fake": stdio_fake()}, agents={"a": {"default": "allow"}}) as bridge:
            panel = make_panel(bridge, qtbot)
            old = bridge.api.agent_token("a")
            panel.rotate_button.click()
            assert "old token stops working" in panel.confirm_text.text()
            panel.confirm_form.confirm.click()
            new = bridge.api.agent_token("a")
            panel.copy_token_button.click()

            assert new != old
            assert clipboard() == new
            with pytest.raises(Exception):  # noqa: PT011, B017 - the SDK wraps the 401 in exception groups
                async with agent_client(bridge.endpoint_url, old) as client:
                    await client.list_tools()
            assert "fake__echo" in await listed_tools(bridge, "a")

    run_async(qloop, scenario())


def test_setting_a_tool_to_deny_in_the_tree_hides_it_from_that_agents_tools_list_and_is_saved(qloop, qtbot):
    agents = {"a": {"default": "allow"}, "b": {"default": "allow"}}

    async def scenario():
        async with running_bridge({"fake": stdio_fake()}, agents=agents) as bridge:
            panel = make_panel(bridge, qtbot)
            choose_setting(panel, tool_index(panel, "fake", "echo"), "Deny")

            assert rules_in_file(bridge, "a") == [Rule(match="fake/echo", effect=Effect.DENY)]
            assert "fake__echo" not in await listed_tools(bridge, "a")
            assert "fake__add" in await listed_tools(bridge, "a")
            assert "fake__echo" in await listed_tools(bridge, "b")
            assert tool_index(panel, "fake", "echo", SETTING).data() == "Deny"
            assert tool_index(panel, "fake", "echo", EFFECTIVE).data() == "Deny (hidden from agent)"

            choose_setting(panel, tool_index(panel, "fake", "echo"), "Inherit")

            assert rules_in_file(bridge, "a") == []
            assert "fake__echo" in await listed_tools(bridge, "a")
            assert tool_index(panel, "fake", "echo", EFFECTIVE).data() == "Allow"

    run_async(qloop, scenario())


def test_the_why_column_says_whether_the_decision_is_set_here_or_inherited(qloop, qtbot):
    async def scenario():
        async with running_bridge({"fake": stdio_fake()}, agents={"a": {"default": "ask"}}) as bridge:
            panel = make_panel(bridge, qtbot)
            assert tool_index(panel, "fake", "echo", WHY).data() == "Agent's default"

            choose_setting(panel, server_index(panel, "fake"), "Deny")
            assert server_index(panel, "fake", WHY).data() == "Set here"
            assert tool_index(panel, "fake", "echo", WHY).data() == "From rule fake/*"
            assert tool_index(panel, "fake", "echo", SETTING).data() == "Inherit"

            choose_setting(panel, tool_index(panel, "fake", "echo"), "Allow")
            why = tool_index(panel, "fake", "echo", WHY)
            assert why.data() == "Set here"
            assert (
                why.data(Qt.ItemDataRole.ToolTipRole) == bridge.api.policy("a").evaluate("fake", "echo", now=NOW).reason
            )
            assert tool_index(panel, "fake", "echo", EFFECTIVE).data() == "Allow"
            assert tool_index(panel, "fake", "add", EFFECTIVE).data() == "Deny (hidden from agent)"

    run_async(qloop, scenario())


def test_the_search_box_filters_to_matching_tools_and_a_denied_tool_still_shows(qloop, qtbot):
    agents = {"a": {"default": "allow", "rules": [{"match": "fake/echo", "effect": "deny"}]}}

    async def scenario():
        async with running_bridge({"fake": stdio_fake(), "other": stdio_fake()}, agents=agents) as bridge:
            panel = make_panel(bridge, qtbot)
            panel.permissions.search.setText("ECH")
            assert tool_names(panel, "fake") == ["echo"]
            assert tool_names(panel, "other") == ["echo"]
            assert tool_index(panel, "fake", "echo", EFFECTIVE).data() == "Deny (hidden from agent)"
            assert "Hidden from a's tools/list" in tool_index(panel, "fake", "echo").data(Qt.ItemDataRole.ToolTipRole)
            assert panel.permissions.tree.isExpanded(server_index(panel, "fake"))

            panel.permissions.search.setText("add")
            assert tool_names(panel, "fake") == ["add", "add_tool"]
            panel.permissions.search.setText("other")
            assert panel.permissions.proxy.rowCount() == 1
            assert tool_names(panel, "other") == FAKE_TOOLS
            panel.permissions.search.setText("")
            assert tool_names(panel, "fake") == FAKE_TOOLS

    run_async(qloop, scenario())


def test_the_default_selector_changes_the_agents_default(qloop, qtbot):
    async def scenario():
        async with running_bridge({"fake": stdio_fake()}, agents={"a": {"default": "allow"}}) as bridge:
            panel = make_panel(bridge, qtbot)
            combo = panel.permissions.default_combo
            assert panel.permissions.default_label.text() == "&Default for a:"
            assert combo.currentText() == "Allow"

            combo.setCurrentIndex(combo.findText("Deny"))
            combo.activated.emit(combo.currentIndex())

            assert bridge.api.config.agents["a"].default is Effect.DENY
            assert load_config(bridge.config_path).agents["a"].default is Effect.DENY
            assert tool_index(panel, "fake", "echo", EFFECTIVE).data() == "Deny (hidden from agent)"
            assert await listed_tools(bridge, "a") == set()

    run_async(qloop, scenario())


def choose(combo, text):
    """Pick ``text`` in ``combo`` as a person would."""
    combo.setCurrentIndex(combo.findText(text))
    combo.activated.emit(combo.currentIndex())


def test_the_tools_selector_switches_the_agent_to_on_demand_tools_and_back_live(qloop, qtbot):
    agents = {"a": {"default": "allow"}, "b": {"default": "allow"}}

    async def scenario():
        async with running_bridge({"fake": stdio_fake()}, agents=agents) as bridge:
            panel = make_panel(bridge, qtbot)
            combo = panel.permissions.tools_combo
            assert combo.currentText() == "All tools"
            assert "fake__echo" in await listed_tools(bridge, "a")

            choose(combo, "On-demand tools")

            assert bridge.api.config.agents["a"].tools is ToolsMode.ON_DEMAND
            assert json.loads(bridge.config_path.read_text())["agents"]["a"]["tools"] == "on_demand"
            assert await listed_tools(bridge, "a") == {"list_servers", "get_server_tools", "execute_tool"}
            assert "fake__echo" in await listed_tools(bridge, "b")
            panel.select_agent("b")
            assert combo.currentText() == "All tools"
            panel.select_agent("a")
            assert combo.currentText() == "On-demand tools"

            choose(combo, "All tools")

            assert "tools" not in json.loads(bridge.config_path.read_text())["agents"]["a"]
            assert "fake__echo" in await listed_tools(bridge, "a")

    run_async(qloop, scenario())


def test_the_tools_selector_follows_an_edit_made_elsewhere_and_shows_a_refused_change_inline(qloop, qtbot):
    async def scenario():
        async with running_bridge({"fake": stdio_fake()}, agents={"a": {}}) as bridge:
            panel = make_panel(bridge, qtbot)
            combo = panel.permissions.tools_combo

            set_agent_tools(bridge.config_path, "a", ToolsMode.ON_DEMAND)  # as `toolgate agents tools` does
            await eventually(lambda: combo.currentText() == "On-demand tools", "the selector to follow the file")

            data = json.loads(bridge.config_path.read_text())
            del data["agents"]["a"]
            bridge.config_path.write_text(json.dumps(data))  # removed in an editor; not applied yet
            choose(combo, "All tools")

            assert "no agent 'a'" in panel.permissions.error.text()
            assert panel.permissions.error.isVisible()
            assert combo.currentText() == "On-demand tools"

    run_async(qloop, scenario())


def test_the_panel_shows_the_agents_tools_list_size_in_both_modes_and_follows_its_permissions(qloop, qtbot):
    async def scenario():
        async with running_bridge({"fake": stdio_fake()}, agents={"a": {"default": "allow"}}) as bridge:
            panel = make_panel(bridge, qtbot)
            before = bridge.api.listing_sizes()["a"]
            assert panel.permissions.sizes.text() == (
                f"tools/list size: All tools {before.all.short()} · On-demand tools {before.on_demand.short()}"
            )
            assert before.on_demand.bytes < before.all.bytes

            choose_setting(panel, server_index(panel, "fake"), "Deny")

            after = bridge.api.listing_sizes()["a"]
            assert after.all.bytes < before.all.bytes
            assert panel.permissions.sizes.text() == (
                f"tools/list size: All tools {after.all.short()} · On-demand tools {after.on_demand.short()}"
            )
            panel.permissions.set_agent(None)
            assert panel.permissions.sizes.text() == ""

    run_async(qloop, scenario())


def test_a_thousand_tools_are_all_in_the_tree_and_searchable(qloop, qtbot):
    async def scenario():
        async with running_bridge({"fake": stdio_fake("--tools", "1000")}, agents={"a": {}}) as bridge:
            panel = make_panel(bridge, qtbot)
            assert len(tool_names(panel, "fake")) == 1000 + FAKE_TOOL_COUNT
            choose_setting(panel, tool_index(panel, "fake", "tool_500"), "Deny")
            assert tool_index(panel, "fake", "tool_500", EFFECTIVE).data() == "Deny (hidden from agent)"
            panel.permissions.search.setText("tool_9")
            assert len(tool_names(panel, "fake")) == 100

    run_async(qloop, scenario())


def test_a_tool_added_on_a_server_appears_under_it_without_resetting_the_tree(qloop, qtbot):
    async def scenario():
        async with running_bridge({"fake": stdio_fake()}, agents={"a": {"default": "allow"}}) as bridge:
            panel = make_panel(bridge, qtbot)
            resets = []
            panel.permissions.model.modelReset.connect(lambda: resets.append(1))
            noticed = anyio.Event()

            async def on_message(message: object) -> None:
                if isinstance(message, types.ToolListChangedNotification):
                    noticed.set()

            token = bridge.api.agent_token("a")
            async with agent_client(bridge.endpoint_url, token, message_handler=on_message) as client:
                await client.call_tool("fake__add_tool", {"name": "extra"})
                await eventually(lambda: "extra" in tool_names(panel, "fake"), "the new tool in the tree")
                # Kept open until the agent has its own notice: the SDK client fails to close
                # when list_changed arrives while it is closing.
                with anyio.fail_after(WAIT_S):
                    await noticed.wait()

            assert tool_index(panel, "fake", "extra", WHY).data() == "Agent's default"
            assert resets == []

    run_async(qloop, scenario())


def test_a_refused_change_in_the_tree_is_shown_inline(qloop, qtbot):
    async def scenario():
        async with running_bridge({"fake": stdio_fake()}, agents={"a": {}}) as bridge:
            panel = make_panel(bridge, qtbot)
            panel.permissions.set_agent("ghost")  # an agent removed behind the panel's back

            index = tool_index(panel, "fake", "echo", SETTING)
            assert panel.permissions.proxy.setData(index, "Deny") is False
            assert "no agent 'ghost'" in panel.permissions.error.text()
            assert panel.permissions.error.isVisible()
            assert rules_in_file(bridge, "a") == []

    run_async(qloop, scenario())


def test_servers_keep_their_expanded_state_when_a_server_is_added(qloop, qtbot):
    async def scenario():
        async with running_bridge({"fake": stdio_fake(), "other": stdio_fake()}, agents={"a": {}}) as bridge:
            panel = make_panel(bridge, qtbot)
            tree = panel.permissions.tree
            tree.collapse(server_index(panel, "other"))

            bridge.api.put_server("third", stdio_fake())
            await eventually(lambda: tool_names(panel, "third") == FAKE_TOOLS, "the new server's tools")

            assert tree.isExpanded(server_index(panel, "fake"))
            assert not tree.isExpanded(server_index(panel, "other"))
            assert tool_names(panel, "fake") == FAKE_TOOLS

    run_async(qloop, scenario())


def test_a_tool_renamed_beyond_its_prefix_shows_the_name_agents_see_and_why_in_its_tooltip(qloop, qtbot):
    servers = {"alpha": stdio_fake(prefix=""), "zeta": stdio_fake(prefix="")}

    async def scenario():
        async with running_bridge(servers, agents={"a": {"default": "allow"}}) as bridge:
            panel = make_panel(bridge, qtbot)
            await eventually(
                lambda: tool_names(panel, "zeta")[0].endswith(" — server calls it “echo”"), "zeta's renamed echo"
            )
            clashing = tool_index(panel, "zeta", tool_names(panel, "zeta")[0])
            public = bridge.public_name("zeta", "echo")
            assert public is not None and public.name != "echo"
            assert clashing.data() == f"{public.name} — server calls it “echo”"
            assert clashing.data(Qt.ItemDataRole.ToolTipRole) == (
                "Echo the text back.\n\n"
                f'Agents see it as {public.name}: tool "echo" of "alpha" already has that name: a hash was added.'
            )
            kept = tool_index(panel, "alpha", "echo")
            assert kept.data(Qt.ItemDataRole.ToolTipRole).endswith("Agents see it as echo, the server's own name.")

            noticed = anyio.Event()

            async def on_message(message: object) -> None:
                if isinstance(message, types.ToolListChangedNotification):
                    noticed.set()

            renamed = "create_issue — server calls it “create issue”"
            token = bridge.api.agent_token("a")
            async with agent_client(bridge.endpoint_url, token, message_handler=on_message) as client:
                await client.call_tool("add_tool", {"name": "create issue"})
                await eventually(lambda: renamed in tool_names(panel, "alpha"), "the new tool as agents see it")
                with anyio.fail_after(WAIT_S):
                    await noticed.wait()  # the SDK client fails to close while list_changed arrives
            tooltip = tool_index(panel, "alpha", renamed).data(Qt.ItemDataRole.ToolTipRole)
            assert tooltip.endswith('characters the MCP spec does not allow in names (" ") became "_".')
            panel.permissions.search.setText("create_issue")
            assert tool_names(panel, "alpha") == [renamed]

    run_async(qloop, scenario())


def test_a_tool_with_only_the_prefix_added_keeps_its_own_name_and_says_the_prefix_in_its_tooltip(qloop, qtbot):
    async def scenario():
        async with running_bridge({"fake": stdio_fake()}, agents={"a": {}}) as bridge:
            panel = make_panel(bridge, qtbot)
            echo = tool_index(panel, "fake", "echo")
            await eventually(lambda: "fake__echo" in echo.data(Qt.ItemDataRole.ToolTipRole), "the public name")
            assert echo.data() == "echo"
            assert echo.data(Qt.ItemDataRole.ToolTipRole).endswith('Agents see it as fake__echo: prefix "fake__".')

    run_async(qloop, scenario())


# A combo box's list grabs the keyboard and comes to the front; the offscreen platform says it cannot.
@pytest.mark.qt_log_ignore(r"This plugin does not support (grabbing the keyboard|raise\(\))")
def test_a_permission_is_changed_from_the_keyboard_alone(qloop, qtbot):
    async def scenario():
        async with running_bridge({"fake": stdio_fake()}, agents={"a": {"default": "allow"}}) as bridge:
            panel = make_panel(bridge, qtbot)
            panel.show()
            tree = panel.permissions.tree
            tree.setFocus()
            tree.setCurrentIndex(tool_index(panel, "fake", "echo"))  # the Name column, as arrow keys leave it
            for key in (Qt.Key.Key_F2, Qt.Key.Key_Return, Qt.Key.Key_Space):
                qtbot.keyClick(tree, key)
                editor = tree.indexWidget(tool_index(panel, "fake", "echo", SETTING))
                assert isinstance(editor, QComboBox) and editor.view().isVisible(), key
                assert editor.currentText() == "Inherit"
                editor.hidePopup()
                tree.setFocus()
            editor.showPopup()
            popup = editor.view()
            for _ in range(3):  # Inherit → Allow → Ask → Deny
                qtbot.keyClick(popup, Qt.Key.Key_Down)
            qtbot.keyClick(popup, Qt.Key.Key_Return)
            await eventually(lambda: rules_in_file(bridge, "a") != [], "the rule to be written")
            assert rules_in_file(bridge, "a") == [Rule(match="fake/echo", effect=Effect.DENY)]
            assert tool_index(panel, "fake", "echo", SETTING).data() == "Deny"
            assert panel.permissions.default_combo.accessibleName()
            assert panel.permissions.default_label.buddy() is panel.permissions.default_combo

    run_async(qloop, scenario())


# A combo box's list grabs the keyboard and comes to the front; the offscreen platform says it cannot.
@pytest.mark.qt_log_ignore(r"This plugin does not support (grabbing the keyboard|raise\(\))")
def test_one_click_on_a_setting_opens_its_choices(qloop, qtbot):
    async def scenario():
        async with running_bridge({"fake": stdio_fake()}, agents={"a": {"default": "allow"}}) as bridge:
            panel = make_panel(bridge, qtbot)
            panel.show()
            tree = panel.permissions.tree
            cell = tool_index(panel, "fake", "add", SETTING)
            qtbot.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton, pos=tree.visualRect(cell).center())
            editor = tree.indexWidget(cell)
            assert isinstance(editor, QComboBox) and editor.view().isVisible()
            editor.hidePopup()

    run_async(qloop, scenario())


def annotation_action(panel, text):
    """The "By annotation" menu's entry ``text``, as the menu shows it when opened."""
    menu = panel.permissions.annotations_menu
    menu.aboutToShow.emit()
    return next(action for action in menu.actions() if action.text() == text)


def test_read_only_allow_and_destructive_ask_are_added_from_the_agent_s_view_and_shown_in_the_tree(qloop, qtbot):
    async def scenario():
        async with running_bridge({"fake": stdio_fake("--annotated")}, agents={"a": {"default": "deny"}}) as bridge:
            panel = make_panel(bridge, qtbot)
            assert not panel.permissions.annotation_rules.isVisibleTo(panel)

            annotation_action(panel, "Allow tools marked read-only").trigger()
            annotation_action(panel, "Ask before tools marked destructive").trigger()

            read_only = Rule(match="*/*", effect=Effect.ALLOW, annotations={"readOnlyHint": True})
            destructive = Rule(match="*/*", effect=Effect.ASK, annotations={"destructiveHint": True})
            assert rules_in_file(bridge, "a") == [destructive, read_only]
            assert tool_index(panel, "fake", "echo", EFFECTIVE).data() == "Allow"
            assert tool_index(panel, "fake", "echo", WHY).data() == "From rule */* for tools marked readOnlyHint=true"
            assert tool_index(panel, "fake", "fail", EFFECTIVE).data() == "Ask"
            assert tool_index(panel, "fake", "add", EFFECTIVE).data() == "Deny (hidden from agent)"
            tooltip = tool_index(panel, "fake", "echo").data(Qt.ItemDataRole.ToolTipRole)
            assert "Annotations, as the server states them (a server may misstate them): readOnlyHint=true" in tooltip
            label = panel.permissions.annotation_rules
            assert label.isVisibleTo(panel) and "a server may misstate them" in label.text()
            assert "*/* → ask for tools marked destructiveHint=true" in label.text()
            assert await listed_tools(bridge, "a") == {"fake__echo", "fake__fail"}
            assert annotation_action(panel, "Allow tools marked read-only").isChecked()

            annotation_action(panel, "Allow tools marked read-only").trigger()  # unchecks: removes the rule

            assert rules_in_file(bridge, "a") == [destructive]
            assert tool_index(panel, "fake", "echo", EFFECTIVE).data() == "Deny (hidden from agent)"


def test_a_removed_agent_comes_back_with_its_rules_and_the_same_token_with_undo(qloop, qtbot):
    async def scenario():
        rules = [{"match": "fake/echo", "effect": "allow"}, {"match": "fake/*", "effect": "deny"}]
        agents = {"a": {}, "b": {"default": "deny", "rules": rules}, "c": {}}
        async with running_bridge({"fake": stdio_fake()}, agents=agents) as bridge:
            panel = make_panel(bridge, qtbot)
            before = json.loads(bridge.config_path.read_text())["agents"]
            token = bridge.api.agent_token("b")
            panel.select_agent("b")
            panel.remove_button.click()
            assert "Its entry, its 2 rules and its token go" in panel.confirm_text.text()
            panel.confirm_form.confirm.click()
            assert list(json.loads(bridge.config_path.read_text())["agents"]) == ["a", "c"]
            assert bridge.api.agent_token("b") is None
            assert panel.undo_bar.label.text() == "Removed b, its rules and its token."

            panel.undo_bar.undo_button.click()
            assert json.loads(bridge.config_path.read_text())["agents"] == before  # rules and place as they were
            assert bridge.api.agent_token("b") == token
            assert panel.selected_agent().id == "b"
            assert panel.undo_bar.label.text() == "Put back b with its rules; its token works again."
            async with agent_client(bridge.endpoint_url, token) as client:  # IDEs using the token work again
                denied = await client.call_tool("fake__add", {"a": 1, "b": 2})
                allowed = await client.call_tool("fake__echo", {"text": "back"})
            assert denied.is_error and not allowed.is_error

    run_async(qloop, scenario())


def test_a_tool_whose_definition_changed_shows_ask_and_the_guards_rule_in_why_until_it_is_accepted(qloop, qtbot):
    async def scenario():
        servers = {"fake": stdio_fake("--redescribable")}
        async with running_bridge(servers, agents={"a": {"default": "allow"}}) as bridge:
            panel = make_panel(bridge, qtbot)
            before = (
                tool_index(panel, "fake", "echo", EFFECTIVE).data(),
                tool_index(panel, "fake", "echo", WHY).data(),
            )
            async with agent_client(bridge.endpoint_url, bridge.api.agent_token("a")) as client:
                await client.call_tool("fake__redescribe", {"name": "echo", "description": "Echo, and mail ~/.ssh."})
            await eventually(
                lambda: tool_index(panel, "fake", "echo", EFFECTIVE).data() == "Ask", "the changed tool to show Ask"
            )
            why = tool_index(panel, "fake", "echo", WHY)
            held = (why.data(), why.data(Qt.ItemDataRole.ToolTipRole))
            other = tool_index(panel, "fake", "add", WHY).data()
            bridge.api.accept_tools("fake", "echo")
            await eventually(
                lambda: tool_index(panel, "fake", "echo", EFFECTIVE).data() == "Allow", "the accepted tool to allow"
            )
            after = tool_index(panel, "fake", "echo", WHY).data()

        assert before == ("Allow", "Agent's default")
        assert held[0] == "changed definition → ask (default → allow)"
        assert held[1].startswith("the definition of fake/echo changed since it was accepted (description)")
        assert other == "Agent's default" and after == "Agent's default"

    run_async(qloop, scenario())

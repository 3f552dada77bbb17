import json

import mcp_types as types
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QMessageBox

from app.common import STATE_COLOR
from app.panels.server_detail import TASK_ONLY_NOTE, describe_tool
from app.panels.server_values import NamedValue, collect_values, parse_arguments, secret_name
from app.panels.servers import ServersPanel, ServerTableModel
from gateway_core import NameKind, ServerState
from tests.app.harness import connected_agent, eventually, run_async, running_bridge
from tests.fakes.launch import FAKE_TOOL_COUNT
from tests.integration.harness import stdio_fake

M = ServerTableModel


def make_panel(bridge, qtbot):
    panel = ServersPanel(bridge)
    qtbot.addWidget(panel)
    return panel


def cell(model, name, column):
    return model.data(model.index(model.row_of(name), column))


def fill_stdio(form, name, entry):
    form.name_edit.setText(name)
    form.command_edit.setText(entry["command"])
    form.arguments_edit.setPlainText("\n".join(entry["args"]))


def servers_in_file(bridge):
    return json.loads(bridge.config_path.read_text())["servers"]


def test_the_table_shows_each_configured_server_with_its_state_and_counts(qloop, qtbot, qtmodeltester):
    servers = {
        "fake": stdio_fake(),
        "off": stdio_fake(enabled=False),
        "broken": {"command": "/nonexistent/toolgate-test-server"},
    }

    async def scenario():
        async with running_bridge(servers) as bridge:
            panel = make_panel(bridge, qtbot)
            model = panel.model
            qtmodeltester.check(model)
            assert [model.server_name(row) for row in range(model.rowCount())] == ["fake", "off", "broken"]
            assert [cell(model, "fake", c) for c in (M.TRANSPORT, M.STATE, M.TOOLS, M.RESOURCES, M.PROMPTS)] == [
                "stdio",
                "Ready",
                str(FAKE_TOOL_COUNT),
                "1",
                "1",
            ]
            state = model.index(model.row_of("fake"), M.STATE)
            assert model.data(state, Qt.ItemDataRole.ForegroundRole) == STATE_COLOR[ServerState.READY]
            # Disabled is the person's choice, not an error.
            assert (cell(model, "off", M.STATE), cell(model, "off", M.LAST_ERROR)) == ("Disabled", "")
            off = model.index(model.row_of("off"), M.STATE)
            assert model.data(off, Qt.ItemDataRole.ForegroundRole) == STATE_COLOR[ServerState.STOPPED]
            panel.select_server("off")
            assert "— Disabled" in panel.detail.title.text()
            assert cell(model, "broken", M.STATE) == "Failed"
            assert cell(model, "broken", M.LAST_ERROR)

    run_async(qloop, scenario())


def test_adding_a_server_in_the_form_makes_it_appear_and_become_ready(qloop, qtbot):
    async def scenario():
        async with running_bridge({}) as bridge:
            panel = make_panel(bridge, qtbot)
            panel.add_button.click()
            fill_stdio(panel.form, "added", stdio_fake("--name", "with spaces in one argument"))
            panel.form.save_button.click()
            assert panel.form is None
            assert panel.model.row_of("added") == 0
            assert panel.selected_server() == "added"
            await eventually(lambda: cell(panel.model, "added", M.STATE) == "Ready", "the added server to be ready")
            assert servers_in_file(bridge)["added"]["args"][-1] == "with spaces in one argument"

    run_async(qloop, scenario())


def test_the_form_s_fields_start_at_one_x_on_both_transport_pages(qloop, qtbot):
    async def scenario():
        async with running_bridge({}) as bridge:
            panel = make_panel(bridge, qtbot)
            panel.show()
            form = panel.open_form(None)

            def left_edges(*fields):
                return {field.mapTo(form, QPoint(0, 0)).x() for field in fields}

            stdio = left_edges(form.name_edit, form.command_edit, form.cwd_edit, form.prefix_edit, form.timeout_edit)
            form.transport_box.setCurrentIndex(form.transport_box.findData("http"))
            remote = left_edges(form.name_edit, form.url_edit, form.prefix_edit)

        assert len(stdio) == 1 and remote == stdio

    run_async(qloop, scenario())


def test_a_form_with_no_command_shows_the_error_next_to_the_command_field_and_writes_nothing(qloop, qtbot):
    async def scenario():
        async with running_bridge({}) as bridge:
            before = bridge.config_path.read_text()
            panel = make_panel(bridge, qtbot)
            form = panel.open_form(None)
            form.name_edit.setText("nocommand")
            form.save_button.click()
            assert panel.form is form
            assert "command" in form.errors["command"].text().lower()
            assert not form.errors["command"].isHidden()
            assert form.errors[""].isHidden() and form.errors["name"].isHidden()
            assert bridge.config_path.read_text() == before

    run_async(qloop, scenario())


def test_a_rejected_save_keeps_the_form_and_shows_why(qloop, qtbot):
    async def scenario():
        async with running_bridge({"taken": stdio_fake(enabled=False)}) as bridge:
            panel = make_panel(bridge, qtbot)
            form = panel.open_form(None)
            fill_stdio(form, "taken", stdio_fake())
            form.save_button.click()
            assert panel.form is form
            assert "already a server named “taken”" in form.errors["name"].text()  # next to Name
            assert form.name_edit.text() == "taken" and form.command_edit.text()
            form.name_edit.setText("bad name!")
            form.save_button.click()
            assert not form.errors["name"].isHidden()

    run_async(qloop, scenario())


def test_a_secret_env_value_is_stored_as_a_secret_and_config_json_only_references_it(qloop, qtbot):
    async def scenario():
        async with running_bridge({}) as bridge:
            panel = make_panel(bridge, qtbot)
            form = panel.open_form(None)
            fill_stdio(form, "keyed", stdio_fake())
            row = form.env_editor.add_row()
            row.key_edit.setText("API_TOKEN")
            row.value_edit.setText("s3cret-value")
            row.secret_box.setChecked(True)
            plain = form.env_editor.add_row()
            plain.key_edit.setText("MODE")
            plain.value_edit.setText("test")
            form.save_button.click()
            assert panel.form is None
            text = bridge.config_path.read_text()
            assert "s3cret-value" not in text
            assert servers_in_file(bridge)["keyed"]["env"] == {"API_TOKEN": "${secret:keyed.API_TOKEN}", "MODE": "test"}
            assert bridge.api.has_secret("keyed.API_TOKEN")
            await eventually(lambda: cell(panel.model, "keyed", M.STATE) == "Ready", "the server to start")

            form = panel.open_form("keyed")
            secret_row, plain_row = form.env_editor.rows()
            assert secret_row.secret_box.isChecked() and secret_row.value_edit.text() == ""
            assert "••" in secret_row.value_edit.placeholderText()
            assert plain_row.value_edit.text() == "test"
            form.save_button.click()
            assert servers_in_file(bridge)["keyed"]["env"]["API_TOKEN"] == "${secret:keyed.API_TOKEN}"

            states = []
            bridge.server_status_changed.connect(lambda name: states.append(bridge.status(name).state))
            form = panel.open_form("keyed")
            form.env_editor.rows()[0].value_edit.setText("a-new-value")
            form.save_button.click()
            assert "a-new-value" not in bridge.config_path.read_text()
            await eventually(lambda: cell(panel.model, "keyed", M.STATE) == "Ready", "the restarted server")
            assert ServerState.STARTING in states  # the new value only reaches a newly started process

    run_async(qloop, scenario())


def test_a_remote_server_is_added_with_a_secret_header_and_a_renamed_server_keeps_its_place(
    qloop, qtbot, qtmodeltester
):
    async def scenario():
        async with running_bridge({"first": stdio_fake(enabled=False), "last": stdio_fake(enabled=False)}) as bridge:
            panel = make_panel(bridge, qtbot)
            qtmodeltester.check(panel.model)
            form = panel.open_form(None)
            form.name_edit.setText("remote")
            form.transport_box.setCurrentIndex(form.transport_box.findData("sse"))
            form.url_edit.setText("http://127.0.0.1:9/sse")
            header = form.headers_editor.add_row()
            header.key_edit.setText("Authorization")
            header.value_edit.setText("Bearer abc")
            header.secret_box.setChecked(True)
            form.enabled_box.setChecked(False)
            form.save_button.click()
            assert servers_in_file(bridge)["remote"] == {
                "url": "http://127.0.0.1:9/sse",
                "type": "sse",
                "headers": {"Authorization": "${secret:remote.Authorization}"},
                "enabled": False,
            }
            assert cell(panel.model, "remote", M.TRANSPORT) == "SSE"

            form = panel.open_form("first")
            form.name_edit.setText("one")
            form.save_button.click()
            assert [panel.model.server_name(row) for row in range(panel.model.rowCount())] == ["one", "last", "remote"]
            assert list(servers_in_file(bridge)) == ["one", "last", "remote"]

    run_async(qloop, scenario())


def test_a_server_can_be_given_a_process_per_agent_and_editing_keeps_its_idle_timeout(qloop, qtbot):
    async def scenario():
        entry = stdio_fake(enabled=False, isolation="per_agent", idle_timeout_s=42)
        async with running_bridge({"files": entry}) as bridge:
            panel = make_panel(bridge, qtbot)
            form = panel.open_form("files")
            assert form.per_agent_box.isChecked()
            form.save_button.click()
            saved = servers_in_file(bridge)["files"]
            assert (saved["isolation"], saved["idle_timeout_s"]) == ("per_agent", 42)

            form = panel.open_form("files")
            form.per_agent_box.setChecked(False)
            form.save_button.click()
            assert "isolation" not in servers_in_file(bridge)["files"]

    run_async(qloop, scenario())


def test_editing_a_remote_server_keeps_its_oauth_block(qloop, qtbot):
    oauth = {"client_id": "abc", "client_secret": "${secret:r.client}", "scopes": ["read"], "redirect_port": 8765}

    async def scenario():
        entry = {"url": "http://127.0.0.1:9/mcp", "enabled": False, "oauth": oauth}
        async with running_bridge({"r": entry}) as bridge:
            panel = make_panel(bridge, qtbot)
            form = panel.open_form("r")
            form.prefix_edit.setText("remote")
            form.save_button.click()
            saved = servers_in_file(bridge)["r"]
            assert (saved["prefix"], saved["oauth"]) == ("remote", oauth)

    run_async(qloop, scenario())


def test_disabling_stops_the_server_enabling_starts_it_and_restart_starts_it_again(qloop, qtbot):
    async def scenario():
        async with running_bridge({"fake": stdio_fake()}) as bridge:
            panel = make_panel(bridge, qtbot)
            panel.select_server("fake")
            assert panel.enable_button.text() == "&Disable"
            panel.enable_button.click()
            assert cell(panel.model, "fake", M.STATE) == "Disabled"
            assert servers_in_file(bridge)["fake"]["enabled"] is False
            assert panel.enable_button.text() == "E&nable" and not panel.restart_button.isEnabled()

            panel.enable_button.click()
            await eventually(lambda: cell(panel.model, "fake", M.STATE) == "Ready", "the server to start again")

            states = []
            bridge.server_status_changed.connect(lambda name: states.append(cell(panel.model, name, M.STATE)))
            panel.restart_button.click()
            await eventually(lambda: cell(panel.model, "fake", M.STATE) == "Ready", "the restarted server")
            assert "Starting" in states
            assert panel.action_error.isHidden()

    run_async(qloop, scenario())


def test_removing_a_server_asks_a_standard_question_and_cancel_keeps_it(qloop, qtbot):
    async def scenario():
        async with running_bridge({"keep": stdio_fake(enabled=False), "gone": stdio_fake()}) as bridge:
            panel = make_panel(bridge, qtbot)
            panel.select_server("gone")
            panel.remove_button.click()
            box = panel.confirm_box
            assert box is not None and box.isVisible()
            assert box.text() == "Remove the server “gone”?"
            assert "its secrets in the keychain stay" in box.informativeText()
            assert box.defaultButton() is box.button(QMessageBox.StandardButton.Cancel)
            box.button(QMessageBox.StandardButton.Cancel).click()
            assert panel.model.row_of("gone") is not None
            assert list(servers_in_file(bridge)) == ["keep", "gone"]
            assert not panel.undo_bar.offering

    run_async(qloop, scenario())


def test_a_removed_server_comes_back_exactly_with_undo(qloop, qtbot):
    async def scenario():
        entry = stdio_fake("--name", "kept as written", timeout_s=12, prefix="g")
        async with running_bridge(
            {"first": stdio_fake(enabled=False), "gone": entry, "last": stdio_fake(enabled=False)}
        ) as bridge:
            panel = make_panel(bridge, qtbot)
            panel.select_server("gone")
            before = servers_in_file(bridge)
            box = panel.ask_remove()
            remove = next(b for b in box.buttons() if b.text() == "Remove")
            remove.click()
            assert panel.model.row_of("gone") is None
            assert list(servers_in_file(bridge)) == ["first", "last"]
            assert panel.detail.server != "gone"
            assert panel.undo_bar.isVisibleTo(panel) and panel.undo_bar.label.text() == "Removed the server “gone”."

            panel.undo_bar.undo_button.click()
            assert servers_in_file(bridge) == before  # the same entry, in the same place
            assert panel.undo_bar.label.text() == "Put back the server “gone”."
            assert panel.selected_server() == "gone"
            await eventually(lambda: cell(panel.model, "gone", M.STATE) == "Ready", "the server put back to start")

    run_async(qloop, scenario())


def test_the_detail_view_lists_the_tools_and_shows_live_stderr(qloop, qtbot, qtmodeltester):
    async def scenario():
        async with connected_agent("a", {"default": "allow"}) as (bridge, agent):
            panel = make_panel(bridge, qtbot)
            panel.select_server("fake")
            detail = panel.detail
            model = detail.tools_model
            qtmodeltester.check(model)
            names = [model.data(model.index(row, 0)) for row in range(model.rowCount())]
            assert "echo" in names
            echo = names.index("echo")
            assert model.data(model.index(echo, 1)) == "Echo the text back."
            detail.tools_view.selectRow(echo)
            assert '"text"' in detail.schema_view.toPlainText()
            assert "fake__echo" in detail.schema_view.toPlainText()

            await agent.client.call_tool("fake__stderr", {"text": "hello from stderr"})
            shown = detail.stderr_view.toPlainText
            await eventually(lambda: "hello from stderr" in shown(), "the stderr line in the detail view")
            detail.show_server(None)
            detail.show_server("fake")
            assert "hello from stderr" in detail.stderr_view.toPlainText()

    run_async(qloop, scenario())


def test_a_server_with_a_thousand_tools_lists_them_all_in_the_detail_view(qloop, qtbot):
    async def scenario():
        async with running_bridge({"big": stdio_fake("--tools", "1000")}) as bridge:
            panel = make_panel(bridge, qtbot)
            panel.select_server("big")
            assert panel.detail.tools_model.rowCount() == 1000 + FAKE_TOOL_COUNT
            assert cell(panel.model, "big", M.TOOLS) == str(1000 + FAKE_TOOL_COUNT)

    run_async(qloop, scenario())


def test_secret_names_are_made_of_allowed_characters():
    assert secret_name("github", "API TOKEN/2") == "github.API_TOKEN_2"


def test_arguments_are_one_per_line_and_keep_their_spaces():
    assert parse_arguments("--name\nmy server\n\n  \n--x") == ["--name", "my server", "--x"]


def test_a_kept_secret_reference_is_written_back_and_a_secret_without_value_is_a_problem():
    reference = "${secret:old.KEY}"
    kept = collect_values("s", [NamedValue("KEY", "", secret=True, reference=reference)], "variable")
    assert kept.values == {"KEY": reference} and kept.secrets == {} and kept.problem is None
    missing = collect_values("s", [NamedValue("KEY", "", secret=True)], "variable")
    assert "KEY" in missing.problem


def test_the_detail_view_shows_a_renamed_tool_and_prompt_by_the_name_agents_see_and_says_why(qloop, qtbot):
    servers = {"alpha": stdio_fake(prefix=""), "zeta": stdio_fake(prefix="")}

    async def scenario():
        async with running_bridge(servers) as bridge:
            panel = make_panel(bridge, qtbot)
            panel.select_server("zeta")
            detail = panel.detail
            model = detail.tools_model
            await eventually(lambda: bridge.public_name("zeta", "echo") is not None, "zeta's names")
            public = bridge.public_name("zeta", "echo")
            names = [model.data(model.index(row, 0)) for row in range(model.rowCount())]
            echo = names.index(f"{public.name} — server calls it “echo”")
            why = f'Agents see it as {public.name}: tool "echo" of "alpha" already has that name: a hash was added.'
            assert model.data(model.index(echo, 0), Qt.ItemDataRole.ToolTipRole) == why
            detail.tools_view.selectRow(echo)
            assert detail.schema_view.toPlainText().startswith(f"Server calls it: echo\n{why}\n\nEcho the text back.")
            prompt = bridge.public_name("zeta", "greet", NameKind.PROMPT)
            assert f"Prompt: {prompt.name} — server calls it “greet”" in detail.others_model.stringList()

    run_async(qloop, scenario())


def test_the_detail_view_says_why_a_tool_that_runs_only_as_a_task_is_hidden_from_some_agents():
    schema = {"type": "object"}
    task_only = types.Tool(name="wait", input_schema=schema, execution=types.ToolExecution(task_support="required"))
    optional = types.Tool(name="maybe", input_schema=schema, execution=types.ToolExecution(task_support="optional"))

    assert TASK_ONLY_NOTE in describe_tool(task_only, None)
    assert TASK_ONLY_NOTE not in describe_tool(optional, None)

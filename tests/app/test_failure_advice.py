"""A failing server says what went wrong and what to do in the window; "Could not start" offers the fix it names."""

import asyncio
import json
import socket

import pytest
from PySide6.QtCore import Qt

from app.panels.server_advice import advice, gui_reason
from app.panels.servers import ServersPanel, ServerTableModel
from app.problem import CONFIG_HINT, ProblemWindow
from gateway_core import InstanceError, ServerState, ServerStatus, bind
from tests.app.harness import eventually, run_async, running_bridge
from tests.integration.harness import stdio_fake

M = ServerTableModel


def failed(reason: str) -> ServerStatus:
    return ServerStatus(name="s", state=ServerState.FAILED, transport="stdio", reason=reason)


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("working directory '/no/such' does not exist", "Create that folder"),
        ("the server did not finish starting within 30 s", "raise its timeout in Edit…"),
        ("cannot reach http://127.0.0.1:9/mcp: ConnectError", "Check that the server is running at its URL"),
        ("http://h/mcp answered HTTP 401", "Check its credentials"),
        ("the server process exited with code 3", "Its Stderr tab (below) shows what it wrote"),
        ("unexpected error: ValueError", "See its Stderr tab and the Logs panel"),
    ],
)
def test_each_kind_of_failure_gets_advice_in_the_windows_words(reason, expected):
    assert expected in advice(failed(reason))


def test_a_command_line_instruction_is_left_out_of_the_reason_the_window_shows():
    reason = "secret 'gh.TOKEN' is not in the secret store; add it with `toolgate secrets set gh.TOKEN`"
    assert gui_reason(reason) == "secret 'gh.TOKEN' is not in the secret store"
    assert gui_reason("sign in to gh first (toolgate login gh) at https://a.example") == (
        "sign in to gh first at https://a.example"
    )
    assert (
        advice(failed(reason))
        == "Click Edit… and enter the value of gh.TOKEN (it is kept in the keychain), then Restart."
    )


def test_a_failing_server_says_what_went_wrong_and_what_to_do_in_the_table_and_detail(qloop, qtbot):
    servers = {
        "keyed": stdio_fake(env={"TOKEN": "${secret:keyed.TOKEN}"}),
        "missing": {"command": "/nonexistent/toolgate-test-server"},
    }

    async def scenario():
        async with running_bridge(servers) as bridge:
            panel = ServersPanel(bridge)
            qtbot.addWidget(panel)
            model = panel.model
            keyed = model.index(model.row_of("keyed"), M.LAST_ERROR)
            assert model.data(keyed) == "secret 'keyed.TOKEN' is not in the secret store"
            assert "toolgate" not in model.data(keyed)
            tooltip = model.data(keyed, Qt.ItemDataRole.ToolTipRole)
            assert "What to do: Click Edit… and enter the value of keyed.TOKEN" in tooltip

            panel.select_server("missing")
            label = panel.detail.advice_label
            assert label.isVisibleTo(panel)
            assert "Install the program, or set its full path as the command in Edit…" in label.text()
            panel.restart_button.click()
            await eventually(lambda: not panel.action_error.isHidden(), "the restart's outcome")
            assert panel.action_error.text().endswith("then Restart.")

    run_async(qloop, scenario())


def test_a_port_in_use_offers_a_free_port_and_using_it_writes_the_port_and_tries_again(qloop, qtbot, tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"gateway": {"port": 1}, "servers": {}}))

    async def scenario():
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            with pytest.raises(InstanceError) as raised:
                bind("127.0.0.1", port)
            window = ProblemWindow(config)
            qtbot.addWidget(window)
            answer = asyncio.ensure_future(window.ask_retry([str(raised.value)]))
            await eventually(window.isVisible, "the window")
            text = window.details.text()
            assert text.startswith(f"Port {port} on 127.0.0.1 is already in use")
            assert "--port" not in text and "gateway.port" not in text
            assert window.use_port.isVisibleTo(window)
            free = int(window.use_port.text().removeprefix("Use port "))
            assert free != port
            window.use_port.click()
            assert await answer is True
            assert json.loads(config.read_text())["gateway"]["port"] == free

    run_async(qloop, scenario())


def test_a_config_json_problem_offers_to_open_the_file(qloop, qtbot, tmp_path):
    async def scenario():
        window = ProblemWindow(tmp_path / "config.json")
        qtbot.addWidget(window)
        answer = asyncio.ensure_future(window.ask_retry(["config.json: servers.x.command: expected text"]))
        await eventually(window.isVisible, "the window")
        assert window.details.text().endswith(CONFIG_HINT)
        assert window.open_file.text() == "Open config.json" and not window.use_port.isVisibleTo(window)
        window.quit.click()
        assert await answer is False

    run_async(qloop, scenario())

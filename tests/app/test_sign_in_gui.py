"""The GUI's sign-in: Sign in… in the Servers panel opens the system browser (here the scripted one, through
``BROWSER`` and Python's ``webbrowser``), the server becomes ready, the detail view shows the sign-in and
signs out; the tray tells of a server that needs a sign-in once, not at every retry."""

from __future__ import annotations

import logging
import socket
import sys
import webbrowser
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from app import bridge as app_bridge
from app.panels.overview import OverviewPanel
from app.panels.servers import ServersPanel, ServerTableModel
from gateway_core.downstream import server as downstream_server
from tests.app.harness import eventually, run_async, running_bridge
from tests.app.test_tray import Opened
from tests.fakes.launch import serve_oauth
from tests.integration.test_sign_in import files_holding, stored_token_values

SCRIPTED_BROWSER = Path(__file__).parents[1] / "fakes" / "scripted_browser.py"
M = ServerTableModel


def state_of(panel: ServersPanel, name: str) -> str:
    model = panel.model
    row = model.row_of(name)
    return "" if row is None else str(model.data(model.index(row, M.STATE)))


@pytest.fixture
def scripted_browser(monkeypatch: pytest.MonkeyPatch) -> None:
    """``webbrowser`` reads ``BROWSER`` anew and opens URLs with the scripted browser."""
    monkeypatch.setenv("BROWSER", f"{sys.executable} {SCRIPTED_BROWSER} %s")
    monkeypatch.setattr(webbrowser, "_tryorder", None)
    monkeypatch.setattr(webbrowser, "_browsers", {})


def test_sign_in_from_the_servers_panel_makes_the_server_ready_and_sign_out_needs_it_again(
    qloop, qtbot, monkeypatch, scripted_browser, toolgate_home, caplog
):
    caplog.set_level(logging.DEBUG)
    tokens: set[str] = set()
    monkeypatch.setattr(downstream_server, "SIGN_IN_RECHECK_S", 0.05)  # retries while it waits for a sign-in

    async def scenario():
        with serve_oauth() as oauth:
            base = oauth.url.removesuffix("/mcp")
            async with running_bridge({"remote": {"url": oauth.url}}) as bridge:
                panel = ServersPanel(bridge)
                qtbot.addWidget(panel)
                tray = Opened().controller(bridge)
                remote = lambda: bridge.status("remote")  # noqa: E731
                await eventually(
                    lambda: remote().restarts >= 3 and state_of(panel, "remote") == "Needs sign-in", "retries"
                )
                panel.select_server("remote")
                assert not panel.sign_in_button.isHidden() and panel.sign_in_button.isEnabled()
                assert panel.detail.sign_in_label.text() == (f"Not signed in; its sign-in is at {base} — use Sign in…")
                assert panel.detail.sign_out_button.isHidden()

                panel.sign_in_button.click()
                assert not panel.sign_in_button.isEnabled()  # one sign-in at a time
                assert panel.action_note.text().startswith("Signing in to “remote” in your browser")
                await eventually(lambda: state_of(panel, "remote") == "Ready", "the server signed in")
                await eventually(lambda: panel.action_note.text() == "Signed in to “remote”.", "the note")
                signed_in = panel.detail.sign_in_label.text()
                tokens.update(stored_token_values(toolgate_home))
                assert panel.action_error.isHidden()
                assert not panel.detail.sign_out_button.isHidden()

                panel.detail.sign_out_button.click()
                await eventually(lambda: state_of(panel, "remote") == "Needs sign-in", "signed out")
                await eventually(lambda: panel.detail.sign_out_button.isHidden(), "no sign-in shown")
                await eventually(lambda: "“remote” needs a sign-in" in panel.action_note.text(), "the offer again")
                notifications = list(tray.notifications)
                tray.close()

        assert signed_in.startswith(f"Signed in at {base}")
        assert len(tokens) == 2 and files_holding(toolgate_home, tokens) == []
        assert not any(token in caplog.text or token in signed_in for token in tokens)
        assert "access token expires" in signed_in and "refreshed automatically" in signed_in
        # One when it first needed a sign-in (not one per retry), one after the sign-out.
        assert [title for title, _ in notifications] == ["remote needs a sign-in", "remote needs a sign-in"]
        assert notifications[0][1] == (
            f"Sign in at {base}: Open Toolgate ▸ Servers ▸ Sign in…, or run toolgate login remote."
        )

    run_async(qloop, scenario())


def test_a_refused_sign_in_is_said_in_the_panel_and_the_button_works_again(qloop, qtbot, scripted_browser):
    async def scenario():
        with serve_oauth("--refuse-consent") as oauth:
            async with running_bridge({"remote": {"url": oauth.url}}) as bridge:
                panel = ServersPanel(bridge)
                qtbot.addWidget(panel)
                overview = OverviewPanel(bridge, show_panel=lambda _: None)
                qtbot.addWidget(overview)
                await eventually(lambda: state_of(panel, "remote") == "Needs sign-in", "needs sign-in")
                overview.refresh()
                # A window user is pointed at the window's button, not at a command.
                assert overview.state.text() == "Running; 1 server needs a sign-in (remote: Servers ▸ Sign in…)"
                panel.select_server("remote")
                panel.sign_in_button.click()
                await eventually(lambda: not panel.action_error.isHidden(), "the refusal")
                assert panel.action_error.text() == "“remote”: the sign-in was refused: the person did not approve"
                assert panel.sign_in_button.isEnabled() and panel.action_note.isHidden()
                assert state_of(panel, "remote") == "Needs sign-in"

    run_async(qloop, scenario())


def test_a_server_added_by_its_url_that_needs_a_sign_in_is_offered_one_at_once(qloop, qtbot, scripted_browser):
    async def scenario():
        with serve_oauth() as oauth:
            async with running_bridge({}) as bridge:
                panel = ServersPanel(bridge)
                qtbot.addWidget(panel)
                form = panel.open_form(None)
                form.name_edit.setText("notion")
                form.transport_box.setCurrentIndex(form.transport_box.findData("http"))
                form.url_edit.setText(oauth.url)
                form.save_button.click()
                await eventually(lambda: state_of(panel, "notion") == "Needs sign-in", "needs sign-in")
                await eventually(lambda: "needs a sign-in" in panel.action_note.text(), "the offer")
                assert panel.selected_server() == "notion"
                base = oauth.url.removesuffix("/mcp")
                assert panel.action_note.text() == (
                    f"“notion” needs a sign-in at {base}: click Sign in… to open your browser."
                )
                assert panel.sign_in_button.isDefault() and panel.sign_in_button.isEnabled()
                panel.sign_in_button.click()
                await eventually(lambda: state_of(panel, "notion") == "Ready", "signed in")

    run_async(qloop, scenario())


def test_a_sign_in_cancelled_while_waiting_for_the_browser_closes_its_redirect_and_can_be_started_again(
    qloop, qtbot, monkeypatch, scripted_browser
):
    opened: list[str] = []

    async def a_browser_nobody_uses(url: str) -> bool:
        opened.append(url)
        return True

    async def scenario():
        with serve_oauth() as oauth:
            async with running_bridge({"remote": {"url": oauth.url}}) as bridge:
                panel = ServersPanel(bridge)
                qtbot.addWidget(panel)
                await eventually(lambda: state_of(panel, "remote") == "Needs sign-in", "needs sign-in")
                panel.select_server("remote")
                assert panel.cancel_sign_in_button.isHidden()
                with monkeypatch.context() as patched:
                    patched.setattr(app_bridge, "open_in_browser", a_browser_nobody_uses)
                    panel.sign_in_button.click()
                    await eventually(lambda: bool(opened), "the browser opened")
                redirect = parse_qs(urlsplit(opened[0]).query)["redirect_uri"][0]
                port = urlsplit(redirect).port
                assert not panel.cancel_sign_in_button.isHidden() and not panel.sign_in_button.isEnabled()

                panel.cancel_sign_in_button.click()
                assert panel.action_note.text() == "Sign-in to “remote” cancelled."
                assert panel.cancel_sign_in_button.isHidden() and panel.sign_in_button.isEnabled()
                await eventually(lambda: not listening(port), "the redirect closed")
                assert state_of(panel, "remote") == "Needs sign-in" and panel.action_error.isHidden()
                assert bridge.api.sign_in_details("remote") is None

                panel.sign_in_button.click()  # the scripted browser, this time
                await eventually(lambda: state_of(panel, "remote") == "Ready", "signed in after all")
                assert panel.action_note.text() == "Signed in to “remote”."

    run_async(qloop, scenario())


def listening(port: int | None) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port or 0)) == 0

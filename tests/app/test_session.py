"""The tray app's run from start to Quit (``app/session.py``), in this process on the test's loop."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest

import app.session
from app.session import AppSession
from gateway_core import Paths
from tests.app.harness import WAIT_S, eventually, run_async
from tests.integration.harness import stdio_fake


def test_closing_the_window_while_toolgate_starts_hides_it_at_once_and_the_app_ends_once_started(
    qloop, qtbot, monkeypatch: pytest.MonkeyPatch
):
    paths = Paths.from_env()
    paths.ensure_dirs()
    paths.config_file.write_text(json.dumps({"gateway": {"port": 0}, "servers": {}}))
    loading = threading.Event()
    release = threading.Event()
    load = app.session.load_gateway

    def slow_load() -> None:  # the gateway's modules still loading, for as long as the test needs
        loading.set()
        release.wait(WAIT_S)
        load()

    monkeypatch.setattr(app.session, "load_gateway", slow_load)

    async def scenario():
        session = AppSession(paths)
        run = asyncio.ensure_future(session.run())
        await eventually(loading.is_set, "the gateway to start loading")
        window = session.window
        assert window is not None and window.isVisible() and window.starting is not None

        try:
            window.close()  # offscreen there is no tray: closing quits

            assert not window.isVisible()
        finally:
            release.set()
            assert await asyncio.wait_for(run, WAIT_S) == 0  # the app ends, pass or fail
        assert not window.isVisible()

    run_async(qloop, scenario())


def test_the_entry_points_hook_runs_once_when_the_servers_have_had_their_first_start(qloop, qtbot):
    paths = Paths.from_env()
    paths.ensure_dirs()
    paths.config_file.write_text(json.dumps({"gateway": {"port": 0}, "servers": {"fake": stdio_fake()}}))
    ready: list[bool] = []

    async def scenario():
        session = AppSession(paths, when_ready=lambda: ready.append(session.bridge.api.ready()))
        run = asyncio.ensure_future(session.run())
        try:
            await eventually(lambda: ready, "the hook")
            assert ready == [True]
            session.bridge.gateway_ready.emit()  # announced again: the hook is not run again
            assert ready == [True]
        finally:
            session.quit()
            assert await asyncio.wait_for(run, WAIT_S) == 0

    run_async(qloop, scenario())

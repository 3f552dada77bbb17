"""Watching config.json: each real change applied once, a broken edit reported once, the running one kept."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
import watchfiles
import watchfiles.main

from gateway_core.config import Config, load_config
from gateway_core.config.watch import watch_config
from gateway_core.errors import ConfigError

pytestmark = pytest.mark.anyio

WAIT_S = 20.0
# Well under the 5 s the watching thread waits between polls, and well over its stop check (20 ms).
STOP_BOUND_S = 2.5


def config_with(port: int) -> str:
    return json.dumps({"gateway": {"port": port}})


class Watched:
    """What the watch handed over, with a way to wait for the next hand-over."""

    def __init__(self, path: Path) -> None:
        self.running: Config = load_config(path)
        self.applied: list[Config] = []
        self.rejected: list[ConfigError] = []
        self._changed = anyio.Event()

    def apply(self, config: Config) -> None:
        self.running = config
        self.applied.append(config)
        self._changed.set()

    def reject(self, error: ConfigError) -> None:
        self.rejected.append(error)
        self._changed.set()

    async def next(self) -> None:
        with anyio.fail_after(WAIT_S):
            await self._changed.wait()
        self._changed = anyio.Event()


async def watching(path: Path, watched: Watched, tg: anyio.abc.TaskGroup, stop: anyio.Event) -> None:
    """Start the watch and return once it sees changes (a first edit, to port 999, is applied and forgotten)."""
    tg.start_soon(lambda: watch_config(path, lambda: watched.running, watched.apply, watched.reject, stop=stop))
    with anyio.fail_after(WAIT_S):
        while not watched.applied:  # the watcher starts in a thread: write until it has seen one
            await anyio.Path(path).write_text(config_with(999))
            with anyio.move_on_after(0.5):
                await watched.next()
    watched.applied.clear()


async def test_a_change_is_applied_a_broken_edit_reported_once_and_a_fix_applied_again(tmp_path: Path):
    path = tmp_path / "config.json"
    path.write_text(config_with(1000))
    watched = Watched(path)
    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        await watching(path, watched, tg, stop)
        path.write_text(config_with(1001))
        await watched.next()
        path.write_text("{ broken")
        await watched.next()
        path.write_text("{ broken ")  # the same problem again: not reported twice
        path.write_text(config_with(1002))
        await watched.next()
        stop.set()

    assert [c.gateway.port for c in watched.applied] == [1001, 1002]
    assert len(watched.rejected) == 1 and watched.rejected[0].problems


async def test_a_save_without_changes_and_an_editors_rename_dance_apply_only_real_changes(tmp_path: Path):
    path = tmp_path / "config.json"
    path.write_text(config_with(1000))
    watched = Watched(path)
    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        await watching(path, watched, tg, stop)
        path.write_text(config_with(999))  # saved, unchanged
        temporary = tmp_path / ".config.json.swp"
        temporary.write_text(config_with(1003))
        os.replace(temporary, path)  # how many editors save
        await watched.next()
        stop.set()

    assert [c.gateway.port for c in watched.applied] == [1003]
    assert watched.rejected == []


def replace(path: Path, content: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(content)
    os.replace(temporary, path)


async def test_every_save_is_applied_after_the_file_was_replaced_twice_deleted_and_created_again(tmp_path: Path):
    path = tmp_path / "config.json"
    path.write_text(config_with(1000))
    watched = Watched(path)
    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        await watching(path, watched, tg, stop)
        replace(path, config_with(1001))
        await watched.next()
        replace(path, config_with(1002))
        await watched.next()
        path.write_text(config_with(1003))  # in place, into the file the last rename put there
        await watched.next()
        path.unlink()
        path.write_text(config_with(1004))
        await watched.next()
        path.write_text(config_with(1005))
        await watched.next()
        stop.set()

    assert [c.gateway.port for c in watched.applied] == [1001, 1002, 1003, 1004, 1005]


async def test_the_audit_log_and_other_files_in_the_folder_never_wake_the_watcher(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    asked_about: list[str] = []  # every change the watching thread woke up for
    real_awatch = watchfiles.awatch

    def spying_awatch(*paths: Any, watch_filter: Callable[[watchfiles.Change, str], bool], **options: Any) -> Any:
        def spy(change: watchfiles.Change, changed: str) -> bool:
            asked_about.append(Path(changed).name)
            return watch_filter(change, changed)

        return real_awatch(*paths, watch_filter=spy, **options)

    monkeypatch.setattr(watchfiles, "awatch", spying_awatch)
    path = tmp_path / "config.json"
    path.write_text(config_with(1000))
    watched = Watched(path)
    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        await watching(path, watched, tg, stop)
        for i in range(20):
            (tmp_path / "audit.sqlite3").write_text(f"commit {i}")
            (tmp_path / "audit-journal-0.jsonl").write_text(f"record {i}\n")
        path.write_text(config_with(1001))
        await watched.next()
        stop.set()

    assert [c.gateway.port for c in watched.applied] == [1001]
    assert set(asked_about) == {"config.json"}


async def test_cancelling_the_watch_ends_it_at_once_rather_than_at_the_watchers_next_poll(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    waiting = threading.Event()  # set while the watching thread waits for changes
    real_notify = watchfiles.main.RustNotify

    class SpiedNotify:
        def __init__(self, *args: Any) -> None:
            self._inner = real_notify(*args)

        def __enter__(self) -> SpiedNotify:
            self._inner.__enter__()
            return self

        def __exit__(self, *args: Any) -> None:
            self._inner.__exit__(*args)

        def watch(self, *args: Any) -> Any:
            waiting.set()
            try:
                return self._inner.watch(*args)
            finally:
                waiting.clear()

    monkeypatch.setattr(watchfiles.main, "RustNotify", SpiedNotify)
    path = tmp_path / "config.json"
    path.write_text(config_with(1000))
    watched = Watched(path)
    scope = anyio.CancelScope()
    ended = anyio.Event()

    async def watch() -> None:
        with scope:
            await watch_config(path, lambda: watched.running, watched.apply, watched.reject)
        ended.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(watch)
        with anyio.fail_after(WAIT_S):
            while not watched.applied:  # the watcher starts in a thread: write until it has seen one
                await anyio.Path(path).write_text(config_with(999))
                with anyio.move_on_after(0.5):
                    await watched.next()
        assert await anyio.to_thread.run_sync(waiting.wait, WAIT_S)
        scope.cancel()
        # The watching thread waits up to 5 s for changes; a cancel must not wait for that.
        with anyio.fail_after(STOP_BOUND_S):
            await ended.wait()

"""Watching config.json: each real change applied once, a broken edit reported once, the running one kept."""

from __future__ import annotations

import json
import os
from pathlib import Path

import anyio
import pytest

from gateway_core.config import Config, load_config
from gateway_core.config.watch import watch_config
from gateway_core.errors import ConfigError

pytestmark = pytest.mark.anyio

WAIT_S = 20.0


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

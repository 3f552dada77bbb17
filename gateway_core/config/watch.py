"""Watching config.json and handing each valid change to the gateway; invalid changes are reported, not applied.

The file itself is watched, not its folder, so what else happens there (the audit log's commits and
journal, tokens, the control file) never wakes the watcher. An editor that saves by writing a
temporary file and renaming it replaces the file, which ends that watch: a new one is put on the new
file before it is read, so no save is missed. While the file is missing, its folder is watched until
it is back. Bursts of saves are seen once things settle; the file's content is read again, compared
with what runs, and only a real change is passed on. A file that is missing or unreadable keeps the
running configuration. Stopping (or cancelling) the watch ends it at once.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import anyio.abc
import watchfiles

from gateway_core.config import Config, load_config
from gateway_core.errors import ConfigError

logger = logging.getLogger(__name__)

# Editors write, rename and touch in bursts; wait for this long a quiet spell before reading.
DEBOUNCE_MS = 150
# How often the watching thread checks whether it should stop.
STOP_CHECK_MS = 20


async def watch_config(
    path: Path,
    current: Callable[[], Config],
    on_valid: Callable[[Config], None],
    on_invalid: Callable[[ConfigError], None],
    *,
    stop: anyio.Event | None = None,
) -> None:
    """Call ``on_valid`` with each new valid configuration and ``on_invalid`` with each rejected edit.

    Args:
        path: config.json.
        current: the configuration running now (compared against, so a save without changes is ignored).
        on_valid: takes a configuration that differs from ``current()``.
        on_invalid: takes the problems of an edit that cannot be used; the running configuration stays.
        stop: ends the watch when set (cancelling the task works too; both end it within ``STOP_CHECK_MS``).
    """
    halt = anyio.Event()
    last_problem: tuple[str, ...] | None = None
    reading = anyio.Lock()

    async def check() -> None:
        nonlocal last_problem
        async with reading:
            if not await anyio.Path(path).exists():
                logger.info("%s is missing; the running configuration stays until it is back", path)
                return
            try:
                config = await anyio.to_thread.run_sync(load_config, path)
            except ConfigError as exc:
                problems = tuple(exc.problems)
                if problems != last_problem:
                    logger.warning(
                        "config.json was not applied (the running configuration stays):\n  %s", "\n  ".join(problems)
                    )
                    on_invalid(exc)
                last_problem = problems
                return
            last_problem = None
            if config != current():
                on_valid(config)

    async with anyio.create_task_group() as tg:
        tg.start_soon(_halt_when_stopped, stop, halt)
        tg.start_soon(_watch, path, halt, check, tg)


async def _halt_when_stopped(stop: anyio.Event | None, halt: anyio.Event) -> None:
    """Set ``halt`` (which the watching threads check) when ``stop`` is set or the watch is cancelled."""
    try:
        if stop is None:
            await anyio.sleep_forever()
        else:
            await stop.wait()
    finally:
        halt.set()


async def _watch(path: Path, halt: anyio.Event, check: Callable[[], Awaitable[None]], tg: anyio.abc.TaskGroup) -> None:
    """Watch ``path`` (its folder while it is missing) and ``check`` after each change, until ``halt``.

    When the file is replaced, deleted or created, this watch can no longer see it: a new one takes
    over (started, so in place, before the file is read) and this one ends.
    """
    exists = await anyio.Path(path).is_file()
    target = path if exists else path.parent

    def concerns_config(_change: watchfiles.Change, changed: str) -> bool:
        return exists or Path(changed).name == path.name

    batches = watchfiles.awatch(
        target,
        watch_filter=concerns_config,
        debounce=DEBOUNCE_MS,
        step=STOP_CHECK_MS,
        stop_event=halt,
        recursive=False,
    )

    # Runs once this task first waits: in awatch's thread, with the watch in place. So a change made
    # before that (between the gateway's start and now, or while the watch was being replaced) is read.
    async def check_once_watched() -> None:
        await check()

    tg.start_soon(check_once_watched)
    async with contextlib.aclosing(batches):
        async for changes in batches:
            if not exists or any(change is not watchfiles.Change.modified for change, _ in changes):
                tg.start_soon(_watch, path, halt, check, tg)
                # The new task runs up to its first wait (its watch is then in place) before this one goes on.
                await anyio.lowlevel.checkpoint()
                await check()
                return
            await check()

"""Watching config.json and handing each valid change to the gateway; invalid changes are reported, not applied.

The folder is watched rather than the file, so editors that save by writing a temporary file and
renaming it, bursts of saves, and a file that is briefly missing are all seen as what they are: the
file's content is read again once things settle, compared with what runs, and only a real change
is passed on. A file that is missing or unreadable keeps the running configuration.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import anyio
import watchfiles

from gateway_core.config import Config, load_config
from gateway_core.errors import ConfigError

logger = logging.getLogger(__name__)

# Editors write, rename and touch in bursts; wait for this long a quiet spell before reading.
DEBOUNCE_MS = 150


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
        stop: ends the watch when set (cancelling the task works too).
    """
    folder = path.parent
    name = path.name
    last_problem: tuple[str, ...] | None = None

    def concerns_config(_change: watchfiles.Change, changed: str) -> bool:
        return Path(changed).name == name

    async for _changes in watchfiles.awatch(
        folder, watch_filter=concerns_config, debounce=DEBOUNCE_MS, step=20, stop_event=stop, recursive=False
    ):
        if not await anyio.Path(path).exists():
            logger.info("%s is missing; the running configuration stays until it is back", path)
            continue
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
            continue
        last_problem = None
        if config != current():
            on_valid(config)

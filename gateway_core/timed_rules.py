"""Timed rules leave the config when they expire.

A rule with ``expires`` stops applying at that moment whatever this module does (``policy.evaluate``
compares it with the call's time); this loop then removes it from config.json, so the file, the GUI
and ``toolgate agents rules`` stop showing it. It wakes at the next expiry, or when the
configuration changes, and at least every ``CHECK_EVERY_S`` (the wall clock may jump).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio

from gateway_core.config import Config
from gateway_core.config.edit import remove_expired_rules
from gateway_core.errors import ConfigError

logger = logging.getLogger(__name__)

CHECK_EVERY_S = 60.0


async def remove_expired(
    path: Path,
    *,
    next_expiry: Callable[[float], float | None],
    changed: Callable[[], Awaitable[None]],
    apply: Callable[[Config], None],
    clock: Callable[[], float] = time.time,
) -> None:
    """Remove expired rules from ``path`` as they expire, until cancelled.

    Args:
        path: config.json.
        next_expiry: the first expiry after the given time among the rules in force, or None.
        changed: waits until the configuration in force changes.
        apply: puts a configuration the removal wrote into force.
        clock: the time of day (POSIX timestamp).
    """
    handled = float("-inf")  # rules that expired while Toolgate was not running go at once
    while True:
        due = next_expiry(handled)
        delay = CHECK_EVERY_S if due is None else min(max(due - clock(), 0.0), CHECK_EVERY_S)
        with anyio.move_on_after(delay):
            await changed()
            continue
        now = clock()
        if due is None or now < due:
            continue
        handled = now
        try:
            config = remove_expired_rules(path, now)
        except ConfigError as exc:
            # The expired rules no longer apply; only the file still shows them until the next try.
            logger.warning("could not remove expired rules from %s: %s", path.name, exc)
            continue
        if config is not None:
            logger.info("removed the rules that expired from %s", path.name)
            apply(config)

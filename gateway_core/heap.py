"""What start-up made, left out of every later full garbage collection."""

from __future__ import annotations

import gc
import logging
import time

logger = logging.getLogger("toolgate")


def freeze_start_up() -> None:
    """Collect once, then move every object alive now into the collector's permanent generation.

    A full collection walks every object the collector tracks, and every agent's call waits while it
    runs. Once the gateway serves, most of those objects are what start-up made and what lives as
    long as the process: modules, the SDK's and pydantic's models, Qt's bindings in the tray app.
    Measured under 32 clients: full collections of 150–170 ms in the tray app every several
    seconds; frozen, the next ones walk only what was made since (37–41 ms).

    Only for a program's entry point, once it is ready: a frozen object in a reference cycle is never
    freed, so a library, a test process, or anything that starts and stops gateways must not call it.
    """
    started = time.perf_counter()
    gc.collect()
    gc.freeze()
    logger.debug(
        "left %d start-up objects out of later garbage collections (%.0f ms)",
        gc.get_freeze_count(),
        (time.perf_counter() - started) * 1000,
    )

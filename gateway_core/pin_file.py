"""Where pinned tools are kept: ``pins.json`` in the state folder, read once at start and saved after each change.

``PinFile.load`` reads it (blocking; before the servers start); ``PinFile.run`` is the gateway's task that
writes it off the event loop whenever ``save_soon`` was called, and once more when the gateway stops. Each
write replaces the file in one step and never goes through a link someone planted (``gateway_core.files``).
A file that cannot be read is kept aside as ``pins.json.unreadable`` (the first listing then pins anew).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import anyio
import anyio.to_thread
from anyio.abc import TaskStatus

from gateway_core.files import write_atomically
from gateway_core.paths import Paths, ensure_private_dir
from gateway_core.pinning import ToolPins

logger = logging.getLogger(__name__)

PINS_FILE_NAME = "pins.json"
UNREADABLE_SUFFIX = ".unreadable"


def pins_path(paths: Paths) -> Path:
    """Where the pins of the Toolgate using ``paths`` are kept."""
    return paths.state_dir / PINS_FILE_NAME


class PinFile:
    """The pins of one gateway and the file they are saved in.

    Args:
        path: the file (``pins_path``); None keeps pins in memory only.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.pins = ToolPins()
        self._saved = 0
        self._dirty = anyio.Event()

    def load(self) -> ToolPins:
        """Read the file (blocking); a missing file is no pins, an unreadable one is set aside with a warning."""
        if self.path is None:
            return self.pins
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return self.pins
        except OSError as exc:
            logger.warning("The pinned tools in %s cannot be read (%s); tools are pinned anew", self.path, exc)
            return self.pins
        try:
            self.pins = ToolPins.from_json(json.loads(text))
        except (ValueError, KeyError, TypeError) as exc:
            aside = self.path.with_name(self.path.name + UNREADABLE_SUFFIX)
            logger.warning(
                "The pinned tools in %s are not readable (%s); the file is kept as %s and tools are pinned anew",
                self.path,
                exc,
                aside,
            )
            try:
                os.replace(self.path, aside)
            except OSError:
                logger.warning("could not move %s aside", self.path)
        self._saved = self.pins.version
        return self.pins

    def save_soon(self) -> None:
        """The pins changed: ``run`` writes them."""
        self._dirty.set()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Write the pins whenever they changed, until cancelled; then write what is left."""
        task_status.started()
        try:
            while True:
                await self._dirty.wait()
                self._dirty = anyio.Event()
                await self._save()
        finally:
            with anyio.CancelScope(shield=True):
                await self._save()

    async def _save(self) -> None:
        if self.path is None or self.pins.version == self._saved:
            return
        version = self.pins.version
        text = json.dumps(self.pins.to_json(), indent=1, ensure_ascii=False)
        try:
            await anyio.to_thread.run_sync(self._write, self.path, text)
        except OSError as exc:
            logger.warning("The pinned tools could not be saved to %s (%s)", self.path, exc)
            return
        self._saved = version

    @staticmethod
    def _write(path: Path, text: str) -> None:
        ensure_private_dir(path.parent)
        write_atomically(path, text)

"""Every file Toolgate writes: replaced in one step, and never through a link someone planted.

``atomic_file`` (and ``write_atomically`` on top of it) writes a fresh temporary file with an
unpredictable name in the target's folder, created exclusively so no existing file or link is ever
opened; its mode is set on the descriptor before any content; it is fsynced and renamed over the
target, and the folder is fsynced. ``create_exclusively`` makes a new file (a backup) that must not
exist yet, not even as a link. A target that is itself a symbolic link is handled as ``Links`` says.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from gateway_core.user_only import restrict_to_user

logger = logging.getLogger(__name__)

PRIVATE_FILE_MODE = 0o600
# O_NOFOLLOW does not exist on Windows, where creating a file never follows a link anyway.
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


class Links(enum.Enum):
    """What to do when the file to replace is itself a symbolic link."""

    REPLACE = "replace"
    """Replace the link with the new file (Toolgate's own state files, exports, entries it owns)."""
    FOLLOW = "follow"
    """Write the file the link points to, keeping the link (files a person links on purpose, like dotfiles)."""
    REFUSE = "refuse"
    """Raise (files in folders other people control, like a cloned project's client config)."""


@contextlib.contextmanager
def atomic_file(
    path: Path, *, mode: int | None = PRIVATE_FILE_MODE, links: Links = Links.REPLACE
) -> Iterator[BinaryIO]:
    """A binary file whose content replaces ``path`` in one step when the block ends without an error.

    Args:
        path: the file to replace; its folder must exist.
        mode: the new file's permission bits; None keeps those of the file it replaces (0600 if none).
        links: what to do when ``path`` is a symbolic link.

    Raises:
        OSError: it could not be written (``path`` is unchanged), or ``path`` is a link and ``links``
            is ``REFUSE`` (errno ``ELOOP``).
    """
    target = _target(path, links)
    if mode is None:
        mode = _mode_of(target)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    temporary = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            _set_mode(out, temporary, mode)
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    _fsync_dir(target.parent)


def write_atomically(
    path: Path, data: str | bytes, *, mode: int | None = PRIVATE_FILE_MODE, links: Links = Links.REPLACE
) -> Path:
    """Replace ``path`` with ``data`` (text is written as UTF-8) in one step; returns the file written.

    The file written is ``path`` itself unless ``path`` is a link and ``links`` is ``FOLLOW``.
    See ``atomic_file`` for the arguments and errors.
    """
    target = _target(path, links)
    with atomic_file(target, mode=mode) as out:  # the target itself now: a link was resolved or refused
        out.write(data.encode("utf-8") if isinstance(data, str) else data)
    return target


def create_exclusively(path: Path, data: bytes, *, mode: int = PRIVATE_FILE_MODE) -> None:
    """Create the new file ``path`` holding ``data``.

    Raises:
        FileExistsError: something is already there, a link included (nothing is written).
        OSError: it could not be written.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | getattr(os, "O_CLOEXEC", 0), mode)
    try:
        with os.fdopen(fd, "wb") as out:
            _set_mode(out, path, mode)
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            path.unlink()
        raise


def _target(path: Path, links: Links) -> Path:
    if not path.is_symlink():
        return path
    if links is Links.REPLACE:
        return path  # os.replace renames over the link itself, never through it
    destination = Path(os.path.realpath(path))
    if links is Links.REFUSE:
        raise OSError(errno.ELOOP, f"it is a symbolic link to {destination}, and Toolgate does not write through it")
    logger.info("%s is a link to %s: writing %s", path, destination, destination)
    return destination


def _mode_of(path: Path) -> int:
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        return PRIVATE_FILE_MODE


def _set_mode(out: BinaryIO, path: Path, mode: int) -> None:
    # The umask does not apply to chmod: the file gets exactly ``mode``, before it holds anything.
    if os.name == "nt":
        os.chmod(path, mode)  # only the read-only bit means anything there
        if not mode & 0o077:  # private: an access list does what the mode does elsewhere
            restrict_to_user(path)
    else:
        os.fchmod(out.fileno(), mode)


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; directories cannot be opened this way on Windows.
    if os.name == "nt":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

"""One Toolgate per TOOLGATE_HOME: an exclusive OS file lock held for the process lifetime.

The OS releases the lock when the process ends, however it ends, so a crash never leaves a stale
lock behind. The holder's pid is written into the file so a second start can say who holds it.
"""

from __future__ import annotations

import os
import sys
from types import TracebackType

if sys.platform == "win32":
    import msvcrt
else:
    import fcntl

from gateway_core.errors import InstanceError
from gateway_core.paths import Paths

# Windows locks are mandatory: lock one byte far past the pid, so others can still read the pid.
_WINDOWS_LOCK_OFFSET = 0x7FFFFFFF


class InstanceLock:
    """An exclusive, non-blocking lock on ``paths.lock_file``.

    Use it as a context manager around the gateway's whole life, or call ``acquire``/``release``.

    Args:
        paths: where Toolgate's files live; the lock file's folder is created if missing.
    """

    def __init__(self, paths: Paths) -> None:
        self._paths = paths
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock and write this process's pid into the lock file.

        Raises:
            InstanceError: another process holds it, or the lock file cannot be opened.
        """
        if self._fd is not None:
            return
        path = self._paths.lock_file
        try:
            self._paths.ensure_dirs()
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise InstanceError(f"cannot open the lock file {path}: {exc.strerror or exc}") from exc
        try:
            _lock(fd)
        except OSError as exc:
            holder = _read_pid(fd)
            os.close(fd)
            pid = f"pid {holder}" if holder else "pid unknown"
            raise InstanceError(
                f"Toolgate is already running for TOOLGATE_HOME={self._paths.home} ({pid}); "
                "stop it first or set TOOLGATE_HOME to another folder"
            ) from exc
        self._fd = fd
        try:
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError as exc:
            self.release()
            raise InstanceError(f"cannot write the lock file {path}: {exc.strerror or exc}") from exc

    def release(self) -> None:
        """Give the lock up (closing the file releases it)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        os.close(fd)

    def __enter__(self) -> InstanceLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 32).decode("ascii", errors="replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


if sys.platform == "win32":

    def _lock(fd: int) -> None:
        os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)

else:

    def _lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

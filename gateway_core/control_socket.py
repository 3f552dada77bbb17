"""Where the control channel listens on macOS and Linux: a Unix socket only its user can open.

The agent endpoint is a TCP port every local process (and browser) can reach; approving calls must
not be. On POSIX systems the gateway serves ``/control/approvals`` only on ``control.sock`` in its
state folder (the folder 0700, the socket 0600), still behind the control token. Windows keeps the
loopback port with the token (a named pipe is not served yet). ``UnixHTTPConnection`` is the
standard-library client side. A path too long for a Unix socket address is reached through
``/proc/self/fd`` on Linux.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

from gateway_core.paths import Paths, ensure_private_dir

CONTROL_SOCKET_NAME = "control.sock"
# Only a few tools ever talk to it at once.
CONTROL_BACKLOG = 16
# Unix socket paths are short (104 bytes on macOS, 108 on Linux).
MAX_SOCKET_PATH_BYTES = 100


def supported() -> bool:
    """Whether the control channel can use a Unix socket here."""
    return hasattr(socket, "AF_UNIX") and os.name != "nt"


def control_socket_path(paths: Paths) -> Path:
    """Where the running gateway's control socket is."""
    return paths.state_dir / CONTROL_SOCKET_NAME


@contextlib.contextmanager
def _bindable(path: Path) -> Iterator[str]:
    """``path`` as a Unix socket address: itself, or on Linux a short ``/proc/self/fd/N/NAME`` for a long one."""
    if len(os.fsencode(path)) <= MAX_SOCKET_PATH_BYTES:
        yield str(path)
        return
    if not Path("/proc/self/fd").is_dir():
        raise OSError(f"the control socket path {path} is too long for a Unix socket; set a shorter TOOLGATE_HOME")
    folder = os.open(path.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        yield f"/proc/self/fd/{folder}/{path.name}"
    finally:
        os.close(folder)


class ControlSocket:
    """A listening Unix socket at ``path``, mode 0600, in a 0700 folder; a stale socket there is replaced.

    Raises:
        OSError: something that is not a socket is at ``path`` (it is left alone), or it cannot be bound.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        ensure_private_dir(path.parent)
        with contextlib.suppress(FileNotFoundError):
            if not stat.S_ISSOCK(path.lstat().st_mode):
                raise OSError(f"{path} exists and is not a socket; remove it and start Toolgate again")
            path.unlink()  # left by a gateway that did not stop cleanly (the instance lock says none runs)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with _bindable(path) as address:
                self.sock.bind(address)
            os.chmod(path, 0o600)  # the 0700 folder already keeps others out until this is done
            made = path.lstat()
            self._identity = (made.st_dev, made.st_ino)
            self.sock.listen(CONTROL_BACKLOG)
        except BaseException:
            self.sock.close()
            raise
        self.sock.setblocking(False)

    def close(self) -> None:
        """Close the socket and remove its file, if the file is still this socket."""
        with contextlib.suppress(OSError):
            current = self.path.lstat()
            if (current.st_dev, current.st_ino) == self._identity:
                self.path.unlink()
        self.sock.close()


class UnixHTTPConnection(http.client.HTTPConnection):
    """``http.client`` over a Unix socket (the Host header says ``localhost``)."""

    def __init__(self, path: str, *, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        """Open the Unix socket instead of a TCP connection."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            with _bindable(Path(self._path)) as address:
                sock.connect(address)
        except BaseException:
            sock.close()
            raise
        self.sock = sock

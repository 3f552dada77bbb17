"""The control file: how same-user Toolgate tools find the running gateway and prove they may control it.

While the gateway runs, ``ControlFile`` keeps ``control.json`` (URL, the control socket, a random
per-run token, pid) in the private state folder, mode 0600, and removes it at shutdown; only the
same OS user can read the token. ``read_control_file`` refuses a file that is a link, belongs to
another user or is readable by others. The server side is ``gateway_core.frontend.control``, the
client side ``gateway_core.cli.control_client``.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from gateway_core.errors import ToolgateError
from gateway_core.files import write_atomically
from gateway_core.paths import Paths, ensure_private_dir

CONTROL_FILE_NAME = "control.json"
# Group and others may have no access at all: the file holds a token that answers approvals.
_LOOSE_MODE_BITS = 0o077


class ControlError(ToolgateError):
    """The control channel cannot be used: Toolgate is not running, unreachable, or its control file is unsafe."""


class NotRunningError(ControlError):
    """No gateway runs for this TOOLGATE_HOME: no control file, or nothing listens where one left says."""


@dataclass(frozen=True)
class ControlEndpoint:
    """Where and how to reach a running gateway's control channel.

    Attributes:
        url: the gateway's base URL, e.g. ``http://127.0.0.1:47800``.
        token: the bearer token ``ControlApp`` accepts.
        socket: the Unix socket the approvals are served on (None: on ``url``, as on Windows).
    """

    url: str
    token: str
    socket: str | None = None


def new_control_token() -> str:
    """A fresh random token for one run of the gateway."""
    return secrets.token_urlsafe(32)


def control_file_path(paths: Paths) -> Path:
    """Where the running gateway keeps its control file."""
    return paths.state_dir / CONTROL_FILE_NAME


class ControlFile:
    """The control file of this process's gateway: written on enter (or ``write``), removed on exit.

    Args:
        paths: where Toolgate's files live; the state folder is created 0700 if missing.
        endpoint: the URL and token to publish.
    """

    def __init__(self, paths: Paths, endpoint: ControlEndpoint) -> None:
        self._paths = paths
        self._endpoint = endpoint

    @property
    def path(self) -> Path:
        """The control file's path."""
        return control_file_path(self._paths)

    def write(self) -> None:
        """Write the file atomically with mode 0600, replacing any stale one.

        Raises:
            OSError: the file could not be written.
        """
        ensure_private_dir(self._paths.state_dir)
        content: dict[str, object] = {"url": self._endpoint.url, "token": self._endpoint.token, "pid": os.getpid()}
        if self._endpoint.socket is not None:
            content["socket"] = self._endpoint.socket
        write_atomically(self.path, json.dumps(content) + "\n")

    def remove(self) -> None:
        """Remove the file if it is still the one this object wrote (a newer gateway's is left alone)."""
        try:
            current = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if isinstance(current, dict) and current.get("token") == self._endpoint.token:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    def __enter__(self) -> ControlFile:
        self.write()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.remove()


def read_control_file(paths: Paths) -> ControlEndpoint:
    """Read the running gateway's control endpoint.

    Args:
        paths: where Toolgate's files live.

    Returns:
        The URL and token.

    Raises:
        ControlError: no gateway runs for this TOOLGATE_HOME, or the file is damaged, not owned by
            this user, or readable or writable by others (it is then refused, never used).
    """
    path = control_file_path(paths)
    try:
        text = _read_private(path)
    except FileNotFoundError as exc:
        raise NotRunningError(
            f"Toolgate is not running for TOOLGATE_HOME={paths.home}; start it with `toolgate serve`"
        ) from exc
    except OSError as exc:
        raise ControlError(f"cannot read the control file {path}: {exc.strerror or exc}") from exc
    try:
        content = json.loads(text)
        url, token, socket_path = content["url"], content["token"], content.get("socket")
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ControlError(f"the control file {path} is damaged; restart Toolgate to rewrite it") from exc
    if not (isinstance(url, str) and isinstance(token, str) and url and token):
        raise ControlError(f"the control file {path} is damaged; restart Toolgate to rewrite it")
    if socket_path is not None and not (isinstance(socket_path, str) and socket_path):
        raise ControlError(f"the control file {path} is damaged; restart Toolgate to rewrite it")
    return ControlEndpoint(url=url.rstrip("/"), token=token, socket=socket_path)


def _read_private(path: Path) -> str:
    if os.name == "nt":
        return path.read_text(encoding="utf-8")
    # O_NOFOLLOW and fstat: the checks apply to the very file that is read, never a symlink's target.
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "r", encoding="utf-8") as handle:
        info = os.fstat(handle.fileno())
        if info.st_uid != os.getuid():
            raise ControlError(f"refusing to use the control file {path}: it belongs to another user")
        mode = stat.S_IMODE(info.st_mode)
        if mode & _LOOSE_MODE_BITS:
            raise ControlError(
                f"refusing to use the control file {path}: its permissions are {mode:04o}, looser than 0600; "
                "delete it and restart Toolgate"
            )
        return handle.read()

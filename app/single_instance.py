"""One Toolgate window per TOOLGATE_HOME: a second launch asks the first to come to the front, then exits."""

from __future__ import annotations

import hashlib
import os
import sys

from PySide6.QtCore import QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

from gateway_core import Paths

SHOW_REQUEST = b"show\n"
# How long a second launch waits for the first to answer; the first answers from its event loop.
CONNECT_TIMEOUT_MS = 1000


def socket_name(paths: Paths) -> str:
    """The local socket's name for this TOOLGATE_HOME (and this user, on systems where names are global)."""
    user = os.environ.get("USERNAME" if sys.platform == "win32" else "USER", "")
    digest = hashlib.sha256(f"{user}\0{paths.home.resolve()}".encode()).hexdigest()[:16]
    return f"toolgate-{digest}"


def ask_running_instance_to_show(paths: Paths) -> bool:
    """Tell a running Toolgate to bring its window to the front; ``False`` when none answers."""
    sock = QLocalSocket()
    sock.connectToServer(socket_name(paths))
    if not sock.waitForConnected(CONNECT_TIMEOUT_MS):
        return False
    sock.write(SHOW_REQUEST)
    sent = sock.waitForBytesWritten(CONNECT_TIMEOUT_MS)
    sock.disconnectFromServer()
    return sent


class InstanceServer(QObject):
    """Listens for later launches and emits ``show_requested`` when one asks."""

    show_requested = Signal()

    def __init__(self, paths: Paths) -> None:
        super().__init__()
        self._server = QLocalServer(self)
        self._server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        name = socket_name(paths)
        # Only called once the instance lock is held, so a leftover socket is a crashed run's.
        QLocalServer.removeServer(name)
        self.listening = self._server.listen(name)
        self._server.newConnection.connect(self._accept)

    def _accept(self) -> None:
        while (sock := self._server.nextPendingConnection()) is not None:
            sock.readyRead.connect(lambda s=sock: self._read(s))
            sock.disconnected.connect(sock.deleteLater)

    def _read(self, sock: QLocalSocket) -> None:
        if bytes(sock.readAll().data()).startswith(SHOW_REQUEST.strip()):
            self.show_requested.emit()

    def close(self) -> None:
        """Stop listening."""
        self._server.close()

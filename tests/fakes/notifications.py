"""A desktop notification service for tests: ``org.freedesktop.Notifications`` on a private D-Bus session bus.

    with notification_service(tmp_path) as service:   # skips the test where dbus-daemon is missing
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", service.address)
        ...                                             # notifications sent there are in service.shown

It stands in for GNOME Shell's or a notification daemon's side of the freedesktop protocol (outside the
product): each ``Notify`` call is recorded and answered with an id, as a daemon does. The bus and the
service's thread end when the block is left; every wait is bounded.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from jeepney import DBus, HeaderFields, MessageType, new_method_return
from jeepney.io.blocking import open_dbus_connection

from tests.fakes.launch import read_first_line

START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 5.0
NAME = "org.freedesktop.Notifications"


@dataclass
class NotificationService:
    """The running service: its bus address and what it was asked to show (app, summary, body, timeout)."""

    address: str
    shown: list[tuple[str, str, str, int]] = field(default_factory=list)
    notified: threading.Event = field(default_factory=threading.Event)


@contextmanager
def notification_service(folder: Path) -> Iterator[NotificationService]:
    """Start a session bus under ``folder`` and serve ``org.freedesktop.Notifications`` on it."""
    bus_program = shutil.which("dbus-daemon")
    if bus_program is None:
        pytest.skip("needs dbus-daemon (apt-get install dbus)")
    runtime = folder / "run"
    runtime.mkdir(mode=0o700, parents=True)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(folder), "XDG_RUNTIME_DIR": str(runtime)}
    bus = subprocess.Popen(
        [bus_program, "--session", "--nofork", "--nopidfile", "--print-address=1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    stop = threading.Event()
    server: threading.Thread | None = None
    try:
        address = read_first_line(bus, START_TIMEOUT_S).strip()
        assert address, "dbus-daemon did not print its address"
        service = NotificationService(address)
        connection = open_dbus_connection(address)
        reply = connection.send_and_get_reply(DBus().RequestName(NAME), timeout=START_TIMEOUT_S)
        assert reply.body == (1,), f"could not own {NAME}: {reply.body}"  # 1: the primary owner

        def serve() -> None:
            with connection:
                while not stop.is_set():
                    try:
                        message = connection.receive(timeout=0.2)
                    except TimeoutError:
                        continue
                    header = message.header
                    if (
                        header.message_type is MessageType.method_call
                        and header.fields.get(HeaderFields.member) == "Notify"
                    ):
                        app, _, _, summary, body, _, _, timeout_ms = message.body
                        service.shown.append((app, summary, body, timeout_ms))
                        connection.send(new_method_return(message, "u", (len(service.shown),)))
                        service.notified.set()

        server = threading.Thread(target=serve, name="fake-notifications", daemon=True)
        server.start()
        yield service
    finally:
        stop.set()
        if server is not None:
            server.join(STOP_TIMEOUT_S)
        with suppress(ProcessLookupError):
            bus.send_signal(signal.SIGTERM)
        bus.wait(STOP_TIMEOUT_S)
        if bus.stdout is not None:
            bus.stdout.close()

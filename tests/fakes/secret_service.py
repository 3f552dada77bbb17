"""A real Secret Service for tests: gnome-keyring-daemon on a private D-Bus session bus.

    with secret_service(tmp_path) as service:      # skips the test where the programs are missing
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", service.address)
        ...                                          # keyring's SecretService backend now talks to it

The keyring lives under ``tmp_path`` (the person's own is never touched), unlocked with a test password.
Both daemons are ended when the block is left; every wait is bounded.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fakes.launch import read_first_line

START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 5.0
PASSWORD = b"toolgate-test-password"


@dataclass
class SecretService:
    """The running service: its bus address and the keyring daemon (to stop it, or stall it)."""

    address: str
    daemon: subprocess.Popen[bytes]

    def stall(self) -> None:
        """Make the daemon stop answering (SIGSTOP): calls to it wait, as on a hung keychain."""
        self.daemon.send_signal(signal.SIGSTOP)


@contextmanager
def secret_service(folder: Path) -> Iterator[SecretService]:
    """Start a session bus and an unlocked gnome-keyring on it, with its files under ``folder``."""
    bus_program, keyring_program = shutil.which("dbus-daemon"), shutil.which("gnome-keyring-daemon")
    if bus_program is None or keyring_program is None:
        pytest.skip("needs dbus-daemon and gnome-keyring-daemon (apt-get install dbus gnome-keyring)")
    runtime = folder / "run"
    runtime.mkdir(mode=0o700, parents=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(folder),
        "XDG_DATA_HOME": str(folder / "data"),
        "XDG_CONFIG_HOME": str(folder / "config"),
        "XDG_RUNTIME_DIR": str(runtime),
    }
    bus = subprocess.Popen(
        [bus_program, "--session", "--nofork", "--nopidfile", "--print-address=1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    daemon: subprocess.Popen[bytes] | None = None
    try:
        address = read_first_line(bus, START_TIMEOUT_S).strip()
        assert address, "dbus-daemon did not print its address"
        daemon = subprocess.Popen(
            [keyring_program, "--foreground", "--unlock", "--components=secrets"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env | {"DBUS_SESSION_BUS_ADDRESS": address},
        )
        assert daemon.stdin is not None
        daemon.stdin.write(PASSWORD)
        daemon.stdin.close()
        _wait_for_name(address, "org.freedesktop.secrets")
        yield SecretService(address, daemon)
    finally:
        for process in (daemon, bus):
            if process is None:
                continue
            with suppress(ProcessLookupError):
                process.send_signal(signal.SIGCONT)
                process.kill()
            process.wait(STOP_TIMEOUT_S)
            if process.stdout is not None:
                process.stdout.close()


def _wait_for_name(address: str, name: str) -> None:
    """Wait (bounded) until ``name`` is owned on the bus, asking the bus to tell us rather than polling."""
    from jeepney import DBus, MatchRule, message_bus
    from jeepney.io.blocking import open_dbus_connection

    with open_dbus_connection(address) as connection:
        rule = MatchRule(type="signal", interface="org.freedesktop.DBus", member="NameOwnerChanged")
        rule.add_arg_condition(0, name)
        with connection.filter(rule) as owners:
            connection.send_and_get_reply(message_bus.AddMatch(rule), timeout=START_TIMEOUT_S)
            if connection.send_and_get_reply(DBus().NameHasOwner(name), timeout=START_TIMEOUT_S).body[0]:
                return
            connection.recv_until_filtered(owners, timeout=START_TIMEOUT_S)

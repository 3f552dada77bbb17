"""Keyring backends for tests: one that works in memory, and two that misbehave like real keychains can.

Select ``MemoryKeyring`` in a subprocess with
``PYTHON_KEYRING_BACKEND=tests.fakes.memory_keyring.MemoryKeyring``; in-process, pass an instance
to ``open_secret_store(paths, backend=...)``.
"""

from __future__ import annotations

import threading

from keyring.backend import KeyringBackend
from keyring.errors import KeyringLocked, PasswordDeleteError


class MemoryKeyring(KeyringBackend):
    """A working keychain that keeps everything in a dict."""

    priority = 100  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.passwords: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.passwords.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.passwords[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        try:
            del self.passwords[(service, username)]
        except KeyError:
            raise PasswordDeleteError(f"{username} is not in {service}") from None


class HangingKeyring(KeyringBackend):
    """A keychain whose every call blocks until ``release`` is set, like a locked keychain's prompt."""

    priority = 0.01  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def get_password(self, service: str, username: str) -> str | None:
        self.release.wait()
        return None

    def set_password(self, service: str, username: str, password: str) -> None:
        self.release.wait()

    def delete_password(self, service: str, username: str) -> None:
        self.release.wait()


class LockedKeyring(KeyringBackend):
    """A keychain that refuses every call."""

    priority = 0.01  # type: ignore[assignment]

    def get_password(self, service: str, username: str) -> str | None:
        raise KeyringLocked("the keychain is locked")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise KeyringLocked("the keychain is locked")

    def delete_password(self, service: str, username: str) -> None:
        raise KeyringLocked("the keychain is locked")


class ForgetfulKeyring(KeyringBackend):
    """A keychain that accepts writes and returns nothing, like keyring's null backend."""

    priority = 0.01  # type: ignore[assignment]

    def get_password(self, service: str, username: str) -> str | None:
        return None

    def set_password(self, service: str, username: str, password: str) -> None:
        return None

    def delete_password(self, service: str, username: str) -> None:
        return None

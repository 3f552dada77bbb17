"""Test-wide set-up: every test gets its own TOOLGATE_HOME, no real keychain or session bus, no login shell."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def toolgate_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private TOOLGATE_HOME; the keyring is forced to its `fail` backend so the file fallback is used."""
    home = tmp_path / "toolgate-home"
    home.mkdir()
    monkeypatch.setenv("TOOLGATE_HOME", str(home))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    # Never read this machine's login shell: tests that want one set their own.
    monkeypatch.setenv("TOOLGATE_LAUNCH_ENV", "inherit")
    # Never this machine's session bus (desktop notifications, keychains): tests that want one start their own.
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    return home

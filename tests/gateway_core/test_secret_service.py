"""The keychain for real on Linux: a Secret Service (gnome-keyring on a private D-Bus session)."""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import keyring.backends.SecretService
import pytest
import secretstorage

from gateway_core.paths import Paths
from gateway_core.secrets import FileSecretStore, KeyringSecretStore, open_secret_store
from tests.fakes.secret_service import secret_service

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the Secret Service is Linux's"),
    # keyring's SecretService backend opens a D-Bus connection per call and never closes it (keyring
    # backends/SecretService.py, get_preferred_collection); the socket is closed when collected.
    pytest.mark.filterwarnings("ignore:Exception ignored in. <socket.socket:pytest.PytestUnraisableExceptionWarning"),
]


@pytest.fixture(autouse=True)
def _collect_keyrings_connections() -> Iterator[None]:
    yield
    gc.collect()  # here, where the filter above applies, not in whichever test runs next


def test_secrets_go_to_an_unlocked_secret_service_encrypted_and_nothing_to_the_file(
    toolgate_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with secret_service(tmp_path / "keyring") as service:
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", service.address)
        paths = Paths.from_env()

        store = open_secret_store(paths, backend=keyring.backends.SecretService.Keyring())
        store.set("GH", "ghp_value")

        assert isinstance(store, KeyringSecretStore) and store.encrypted
        assert store.backend_name == "Secret Service"
        # Read back through a separate connection, as another process would.
        fresh = keyring.backends.SecretService.Keyring()
        assert fresh.get_password("toolgate", "GH") == "ghp_value"
        assert fresh.get_password("toolgate", "toolgate-probe") is None  # the probe cleaned up after itself
        assert not paths.secrets_file.exists()


def test_a_locked_secret_service_falls_back_to_the_file_and_says_it_is_locked(
    toolgate_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with secret_service(tmp_path / "keyring") as service:
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", service.address)
        with secretstorage.dbus_init() as connection:
            secretstorage.get_default_collection(connection).lock()

        with caplog.at_level(logging.WARNING, logger="gateway_core.secrets"):
            store = open_secret_store(Paths.from_env(), backend=keyring.backends.SecretService.Keyring())

    assert isinstance(store, FileSecretStore) and not store.encrypted
    assert "the OS keychain is locked" in caplog.text


def test_a_secret_service_that_never_answers_falls_back_to_the_file_after_the_bounded_wait(
    toolgate_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with secret_service(tmp_path / "keyring") as service:
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", service.address)
        service.stall()

        with caplog.at_level(logging.WARNING, logger="gateway_core.secrets"):
            store = open_secret_store(
                Paths.from_env(), backend=keyring.backends.SecretService.Keyring(), probe_timeout_s=0.5
            )

    assert isinstance(store, FileSecretStore)
    assert "did not answer within 0.5 s" in caplog.text

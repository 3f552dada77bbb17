from __future__ import annotations

import logging
import os
import stat
import sys
from pathlib import Path

import pytest

from gateway_core.errors import MissingSecretError
from gateway_core.paths import Paths
from gateway_core.secrets import FileSecretStore, KeyringSecretStore, open_secret_store, resolve
from tests.fakes.memory_keyring import ForgetfulKeyring, HangingKeyring, LockedKeyring, MemoryKeyring

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")


def test_without_a_keychain_secrets_go_to_a_file_marked_not_encrypted(toolgate_home: Path) -> None:
    paths = Paths.from_env()

    store = open_secret_store(paths)
    store.set("GH", "ghp_value")

    assert isinstance(store, FileSecretStore)
    assert store.encrypted is False
    assert store.backend_name == f"file (not encrypted): {paths.secrets_file}"
    assert store.get("GH") == "ghp_value"
    assert FileSecretStore(paths.secrets_file).get("GH") == "ghp_value"


@posix_only
def test_fallback_file_is_0600_inside_a_0700_folder(tmp_path: Path) -> None:
    paths = Paths.under(tmp_path / "new-home")

    open_secret_store(paths).set("GH", "ghp_value")

    assert stat.S_IMODE(paths.secrets_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(paths.secrets_file.parent.stat().st_mode) == 0o700


@posix_only
def test_a_fallback_file_readable_by_others_is_tightened_with_a_warning(
    toolgate_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    paths = Paths.from_env()
    paths.secrets_file.write_text('{"GH": "ghp_value"}')
    os.chmod(paths.secrets_file, 0o644)

    with caplog.at_level(logging.WARNING, logger="gateway_core.secrets"):
        store = open_secret_store(paths)

    assert stat.S_IMODE(paths.secrets_file.stat().st_mode) == 0o600
    assert "had mode 644" in caplog.text
    assert store.get("GH") == "ghp_value"


def test_a_working_keychain_is_used_and_marked_encrypted(toolgate_home: Path) -> None:
    backend = MemoryKeyring()

    store = open_secret_store(Paths.from_env(), backend=backend)
    store.set("GH", "ghp_value")

    assert isinstance(store, KeyringSecretStore)
    assert store.encrypted is True
    assert backend.passwords == {("toolgate", "GH"): "ghp_value"}
    assert store.get("GH") == "ghp_value"
    assert store.delete("GH") is True
    assert store.delete("GH") is False
    assert not Paths.from_env().secrets_file.exists()


@pytest.mark.parametrize("backend_type", [LockedKeyring, ForgetfulKeyring])
def test_a_keychain_that_fails_the_probe_falls_back_to_the_file(
    toolgate_home: Path, caplog: pytest.LogCaptureFixture, backend_type: type[LockedKeyring | ForgetfulKeyring]
) -> None:
    with caplog.at_level(logging.WARNING, logger="gateway_core.secrets"):
        store = open_secret_store(Paths.from_env(), backend=backend_type())

    assert isinstance(store, FileSecretStore)
    assert "Secrets are kept in file (not encrypted)" in caplog.text


def test_a_keychain_that_does_not_answer_in_time_falls_back_to_the_file(toolgate_home: Path) -> None:
    backend = HangingKeyring()
    try:
        store = open_secret_store(Paths.from_env(), backend=backend, probe_timeout_s=0.05)
    finally:
        backend.release.set()

    assert isinstance(store, FileSecretStore)


def test_resolve_replaces_references_embedded_in_values() -> None:
    store = open_secret_store(Paths.from_env(), backend=MemoryKeyring())
    store.set("GH", "ghp_value")
    store.set("OTHER", "x")

    resolved = resolve(
        {"Authorization": "Bearer ${secret:GH}", "Pair": "${secret:GH}:${secret:OTHER}", "N": "1"}, store
    )

    assert resolved == {"Authorization": "Bearer ghp_value", "Pair": "ghp_value:x", "N": "1"}


def test_resolve_names_the_missing_secret() -> None:
    store = open_secret_store(Paths.from_env())

    with pytest.raises(MissingSecretError) as caught:
        resolve({"TOKEN": "${secret:GH}"}, store)

    assert caught.value.name == "GH"
    assert str(caught.value) == "secret 'GH' is not in the secret store; add it with `toolgate secrets set GH`"


def test_no_secret_value_is_ever_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        for store in (
            open_secret_store(Paths.from_env()),
            open_secret_store(Paths.from_env(), backend=MemoryKeyring()),
        ):
            store.set("GH", "ghp_sensitive")
            resolve({"A": "${secret:GH}"}, store)
            store.delete("GH")

    assert "ghp_sensitive" not in caplog.text

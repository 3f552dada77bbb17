"""The secret store: server credentials and agent tokens, in the OS keychain or, failing that, a 0600 file.

``open_secret_store()`` is called once by the composition root. It probes the keychain with a
round trip bounded in time (a locked keychain must not hang start-up) and falls back to
``secrets.json`` when the keychain is missing, broken or slow. Secret values are never logged.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import sys
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import keyring
import keyring.backends.fail
import keyring.backends.null
import keyring.errors
from keyring.backend import KeyringBackend

from gateway_core.config import SECRET_REFERENCE
from gateway_core.errors import MissingSecretError, SecretError
from gateway_core.files import write_atomically
from gateway_core.paths import Paths, ensure_private_dir
from gateway_core.user_only import others_allowed, restrict_to_user

logger = logging.getLogger(__name__)

SERVICE_NAME = "toolgate"
PROBE_ENTRY = "toolgate-probe"
# Long enough for a healthy keychain over D-Bus, short enough that a locked one's prompt cannot stall start-up.
PROBE_TIMEOUT_S = 3.0
SECRETS_FILE_MODE = 0o600

_KEYCHAIN_NAMES = {
    "keyring.backends.macOS": "macOS Keychain",
    "keyring.backends.SecretService": "Secret Service",
    "keyring.backends.libsecret": "Secret Service (libsecret)",
    "keyring.backends.kwallet": "KWallet",
    "keyring.backends.Windows": "Windows Credential Locker",
}


def unencrypted_reason(platform: str = sys.platform) -> str:
    """Why secrets are in the fallback file and who can read it, as true for ``platform`` (``sys.platform``)."""
    if platform == "win32":
        return (
            "Windows Credential Manager could not be used, so tokens and secret values are kept in a file "
            "only your Windows account can open (it is not encrypted)"
        )
    if platform == "darwin":
        return (
            "the macOS Keychain could not be used, so tokens and secret values are kept in a file only your "
            "user can read (mode 0600)"
        )
    return (
        "no Secret Service answered (GNOME Keyring or KWallet, unlocked, on this session's D-Bus), so tokens "
        "and secret values are kept in a file only your user can read (mode 0600)"
    )


class SecretStore(Protocol):
    """Where secrets live: named string values, read and written one at a time."""

    @property
    def encrypted(self) -> bool:
        """Whether values are encrypted at rest (the UI warns when they are not)."""
        ...

    @property
    def backend_name(self) -> str:
        """A human name for the store, e.g. ``"macOS Keychain"`` or ``"file (not encrypted): /path"``."""
        ...

    def get(self, name: str) -> str | None:
        """The value stored under ``name``, or None."""
        ...

    def set(self, name: str, value: str) -> None:
        """Store ``value`` under ``name``, replacing any previous value."""
        ...

    def delete(self, name: str) -> bool:
        """Remove ``name``; whether it was there."""
        ...


class KeyringSecretStore:
    """Secrets in an OS keychain through ``keyring``, under one service name.

    Args:
        backend: a keyring backend that passed the probe.
        service: the keychain service name every entry is filed under.
    """

    def __init__(self, backend: KeyringBackend, service: str = SERVICE_NAME) -> None:
        self._backend = backend
        self._service = service

    @property
    def encrypted(self) -> bool:
        """True, unless the backend says it stores plain text (keyrings.alt's ``PlaintextKeyring``)."""
        return "plaintext" not in type(self._backend).__name__.lower()

    @property
    def backend_name(self) -> str:
        """The keychain's human name."""
        module = type(self._backend).__module__
        return _KEYCHAIN_NAMES.get(module, type(self._backend).__name__)

    def get(self, name: str) -> str | None:
        """The value stored under ``name``, or None.

        Raises:
            SecretError: the keychain could not be read.
        """
        try:
            return self._backend.get_password(self._service, name)
        except keyring.errors.KeyringError as exc:
            raise SecretError(f"cannot read secret {name!r} from {self.backend_name}: {exc}") from exc

    def set(self, name: str, value: str) -> None:
        """Store ``value`` under ``name``.

        Raises:
            SecretError: the keychain refused the write.
        """
        try:
            self._backend.set_password(self._service, name, value)
        except keyring.errors.KeyringError as exc:
            raise SecretError(f"cannot store secret {name!r} in {self.backend_name}: {exc}") from exc

    def delete(self, name: str) -> bool:
        """Remove ``name``; whether it was there.

        Raises:
            SecretError: the keychain could not be read or refused the deletion.
        """
        if self.get(name) is None:
            return False
        try:
            self._backend.delete_password(self._service, name)
        except keyring.errors.KeyringError as exc:
            raise SecretError(f"cannot remove secret {name!r} from {self.backend_name}: {exc}") from exc
        return True


class FileSecretStore:
    """Secrets in a JSON file readable only by its owner (0600, in a 0700 folder). Not encrypted.

    The file is read on every access, so a value set by ``toolgate secrets set`` is seen by a running
    gateway at once. An existing file with looser permissions is tightened when the store is opened.

    Args:
        path: the JSON file; created on the first ``set``.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._tighten_permissions()

    @property
    def path(self) -> Path:
        """The JSON file."""
        return self._path

    @property
    def encrypted(self) -> bool:
        """Always False: the file is protected by its permissions only."""
        return False

    @property
    def backend_name(self) -> str:
        """``"file (not encrypted): <path>"``."""
        return f"file (not encrypted): {self._path}"

    def get(self, name: str) -> str | None:
        """The value stored under ``name``, or None.

        Raises:
            SecretError: the file cannot be read or is damaged.
        """
        return self._read().get(name)

    def set(self, name: str, value: str) -> None:
        """Store ``value`` under ``name``; the file is rewritten atomically.

        Raises:
            SecretError: the file cannot be read, is damaged, or cannot be written.
        """
        with self._lock:
            values = self._read()
            values[name] = value
            self._write(values)

    def names(self) -> list[str]:
        """Every name stored, sorted (the file can list them; an OS keychain cannot).

        Raises:
            SecretError: the file cannot be read or is damaged.
        """
        return sorted(self._read())

    def delete(self, name: str) -> bool:
        """Remove ``name``; whether it was there.

        Raises:
            SecretError: the file cannot be read, is damaged, or cannot be written.
        """
        with self._lock:
            values = self._read()
            if name not in values:
                return False
            del values[name]
            self._write(values)
            return True

    def _read(self) -> dict[str, str]:
        try:
            text = self._path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError) as exc:
            raise SecretError(f"cannot read the secrets file {self._path}: {exc}") from exc
        try:
            values = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SecretError(
                f"the secrets file {self._path} is not valid JSON (line {exc.lineno}); fix it or move it away"
            ) from exc
        if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
            raise SecretError(f"the secrets file {self._path} should map names to text values; fix it or move it away")
        return values

    def _write(self, values: Mapping[str, str]) -> None:
        try:
            ensure_private_dir(self._path.parent)
            write_atomically(self._path, json.dumps(values, indent=2, sort_keys=True) + "\n")
        except OSError as exc:
            raise SecretError(f"cannot write the secrets file {self._path}: {exc.strerror or exc}") from exc

    def _tighten_permissions(self) -> None:
        if os.name == "nt":
            self._tighten_access_list()
            return
        try:
            mode = stat.S_IMODE(self._path.stat().st_mode)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise SecretError(f"cannot check the secrets file {self._path}: {exc.strerror or exc}") from exc
        if mode & ~SECRETS_FILE_MODE:
            try:
                self._path.chmod(SECRETS_FILE_MODE)
            except OSError as exc:
                raise SecretError(
                    f"the secrets file {self._path} is readable by others (mode {mode:o}) and cannot be "
                    f"restricted: {exc.strerror or exc}; run `chmod 600 {self._path}`"
                ) from exc
            logger.warning("The secrets file %s had mode %o (readable by others); it is now 0600.", self._path, mode)

    def _tighten_access_list(self) -> None:  # pragma: no cover - Windows only
        if not self._path.exists():
            return
        try:
            others = others_allowed(self._path)
            if others:
                restrict_to_user(self._path)
        except OSError as exc:
            raise SecretError(
                f"the secrets file {self._path} may be readable by others and cannot be restricted: "
                f"{exc.strerror or exc}; in its Properties > Security, leave only your own account"
            ) from exc
        if others:
            logger.warning("The secrets file %s could be opened by %s; now only by you.", self._path, ", ".join(others))


@dataclass(frozen=True)
class _ProbeResult:
    backend: KeyringBackend | None
    problem: str | None
    quiet: bool = False


def open_secret_store(
    paths: Paths,
    *,
    backend: KeyringBackend | None = None,
    probe_timeout_s: float = PROBE_TIMEOUT_S,
) -> SecretStore:
    """The keychain if it works, else the unencrypted file ``paths.secrets_file``.

    The keychain is probed once with a set/get/delete round trip of a probe entry, run in a thread
    and given ``probe_timeout_s``; no keychain, any keychain error, or no answer in time selects
    the file.

    Args:
        paths: where Toolgate's files live.
        backend: the keyring backend to try; ``keyring.get_keyring()`` (which honours
            ``PYTHON_KEYRING_BACKEND``) when None.
        probe_timeout_s: how long the probe may take.

    Returns:
        The store to use for this process's lifetime.

    Raises:
        SecretError: the fallback file exists but its permissions cannot be restricted.
    """
    result = _probe(backend, probe_timeout_s)
    if result.backend is not None:
        return KeyringSecretStore(result.backend)
    store = FileSecretStore(paths.secrets_file)
    log = logger.info if result.quiet else logger.warning
    log("Secrets are kept in %s because %s.", store.backend_name, result.problem)
    return store


def _probe(backend: KeyringBackend | None, timeout_s: float) -> _ProbeResult:
    outcome: list[_ProbeResult] = []
    done = threading.Event()

    def run() -> None:
        try:
            outcome.append(_round_trip(keyring.get_keyring() if backend is None else backend))
        except keyring.errors.NoKeyringError:
            outcome.append(_ProbeResult(None, "no OS keychain is available", quiet=True))
        except keyring.errors.KeyringLocked:
            outcome.append(_ProbeResult(None, "the OS keychain is locked (unlock it, then restart Toolgate)"))
        # A keychain plug-in can fail in any way (D-Bus, OS APIs); whatever it is, the keychain is not usable.
        except Exception as exc:
            outcome.append(_ProbeResult(None, f"the OS keychain failed ({type(exc).__name__}: {exc})"))
        finally:
            done.set()

    threading.Thread(target=run, name="toolgate-keyring-probe", daemon=True).start()
    if not done.wait(timeout_s):
        return _ProbeResult(None, f"the OS keychain did not answer within {timeout_s:g} s (is it locked?)")
    return outcome[0]


def _round_trip(backend: KeyringBackend) -> _ProbeResult:
    if isinstance(backend, keyring.backends.fail.Keyring | keyring.backends.null.Keyring):
        return _ProbeResult(None, "no OS keychain is available", quiet=True)
    value = uuid.uuid4().hex
    backend.set_password(SERVICE_NAME, PROBE_ENTRY, value)
    read_back = backend.get_password(SERVICE_NAME, PROBE_ENTRY)
    backend.delete_password(SERVICE_NAME, PROBE_ENTRY)
    if read_back != value:
        return _ProbeResult(None, "the OS keychain did not return what was stored in it")
    return _ProbeResult(backend, None)


def resolve(values: Mapping[str, str], store: SecretStore) -> dict[str, str]:
    """Replace every ``${secret:NAME}`` in ``values`` with the stored secret.

    A value may embed references (``"Bearer ${secret:GH}"``); text around them is kept.

    Args:
        values: e.g. a server's ``env`` or ``headers``.
        store: where the secrets are.

    Returns:
        A new mapping with every reference replaced.

    Raises:
        MissingSecretError: a referenced secret is not in the store.
        SecretError: the store cannot be read.
    """
    found: dict[str, str] = {}

    def lookup(name: str) -> str:
        if name not in found:
            value = store.get(name)
            if value is None:
                raise MissingSecretError(name)
            found[name] = value
        return found[name]

    return {key: SECRET_REFERENCE.sub(lambda m: lookup(m.group(1)), value) for key, value in values.items()}

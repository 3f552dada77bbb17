"""Where Toolgate's files live, and how a private file is written without ever being half-written.

``Paths.from_env()`` decides the locations once, in the composition root; nothing touches the disk
until ``ensure_dirs()`` or a write. ``TOOLGATE_HOME`` moves every file under one folder.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from platformdirs import PlatformDirs

from gateway_core.user_only import restrict_to_user

APP_NAME = "Toolgate"
HOME_ENV = "TOOLGATE_HOME"
# Folders hold secrets (fallback store, agent names, audit trail): only the owner may list them.
PRIVATE_DIR_MODE = 0o700


@dataclass(frozen=True)
class Paths:
    """Every file and folder Toolgate owns.

    Attributes:
        home: the folder that holds the config (``TOOLGATE_HOME`` when set).
        config_file: ``config.json``, the one source of truth for servers, agents and settings.
        secrets_file: ``secrets.json``, the unencrypted fallback secret store (used only without a keychain).
        state_dir: runtime state of a running Toolgate.
        lock_file: the single-instance lock, inside ``state_dir``.
        audit_db: the SQLite audit log.
    """

    home: Path
    config_file: Path
    secrets_file: Path
    state_dir: Path
    lock_file: Path
    audit_db: Path

    @classmethod
    def under(cls, home: Path) -> Paths:
        """Every file under one folder, as ``TOOLGATE_HOME`` does.

        Args:
            home: the folder; it is not created here.
        """
        state_dir = home / "state"
        return cls(
            home=home,
            config_file=home / "config.json",
            secrets_file=home / "secrets.json",
            state_dir=state_dir,
            lock_file=state_dir / "toolgate.lock",
            audit_db=home / "audit.sqlite3",
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Paths:
        """The locations for this user: under ``TOOLGATE_HOME`` if set, else the platform's per-user folders.

        Args:
            environ: the environment to read ``TOOLGATE_HOME`` from; ``os.environ`` when None.

        Returns:
            The paths. Nothing is created.
        """
        env = os.environ if environ is None else environ
        home = env.get(HOME_ENV, "").strip()
        if home:
            return cls.under(Path(home).expanduser().absolute())
        dirs = PlatformDirs(APP_NAME, appauthor=False)
        config_dir = Path(dirs.user_config_dir)
        data_dir = Path(dirs.user_data_dir)
        state_dir = Path(dirs.user_state_dir)
        return cls(
            home=config_dir,
            config_file=config_dir / "config.json",
            secrets_file=data_dir / "secrets.json",
            state_dir=state_dir,
            lock_file=state_dir / "toolgate.lock",
            audit_db=data_dir / "audit.sqlite3",
        )

    def ensure_dirs(self) -> None:
        """Create every folder Toolgate writes to; the ones created here get mode 0700.

        Existing folders are left as they are.
        """
        folders = {
            self.home,
            self.config_file.parent,
            self.secrets_file.parent,
            self.state_dir,
            self.lock_file.parent,
            self.audit_db.parent,
        }
        for folder in sorted(folders):
            ensure_private_dir(folder)


def ensure_private_dir(folder: Path) -> None:
    """Create ``folder`` (and its parents) if missing; the folder itself gets mode 0700.

    Args:
        folder: the folder to create. An existing folder is left untouched.
    """
    if folder.is_dir():
        return
    folder.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    if os.name == "nt":
        restrict_to_user(folder)  # what 0700 does elsewhere; files created in it inherit the entry
    else:
        # mkdir's mode is filtered by the umask; set it explicitly.
        folder.chmod(PRIVATE_DIR_MODE)

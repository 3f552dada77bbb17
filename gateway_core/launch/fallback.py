"""The well-known folders tools are installed in, for when the login shell cannot be read.

Only folders that exist are added, after the ``PATH`` Toolgate already has. The file system is passed
in (``exists``, ``listdir``) so the choice is tested without touching this machine's folders.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

# System-wide first (Homebrew on Apple silicon, then Intel and Linuxbrew), then the person's own.
SYSTEM_FOLDERS = (
    "/opt/homebrew/bin",
    "/opt/homebrew/sbin",
    "/usr/local/bin",
    "/usr/local/sbin",
    "/home/linuxbrew/.linuxbrew/bin",
    "/opt/local/bin",  # MacPorts
)
# Relative to the home folder: uv, pipx and pip --user (~/.local/bin), cargo, version-manager shims.
HOME_FOLDERS = (
    ".local/bin",
    ".cargo/bin",
    ".volta/bin",
    ".asdf/shims",
    ".local/share/mise/shims",
    ".pyenv/shims",
    ".rbenv/shims",
    ".bun/bin",
    ".deno/bin",
    "go/bin",
    ".local/share/fnm/aliases/default/bin",
    "Library/Application Support/fnm/aliases/default/bin",
    ".fnm/aliases/default/bin",
)
NVM_VERSIONS = ".nvm/versions/node"


@dataclass(frozen=True)
class Folders:
    """How folders are looked at: the real file system by default."""

    exists: Callable[[str], bool] = os.path.isdir
    listdir: Callable[[str], Iterable[str]] = os.listdir


def fallback_folders(home: str | None, folders: Folders = Folders()) -> list[str]:
    """The well-known tool folders that exist, in the order they should be searched.

    nvm keeps one folder per Node.js version: the newest installed one is used.
    """
    candidates = list(SYSTEM_FOLDERS)
    if home:
        candidates += [posixpath.join(home, relative) for relative in HOME_FOLDERS]
        newest = _newest_nvm_node(posixpath.join(home, NVM_VERSIONS), folders)
        if newest is not None:
            candidates.append(newest)
    return [folder for folder in candidates if folders.exists(folder)]


def extend_path(path: str, extra: Iterable[str]) -> str:
    """``path`` with the folders of ``extra`` it lacks appended, in order."""
    entries = [entry for entry in path.split(":") if entry]
    entries += [folder for folder in dict.fromkeys(extra) if folder not in entries]
    return ":".join(entries)


def _newest_nvm_node(versions: str, folders: Folders) -> str | None:
    if not folders.exists(versions):
        return None
    try:
        names = [name for name in folders.listdir(versions) if re.fullmatch(r"v\d+\.\d+\.\d+", name)]
    except OSError:
        return None
    if not names:
        return None
    newest = max(names, key=lambda name: tuple(int(part) for part in name[1:].split(".")))
    return posixpath.join(versions, newest, "bin")

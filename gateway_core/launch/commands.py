"""Finding a server's command the way the person's shell would, with the platform passed in.

``find_command`` is pure: the operating system's rules (``posix`` or ``nt``), the ``PATH``, ``PATHEXT``
and the files are all given, so Windows cases are tested on any system. A command with a directory part
is taken relative to the entry's ``cwd`` (like a terminal opened there); a bare name is looked up on
``PATH`` only (like POSIX shells and PowerShell, not ``cmd.exe``, which tries the current folder first).
On Windows, a name without an extension tries each ``PATHEXT`` extension (``npx`` → ``npx.cmd``).
"""

from __future__ import annotations

import ntpath
import os
import posixpath
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum

from gateway_core.launch.batch import batch_command_line

# What Windows uses when PATHEXT is unset (its documented default, shortened to what starts a program).
DEFAULT_PATHEXT = ".COM;.EXE;.BAT;.CMD"
BATCH_EXTENSIONS = (".bat", ".cmd")


class OsName(Enum):
    """Whose rules apply: ``os.name`` of the system the server runs on."""

    POSIX = "posix"
    NT = "nt"


@dataclass(frozen=True)
class Files:
    """How the file system is asked; the real one by default, a dictionary's worth in tests."""

    is_file: Callable[[str], bool] = os.path.isfile
    is_executable: Callable[[str], bool] = lambda path: os.access(path, os.X_OK)


@dataclass(frozen=True)
class Platform:
    """The rules and environment a command is found with.

    Args:
        os_name: whose rules apply.
        env: the environment the server will get (its ``PATH`` and, on Windows, ``PATHEXT``).
        cwd: the folder the server starts in (the entry's ``cwd``, else Toolgate's own).
        files: how files are looked at.
    """

    os_name: OsName
    env: Mapping[str, str]
    cwd: str
    files: Files = Files()

    @classmethod
    def here(cls, env: Mapping[str, str], cwd: str | None = None) -> Platform:
        """The rules of the system Toolgate runs on, with ``env`` and ``cwd`` (Toolgate's own folder when None)."""
        return cls(OsName(os.name), env, cwd if cwd is not None else os.getcwd())

    def path_entries(self) -> tuple[str, ...]:
        """The folders of ``PATH``, in order, each once, empty entries dropped, made absolute against ``cwd``."""
        paths = ntpath if self.os_name is OsName.NT else posixpath
        separator = ";" if self.os_name is OsName.NT else ":"
        raw = _get(self.env, "PATH", self.os_name) or ""
        entries = (entry.strip('"') for entry in raw.split(separator))
        folders = (paths.normpath(paths.join(self.cwd, entry)) for entry in entries if entry)
        return tuple(dict.fromkeys(folders))  # a folder listed twice is searched once

    def extensions(self) -> tuple[str, ...]:
        """The extensions a bare Windows name may have (``PATHEXT``), lower-case; none on POSIX."""
        if self.os_name is not OsName.NT:
            return ()
        raw = _get(self.env, "PATHEXT", self.os_name) or DEFAULT_PATHEXT
        return tuple(ext.lower() for ext in raw.split(";") if ext.startswith("."))


class CommandKind(Enum):
    """How a found command must be started."""

    PROGRAM = "program"
    BATCH = "batch"  # a Windows .cmd/.bat file: only cmd.exe runs it


@dataclass(frozen=True)
class FoundCommand:
    """Where a command was found and how to start it."""

    path: str
    kind: CommandKind


@dataclass(frozen=True)
class MissingCommand:
    """A command that was not found, with where it was looked for.

    ``searched`` is the ``PATH`` folders for a bare name, or the one place a path pointed to.
    ``not_executable`` lists files that exist there but may not be run (no execute permission).
    """

    command: str
    searched: tuple[str, ...]
    not_executable: tuple[str, ...] = ()
    bare_name: bool = True


def find_command(command: str, platform: Platform) -> FoundCommand | MissingCommand:
    r"""Find ``command`` as a shell would on ``platform``.

    1. A leading ``~/`` is the home folder (``HOME``, or ``USERPROFILE`` on Windows).
    2. A command with a directory part (``./run.sh``, ``bin/server``, ``C:\tools\x``) is that file,
       relative to ``platform.cwd``.
    3. A bare name is looked up in each ``PATH`` folder in order.
    On Windows, a name whose extension is not in ``PATHEXT`` tries each ``PATHEXT`` extension in turn.
    """
    nt = platform.os_name is OsName.NT
    paths = ntpath if nt else posixpath
    command = _expand_home(command, platform)
    has_directory = bool(paths.dirname(command)) or (nt and bool(ntpath.splitdrive(command)[0]))
    if has_directory:
        folder, name = paths.split(paths.normpath(paths.join(platform.cwd, command)))
        folders: tuple[str, ...] = (folder,)
    else:
        folders, name = platform.path_entries(), command
    not_executable: list[str] = []
    for folder in folders:
        for candidate in _candidates(name, platform):
            path = paths.join(folder, candidate)
            if not platform.files.is_file(path):
                continue
            if not nt and not platform.files.is_executable(path):
                not_executable.append(path)
                continue
            batch = nt and paths.splitext(path)[1].lower() in BATCH_EXTENSIONS
            return FoundCommand(path, CommandKind.BATCH if batch else CommandKind.PROGRAM)
    searched = folders if not has_directory else (paths.join(*folders, name),)
    return MissingCommand(command, searched, tuple(not_executable), bare_name=not has_directory)


def _candidates(name: str, platform: Platform) -> tuple[str, ...]:
    extensions = platform.extensions()
    if not extensions:
        return (name,)
    if ntpath.splitext(name)[1].lower() in extensions:
        return (name,)
    return tuple(name + ext for ext in extensions)


def _expand_home(command: str, platform: Platform) -> str:
    nt = platform.os_name is OsName.NT
    if not (command.startswith("~/") or (nt and command.startswith("~\\"))):
        return command
    home = _get(platform.env, "USERPROFILE" if nt else "HOME", platform.os_name)
    return (ntpath if nt else posixpath).join(home, command[2:]) if home else command


def _get(env: Mapping[str, str], name: str, os_name: OsName) -> str | None:
    """``env[name]``; on Windows names are case-insensitive (``Path`` is ``PATH``)."""
    if name in env or os_name is not OsName.NT:
        return env.get(name)
    return next((value for key, value in env.items() if key.upper() == name), None)


@dataclass(frozen=True)
class Launch:
    """The process to start for a found command.

    ``argv`` is the program and its arguments. For a Windows batch file it shows the ``cmd.exe`` call,
    and ``shell_line`` is what must be passed to ``cmd.exe /c "…"`` unchanged (``batch.py``): a list of
    arguments would be re-quoted by ``subprocess`` in a way ``cmd.exe`` misreads.
    """

    argv: tuple[str, ...]
    found: FoundCommand
    shell_line: str | None = None


def plan_launch(command: str, args: tuple[str, ...], platform: Platform) -> Launch | MissingCommand:
    """How to start ``command`` with ``args`` on ``platform``, or why it cannot be found.

    Raises:
        UnsafeBatchArgumentError: a batch file's argument cannot be passed safely.
    """
    found = find_command(command, platform)
    if isinstance(found, MissingCommand):
        return found
    if found.kind is CommandKind.PROGRAM:
        return Launch((found.path, *args), found)
    line = batch_command_line(found.path, args)
    shell = _get(platform.env, "COMSPEC", platform.os_name) or "cmd.exe"
    return Launch((shell, "/c", f'"{line}"'), found, shell_line=line)

"""The environment every stdio server starts with, resolved once when Toolgate starts.

A terminal hands Toolgate the person's ``PATH``; the Dock, Finder, a login item or a desktop entry hand
it a minimal one, where ``npx`` and ``uvx`` are not found. The rule (``decide_source``), in order:

1. ``TOOLGATE_LAUNCH_ENV=inherit`` or ``=login-shell`` decides.
2. On Windows, Toolgate's own environment: a Start-menu launch already has the user's ``PATH``.
3. ``toolgate serve`` (headless) uses its own environment: whoever started it chose it.
4. The tray app with a terminal on stdin, stdout or stderr was started from that terminal: its own.
5. Otherwise (a desktop launch) the login shell's environment; when it cannot be read, Toolgate's own
   ``PATH`` plus the well-known tool folders that exist.

Of the chosen environment, ``PATH`` and the variables version managers and toolchains set are given to
every stdio server; a server's own ``env`` is laid over them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum

from gateway_core.launch.fallback import Folders, extend_path, fallback_folders
from gateway_core.launch.login_shell import LoginShellError, Runner, read_login_shell, run_shell

MODE_VARIABLE = "TOOLGATE_LAUNCH_ENV"
# Set by nvm, fnm, volta, asdf, mise, pyenv, rbenv, conda, sdkman and the toolchains' installers; servers
# started through a shim or `npx` read them to find the right version.
CARRIED_VARIABLES = frozenset(
    {
        "PATH",
        "NVM_DIR",
        "NVM_BIN",
        "NVM_INC",
        "VOLTA_HOME",
        "ASDF_DIR",
        "ASDF_DATA_DIR",
        "PYENV_ROOT",
        "RBENV_ROOT",
        "CARGO_HOME",
        "RUSTUP_HOME",
        "GOPATH",
        "GOROOT",
        "BUN_INSTALL",
        "DENO_INSTALL",
        "PNPM_HOME",
        "JAVA_HOME",
        "SDKMAN_DIR",
        "HOMEBREW_PREFIX",
        "PIPX_HOME",
        "PIPX_BIN_DIR",
        "UV_TOOL_BIN_DIR",
        "CONDA_PREFIX",
    }
)
CARRIED_PREFIXES = ("FNM_", "MISE_")


class LaunchMode(Enum):
    """``TOOLGATE_LAUNCH_ENV``: where stdio servers' ``PATH`` comes from."""

    AUTO = "auto"
    INHERIT = "inherit"
    LOGIN_SHELL = "login-shell"


class PathSource(Enum):
    """Where the ``PATH`` given to stdio servers came from."""

    INHERITED = "Toolgate's own environment"
    LOGIN_SHELL = "the login shell"
    FALLBACK = "Toolgate's own PATH plus well-known tool folders"


@dataclass(frozen=True)
class LaunchEnvironment:
    """What every stdio server's environment starts from.

    Args:
        source: where ``PATH`` came from.
        variables: ``PATH`` and the version-manager variables, laid over the SDK's safe defaults.
        why: one sentence: why this source was used (and, for the fallback, why the shell was not read).
        added: the folders the fallback added to ``PATH``.
    """

    source: PathSource
    variables: Mapping[str, str]
    why: str
    added: tuple[str, ...] = field(default=())

    @property
    def path(self) -> str:
        """The ``PATH`` servers get unless their own ``env`` sets one."""
        return self.variables.get("PATH", "")

    @classmethod
    def inherited(cls, environ: Mapping[str, str], why: str = "Toolgate's own environment") -> LaunchEnvironment:
        """Toolgate's own ``environ`` as it is (what a server got before launch environments existed)."""
        return cls(PathSource.INHERITED, carried(environ), why)


def carried(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables of ``environ`` a stdio server is given: ``PATH`` and version managers'."""
    return {
        name: value for name, value in environ.items() if name in CARRIED_VARIABLES or name.startswith(CARRIED_PREFIXES)
    }


def read_mode(environ: Mapping[str, str]) -> tuple[LaunchMode, str | None]:
    """The mode ``TOOLGATE_LAUNCH_ENV`` asks for, and a warning if its value is not one of them."""
    raw = environ.get(MODE_VARIABLE, "").strip().lower()
    if not raw:
        return LaunchMode.AUTO, None
    try:
        return LaunchMode(raw), None
    except ValueError:
        allowed = ", ".join(mode.value for mode in LaunchMode)
        return LaunchMode.AUTO, f"{MODE_VARIABLE}={raw!r} is not one of {allowed}; using auto"


def decide_source(mode: LaunchMode, *, gui: bool, windows: bool, has_terminal: bool) -> tuple[bool, str]:
    """Whether to read the login shell, and why (the module docstring's rule, in its order)."""
    if mode is LaunchMode.INHERIT:
        return False, f"{MODE_VARIABLE}=inherit"
    if mode is LaunchMode.LOGIN_SHELL:
        return True, f"{MODE_VARIABLE}=login-shell"
    if windows:
        return False, "on Windows a program gets the user's PATH however it is started"
    if not gui:
        return False, "toolgate serve uses the environment it was started with"
    if has_terminal:
        return False, "started from a terminal"
    return True, "started outside a terminal (desktop launch)"


@dataclass(frozen=True)
class Surroundings:
    """What resolving looks at, passed in so tests choose it: the real process by default."""

    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    windows: bool = sys.platform == "win32"
    has_terminal: Callable[[], bool] = lambda: any(_isatty(fd) for fd in (0, 1, 2))
    runner: Runner = run_shell
    folders: Folders = Folders()


def resolve_launch_environment(*, gui: bool, around: Surroundings | None = None) -> LaunchEnvironment:
    """The environment stdio servers start with (the rule in the module docstring); blocks up to the shell timeout.

    Args:
        gui: the tray app is starting (``toolgate serve`` passes False).
        around: the process, shell and folders to look at; this process's by default.
    """
    around = around or Surroundings()
    environ = around.environ
    mode, warning = read_mode(environ)
    read_shell, why = decide_source(mode, gui=gui, windows=around.windows, has_terminal=around.has_terminal())
    if warning is not None:
        why = f"{why} ({warning})"
    if not read_shell:
        return LaunchEnvironment.inherited(environ, why)
    shell = environ.get("SHELL") or "/bin/sh"
    try:
        shell_env = read_login_shell(shell, environ, around.runner)
    except LoginShellError as exc:
        added = tuple(fallback_folders(environ.get("HOME"), around.folders))
        variables = carried(environ) | {"PATH": extend_path(environ.get("PATH", ""), added)}
        return LaunchEnvironment(PathSource.FALLBACK, variables, f"{why}; {exc}", added)
    return LaunchEnvironment(PathSource.LOGIN_SHELL, carried(shell_env), f"{why}; read from {shell}")


def _isatty(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False

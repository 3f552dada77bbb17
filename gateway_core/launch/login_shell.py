"""Reading the person's login-shell environment, as a terminal would have it (the approach editors use).

``read_login_shell`` runs ``$SHELL -l -i -c …`` once with a runner passed in. What the shell prints
between two random markers is ``env -0``'s output; anything else (a profile's greeting, a prompt
theme's noise) is ignored. POSIX shells (bash, zsh, sh, dash, ksh) and fish take the same flags and
the same script (it only runs commands); other shells (csh, nushell, PowerShell…) are not read.
"""

from __future__ import annotations

import os
import posixpath
import secrets
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass

# A profile that loads nvm or conda takes a second or two; one that waits for input never ends.
LOGIN_SHELL_TIMEOUT_S = 5.0
# Set while Toolgate reads the environment, so a profile can skip slow or interactive parts.
RESOLVING_VARIABLE = "TOOLGATE_RESOLVING_ENVIRONMENT"
# Once the shell's group is killed its pipe ends at once, unless a daemon it started left the group.
READER_GRACE_S = 1.0
POSIX_SHELLS = frozenset({"bash", "zsh", "sh", "dash", "ksh", "mksh", "yash"})
FISH_SHELLS = frozenset({"fish"})


class LoginShellError(Exception):
    """The login shell's environment could not be read; the message says why, for a person."""


@dataclass(frozen=True)
class ShellOutput:
    """What a shell run gave: its stdout so far, and whether it ran out of time."""

    stdout: bytes
    timed_out: bool = False


Runner = Callable[[Sequence[str], Mapping[str, str], float, bytes], ShellOutput]
"""Runs ``argv`` with ``env`` for at most ``timeout_s``; may stop early once ``bytes`` (the end marker) is read.

Raises ``OSError`` when the shell cannot be started.
"""


def shell_argv(shell: str, marker: str) -> list[str]:
    """The command that prints the environment of ``shell`` as a login, interactive shell.

    Raises:
        LoginShellError: ``shell`` is not one whose environment Toolgate can read.
    """
    name = posixpath.basename(shell)
    if name not in POSIX_SHELLS | FISH_SHELLS:
        known = ", ".join(sorted(POSIX_SHELLS | FISH_SHELLS))
        raise LoginShellError(f"the login shell {shell} is not one Toolgate can read ({known})")
    # `command` skips aliases and functions a profile may define for printf or env (both shells know it).
    script = f"command printf '%s' {marker}; command env -0; command printf '%s' {marker}"
    return [shell, "-l", "-i", "-c", script]


def read_login_shell(
    shell: str, environ: Mapping[str, str], runner: Runner, *, timeout_s: float = LOGIN_SHELL_TIMEOUT_S
) -> dict[str, str]:
    """The environment ``shell`` has as a login shell, started with ``environ``.

    Raises:
        LoginShellError: the shell is unknown, cannot be started, hangs, or prints no environment.
    """
    marker = f"TOOLGATE-ENV-{secrets.token_hex(8)}"
    argv = shell_argv(shell, marker)
    try:
        output = runner(argv, {**environ, RESOLVING_VARIABLE: "1"}, timeout_s, marker.encode())
    except OSError as exc:
        raise LoginShellError(f"the login shell {shell} could not be started: {exc.strerror or exc}") from exc
    parsed = parse_environment(output.stdout, marker)
    if parsed is None:
        if output.timed_out:
            raise LoginShellError(f"the login shell {shell} did not finish within {timeout_s:g} s")
        raise LoginShellError(f"the login shell {shell} printed no environment")
    if "PATH" not in parsed:
        raise LoginShellError(f"the login shell {shell} has no PATH")
    return parsed


def parse_environment(stdout: bytes, marker: str) -> dict[str, str] | None:
    """The ``NAME=value`` pairs between the first two markers in ``stdout``; None if they are not both there."""
    text = stdout.decode("utf-8", errors="replace")
    start = text.find(marker)
    end = text.find(marker, start + len(marker)) if start >= 0 else -1
    if end < 0:
        return None
    pairs = (entry.partition("=") for entry in text[start + len(marker) : end].split("\0"))
    return {name: value for name, sep, value in pairs if sep and name}


def run_shell(argv: Sequence[str], env: Mapping[str, str], timeout_s: float, end: bytes) -> ShellOutput:
    """The real ``Runner``: stdin closed, stderr dropped, the whole process group ended afterwards.

    Reading stops at the end marker: a prompt theme's daemon (gitstatusd) may keep stdout open.
    """
    process = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=dict(env),
        start_new_session=True,
    )
    assert process.stdout is not None
    fd, chunks, done, stop = process.stdout.fileno(), bytearray(), threading.Event(), threading.Event()

    def read() -> None:
        with suppress(OSError):
            while not stop.is_set() and (chunk := os.read(fd, 65536)):
                chunks.extend(chunk)
                if chunks.count(end) >= 2:
                    break
        done.set()

    threading.Thread(target=read, name="login-shell-reader", daemon=True).start()
    finished = done.wait(timeout_s)
    _end_group(process)
    done.wait(READER_GRACE_S)
    stop.set()
    process.stdout.close()
    return ShellOutput(bytes(chunks), timed_out=not finished)


def _end_group(process: subprocess.Popen[bytes]) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()

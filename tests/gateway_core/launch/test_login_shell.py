"""Reading the login shell's environment: noise ignored, a hang bounded, fish read, other shells refused."""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from gateway_core.launch.login_shell import (
    RESOLVING_VARIABLE,
    LoginShellError,
    ShellOutput,
    parse_environment,
    read_login_shell,
    run_shell,
)


class FakeShell:
    """A runner that prints ``before``, then the environment between the markers, then ``after``."""

    def __init__(self, env: Mapping[str, str], before: bytes = b"", after: bytes = b"", *, hang: bool = False):
        self.env, self.before, self.after, self.hang = env, before, after, hang
        self.calls: list[tuple[list[str], dict[str, str]]] = []

    def __call__(self, argv: Sequence[str], env: Mapping[str, str], timeout_s: float, end: bytes) -> ShellOutput:
        self.calls.append((list(argv), dict(env)))
        if self.hang:
            return ShellOutput(self.before, timed_out=True)
        body = b"\0".join(f"{k}={v}".encode() for k, v in self.env.items()) + b"\0"
        return ShellOutput(self.before + end + body + end + self.after)


def test_the_environment_between_the_markers_is_read_and_the_profiles_noise_around_it_ignored():
    shell = FakeShell(
        {"PATH": "/opt/homebrew/bin:/usr/bin", "NVM_DIR": "/Users/ada/.nvm", "MULTI": "line one\nline=two"},
        before=b"Welcome back, Ada!\n\x1b]1337;SetMark\x07 PATH=/wrong\n",
        after=b"logout\n",
    )

    env = read_login_shell("/bin/zsh", {"HOME": "/Users/ada"}, shell)

    assert env == {"PATH": "/opt/homebrew/bin:/usr/bin", "NVM_DIR": "/Users/ada/.nvm", "MULTI": "line one\nline=two"}
    argv, given = shell.calls[0]
    assert argv[:4] == ["/bin/zsh", "-l", "-i", "-c"]
    assert given[RESOLVING_VARIABLE] == "1"
    assert given["HOME"] == "/Users/ada"


def test_a_shell_that_hangs_is_reported_with_the_time_it_was_given():
    with pytest.raises(LoginShellError, match=r"did not finish within 2 s"):
        read_login_shell("/bin/bash", {}, FakeShell({}, before=b"Password: ", hang=True), timeout_s=2)


def test_fish_is_read_with_flags_and_a_script_fish_understands():
    shell = FakeShell({"PATH": "/home/ada/.local/bin:/usr/bin"})

    env = read_login_shell("/usr/bin/fish", {}, shell)

    argv = shell.calls[0][0]
    assert env["PATH"] == "/home/ada/.local/bin:/usr/bin"
    assert argv[:4] == ["/usr/bin/fish", "-l", "-i", "-c"]
    # fish has no `export`, `$(…)` or `&&` in older versions: the script is plain commands and `;`.
    assert not any(token in argv[4] for token in ("export", "$(", "&&", "`"))


@pytest.mark.parametrize("shell", ["/bin/tcsh", "/usr/bin/nu", "/usr/local/bin/pwsh", "/bin/csh"])
def test_a_shell_toolgate_cannot_read_is_named_and_not_run(shell: str):
    runner = FakeShell({"PATH": "/usr/bin"})

    with pytest.raises(LoginShellError, match="is not one Toolgate can read"):
        read_login_shell(shell, {}, runner)
    assert runner.calls == []


def test_a_shell_that_cannot_be_started_or_prints_nothing_usable_is_an_error_that_says_so():
    def missing(*_: object) -> ShellOutput:
        raise FileNotFoundError(2, "No such file or directory")

    with pytest.raises(LoginShellError, match="could not be started"):
        read_login_shell("/bin/zsh", {}, missing)
    with pytest.raises(LoginShellError, match="printed no environment"):
        read_login_shell("/bin/zsh", {}, lambda *_: ShellOutput(b"zsh: command not found: env\n"))
    with pytest.raises(LoginShellError, match="has no PATH"):
        read_login_shell("/bin/zsh", {}, FakeShell({"HOME": "/Users/ada"}))


def test_only_the_first_two_markers_count():
    assert parse_environment(b"M" + b"A=1\0" + b"M" + b"B=2\0M", "M") == {"A": "1"}
    assert parse_environment(b"noise M A=1", "M") is None


def fake_login_shell(tmp_path: Path, profile: str) -> Path:
    """An executable "shell" whose profile runs ``profile``, then the script it is given (``-l -i -c SCRIPT``)."""
    (tmp_path / "fake").mkdir()
    script = tmp_path / "fake" / "zsh"  # named as a shell Toolgate reads
    script.write_text(f'#!/bin/sh\n{profile}\nexec /bin/sh -c "$4"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def test_a_real_shell_is_read_and_its_noise_and_its_stderr_are_ignored(tmp_path: Path):
    shell = fake_login_shell(tmp_path, 'echo "motd: hello"; echo "oops" >&2; PATH="/from/profile:$PATH"; export PATH')

    env = read_login_shell(str(shell), {"PATH": "/usr/bin:/bin"}, run_shell)

    assert env["PATH"] == "/from/profile:/usr/bin:/bin"


def test_a_real_shell_that_never_finishes_is_stopped_at_the_timeout_with_its_children(tmp_path: Path):
    pid_file = tmp_path / "child.pid"
    shell = fake_login_shell(tmp_path, f"sleep 600 & echo $! > {pid_file}; wait")

    with pytest.raises(LoginShellError, match="did not finish within 0.5 s"):
        read_login_shell(str(shell), {"PATH": "/usr/bin:/bin"}, run_shell, timeout_s=0.5)

    assert not _alive(int(pid_file.read_text()))


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie nobody has reaped yet has ended)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True

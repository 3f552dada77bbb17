"""`toolgate completion bash|zsh|fish`: the scripts, run in the real shells, complete commands and configured names."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway_core.paths import Paths
from tests.gateway_core.cli.test_main import run_toolgate
from tests.integration.harness import write_config

SHELL_TIMEOUT_S = 60


@pytest.fixture
def on_path(tmp_path: Path, toolgate_home: Path) -> dict[str, str]:
    """An environment with `toolgate` on PATH (this checkout's, entered as installed) and a config.json."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    launcher = bin_dir / "toolgate"
    entry = "import sys; from app.main import main; sys.exit(main())"
    launcher.write_text(f'#!/bin/sh\nexec "{sys.executable}" -c "{entry}" "$@"\n')
    launcher.chmod(0o755)
    write_config(Paths.from_env(os.environ), {"github": {"command": "x"}, "time": {"command": "y"}}, {"cursor": "C"})
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def script(shell: str, tmp_path: Path) -> Path:
    done = run_toolgate("completion", shell)
    assert done.returncode == 0, done.stderr
    path = tmp_path / f"toolgate.{shell}"
    path.write_text(done.stdout)
    return path


def bash_completes(words: list[str], script_path: Path, env: dict[str, str]) -> list[str]:
    quoted = " ".join(f'"{word}"' for word in words)
    program = f'source "{script_path}"; COMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}; _shtab_toolgate; '
    program += 'printf "%s\\n" "${COMPREPLY[@]}"'
    done = subprocess.run(
        ["bash", "-c", program], env=env, capture_output=True, text=True, timeout=SHELL_TIMEOUT_S, check=True
    )
    return done.stdout.split()


def test_bash_completion_completes_commands_options_and_the_configured_server_and_agent_names(
    on_path: dict[str, str], tmp_path: Path
) -> None:
    path = script("bash", tmp_path)

    assert bash_completes(["toolgate", "serv"], path, on_path) == ["serve", "servers"]
    assert bash_completes(["toolgate", "servers", "show", ""], path, on_path) == ["github", "time"]
    assert bash_completes(["toolgate", "servers", "logs", "gi"], path, on_path) == ["github"]
    assert bash_completes(["toolgate", "agents", "why", ""], path, on_path) == ["cursor"]
    assert bash_completes(["toolgate", "servers", "add", "x", "--secret-"], path, on_path) == [
        "--secret-env",
        "--secret-header",
    ]
    assert bash_completes(["toolgate", "servers", "add", ""], path, on_path) == []  # a new name: nothing to offer


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed (scripts/test installs it as root)")
def test_fish_completion_completes_commands_and_the_configured_names(on_path: dict[str, str], tmp_path: Path) -> None:
    path = script("fish", tmp_path)

    def completes(line: str) -> list[str]:
        program = f'source "{path}"; complete -C "{line}"'
        done = subprocess.run(
            ["fish", "-c", program], env=on_path, capture_output=True, text=True, timeout=SHELL_TIMEOUT_S, check=True
        )
        return [entry.split("\t")[0] for entry in done.stdout.splitlines()]

    assert completes("toolgate servers show ") == ["github", "time"]
    assert completes("toolgate agents rules ") == ["cursor"]
    assert "resume" in completes("toolgate res")


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed (scripts/test installs it as root)")
def test_zsh_completion_is_a_compdef_script_zsh_reads_that_asks_toolgate_for_server_names(tmp_path: Path) -> None:
    path = script("zsh", tmp_path)

    checked = subprocess.run(["zsh", "-n", str(path)], capture_output=True, text=True, timeout=SHELL_TIMEOUT_S)

    assert checked.returncode == 0, checked.stderr
    assert path.read_text().startswith("#compdef toolgate")
    assert "toolgate completion --names servers" in path.read_text()


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed (scripts/test installs it as root)")
def test_zsh_completion_typed_at_an_interactive_zsh_completes_commands_and_configured_names(
    on_path: dict[str, str], tmp_path: Path
) -> None:
    functions = tmp_path / "zfunc"
    functions.mkdir()
    (functions / "_toolgate").write_text(script("zsh", tmp_path).read_text())
    (tmp_path / ".zshrc").write_text(
        f"fpath=({functions} $fpath)\nautoload -Uz compinit && compinit -u -D\nPROMPT='{PROMPT}'\n"
    )
    env = {**on_path, "ZDOTDIR": str(tmp_path), "TERM": "xterm"}
    typed = {
        "toolgate ser\t\t": "servers  -- The configured MCP servers.",  # serve and servers: the second Tab lists
        "toolgate servers show g\t": "toolgate servers show github ",
        "toolgate agents why \t": "toolgate agents why cursor ",
        "toolgate settings set po\t": "toolgate settings set port ",
    }
    screens = {}

    for keys, shown in typed.items():
        with interactive_zsh(env) as terminal:
            terminal.read_until(PROMPT)
            terminal.type(keys)
            screens[keys] = terminal.read_until(shown)

    assert all(shown in screens[keys] for keys, shown in typed.items()), screens


PROMPT = "READY> "


class Terminal:
    """A pseudo-terminal with a program on the other side: type into it, read what it shows (bounded)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.shown = ""

    def type(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def read_until(self, text: str) -> str:
        """What was shown since the last read, once ``text`` is in it (or when SHELL_TIMEOUT_S has passed)."""
        deadline = time.monotonic() + SHELL_TIMEOUT_S
        seen = ""
        while text not in seen and (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([self.fd], [], [], left)
            if not ready:
                break
            try:
                chunk = os.read(self.fd, 4096)
            except OSError:  # the program ended
                break
            seen = plain(seen + chunk.decode(errors="replace"))
        return seen


def plain(screen: str) -> str:
    """``screen`` without terminal control sequences (colours, cursor moves) and overstruck characters."""
    return re.sub(r".\x08", "", re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[=>]", "", screen))


@contextlib.contextmanager
def interactive_zsh(env: dict[str, str]) -> Iterator[Terminal]:
    """``zsh -i`` without the system's rc files in an 80x24 pseudo-terminal; killed on leaving."""
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child becomes zsh
        os.execvpe("zsh", ["zsh", "-d", "-i"], env)
    try:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        yield Terminal(fd)
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(fd)


def test_the_names_tab_asks_for_are_read_without_loading_the_command_line(on_path: dict[str, str]) -> None:
    program = (
        "import sys; from app.main import main; code = main(['completion', '--names', 'agents']); "
        "print(code, 'gateway_core.cli' in sys.modules, 'pydantic' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], env=on_path, capture_output=True, text=True, timeout=SHELL_TIMEOUT_S
    )

    assert done.stdout.splitlines() == ["cursor", "0 False False"], done.stderr


def test_the_hidden_names_listing_is_quiet_and_empty_without_a_config(toolgate_home: Path) -> None:
    done = run_toolgate("completion", "--names", "servers")

    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_completion_without_a_shell_is_a_usage_error(toolgate_home: Path) -> None:
    done = run_toolgate("completion")

    assert done.returncode == 2 and "give the shell: bash, zsh or fish" in done.stderr

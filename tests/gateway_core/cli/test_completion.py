"""`toolgate completion bash|zsh|fish`: the scripts, run in the real shells, complete commands and configured names."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
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

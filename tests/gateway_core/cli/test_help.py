"""Every `toolgate` command's --help has an example and states the exit codes."""

from __future__ import annotations

import argparse
import re

import pytest

from gateway_core.cli.main import _parser
from tests.gateway_core.cli.test_main import run_toolgate


def commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ("toolgate",)) -> list[tuple[str, ...]]:
    found = [path]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += commands(sub, (*path, name))
    return found


def test_every_commands_help_has_an_example_and_the_exit_codes() -> None:
    parser = _parser()
    missing = []
    for path in commands(parser):
        sub = parser
        for name in path[1:]:
            sub = next(a for a in sub._actions if isinstance(a, argparse._SubParsersAction)).choices[name]
        text = " ".join(sub.format_help().split())
        if (
            not re.search(r"examples?: \S", text)
            or "toolgate" not in text.split("example")[-1]
            or "Exit codes: 0" not in text
        ):
            missing.append(" ".join(path))

    assert len(commands(parser)) > 40
    assert missing == []


def test_every_help_fits_80_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    parser = _parser()
    wide = {}
    for path in commands(parser):
        sub = parser
        for name in path[1:]:
            sub = next(a for a in sub._actions if isinstance(a, argparse._SubParsersAction)).choices[name]
        wide.update({" ".join(path): line for line in sub.format_help().splitlines() if len(line) > 80})

    assert wide == {}


def test_help_is_printed_by_the_real_command_with_its_example() -> None:
    done = run_toolgate("agents", "why", "--help")

    assert done.returncode == 0
    assert "example: toolgate agents why cursor github/delete_repo" in done.stdout
    assert "Exit codes: 0" in " ".join(done.stdout.split())

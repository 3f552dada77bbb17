"""``toolgate completion bash|zsh|fish``: tab completion of commands, options, server and agent names.

The script is generated from the ``toolgate`` parser itself by shtab, so it never falls behind the
commands. Server and agent names are completed from config.json at the moment Tab is pressed, by
the hidden ``toolgate completion --names servers|agents`` (``gateway_core.completion_names``: quiet,
fast, and empty when there is no config).
The .deb installs the three scripts where each shell looks for them.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import shtab

from gateway_core.cli.output import EXIT_OK, result
from gateway_core.completion_names import KINDS, configured_names
from gateway_core.paths import Paths

SHELLS = ("bash", "zsh", "fish")
INSTALL = """where the script goes (the .deb installs all three):
  bash: toolgate completion bash \\
          > ~/.local/share/bash-completion/completions/toolgate
  zsh:  toolgate completion zsh > ~/.zfunc/_toolgate
        (and fpath+=(~/.zfunc) before compinit in ~/.zshrc)
  fish: toolgate completion fish > ~/.config/fish/completions/toolgate.fish
Exit codes: 0 done, 2 bad usage."""
# Commands whose NAME or ID is a new one, so nothing configured can complete it.
_NEW_NAMES = (("servers", "add"), ("agents", "add"), ("secrets",))


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser], root: Callable[[], Any]) -> None:
    """Add ``completion`` to the ``toolgate`` command.

    Args:
        subparsers: the ``toolgate`` command's subcommands.
        root: builds the whole ``toolgate`` parser (the one the script is generated from).
    """
    completion = subparsers.add_parser(
        "completion",
        help="print the tab-completion script for bash, zsh or fish",
        description="Print a script that completes toolgate's commands, options,\nand server and agent names.",
        epilog=INSTALL,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    completion.add_argument("shell", nargs="?", choices=SHELLS, metavar="bash|zsh|fish")
    completion.add_argument("--names", choices=KINDS, help=argparse.SUPPRESS)
    completion.set_defaults(run=_run, root=root, usage_error=completion.error)


def _run(args: argparse.Namespace, paths: Paths) -> int:
    if args.names is not None:
        for name in configured_names(paths.config_file, args.names):
            result(name)
        return EXIT_OK
    if args.shell is None:
        args.usage_error("give the shell: bash, zsh or fish")
    parser = args.root()
    attach_name_completions(parser)
    result(shtab.complete(parser, shell=args.shell).rstrip("\n"))
    return EXIT_OK


def attach_name_completions(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> None:
    """Mark every server-name and agent-name argument (and file and folder options) for shtab, recursively."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                attach_name_completions(sub, (*path, name))
            continue
        complete = _completion_of(path, action)
        if complete is not None:
            action.complete = complete  # type: ignore[attr-defined]  # shtab reads this attribute


def _completion_of(path: tuple[str, ...], action: argparse.Action) -> Any:
    if any(path[: len(new)] == new for new in _NEW_NAMES):
        return None
    if action.dest == "server" or (action.dest == "name" and path[:1] in (("servers",), ("login",), ("logout",))):
        return shtab.cmd("toolgate completion --names servers 2>/dev/null")
    if action.dest in ("agent", "agent_id"):
        return shtab.cmd("toolgate completion --names agents 2>/dev/null")
    if action.metavar == "FILE":
        return shtab.FILE
    if action.metavar == "DIR":
        return shtab.DIRECTORY
    return None

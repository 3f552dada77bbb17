"""``toolgate doctor``: what stdio servers start with, and whether each one's command is found.

Prints the launch environment (where ``PATH`` comes from and why) and, for each configured server,
where its command was found or why it was not, with which ``PATH``. Exit code 1 when an enabled
server's command cannot be found. By default it answers for the tray app started from the desktop
(the case where commands go missing); ``--as terminal`` answers for a start from this terminal.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gateway_core.cli.agents import ensure_config_said
from gateway_core.cli.output import EXIT_ERROR, EXIT_OK, printable, result
from gateway_core.config import Config, ServerConfig, load_config
from gateway_core.downstream.command_check import check_command
from gateway_core.launch.environment import LaunchEnvironment, PathSource, Surroundings, resolve_launch_environment
from gateway_core.paths import Paths


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``doctor`` to the ``toolgate`` command."""
    doctor = subparsers.add_parser("doctor", help="show what servers start with and whether their commands are found")
    doctor.add_argument("--config", type=Path, metavar="FILE", help="config file (default: the one in TOOLGATE_HOME)")
    doctor.add_argument(
        "--as",
        dest="started",
        choices=("desktop", "terminal"),
        default="desktop",
        help="answer for the tray app started from the desktop (default) or from this terminal",
    )
    doctor.set_defaults(run=_doctor)


def _doctor(args: argparse.Namespace, paths: Paths) -> int:
    path: Path = args.config if args.config is not None else ensure_config_said(paths)
    config = load_config(path)
    around = Surroundings(has_terminal=lambda: args.started == "terminal")
    launch = resolve_launch_environment(gui=True, around=around)
    lines, problems = report(config, launch)
    for line in lines:
        result(printable(line) if line else line)
    return EXIT_ERROR if problems else EXIT_OK


def report(config: Config, launch: LaunchEnvironment) -> tuple[list[str], int]:
    """The doctor's lines for ``config`` started with ``launch``, and how many servers cannot start."""
    lines = [f"Launch environment: {launch.source.value}", f"  why: {launch.why}", f"  PATH: {launch.path}"]
    if launch.source is PathSource.FALLBACK:
        lines.append(f"  added: {', '.join(launch.added) if launch.added else 'none of the well-known folders exist'}")
    lines += ["", "Servers:"]
    if not config.servers:
        lines.append("  (none configured)")
    problems = 0
    for name, server in config.servers.items():
        entry, ok = _server_lines(name, server, launch)
        lines += entry
        problems += not ok
    return lines, problems


def _server_lines(name: str, server: ServerConfig, launch: LaunchEnvironment) -> tuple[list[str], bool]:
    check = check_command(server, launch)
    if check is None:
        return [f"  {name}: {server.transport} server at {server.url}, nothing to start"], True
    if not server.enabled:
        return [f"  {name}: disabled"], True
    own = f"    PATH: {check.path} (set in the server's env)"
    path_line = own if check.own_path else "    PATH: the launch environment's"
    if check.found is None:
        return [f"  {name}: NOT FOUND: {check.problem}", path_line], False
    how = " (a batch file, started through cmd.exe)" if check.batch else ""
    return [f"  {name}: {check.command} found at {check.found}{how}", path_line], True

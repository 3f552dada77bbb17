"""The ``toolgate`` command: parses arguments and runs one subcommand (one module per command group).

Output rule (``gateway_core.cli.output``): what a script may capture (a token, a path, a table) goes
to stdout alone; explanations and errors go to stderr. Every expected failure is one ``Error: …``
sentence on stderr and exit code 1, never a traceback; bad usage is exit code 2; ``toolgate status``
exits 3 when no gateway runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

from gateway_core.cli import help_text
from gateway_core.cli.output import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_NOT_RUNNING, EXIT_USAGE, fail, say
from gateway_core.control_file import NotRunningError
from gateway_core.errors import ConfigError, ToolgateError
from gateway_core.paths import Paths


def main(argv: list[str] | None = None) -> int:
    """Run the ``toolgate`` command.

    Args:
        argv: the arguments after the program name; ``sys.argv[1:]`` when None.

    Returns:
        The exit code: 0 on success, 1 on an error, 2 on a usage error, 3 from ``status`` when none runs.
    """
    argv = sys.argv[1:] if argv is None else argv
    # `toolgate serve` loads only its own command: the others' modules would import the MCP SDK's client
    # and more before the gateway could listen (see `serve`).
    parser = _parser(only_serve=argv[:1] == ["serve"])
    # Everything after the first "--" is a command to run (`servers add NAME -- npx …`), never parsed here.
    command_line: list[str] | None = None
    if "--" in argv:
        split = argv.index("--")
        argv, command_line = argv[:split], argv[split + 1 :]
    try:
        args = parser.parse_args(argv)
        if command_line is not None and not getattr(args, "takes_command", False):
            parser.error(f"unexpected arguments after --: {' '.join(command_line)}")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    args.command_line = command_line or []
    command: Callable[[argparse.Namespace, Paths], int] | None = getattr(args, "run", None)
    if command is None:
        say("Give a command (below); `toolgate` alone starts the tray app, `toolgate serve` the gateway without it.")
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    paths = Paths.from_env()
    try:
        code = command(args, paths)
        sys.stdout.flush()  # here, where a reader that went away can be told apart from an error
        return code
    except BrokenPipeError:
        return _reader_went_away()
    except ConfigError as exc:
        for problem in exc.problems:
            fail(problem)
        return EXIT_ERROR
    except NotRunningError as exc:
        fail(exc)
        return EXIT_NOT_RUNNING
    except ToolgateError as exc:
        return fail(exc)
    except OSError as exc:
        return fail(f"{exc.strerror or exc}{f': {exc.filename}' if exc.filename else ''}")
    except KeyboardInterrupt:
        say("Interrupted.")
        return EXIT_INTERRUPTED


def _reader_went_away() -> int:
    """The reader of stdout closed it (``toolgate logs | head``): end quietly, as other commands do.

    Output still buffered goes nowhere, so the interpreter's last flush cannot fail again.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout is not a file (in-process callers): nothing buffered to lose
        pass
    return EXIT_ERROR


def _parser(*, only_serve: bool = False) -> argparse.ArgumentParser:
    """The whole command line; with ``only_serve``, the same with ``serve`` as its only command."""
    parser = argparse.ArgumentParser(prog="toolgate", description="A local MCP gateway with per-agent permissions.")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    serve = commands.add_parser("serve", help="run the gateway without the GUI")
    serve.add_argument("--config", type=Path, metavar="FILE", help="config file (default: the one in TOOLGATE_HOME)")
    serve.add_argument("--port", type=int, metavar="N", help="port to listen on (overrides gateway.port)")
    serve.set_defaults(run=_serve)
    if only_serve:
        help_text.finish_help(parser)
        return parser
    from gateway_core.cli import (
        agents,
        approvals,
        clients,
        completion,
        config,
        doctor,
        login,
        logs,
        names,
        pause,
        secrets,
        servers,
        settings,
        status,
    )

    groups = (status, servers, settings, config, agents, pause, secrets, login, approvals, names, logs, clients, doctor)
    for group in groups:
        group.add_parser(commands)
    completion.add_parser(commands, _parser)
    help_text.finish_help(parser)
    return parser


def _serve(args: argparse.Namespace, paths: Paths) -> int:
    from gateway_core.serve import exit_at_once, serve

    exit_at_once(serve(paths, args.config, args.port))

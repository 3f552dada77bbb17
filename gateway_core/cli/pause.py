"""``toolgate pause`` / ``toolgate resume``: the tray's *Pause all agents* and *Resume*, from a terminal.

Paused, the running gateway refuses every tool call, prompt and resource read with a message saying so
(agents stay connected and their lists stay as they are); it lasts until resumed or until Toolgate
stops. Told through the control channel, so the tray and the window show it at once.
"""

from __future__ import annotations

import argparse

from gateway_core.cli.control_client import ControlClient
from gateway_core.cli.output import EXIT_OK, say
from gateway_core.control_file import read_control_file
from gateway_core.paths import Paths

EXIT_CODES = "Exit codes: 0 done (also when it already was), 1 error, 3 no gateway running."


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``pause`` and ``resume`` to the ``toolgate`` command."""
    pause = subparsers.add_parser(
        "pause",
        help="refuse every agent's calls until `toolgate resume` (the tray's Pause all agents)",
        description=(
            "Pause the running gateway: every tool call, prompt and resource read is refused with a message "
            f"saying Toolgate is paused, until `toolgate resume` or until Toolgate stops. {EXIT_CODES}"
        ),
        epilog="example: toolgate pause && git push && toolgate resume",
    )
    pause.set_defaults(run=_set_paused, paused=True)
    resume = subparsers.add_parser(
        "resume",
        help="let agents' calls through again after `toolgate pause`",
        description=f"Resume the running gateway after `toolgate pause`. {EXIT_CODES}",
        epilog="example: toolgate resume",
    )
    resume.set_defaults(run=_set_paused, paused=False)


def _set_paused(args: argparse.Namespace, paths: Paths) -> int:
    changed = ControlClient(read_control_file(paths)).set_paused(args.paused)
    if args.paused:
        already = "" if changed else " (it already was)"
        say(f"Toolgate is paused{already}: every call is refused until `toolgate resume`.")
    else:
        say("Toolgate runs again: calls go through." if changed else "Toolgate was not paused; nothing changed.")
    return EXIT_OK

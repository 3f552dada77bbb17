"""``toolgate tools`` and ``toolgate prompts``: the names agents see, where each leads, and why it differs.

Each reads the running gateway over its local control channel: the tools (or prompts) it lists now,
for every agent or for one (its policy decides), each with its server, the server's own name and the
reason the two differ (``PublicName.reason``, the wording the GUI shows too). The table or the JSON
lines go to stdout; servers whose names are not listed because they are not ready are said on stderr.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from gateway_core.cli import tool_changes
from gateway_core.cli.control_client import ControlClient
from gateway_core.cli.output import EXIT_OK, fail, printable, result, say
from gateway_core.cli.table import print_table
from gateway_core.control_file import read_control_file
from gateway_core.downstream.base import ServerState
from gateway_core.errors import ToolgateError
from gateway_core.frontend.routing import NameKind
from gateway_core.paths import Paths

HEADERS = ("NAME", "SERVER", "SERVER CALLS IT", "WHY")
# Shown where a cell has nothing to say (the server's own name is the public one, or nothing was renamed).
SAME = "-"


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``tools`` and ``prompts`` to the ``toolgate`` command (handlers as ``gateway_core.cli.main`` dispatches).

    Args:
        subparsers: the ``toolgate`` command's subparsers.
    """
    for kind, noun in ((NameKind.TOOL, "tools"), (NameKind.PROMPT, "prompts")):
        command = subparsers.add_parser(noun, help=f"list the {noun} agents see and where each name comes from")
        command.add_argument("--server", metavar="NAME", help=f"only this server's {noun}")
        command.add_argument("--agent", metavar="ID", help=f"only the {noun} this agent's policy lets it see")
        command.add_argument("--json", action="store_true", help="print one JSON object per line")
        command.set_defaults(run=list_names, kind=kind)
        if kind is NameKind.TOOL:
            tool_changes.add_subcommands(command)


def list_names(args: argparse.Namespace, paths: Paths) -> int:
    """``toolgate tools|prompts [--server NAME] [--agent ID] [--json]``: what agents are listed, and its origin.

    Args:
        args: parsed arguments (``kind``, ``server``, ``agent``, ``json``).
        paths: where Toolgate's files live (the control file).

    Returns:
        The exit code.
    """
    kind: NameKind = args.kind
    noun = f"{kind.value}s"
    try:
        listing = ControlClient(read_control_file(paths)).names(args.agent)
    except ToolgateError as exc:
        return fail(exc)
    servers: list[dict[str, Any]] = listing["servers"]
    if args.server is not None and args.server not in {server.get("name") for server in servers}:
        return fail(f"there is no server {args.server!r}; the servers are in config.json (`toolgate config path`)")
    names = [
        name
        for name in listing["names"]
        if name.get("kind") == kind.value and args.server in (None, name.get("server"))
    ]
    if args.json:
        for name in names:
            result(json.dumps(name))
    elif names:
        _print_table(names)
    for server in servers:
        if args.server in (None, server.get("name")) and server.get("state") != ServerState.READY.value:
            why = ": ".join(str(part) for part in (server.get("state"), server.get("reason")) if part)
            say(printable(f"Server {server.get('name')!r} is not ready ({why}): its {noun} are not listed."))
    if not names and not args.json:
        whose = f" to agent {args.agent!r}" if args.agent is not None else ""
        say(f"No {noun} are listed{whose}" + (f" from server {args.server!r}." if args.server else "."))
    return EXIT_OK


def _print_table(names: list[dict[str, Any]]) -> None:
    rows = [
        (
            str(name.get("name", "")),
            str(name.get("server", "")),
            str(name.get("upstream_name", "")) if name.get("upstream_name") != name.get("name") else SAME,
            str(name.get("reason") or SAME),
        )
        for name in names
    ]
    # The reason goes on in lines of its own to fit 80 columns; names are never cut.
    print_table(HEADERS, rows, give_way=3, wrap=True)

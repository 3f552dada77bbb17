"""``toolgate tools changes`` and ``toolgate tools accept``: review the tools whose definitions changed.

Both ask the running gateway over its control channel (``gateway_core.pinning`` says what is pinned and
when a tool waits for review). ``changes`` prints each waiting tool with a unified diff of its accepted
definition against the one its server lists now (JSON, keys sorted), or one JSON object per line with
``--json``; with no Toolgate running it reads what the last one saved. ``accept SERVER/TOOL`` (or
``--all SERVER``) pins what the server lists now, so the tool's rules decide again. Errors are left to
``gateway_core.cli.main``: exit 1, or 3 when no Toolgate runs.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from typing import Any

from gateway_core.cli.control_client import ControlClient
from gateway_core.cli.output import EXIT_OK, EXIT_USAGE, fail, printable, result, result_text, say
from gateway_core.control_file import NotRunningError, read_control_file
from gateway_core.errors import ToolgateError
from gateway_core.paths import Paths
from gateway_core.pin_file import pins_path
from gateway_core.pinning import ToolPins, change_to_json, definition_diff


def add_subcommands(tools: argparse.ArgumentParser) -> None:
    """Add ``changes`` and ``accept`` under ``toolgate tools``.

    Args:
        tools: the ``tools`` command's parser.
    """
    commands = tools.add_subparsers(title="reviewing changed tools", metavar="ACTION", required=False)
    changes = commands.add_parser(
        "changes", help="list tools whose definition changed since it was accepted (or that are new), with a diff"
    )
    changes.add_argument("--server", metavar="NAME", help="only this server's tools")
    changes.add_argument("--json", action="store_true", help="print one JSON object per line")
    changes.set_defaults(run=list_changes)
    accept = commands.add_parser("accept", help="accept a tool's changed definition: its rules decide again")
    accept.add_argument("tool", nargs="?", metavar="SERVER/TOOL", help="the tool, as `tools changes` names it")
    accept.add_argument("--all", metavar="SERVER", help="accept every change of this server")
    accept.set_defaults(run=accept_changes)


def list_changes(args: argparse.Namespace, paths: Paths) -> int:
    """``toolgate tools changes [--server NAME] [--json]``: each tool waiting for review, with its diff.

    Args:
        args: parsed arguments (``server``, ``json``).
        paths: where Toolgate's files live (the control file).

    Returns:
        The exit code.
    """
    try:
        changes = ControlClient(read_control_file(paths)).tool_changes()
    except NotRunningError:
        changes = recorded_changes(paths)
        say("Toolgate is not running: these are the changes it recorded when it last ran (start it to accept them).")
    changes = [change for change in changes if args.server in (None, change.get("server"))]
    if args.json:
        for change in changes:
            result(json.dumps(change, ensure_ascii=False))
        return EXIT_OK
    for change in changes:
        result_text(change_text(change))
    if changes:
        say("Accept one with `toolgate tools accept SERVER/TOOL` (or all of a server's with `--all SERVER`).")
    else:
        say("No tool waits for review" + (f" on server {args.server!r}." if args.server else "."))
    return EXIT_OK


def accept_changes(args: argparse.Namespace, paths: Paths) -> int:
    """``toolgate tools accept SERVER/TOOL`` or ``toolgate tools accept --all SERVER``.

    Args:
        args: parsed arguments (``tool``, ``all``).
        paths: where Toolgate's files live (the control file).

    Returns:
        The exit code.
    """
    if (args.tool is None) == (args.all is None):
        say("Error: name one tool as SERVER/TOOL, or a server with --all SERVER")
        return EXIT_USAGE
    if args.tool is not None:
        server, slash, tool = args.tool.partition("/")
        if not slash or not server or not tool:
            return fail(f"expected SERVER/TOOL as `toolgate tools changes` names it, found {args.tool!r}")
    else:
        server, tool = args.all, None
    accepted = ControlClient(read_control_file(paths)).accept_tools(server, tool)
    for change in accepted:
        result(printable(f"{change.get('server')}/{change.get('tool')}"))
    say(f"Accepted {len(accepted)} tool definition{'s' if len(accepted) != 1 else ''}: their rules decide again.")
    return EXIT_OK


def recorded_changes(paths: Paths) -> list[dict[str, Any]]:
    """The changes waiting for review as the last gateway saved them in ``pins.json`` (none if there is none).

    Raises:
        ToolgateError: the file cannot be read.
    """
    path = pins_path(paths)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        return [change_to_json(change) for change in ToolPins.from_json(document).changes()]
    except FileNotFoundError:
        return []
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ToolgateError(f"the pinned tools in {path} cannot be read ({exc})") from exc


def change_text(change: dict[str, Any]) -> str:
    """One change as the person reads it: a heading line, then the unified diff (whole lines)."""
    name = f"{change.get('server')}/{change.get('tool')}"
    seen = datetime.fromtimestamp(float(change.get("seen_at") or 0)).strftime("%Y-%m-%d %H:%M:%S")
    fields = ", ".join(str(field) for field in change.get("fields") or [])
    if change.get("kind") == "new":
        heading = f"{name}: new tool (seen {seen}); agents may call it without being asked"
    else:
        heading = f"{name}: {fields} changed since it was accepted (seen {seen}); every call asks until accepted"
    old, new = change.get("accepted"), change.get("now")
    diff = definition_diff(name, old if isinstance(old, dict) else None, new if isinstance(new, dict) else {})
    return "".join(printable(line) + "\n" for line in (heading, *diff, ""))

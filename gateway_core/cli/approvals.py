"""``toolgate approvals list|allow|deny``: answer the running gateway's approvals without the GUI.

Each handler reads the control file, talks to the gateway over its local control channel and
returns an exit code. What a script may capture (the list) goes to stdout; confirmations and
errors go to stderr, and an expected failure is one sentence and exit code 1.
"""

from __future__ import annotations

import argparse
import json
import os
import textwrap
from datetime import datetime, timedelta
from typing import Any

from gateway_core.approvals import Answer, parse_duration
from gateway_core.audit.summary import REDACTED, redact_arguments
from gateway_core.cli.control_client import ControlClient
from gateway_core.cli.output import EXIT_OK, fail, printable, result, say
from gateway_core.cli.table import TABLE_WIDTH, print_table
from gateway_core.control_file import read_control_file
from gateway_core.errors import ToolgateError
from gateway_core.paths import Paths

_FOR_HELP = (
    "and add a rule that {verb} this tool for DURATION (90s, 15m, 1h, 1h30m, 2d, or tomorrow: until midnight); "
    "it is removed when it expires"
)
# Keeps one request on one terminal line.
MAX_VALUE_CHARS = 40
MAX_SUMMARY_CHARS = 100
_HELD_SPACE = "\x00"


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``approvals list|allow|deny`` to the ``toolgate`` command.

    Each subcommand sets ``run`` to a handler ``(args, paths) -> exit code``, as ``gateway_core.cli.main`` dispatches.

    Args:
        subparsers: the ``toolgate`` command's subparsers.
    """
    approvals = subparsers.add_parser("approvals", help="answer approvals without the GUI").add_subparsers(
        title="approvals commands", metavar="COMMAND", required=True
    )
    listing = approvals.add_parser("list", help="list the calls waiting for an answer")
    listing.add_argument("--json", action="store_true", help="print one JSON object per request per line")
    listing.set_defaults(run=list_approvals)

    allow = approvals.add_parser(
        "allow",
        help="let a waiting call run",
        usage="toolgate approvals allow ID [--always | --session | --for DURATION |\n"
        "                                  --when-under ARG=FOLDER]",
    )
    allow.add_argument("request_id", metavar="ID")
    scope = allow.add_mutually_exclusive_group()
    scope.add_argument("--always", action="store_true", help="and add a rule that always allows this tool")
    scope.add_argument("--session", action="store_true", help="and allow this tool for the rest of the session")
    scope.add_argument("--for", dest="duration", metavar="DURATION", help=_FOR_HELP.format(verb="allows"))
    scope.add_argument(
        "--when-under",
        metavar="ARG=FOLDER",
        help="and always allow this tool when its argument ARG is a path under FOLDER (a rule with a condition)",
    )
    allow.set_defaults(run=allow_approval)

    deny = approvals.add_parser("deny", help="refuse a waiting call")
    deny.add_argument("request_id", metavar="ID")
    deny_scope = deny.add_mutually_exclusive_group()
    deny_scope.add_argument("--always", action="store_true", help="and add a rule that always denies this tool")
    deny_scope.add_argument("--for", dest="duration", metavar="DURATION", help=_FOR_HELP.format(verb="denies"))
    deny.set_defaults(run=deny_approval)


def list_approvals(args: argparse.Namespace, paths: Paths) -> int:
    """``toolgate approvals list [--json]``: print the pending approvals, oldest first.

    Args:
        args: parsed arguments (``json``).
        paths: where Toolgate's files live (the control file).

    Returns:
        The exit code.
    """
    try:
        requests = ControlClient(read_control_file(paths)).pending()
    except ToolgateError as exc:
        return fail(exc)
    if args.json:
        for request in requests:
            result(json.dumps({**request, "arguments": redact_arguments(request.get("arguments"))}, default=str))
        return EXIT_OK
    if not requests:
        say("No approvals are waiting.")
        return EXIT_OK
    rows = [
        (
            str(r.get("id", "")),
            str(r.get("agent", "")),
            _wanted(r),
            format_age(r.get("age_s")),
            summarize_arguments(r.get("arguments")),
        )
        for r in requests
    ]
    # The arguments give way (marked …) to fit 80 columns; `--json` has them whole.
    print_table(("ID", "AGENT", "WANTS", "WAITING", "ARGUMENTS"), rows, give_way=4)
    for request in requests:
        if request.get("held_for_review") is True:
            for line in held_note(request):
                result(line)
    return EXIT_OK


def held_note(request: dict[str, Any]) -> list[str]:
    """The lines under the table for a request held because its tool's definition changed since it was accepted.

    Answering such a request answers that call only; the change itself is reviewed and accepted elsewhere.
    """
    tool = printable(f"{request.get('server', '')}/{request.get('tool', '')}")
    # A command is never split across lines: its spaces are held together while wrapping.
    review, accept = (
        command.replace(" ", _HELD_SPACE) for command in ("toolgate tools changes", f"toolgate tools accept {tool}")
    )
    text = (
        f"{printable(str(request.get('id', '')))} held: tool definition changed — review with `{review}`, "
        f"accept with `{accept}`; answering allows or denies this call only"
    )
    lines = textwrap.wrap(text, TABLE_WIDTH, subsequent_indent="  ", break_on_hyphens=False, break_long_words=False)
    return [line.replace(_HELD_SPACE, " ") for line in lines]


def _wanted(request: dict[str, object]) -> str:
    """``server/tool`` for a tool call; ``prompt server/name`` and so on for the rest."""
    kind = request.get("kind", "tool")
    target = f"{request.get('server', '')}/{request.get('tool', '')}"
    return target if kind == "tool" else f"{kind} {target}"


def allow_approval(args: argparse.Namespace, paths: Paths) -> int:
    """``toolgate approvals allow ID [--always | --session | --for DURATION]``: let a waiting call run.

    Args:
        args: parsed arguments (``request_id``, ``always``, ``session``, ``duration``).
        paths: where Toolgate's files live (the control file).

    Returns:
        The exit code.
    """
    if getattr(args, "duration", None) is not None:
        return _answer_for(args.request_id, Answer.ALLOW_FOR, "Allowed", args.duration, paths)
    if getattr(args, "when_under", None) is not None:
        argument, sep, folder = str(args.when_under).partition("=")
        if not sep or not argument or not folder:
            return fail(f"--when-under takes ARG=FOLDER, e.g. path=~/projects, found {args.when_under!r}")
        folder = os.path.abspath(os.path.expanduser(folder))
        how = f"once, and from now on always when {argument} is under {folder}"
        return _answer(args.request_id, Answer.ALLOW_ONCE, "Allowed", how, paths, under=(argument, folder))
    if getattr(args, "always", False):
        answer, how = Answer.ALLOW_ALWAYS, "and from now on always"
    elif getattr(args, "session", False):
        answer, how = Answer.ALLOW_SESSION, "for the rest of this session"
    else:
        answer, how = Answer.ALLOW_ONCE, "once"
    return _answer(args.request_id, answer, "Allowed", how, paths)


def deny_approval(args: argparse.Namespace, paths: Paths) -> int:
    """``toolgate approvals deny ID [--always | --for DURATION]``: refuse a waiting call.

    Args:
        args: parsed arguments (``request_id``, ``always``, ``duration``).
        paths: where Toolgate's files live (the control file).

    Returns:
        The exit code.
    """
    if getattr(args, "duration", None) is not None:
        return _answer_for(args.request_id, Answer.DENY_FOR, "Denied", args.duration, paths)
    if getattr(args, "always", False):
        return _answer(args.request_id, Answer.DENY_ALWAYS, "Denied", "and from now on always", paths)
    return _answer(args.request_id, Answer.DENY, "Denied", "once", paths)


def _answer_for(request_id: str, answer: Answer, verb: str, duration: str, paths: Paths) -> int:
    try:
        for_s = parse_duration(duration)
    except ToolgateError as exc:
        return fail(exc)
    until = datetime.now().astimezone() + timedelta(seconds=for_s)
    how = f"and from now until {until:%H:%M:%S}" + ("" if for_s < 12 * 3600 else f" on {until:%Y-%m-%d}")
    return _answer(request_id, answer, verb, how, paths, for_s=for_s)


def _answer(
    request_id: str,
    answer: Answer,
    verb: str,
    how: str,
    paths: Paths,
    *,
    for_s: float | None = None,
    under: tuple[str, str] | None = None,
) -> int:
    try:
        request = ControlClient(read_control_file(paths)).answer(request_id, answer, for_s=for_s, under=under)
    except ToolgateError as exc:
        return fail(exc)
    tool = printable(f"{request.get('server', '')}/{request.get('tool', '')}")
    agent = printable(str(request.get("agent", "")))
    say(f"{verb} {printable(str(request.get('id', request_id)))} ({tool} for agent {agent!r}) {how}.")
    return EXIT_OK


def summarize_arguments(arguments: Any) -> str:
    """A one-line, printable summary like ``path="/tmp/x", token=[redacted]``; long values are cut with ``…``.

    Secrets are redacted as in the audit log (``redact_arguments``).

    Args:
        arguments: the call's arguments (a JSON object; anything else is shown as one value).
    """
    redacted = redact_arguments(arguments)
    if not isinstance(redacted, dict):
        return _truncate(printable(json.dumps(redacted, default=str)), MAX_SUMMARY_CHARS)
    parts = []
    for key, value in redacted.items():
        shown = REDACTED if value == REDACTED else json.dumps(value, default=str)
        parts.append(f"{printable(str(key))}={_truncate(printable(shown), MAX_VALUE_CHARS)}")
    return _truncate(", ".join(parts), MAX_SUMMARY_CHARS) if parts else "-"


def format_age(age_s: Any) -> str:
    """How long a request has waited, e.g. ``12 s ago``, ``3 min ago``, ``2 h ago``.

    Args:
        age_s: seconds; anything that is not a number gives ``?``.
    """
    if isinstance(age_s, bool) or not isinstance(age_s, int | float):
        return "?"
    seconds = max(0, int(age_s))
    if seconds < 60:
        return f"{seconds} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago"


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"

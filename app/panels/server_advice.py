"""What to do about a server that failed, in the window's words (buttons, tabs), not the command line's.

The gateway's reasons are written for every front end and may end with a ``toolgate …`` command; the
window shows the reason without it (``gui_reason``) and a sentence on what to do here (``advice``).
"""

from __future__ import annotations

import re

from gateway_core import ServerState, ServerStatus

# "…; add it with `toolgate secrets set NAME`" and the like: the window offers a button instead.
_CLI_TAIL = re.compile(r";\s*(?:add|set|run|use) it with `toolgate [^`]*`\s*$|\s*\(`?toolgate [^)`]*`?\)")

_ADVICE: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"secret '([^']+)' is not in the secret store"),
        "Click Edit… and enter the value of {0} (it is kept in the keychain), then Restart.",
    ),
    (
        re.compile(r"working directory .* does not exist"),
        "Create that folder, or fix the working directory in Edit…, then Restart.",
    ),
    (
        re.compile(r"not executable|permission denied"),
        "Make the file executable (chmod +x), or set its interpreter as the command in Edit…, then Restart.",
    ),
    (
        re.compile(r"command '[^']+' (?:not found|could not be started)"),
        "Install the program, or set its full path as the command in Edit…, then Restart.",
    ),
    (
        re.compile(r"did not finish starting within"),
        "If it is only slow (e.g. downloading itself on first run), raise its timeout in Edit…, then Restart.",
    ),
    (
        re.compile(r"answered HTTP 40[13]"),
        "Check its credentials: the headers in Edit…, or Sign in… if it offers a sign-in.",
    ),
    (
        re.compile(r"cannot reach|answered HTTP 5\d\d|Connect(?:Error|Timeout)"),
        "Check that the server is running at its URL and that the URL in Edit… is right; Toolgate keeps trying.",
    ),
    (
        re.compile(r"exited with code|killed by|closed the connection|stopped answering"),
        "Its Stderr tab (below) shows what it wrote before it ended; fix what it says (often an argument or "
        "environment variable in Edit…), then Restart.",
    ),
)
_DEFAULT = "See its Stderr tab and the Logs panel; fix the entry with Edit…, then Restart."


def gui_reason(reason: str) -> str:
    """``reason`` without a trailing command-line instruction."""
    return _CLI_TAIL.sub("", reason).rstrip()


def advice(status: ServerStatus) -> str:
    """What to do in the window about the server's failure; empty when it is not failing."""
    if status.state is ServerState.NEEDS_SIGN_IN:
        return "Click Sign in… to sign in to it in your browser."
    if status.state is not ServerState.FAILED or not status.reason:
        return ""
    for pattern, text in _ADVICE:
        found = pattern.search(status.reason)
        if found:
            return text.format(*found.groups())
    return _DEFAULT

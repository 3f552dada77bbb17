"""How every ``toolgate`` command speaks: results on stdout, everything else on stderr, one error form.

Results are what a script may capture (a token, a path, a table, a diff): ``result``. Explanations,
progress and warnings go to stderr: ``say``. An expected failure is one ``Error: …`` sentence on
stderr and exit code 1 (``fail``), never a traceback; bad usage is exit code 2.
"""

from __future__ import annotations

import re
import sys

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
# `toolgate status` when no gateway runs for this TOOLGATE_HOME (like `systemctl status` of a stopped unit).
EXIT_NOT_RUNNING = 3
EXIT_INTERRUPTED = 130
ERROR_PREFIX = "Error: "
# Names and arguments come from agents and servers: never let them move the cursor or recolour the terminal.
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def result(line: object = "") -> None:
    """Write one line of a command's result to stdout."""
    sys.stdout.write(f"{line}\n")
    sys.stdout.flush()


def result_text(text: str) -> None:
    """Write a result that is already whole lines (a diff) to stdout, exactly as it is."""
    sys.stdout.write(text)
    sys.stdout.flush()


def say(message: str) -> None:
    """Write one line for the person (an explanation, a warning, progress) to stderr."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def fail(problem: object) -> int:
    """Say what went wrong as ``Error: …`` on stderr; returns the error exit code."""
    say(f"{ERROR_PREFIX}{problem}")
    return EXIT_ERROR


def printable(text: str) -> str:
    """``text`` with control characters replaced by ``?``."""
    return _UNPRINTABLE.sub("?", text)

"""A stdio server's process group ends with Toolgate, also when Toolgate is killed (macOS and Linux).

Each stdio server runs in its own process group. Beside it runs a guard: a ``/bin/sh`` loop reading a pipe
whose only writer is Toolgate. When Toolgate dies in any way (SIGKILL, a crash, OOM) the kernel closes the
pipe; the guard reads end-of-file and ends the whole group (SIGTERM, then SIGKILL), the server's children
too. On a normal stop Toolgate ends the group itself and then the guard (``Guard.end``).
Why not ``PR_SET_PDEATHSIG``: Linux only, it reaches the direct child but not its children, fires when the
*thread* that started it ends, and needs ``preexec_fn``, which is unsafe in a threaded process.
"""

from __future__ import annotations

import logging
import signal
import subprocess
from contextlib import suppress
from dataclasses import dataclass

logger = logging.getLogger(__name__)

# What a server's group gets between SIGTERM and SIGKILL after Toolgate died.
GRACE_S = 1
# Only the shell's built-ins and `sleep`: nothing of the person's PATH is needed.
GUARD_PATH = "/usr/bin:/bin"
# Bound for reaping the guard after SIGKILL.
REAP_TIMEOUT_S = 2.0


def guard_script(pgid: int, grace_s: int = GRACE_S) -> str:
    """The shell script that waits for its stdin to close, then ends process group ``pgid``."""
    group = f"-{int(pgid)}"
    return (
        "while read -r _; do :; done; "
        f"kill -s TERM -- {group} 2>/dev/null; sleep {int(grace_s)}; kill -s KILL -- {group} 2>/dev/null"
    )


@dataclass
class Guard:
    """A running guard for one process group."""

    pgid: int
    process: subprocess.Popen[bytes]

    @classmethod
    def start(cls, pgid: int) -> Guard | None:
        """Start a guard for ``pgid``; None (and a warning) when ``/bin/sh`` cannot be started."""
        try:
            process = subprocess.Popen(
                ["/bin/sh", "-c", guard_script(pgid)],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd="/",
                env={"PATH": GUARD_PATH},
                # Its own session: a Ctrl-C in Toolgate's terminal is for Toolgate, not for the guard.
                start_new_session=True,
            )
        except OSError as exc:
            logger.warning(
                "could not start the guard that ends MCP server process group %d if Toolgate is killed: %s",
                pgid,
                exc.strerror or exc,
            )
            return None
        return cls(pgid, process)

    def end(self) -> None:
        """Stop the guard without it touching the group (the group was already ended)."""
        with suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGKILL)
        with suppress(subprocess.TimeoutExpired, ChildProcessError):
            self.process.wait(REAP_TIMEOUT_S)
        if self.process.stdin is not None:
            with suppress(OSError):
                self.process.stdin.close()

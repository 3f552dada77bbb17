"""After a command wrote config.json: wait (bounded) until a running gateway has applied it, and say so.

A running gateway applies config.json through its watcher. The status document carries the digest of
the configuration in force (``Config.digest``); the command compares it with the digest of what it
wrote. With no gateway running nothing is waited for or said.
"""

from __future__ import annotations

import time

from gateway_core.cli.control_client import ControlClient
from gateway_core.cli.output import say
from gateway_core.config import Config
from gateway_core.control_file import ControlError, control_file_path, read_control_file
from gateway_core.paths import Paths

# How long a command waits for a running gateway to take its edit before saying it will.
APPLY_WAIT_S = 10.0
APPLY_POLL_S = 0.1


def tell_applied(paths: Paths, written: Config, server: str | None = None) -> bool:
    """Wait until the running gateway runs ``written`` and say so (with ``server``'s state when given).

    Returns:
        Whether a running gateway was seen to apply it (False also when none runs).
    """
    if not control_file_path(paths).exists():
        return False
    wanted = written.digest()
    deadline = time.monotonic() + APPLY_WAIT_S
    try:
        client = ControlClient(read_control_file(paths))
        while True:
            document = client.status()
            if document.get("config_digest") == wanted:
                states = {str(s["name"]): str(s["state"]) for s in document["servers"]}
                state = states.get(server) if server is not None else None
                say("The running gateway applied it" + (f" (state: {state})." if state else "."))
                return True
            if document.get("config_problems") or time.monotonic() > deadline:
                break
            time.sleep(APPLY_POLL_S)
    except ControlError:
        pass
    say("The running gateway applies it within seconds (`toolgate status` shows its state or why it did not).")
    return False

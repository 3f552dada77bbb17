"""Where a stdio server's command is found, with the PATH it will get: for ``toolgate doctor`` and the GUI.

The check is the one a start makes (``plan_spawn``), with the launch environment and the entry's own
``env`` (its ``${secret:…}`` values left out: a secret never decides where a command is). It looks at
files only, so it is quick enough to run when a person looks at a server.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway_core.config import ServerConfig
from gateway_core.downstream.base import ConnectError
from gateway_core.downstream.stdio import StdioCommand, plan_spawn
from gateway_core.launch.environment import LaunchEnvironment

SECRET_MARK = "${secret:"


@dataclass(frozen=True)
class CommandCheck:
    """What starting one stdio server's command would find.

    Args:
        command: the command as configured.
        found: where it was found, or None when it would not start.
        problem: why it would not start (the sentence a start would log), or None.
        batch: a Windows batch file, started through ``cmd.exe``.
        path: the ``PATH`` it is looked up with.
        own_path: that ``PATH`` is set in the server's own ``env`` (else it is the launch environment's).
    """

    command: str
    found: str | None
    problem: str | None
    batch: bool
    path: str
    own_path: bool


def check_command(server: ServerConfig, launch: LaunchEnvironment) -> CommandCheck | None:
    """Where ``server``'s command is found when started from ``launch``; None for a remote server."""
    if server.command is None:
        return None
    literal = {key: value for key, value in server.env.items() if SECRET_MARK not in value}
    spec = StdioCommand(server.command, server.args, literal, server.cwd, launch.variables)
    own_path = "PATH" in literal
    path = spec.environment().get("PATH", "") if own_path else launch.path
    try:
        plan = plan_spawn(spec)
    except ConnectError as exc:
        return CommandCheck(server.command, None, str(exc), False, path, own_path)
    return CommandCheck(server.command, plan.found.path, None, plan.shell_line is not None, path, own_path)

"""``toolgate servers list|show|enable|disable|restart|logs``: the configured MCP servers and their states.

States come from the running gateway's control channel; with none running, from config.json with the
state ``not running``. ``enable``/``disable`` (and ``add``/``remove``, in ``server_add``) go through the
checked config edit (``gateway_core.config.edit``) and a running gateway applies them live (its config
watcher). ``logs`` prints a stdio server's kept stderr lines, read from the running gateway.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from gateway_core.audit.summary import redact_text
from gateway_core.cli import server_add, server_catalogue, server_edit
from gateway_core.cli.control_client import ControlClient
from gateway_core.cli.output import EXIT_OK, fail, printable, result, say
from gateway_core.cli.table import print_table
from gateway_core.config import Config, ServerConfig, load_config
from gateway_core.config.edit import set_server_enabled
from gateway_core.control_file import control_file_path, read_control_file
from gateway_core.paths import Paths

HEADERS = ("NAME", "STATE", "TRANSPORT", "TOOLS", "LAST ERROR")
# How often `servers logs --follow` asks the gateway for new lines: live enough, and a cheap local call.
FOLLOW_POLL_S = 0.5
NOT_RUNNING = "not running"
NONE = "-"


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``servers list|show|enable|disable|restart`` to the ``toolgate`` command."""
    servers = subparsers.add_parser(
        "servers",
        help="list, inspect, enable, disable or restart servers",
        description=(
            "The configured MCP servers. Exit codes: 0 done, 1 error (e.g. no such server), 2 bad usage, "
            "3 no gateway running (restart, logs)."
        ),
        epilog="example: toolgate servers list",
    )
    commands = servers.add_subparsers(title="servers commands", metavar="COMMAND", required=True)
    listing = commands.add_parser(
        "list",
        help="every server with its state, tool count and last error",
        epilog="example: toolgate servers list --json | jq -r 'select(.state == \"failed\") | .name'",
    )
    listing.add_argument("--json", action="store_true", help="print one JSON object per line")
    listing.set_defaults(run=_list)
    show = commands.add_parser(
        "show", help="one server's definition and state", epilog="example: toolgate servers show github"
    )
    show.add_argument("name", metavar="NAME")
    show.add_argument("--json", action="store_true", help="print one JSON document")
    show.set_defaults(run=_show)
    for verb, enabled in (("enable", True), ("disable", False)):
        toggle = commands.add_parser(
            verb,
            help=f"{verb} a server (a running gateway applies it at once)",
            epilog=f"example: toolgate servers {verb} github",
        )
        toggle.add_argument("name", metavar="NAME")
        toggle.set_defaults(run=_set_enabled, enabled=enabled)
    restart = commands.add_parser(
        "restart", help="restart a server in the running gateway", epilog="example: toolgate servers restart github"
    )
    restart.add_argument("name", metavar="NAME")
    restart.set_defaults(run=_restart)
    server_add.add_parsers(commands)
    server_edit.add_parser(commands)
    server_catalogue.add_parser(commands)
    logs = commands.add_parser(
        "logs",
        help="what a stdio server wrote to stderr (the last 200 lines), from the running gateway",
        epilog="example: toolgate servers logs github --follow",
    )
    logs.add_argument("name", metavar="NAME")
    logs.add_argument("--follow", "-f", action="store_true", help="keep printing new lines until Ctrl+C")
    logs.set_defaults(run=_logs)


def _list(args: argparse.Namespace, paths: Paths) -> int:
    servers = _servers(paths)
    if args.json:
        for server in servers:
            result(json.dumps(server))
    elif servers:
        rows = [
            (
                s["name"],
                s["state"],
                s["transport"],
                str(s["tools"]) if s["tools"] is not None else NONE,
                s["reason"] or NONE,
            )
            for s in servers
        ]
        print_table(HEADERS, rows, give_way=4)
    else:
        say(f"No servers; add them in {paths.config_file}.")
    return EXIT_OK


def _show(args: argparse.Namespace, paths: Paths) -> int:
    server = next((s for s in _servers(paths) if s["name"] == args.name), None)
    if server is None:
        return fail(f"there is no server {args.name!r}; `toolgate servers list` shows the servers")
    if args.json:
        result(json.dumps(server))
        return EXIT_OK
    for key, value in server.items():
        if isinstance(value, list):
            value = " ".join(str(item) for item in value) if value else NONE
        elif isinstance(value, bool):
            value = "yes" if value else "no"
        result(printable(f"{key + ':':<12} {NONE if value is None else value}"))
    return EXIT_OK


def _set_enabled(args: argparse.Namespace, paths: Paths) -> int:
    set_server_enabled(paths.config_file, args.name, args.enabled)
    done = "enabled" if args.enabled else "disabled"
    say(f"Server {args.name!r} is {done} in {paths.config_file}.")
    if control_file_path(paths).exists():
        say("The running gateway applies it within seconds (`toolgate servers list` shows the state).")
    return EXIT_OK


def _restart(args: argparse.Namespace, paths: Paths) -> int:
    ControlClient(read_control_file(paths)).restart_server(args.name)
    say(f"Server {args.name!r} is restarting (`toolgate servers show {args.name}` shows its state).")
    return EXIT_OK


def _logs(args: argparse.Namespace, paths: Paths) -> int:
    client = ControlClient(read_control_file(paths))
    lines, seen = client.stderr_since(args.name)
    for line in lines:
        result(printable(line))
    if not lines and not args.follow:
        config = load_config(paths.config_file) if paths.config_file.exists() else Config()
        entry = config.servers.get(args.name)
        if entry is not None and entry.transport != "stdio":
            say(f"Server {args.name!r} is a remote server: it has no stderr (`toolgate servers show` shows its state).")
        else:
            say(f"Server {args.name!r} has written nothing to stderr.")
    while args.follow:
        time.sleep(FOLLOW_POLL_S)
        lines, total = client.stderr_since(args.name, seen)
        if total - seen > len(lines):
            say(f"({total - seen - len(lines)} lines came and went between two looks.)")
        for line in lines:
            result(printable(line))
        seen = total
    return EXIT_OK


def _servers(paths: Paths) -> list[dict[str, Any]]:
    """Every configured server: its definition from config.json and its state from the running gateway."""
    config = load_config(paths.config_file) if paths.config_file.exists() else Config()
    states: dict[str, dict[str, Any]] = {}
    if control_file_path(paths).exists():
        states = {str(s["name"]): s for s in ControlClient(read_control_file(paths)).status()["servers"]}
    names = list(config.servers) + [name for name in states if name not in config.servers]
    return [_server(name, config.servers.get(name), states.get(name)) for name in names]


def _server(name: str, entry: ServerConfig | None, state: dict[str, Any] | None) -> dict[str, Any]:
    # env and header values may hold secrets written in place: only their names are shown; args and
    # the URL are shown with anything that looks like a token or key redacted.
    return {
        "name": name,
        "enabled": entry.enabled if entry is not None else True,
        "state": str(state["state"]) if state is not None else NOT_RUNNING,
        "transport": entry.transport if entry is not None else str((state or {}).get("transport")),
        "tools": state.get("tools") if state is not None else None,
        "reason": state.get("reason") if state is not None else None,
        "restarts": state.get("restarts") if state is not None else None,
        "sign_in_at": state.get("sign_in_at") if state is not None else None,
        "command": entry.command if entry is not None else None,
        "args": [redact_text(arg) for arg in entry.args] if entry is not None else [],
        "url": redact_text(entry.url) if entry is not None and entry.url is not None else None,
        "env": sorted(entry.env) if entry is not None else [],
        "headers": sorted(entry.headers) if entry is not None else [],
        "cwd": entry.cwd if entry is not None else None,
        "prefix": entry.prefix if entry is not None else None,
        "timeout_s": entry.timeout_s if entry is not None else None,
        "isolation": entry.isolation if entry is not None else None,
    }

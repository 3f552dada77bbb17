"""``toolgate status``: the Overview in a terminal, read from the running gateway's control channel.

The endpoint, running or paused, each server's state, tool count and last error, the agents, how many
approvals wait, and warnings (secrets not encrypted, audit not written, a rejected config edit). Exit
code 0 when a gateway runs, ``EXIT_NOT_RUNNING`` (3) when none runs for this TOOLGATE_HOME (no control
file, or one left by a gateway that stopped abruptly), 1 on errors.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from gateway_core.cli.agents import NOT_ENCRYPTED
from gateway_core.cli.control_client import ControlClient
from gateway_core.cli.output import EXIT_NOT_RUNNING, EXIT_OK, fail, printable, result
from gateway_core.cli.table import print_table
from gateway_core.control_file import ControlError, control_file_path, read_control_file
from gateway_core.frontend.http import MCP_PATH
from gateway_core.paths import Paths
from gateway_core.secrets import open_secret_store

SERVER_HEADERS = ("SERVER", "STATE", "TOOLS", "LAST ERROR")
NONE = "-"


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``status`` to the ``toolgate`` command."""
    status = subparsers.add_parser(
        "status",
        help="the running gateway: endpoint, servers, agents, pending approvals, warnings",
        description="Show the running gateway's Overview. Exit codes: 0 running, 3 none running, 1 error.",
        epilog="example: toolgate status --json | jq '.servers[] | select(.state != \"ready\")'",
    )
    status.add_argument("--json", action="store_true", help="print one JSON document")
    status.set_defaults(run=show_status)


def show_status(args: argparse.Namespace, paths: Paths) -> int:
    """``toolgate status [--json]``.

    Args:
        args: parsed arguments (``json``).
        paths: where Toolgate's files live (the control file, the secret store).

    Returns:
        0, ``EXIT_NOT_RUNNING`` when no gateway runs, or 1 when it cannot be read.
    """
    if not control_file_path(paths).exists():
        if args.json:
            result(json.dumps({"running": False}))
        fail(f"Toolgate is not running for TOOLGATE_HOME={paths.home}; start it with `toolgate serve`")
        return EXIT_NOT_RUNNING
    endpoint = read_control_file(paths)
    try:
        document = ControlClient(endpoint).status()
    except ControlError as exc:
        if not isinstance(exc.__cause__, ConnectionRefusedError | FileNotFoundError):
            raise
        # A control file left by a gateway that stopped abruptly: nothing listens there.
        if args.json:
            result(json.dumps({"running": False}))
        fail(exc)
        return EXIT_NOT_RUNNING
    store = open_secret_store(paths)
    document = {
        "running": True,
        "endpoint": endpoint.url.rstrip("/") + MCP_PATH,
        **document,
        "secret_store": {"backend": store.backend_name, "encrypted": store.encrypted},
    }
    if args.json:
        result(json.dumps(document))
    else:
        _print_overview(document)
    return EXIT_OK


def warnings_of(document: dict[str, Any]) -> list[str]:
    """The Overview's warnings, as sentences."""
    warnings = []
    store = document.get("secret_store") or {}
    if not store.get("encrypted", True):
        warnings.append(NOT_ENCRYPTED)
    audit = document.get("audit")
    if isinstance(audit, dict) and not audit.get("healthy", True):
        warnings.append(f"Audit records are not being written: {audit.get('problem')}")
    problems = document.get("config_problems") or []
    if problems:
        warnings.append("The last edit of config.json was rejected; the previous configuration stays in force:")
        warnings.extend(f"  {problem}" for problem in problems)
    return warnings


def _print_overview(document: dict[str, Any]) -> None:
    state = "paused (every call is refused until `toolgate resume`)" if document.get("paused") else "running"
    result(f"Toolgate: {state}, agents connect to {document['endpoint']}")
    servers: list[dict[str, Any]] = document["servers"]
    result()
    if servers:
        rows = [
            (str(s.get("name")), str(s.get("state")), str(s.get("tools", 0)), str(s.get("reason") or NONE))
            for s in servers
        ]
        print_table(SERVER_HEADERS, rows, give_way=3)
    else:
        result("No servers; add them in config.json (`toolgate config path`).")
    agents: list[dict[str, Any]] = document.get("agents", [])
    result()
    names = ", ".join(printable(str(a.get("id"))) for a in agents) if agents else "none (toolgate agents add ID)"
    result(f"Agents: {names}")
    pending = document.get("pending_approvals", 0)
    result(f"Pending approvals: {pending}" + (" (toolgate approvals list)" if pending else ""))
    warnings = warnings_of(document)
    if warnings:
        result()
        for warning in warnings:
            result(printable(f"Warning: {warning}" if not warning.startswith("  ") else warning))

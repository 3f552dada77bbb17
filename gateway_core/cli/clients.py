"""``toolgate clients list``, ``toolgate import``, ``toolgate connect`` and ``toolgate disconnect``.

List the IDE clients installed here with their servers; import those servers into Toolgate; point a
client at Toolgate as its own agent, and undo that. ``--dry-run`` prints the exact diff (or the
entries) and writes nothing.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from gateway_core.audit.summary import redact_text
from gateway_core.cli.output import EXIT_OK, fail, result, result_text, say
from gateway_core.clients.connect import Change
from gateway_core.clients.found import ClientConfigError, FoundServer
from gateway_core.clients.service import Clients, Installed
from gateway_core.clients.table import CLIENT_IDS
from gateway_core.errors import ConfigError, SecretError
from gateway_core.paths import Paths


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the client commands on the ``toolgate`` parser."""
    clients = subparsers.add_parser("clients", help="the IDE clients installed here").add_subparsers(
        title="client commands", metavar="COMMAND", required=True
    )
    listing = clients.add_parser("list", help="list installed clients and the MCP servers they have")
    listing.add_argument("--json", action="store_true", help="print one JSON object per client file per line")
    _project(listing)
    listing.set_defaults(run=_list)

    importing = subparsers.add_parser("import", help="import the MCP servers a client has into Toolgate")
    importing.add_argument("client", choices=CLIENT_IDS, metavar="CLIENT", help=", ".join(CLIENT_IDS))
    importing.add_argument("--dry-run", action="store_true", help="print the diff of config.json; change nothing")
    importing.add_argument(
        "--policy",
        action="store_true",
        help="allow the client's agent the servers it had (the rest stays at the agent default)",
    )
    _project(importing)
    importing.set_defaults(run=_import)

    connect = subparsers.add_parser("connect", help="point a client at Toolgate as its own agent")
    connect.add_argument("client", choices=CLIENT_IDS, metavar="CLIENT", help=", ".join(CLIENT_IDS))
    style = connect.add_mutually_exclusive_group()
    style.add_argument("--http", action="store_true", help="an HTTP entry (the default where the client has it)")
    style.add_argument("--stdio", action="store_true", help="an entry that launches toolgate-shim")
    connect.add_argument(
        "--remove-imported", action="store_true", help="take out the client's servers Toolgate now provides"
    )
    connect.add_argument("--dry-run", action="store_true", help="print the diff it would apply; change nothing")
    _project(connect)
    connect.set_defaults(run=_connect)

    disconnect = subparsers.add_parser("disconnect", help="undo `toolgate connect` for a client")
    disconnect.add_argument("client", choices=CLIENT_IDS, metavar="CLIENT", help=", ".join(CLIENT_IDS))
    disconnect.add_argument("--dry-run", action="store_true", help="print the diff it would apply; change nothing")
    _project(disconnect)
    disconnect.set_defaults(run=_disconnect)


def _project(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--project", type=Path, metavar="DIR", help="use the client's project config in DIR instead of the user one"
    )


def _list(args: argparse.Namespace, paths: Paths) -> int:
    found = Clients(paths).installed(args.project)
    if not found:
        say("No MCP clients found here (" + ", ".join(CLIENT_IDS) + ").")
        return EXIT_OK
    if args.json:
        for item in found:
            result(json.dumps(_to_json(item)))
        return EXIT_OK
    for item in found:
        file = item.file
        connected = " [connected to Toolgate]" if item.connected else ""
        result(f"{file.client.id} ({file.client.name}, {file.scope}): {file.path}{connected}")
        if item.problem is not None:
            result(f"  cannot be read: {item.problem}")
            continue
        for server in item.servers:
            result(f"  {server.name}: {_describe(server)}")
        for note in item.notes:
            result(f"  {note}")
        if not item.servers and not item.notes:
            result("  no servers")
    return EXIT_OK


def _to_json(item: Installed) -> dict[str, Any]:
    # Env and header values may hold secrets: only their names; token-looking arguments are redacted.
    return {
        "client": item.file.client.id,
        "name": item.file.client.name,
        "scope": item.file.scope,
        "path": str(item.file.path),
        "connected": item.connected,
        "problem": item.problem,
        "servers": [
            {
                "name": server.name,
                "transport": server.transport,
                "command": server.command,
                "args": [redact_text(arg) for arg in server.args],
                "url": None if server.url is None else redact_text(server.url),
                "env": sorted(server.env),
                "headers": sorted(server.headers),
            }
            for server in item.servers
        ],
        "notes": list(item.notes),
    }


def _describe(server: FoundServer) -> str:
    # Token-looking arguments and URL parts are redacted here as in --json: this output ends up in terminals and issues.
    if server.url is not None:
        via = f" (through {server.via}; imported as the remote server)" if server.via else ""
        return f"{server.transport} {redact_text(server.url)}{via}"
    return "stdio " + " ".join([server.command or "", *(redact_text(arg) for arg in server.args)])


def _import(args: argparse.Namespace, paths: Paths) -> int:
    clients = Clients(paths)
    try:
        plan = clients.plan_import(args.client, args.project)
    except (ClientConfigError, ConfigError) as exc:
        return fail(exc)
    for server, name in plan.already:
        result(f"already in Toolgate as {name!r}: {server.name}")
    for server, reason in plan.skipped:
        result(f"skipped {server.name}: {reason}")
    for name, entry in plan.servers.items():
        secrets = [key for key in plan.secrets if key.startswith(f"{name}.")]
        moved = f" (secrets moved to the secret store: {', '.join(secrets)})" if secrets else ""
        result(f"{'would add' if args.dry_run else 'adding'} {name}: {json.dumps(entry)}{moved}")
    if args.dry_run:
        if plan.servers:
            result_text(clients.import_diff(plan))
        else:
            say("nothing new to import")
        return EXIT_OK
    try:
        if plan.servers:
            clients.apply_import(plan)
            say(f"imported {len(plan.servers)} server(s) into {paths.config_file}")
        else:
            say("nothing new to import")
        if args.policy:
            matches = clients.derive_policy(args.client, plan)
            say(f"agent {args.client!r} may use: {', '.join(matches) or 'no servers'} (the rest: its default)")
    except (ConfigError, SecretError) as exc:
        return fail(exc)
    return EXIT_OK


def _connect(args: argparse.Namespace, paths: Paths) -> int:
    clients = Clients(paths)
    http = True if args.http else False if args.stdio else None
    try:
        change = clients.connect_change(
            args.client, http=http, remove_imported=args.remove_imported, project=args.project, dry_run=args.dry_run
        )
    except (ClientConfigError, ConfigError, SecretError, ValueError) as exc:
        return fail(exc)
    return _apply(clients, change, connecting=True, dry_run=args.dry_run)


def _disconnect(args: argparse.Namespace, paths: Paths) -> int:
    clients = Clients(paths)
    try:
        change = clients.disconnect_change(args.client, args.project)
    except ClientConfigError as exc:
        return fail(exc)
    return _apply(clients, change, connecting=False, dry_run=args.dry_run)


def _apply(clients: Clients, change: Change, *, connecting: bool, dry_run: bool) -> int:
    if not change.changes_anything:
        if connecting and not dry_run:
            try:
                clients.publish_token_file(change)  # a cloned project may carry the entry already
            except ClientConfigError as exc:
                return fail(exc)
        say(f"{change.file.path}: nothing to change")
        return EXIT_OK
    if dry_run:
        result_text(change.diff())
        return EXIT_OK
    try:
        backup = clients.apply(change, connecting=connecting)
    except ClientConfigError as exc:
        return fail(exc)
    done = "connected" if connecting else "disconnected"
    kept = f" (the previous file is kept at {backup})" if backup else ""
    say(f"{change.file.client.name} {done}: {change.file.path}{kept}")
    return EXIT_OK

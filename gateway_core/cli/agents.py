"""``toolgate agents add|list|remove|rotate|tools``: the agents allowed to connect, their tokens and tool listing."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from gateway_core.agents import AgentDirectory
from gateway_core.cli.control_client import ControlClient
from gateway_core.cli.output import EXIT_OK, result, say
from gateway_core.cli.table import TABLE_WIDTH, fit
from gateway_core.config import ToolsMode, ensure_config
from gateway_core.control_file import read_control_file
from gateway_core.errors import ToolgateError
from gateway_core.frontend.listing_size import ListingSize
from gateway_core.paths import Paths
from gateway_core.secrets import SecretStore, open_secret_store, unencrypted_reason
from gateway_core.token_files import TokenFiles

HEADERS = ("ID", "NAME", "TOOLS", "ALL TOOLS", "ON DEMAND", "TOKEN")
NOT_ENCRYPTED = f"Secrets are NOT encrypted: {unencrypted_reason()}."


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``agents add|list|remove|rotate|tools`` to the ``toolgate`` command."""
    agents = subparsers.add_parser("agents", help="manage the agents allowed to connect").add_subparsers(
        title="agents commands", metavar="COMMAND", required=True
    )
    add = agents.add_parser("add", help="add an agent and print its token")
    add.add_argument("agent_id", metavar="ID")
    add.add_argument("--name", help="display name (default: the id)")
    add.set_defaults(run=_add)
    listing = agents.add_parser("list", help="list the agents, their tool listing and its size")
    listing.add_argument("--json", action="store_true", help="print one JSON object per line")
    listing.set_defaults(run=_list)
    remove = agents.add_parser("remove", help="remove an agent and its token")
    remove.add_argument("agent_id", metavar="ID")
    remove.set_defaults(run=_remove)
    rotate = agents.add_parser("rotate", help="give an agent a new token and print it")
    rotate.add_argument("agent_id", metavar="ID")
    rotate.set_defaults(run=_rotate)
    tools = agents.add_parser("tools", help="list every tool to an agent (all), or let it find them (on_demand)")
    tools.add_argument("agent_id", metavar="ID")
    tools.add_argument("mode", choices=[mode.value for mode in ToolsMode], metavar="all|on_demand")
    tools.set_defaults(run=_tools)
    from gateway_core.cli import agent_rules  # it uses ensure_config_said from here

    agent_rules.add_parsers(agents)


def ensure_config_said(paths: Paths) -> Path:
    """config.json, created (and said so) when there is none yet."""
    path, created = ensure_config(paths)
    if created:
        say(f"Created a default config (no servers, no agents) at {path}.")
    return path


def _add(args: argparse.Namespace, paths: Paths) -> int:
    store, directory = _directory(paths)
    token = directory.add(args.agent_id, args.name)
    result(token)
    say(f"Added agent {args.agent_id!r} to {paths.config_file}.")
    _explain_token(store)
    return EXIT_OK


def _rotate(args: argparse.Namespace, paths: Paths) -> int:
    store, directory = _directory(paths)
    token = directory.rotate(args.agent_id)
    result(token)
    say(f"Agent {args.agent_id!r} has a new token; a running gateway stops accepting the old one within seconds.")
    _explain_token(store)
    return EXIT_OK


def _list(args: argparse.Namespace, paths: Paths) -> int:
    _, directory = _directory(paths)
    agents = directory.list()
    if not agents:
        say("No agents yet; add one with `toolgate agents add ID`.")
        return EXIT_OK
    try:
        sizes = ControlClient(read_control_file(paths)).sizes()
    except ToolgateError as exc:
        sizes = {}
        say(f"ALL TOOLS and ON DEMAND (the size of each agent's tools/list) are read from Toolgate: {exc}")
    if args.json:
        for a in agents:
            entry = {"id": a.id, "name": a.name, "tools": a.tools.value, "has_token": a.has_token}
            result(json.dumps({**entry, "sizes": sizes.get(a.id)}))
        return EXIT_OK
    rows = [HEADERS] + [
        (
            a.id,
            a.name,
            a.tools.value,
            *(_size_cell(sizes.get(a.id, {}).get(mode.value)) for mode in ToolsMode),
            "yes" if a.has_token else "no",
        )
        for a in agents
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADERS))]
    # Within TABLE_WIDTH: the display name gives way; the id is never cut (a row runs past rather than show
    # an id that is not the real one).
    excess = sum(widths) + 2 * (len(widths) - 1) - TABLE_WIDTH
    if excess > 0:
        widths[1] = max(widths[1] - excess, len(HEADERS[1]))
    for row in rows:
        cells = [fit(cell, width) for cell, width in zip(row, widths, strict=True)]
        result("  ".join(cells).rstrip())
    return EXIT_OK


def _size_cell(size: object) -> str:
    """``52 kB ~13k tok``: a listing's size and its estimated tokens; ``-`` when not known."""
    if not isinstance(size, dict) or not isinstance(size.get("bytes"), int) or not isinstance(size.get("tokens"), int):
        return "-"
    return ListingSize(size["bytes"], size["tokens"]).short()


def _tools(args: argparse.Namespace, paths: Paths) -> int:
    _, directory = _directory(paths)
    mode = ToolsMode(args.mode)
    directory.set_tools(args.agent_id, mode)
    if mode is ToolsMode.ON_DEMAND:
        say(f"Agent {args.agent_id!r} now finds tools on demand: list_servers, get_server_tools, execute_tool.")
    else:
        say(f"Agent {args.agent_id!r} is now listed every tool it may use.")
    say("A running gateway applies it to the agent's next request.")
    return EXIT_OK


def _remove(args: argparse.Namespace, paths: Paths) -> int:
    _, directory = _directory(paths)
    directory.remove(args.agent_id)
    say(f"Removed agent {args.agent_id!r} and its token.")
    return EXIT_OK


def _directory(paths: Paths) -> tuple[SecretStore, AgentDirectory]:
    config_path = ensure_config_said(paths)
    store = open_secret_store(paths)
    return store, AgentDirectory(config_path, store, token_files=TokenFiles.of(paths))


def _explain_token(store: SecretStore) -> None:
    say(f"The token above is stored in {store.backend_name}.")
    if not store.encrypted:
        say(NOT_ENCRYPTED)
    say("It is shown only now. Give it to the agent in one of two ways:")
    say("  HTTP clients: the gateway's /mcp URL (see `toolgate serve`) with `Authorization: Bearer <token>`")
    say("  stdio clients: run `toolgate-shim --agent ID` with TOOLGATE_TOKEN=<token> in its environment")

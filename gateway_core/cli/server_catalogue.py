"""``toolgate servers catalogue`` and ``servers add NAME --catalogue ID``: the Servers panel's Catalogue….

The catalogue (``gateway_core.catalogue``) holds well-known servers as config.json entries with
``${input:ID}`` where a value is needed (a folder, a token). ``--input ID=VALUE`` gives one; a secret
input is never taken on the command line (it would stay in the shell's history): it is asked for
without echo, or read from stdin, and goes to the secret store as in ``servers add --secret-env``.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from typing import Any

from gateway_core.catalogue import CatalogueError, CatalogueItem, load_catalogue
from gateway_core.cli.output import EXIT_OK, result, say
from gateway_core.cli.table import print_table
from gateway_core.errors import ConfigError
from gateway_core.paths import Paths

HEADERS = ("ID", "TRANSPORT", "INPUTS", "WHAT IT IS")
# What an input stands for while the entry is only being checked (a secret is asked for after the checks).
CHECKING = "checking"


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``servers catalogue`` to the ``servers`` group."""
    catalogue = commands.add_parser(
        "catalogue",
        help="the well-known servers `servers add NAME --catalogue ID` adds (the Servers panel's Catalogue…)",
        description="The built-in catalogue of well-known MCP servers. Exit codes: 0 listed, 1 error.",
        epilog="example: toolgate servers catalogue && toolgate servers add fs --catalogue filesystem "
        "--input folder=~/projects",
    )
    catalogue.add_argument("--json", action="store_true", help="print one JSON object per line")
    catalogue.set_defaults(run=_list)


def item(item_id: str) -> CatalogueItem:
    """The catalogue's item ``item_id``.

    Raises:
        ConfigError: there is none of that id, or the catalogue cannot be read.
    """
    items = _items()
    found = next((entry for entry in items if entry.id == item_id), None)
    if found is None:
        ids = ", ".join(entry.id for entry in items)
        raise ConfigError([f"the catalogue has no server {item_id!r}; it has: {ids} (`toolgate servers catalogue`)"])
    return found


def catalogue_entry(
    item_id: str, given: list[str], name: str, read_secret: Callable[[str], str] | None
) -> tuple[dict[str, Any], dict[str, str]]:
    """The entry for catalogue item ``item_id`` with ``given`` (``ID=VALUE``) filled in, and its secrets.

    Args:
        item_id: the catalogue item.
        given: ``--input`` values.
        name: the server's name (its secrets are named after it).
        read_secret: asks for a secret input's value; None fills secrets with a stand-in (to check first).

    Raises:
        ConfigError: no such item, an unknown or malformed input, a secret given on the command line, or a
            required input missing.
    """
    chosen = item(item_id)
    inputs = {entry.id: entry for entry in chosen.inputs}
    values: dict[str, str] = {}
    for pair in given:
        key, sep, value = pair.partition("=")
        if not sep or key not in inputs:
            known = ", ".join(inputs) or "none"
            raise ConfigError([f"--input takes ID=VALUE with an input of {item_id!r} ({known}), found {pair!r}"])
        if inputs[key].secret:
            raise ConfigError([f"{key} is a secret: leave it out and type it when asked (or pipe it on stdin)"])
        values[key] = os.path.expanduser(value) if value.startswith("~") else value
    for entry in chosen.inputs:
        if entry.secret:
            prompt = f"{entry.label} for server {name!r} (not shown): "
            values[entry.id] = CHECKING if read_secret is None else read_secret(prompt)
    try:
        return chosen.fill(values, name)
    except CatalogueError as exc:
        missing = [f"--input {entry.id}=…" for entry in chosen.inputs if entry.required and not values.get(entry.id)]
        raise ConfigError([f"{exc} ({', '.join(missing)})"]) from exc


def _list(args: argparse.Namespace, paths: Paths) -> int:
    items = _items()
    if args.json:
        for entry in items:
            inputs = [{"id": i.id, "label": i.label, "required": i.required, "secret": i.secret} for i in entry.inputs]
            document = {"id": entry.id, "title": entry.title, "description": entry.description, "needs": entry.needs}
            result(json.dumps({**document, "homepage": entry.homepage, "entry": entry.entry, "inputs": inputs}))
        return EXIT_OK
    rows = [
        (
            entry.id,
            "stdio" if "command" in entry.entry else "remote",
            " ".join(f"{i.id}{'' if i.required else '?'}{' (secret)' if i.secret else ''}" for i in entry.inputs)
            or "-",
            entry.title,
        )
        for entry in items
    ]
    print_table(HEADERS, rows, give_way=3)
    say("Add one with `toolgate servers add NAME --catalogue ID [--input ID=VALUE ...]` (ID? is optional).")
    return EXIT_OK


def _items() -> list[CatalogueItem]:
    try:
        return load_catalogue()
    except CatalogueError as exc:
        raise ConfigError([str(exc)]) from exc

"""``toolgate secrets list|set|remove|backend``: the secrets servers use, kept in the OS keychain.

``list`` names each secret config.json refers to (``${secret:NAME}``), whether it is stored, and where
it is used; never a value. With the file fallback it also names stored secrets nothing refers to (an
OS keychain cannot list what it holds). Agents' tokens and OAuth sign-ins are kept in the same store
but are not listed: ``toolgate agents list`` and ``toolgate servers show`` tell about them.
"""

from __future__ import annotations

import argparse
import getpass
import json
import re
import sys
from typing import Any

from gateway_core.agents import TOKEN_SECRET_PREFIX
from gateway_core.cli.agents import NOT_ENCRYPTED, ensure_config_said
from gateway_core.cli.output import EXIT_OK, result, say
from gateway_core.cli.table import print_table
from gateway_core.config import SECRET_NAME_PATTERN, SecretReference, load_config, secret_references
from gateway_core.errors import SecretError
from gateway_core.paths import Paths
from gateway_core.secrets import FileSecretStore, open_secret_store

HEADERS = ("NAME", "STORED", "USED BY")
# What else the store keeps: agents' tokens and OAuth sign-ins (named by `agents list` and `servers show`).
INTERNAL = re.compile(rf"{re.escape(TOKEN_SECRET_PREFIX)}.*|oauth\..+\.(tokens|client)")


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``secrets set|remove|backend`` to the ``toolgate`` command."""
    secrets = subparsers.add_parser("secrets", help="manage the secrets servers use").add_subparsers(
        title="secrets commands", metavar="COMMAND", required=True
    )
    listing = secrets.add_parser(
        "list",
        help="the secrets config.json uses: name, stored or missing, where used (never a value)",
        description=(
            "Each secret config.json refers to as ${secret:NAME}: whether it is stored and where it is used; "
            "never its value. Exit codes: 0 listed, 1 error (e.g. the secret store cannot be read)."
        ),
        epilog="example: toolgate secrets list --json | jq -r 'select(.stored | not) | .name'",
    )
    listing.add_argument("--json", action="store_true", help="print one JSON object per line")
    listing.set_defaults(run=_list)
    set_secret = secrets.add_parser("set", help="store a secret (value read from stdin or a prompt)")
    set_secret.add_argument("name", metavar="NAME")
    set_secret.set_defaults(run=_set)
    remove_secret = secrets.add_parser("remove", help="remove a secret")
    remove_secret.add_argument("name", metavar="NAME")
    remove_secret.set_defaults(run=_remove)
    secrets.add_parser("backend", help="say where secrets are stored").set_defaults(run=_backend)


def secret_rows(paths: Paths) -> list[dict[str, Any]]:
    """Each secret: ``name``, ``stored``, ``used_by`` (JSON paths in config.json) and ``servers``; no value."""
    config = load_config(ensure_config_said(paths))
    store = open_secret_store(paths)
    used: dict[str, list[SecretReference]] = {}
    for reference in secret_references(config):
        used.setdefault(reference.name, []).append(reference)
    names = list(used)
    if isinstance(store, FileSecretStore):
        names += [name for name in store.names() if name not in used and not INTERNAL.fullmatch(name)]
    return [
        {
            "name": name,
            "stored": store.get(name) is not None,
            "used_by": [reference.json_path for reference in used.get(name, [])],
            "servers": sorted({reference.server for reference in used.get(name, [])}),
        }
        for name in names
    ]


def _list(args: argparse.Namespace, paths: Paths) -> int:
    rows = secret_rows(paths)
    if args.json:
        for row in rows:
            result(json.dumps(row))
        return EXIT_OK
    if rows:
        table = [
            (row["name"], "yes" if row["stored"] else "MISSING", ", ".join(row["used_by"]) or "(nothing uses it)")
            for row in rows
        ]
        print_table(HEADERS, table, give_way=2, wrap=True)
    else:
        say("config.json uses no secrets; `toolgate secrets set NAME` stores one, used as ${secret:NAME}.")
    missing = [row["name"] for row in rows if not row["stored"]]
    if missing:
        say(f"Missing from the secret store: {', '.join(missing)}; store each with `toolgate secrets set NAME`.")
    store = open_secret_store(paths)
    if not isinstance(store, FileSecretStore):
        say(f"Listed: the secrets config.json names ({store.backend_name} cannot list what else it holds).")
    return EXIT_OK


def _set(args: argparse.Namespace, paths: Paths) -> int:
    name: str = args.name
    _check_name(name)
    if sys.stdin.isatty():
        value = getpass.getpass(f"Value for secret {name!r} (not shown): ")
    else:
        value = sys.stdin.read().rstrip("\r\n")
    if not value:
        raise SecretError(f"no value given for secret {name!r}; type it at the prompt or pipe it on stdin")
    store = open_secret_store(paths)
    store.set(name, value)
    say(f"Stored secret {name!r} in {store.backend_name}; use it as ${{secret:{name}}} in env or headers.")
    return EXIT_OK


def _remove(args: argparse.Namespace, paths: Paths) -> int:
    name: str = args.name
    _check_name(name)
    store = open_secret_store(paths)
    if not store.delete(name):
        raise SecretError(f"there is no secret {name!r} in {store.backend_name}")
    say(f"Removed secret {name!r} from {store.backend_name}.")
    return EXIT_OK


def _backend(args: argparse.Namespace, paths: Paths) -> int:
    store = open_secret_store(paths)
    result(store.backend_name)
    say("Secrets are encrypted by the OS keychain." if store.encrypted else NOT_ENCRYPTED)
    return EXIT_OK


def _check_name(name: str) -> None:
    if not SECRET_NAME_PATTERN.fullmatch(name):
        raise SecretError(f'{name!r} is not a valid secret name: use letters, digits, "_", "." or "-"')

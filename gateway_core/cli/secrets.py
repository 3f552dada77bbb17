"""``toolgate secrets set|remove|backend``: the secrets servers use, kept in the OS keychain."""

from __future__ import annotations

import argparse
import getpass
import sys

from gateway_core.cli.agents import NOT_ENCRYPTED
from gateway_core.cli.output import EXIT_OK, result, say
from gateway_core.config import SECRET_NAME_PATTERN
from gateway_core.errors import SecretError
from gateway_core.paths import Paths
from gateway_core.secrets import open_secret_store


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``secrets set|remove|backend`` to the ``toolgate`` command."""
    secrets = subparsers.add_parser("secrets", help="manage the secrets servers use").add_subparsers(
        title="secrets commands", metavar="COMMAND", required=True
    )
    set_secret = secrets.add_parser("set", help="store a secret (value read from stdin or a prompt)")
    set_secret.add_argument("name", metavar="NAME")
    set_secret.set_defaults(run=_set)
    remove_secret = secrets.add_parser("remove", help="remove a secret")
    remove_secret.add_argument("name", metavar="NAME")
    remove_secret.set_defaults(run=_remove)
    secrets.add_parser("backend", help="say where secrets are stored").set_defaults(run=_backend)


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

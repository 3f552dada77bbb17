"""``toolgate config check|path``: check the config file, or say where it is."""

from __future__ import annotations

import argparse
from pathlib import Path

from gateway_core.cli.agents import ensure_config_said
from gateway_core.cli.output import EXIT_ERROR, EXIT_OK, result, say
from gateway_core.config import load_config, secret_references
from gateway_core.config.checks import policy_warnings
from gateway_core.errors import ConfigError
from gateway_core.paths import Paths
from gateway_core.secrets import open_secret_store


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``config check|path`` to the ``toolgate`` command."""
    config = subparsers.add_parser("config", help="check or locate the config file").add_subparsers(
        title="config commands", metavar="COMMAND", required=True
    )
    check = config.add_parser("check", help="check the config file; exit 1 on any problem")
    check.add_argument("--config", type=Path, metavar="FILE", help="config file (default: the one in TOOLGATE_HOME)")
    check.set_defaults(run=_check)
    config.add_parser("path", help="print the config file's path").set_defaults(run=_path)


def _check(args: argparse.Namespace, paths: Paths) -> int:
    path: Path = args.config if args.config is not None else ensure_config_said(paths)
    try:
        config = load_config(path)
    except ConfigError as exc:
        say(f"config has {len(exc.problems)} problem(s): {path}")
        for problem in exc.problems:
            say(f"  {problem}")
        return EXIT_ERROR
    for warning in policy_warnings(config, source=path.name):
        say(f"warning: {warning}")
    store = open_secret_store(paths)
    missing = [
        f"  {path.name}: {ref.json_path}: secret {ref.name!r} is not in the secret store; "
        f"add it with `toolgate secrets set {ref.name}`"
        for ref in secret_references(config)
        if store.get(ref.name) is None
    ]
    if missing:
        say(f"config has {len(missing)} problem(s): {path}")
        for problem in missing:
            say(problem)
        return EXIT_ERROR
    result(f"config OK: {path} ({_count(len(config.servers), 'server')}, {_count(len(config.agents), 'agent')})")
    return EXIT_OK


def _path(args: argparse.Namespace, paths: Paths) -> int:
    result(paths.config_file)
    return EXIT_OK


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"

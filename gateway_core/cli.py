"""The ``toolgate`` command: parses arguments and runs one subcommand.

Output rule: what a script may capture (a token, a path) goes to stdout alone; explanations and
errors go to stderr. Every expected failure is one sentence on stderr and exit code 1, never a traceback.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from pathlib import Path

from gateway_core import cli_approvals, cli_clients, cli_logs
from gateway_core.agents import AgentDirectory
from gateway_core.config import SECRET_NAME_PATTERN, ensure_config, load_config, secret_references
from gateway_core.config_checks import policy_warnings
from gateway_core.errors import ConfigError, SecretError, ToolgateError
from gateway_core.paths import Paths
from gateway_core.secrets import SecretStore, open_secret_store
from gateway_core.token_files import TokenFiles

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2


def main(argv: list[str] | None = None) -> int:
    """Run the ``toolgate`` command.

    Args:
        argv: the arguments after the program name; ``sys.argv[1:]`` when None.

    Returns:
        The exit code: 0 on success, 1 on an error, 2 on a usage error.
    """
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    command: Callable[[argparse.Namespace, Paths], int] | None = getattr(args, "run", None)
    if command is None:
        _say("Give a command (below); `toolgate` alone starts the tray app, `toolgate serve` the gateway without it.")
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    paths = Paths.from_env()
    try:
        return command(args, paths)
    except ConfigError as exc:
        for problem in exc.problems:
            _say(problem)
        return EXIT_ERROR
    except ToolgateError as exc:
        _say(f"Error: {exc}")
        return EXIT_ERROR
    except OSError as exc:
        _say(f"Error: {exc.strerror or exc}{f': {exc.filename}' if exc.filename else ''}")
        return EXIT_ERROR
    except KeyboardInterrupt:
        _say("Interrupted.")
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="toolgate", description="A local MCP gateway with per-agent permissions.")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the gateway without the GUI")
    serve.add_argument("--config", type=Path, metavar="FILE", help="config file (default: the one in TOOLGATE_HOME)")
    serve.add_argument("--port", type=int, metavar="N", help="port to listen on (overrides gateway.port)")
    serve.set_defaults(run=_serve)

    config = commands.add_parser("config", help="check or locate the config file").add_subparsers(
        title="config commands", metavar="COMMAND", required=True
    )
    check = config.add_parser("check", help="check the config file; exit 1 on any problem")
    check.add_argument("--config", type=Path, metavar="FILE", help="config file (default: the one in TOOLGATE_HOME)")
    check.set_defaults(run=_config_check)
    config.add_parser("path", help="print the config file's path").set_defaults(run=_config_path)

    agents = commands.add_parser("agents", help="manage the agents allowed to connect").add_subparsers(
        title="agents commands", metavar="COMMAND", required=True
    )
    add = agents.add_parser("add", help="add an agent and print its token")
    add.add_argument("agent_id", metavar="ID")
    add.add_argument("--name", help="display name (default: the id)")
    add.set_defaults(run=_agents_add)
    agents.add_parser("list", help="list the agents").set_defaults(run=_agents_list)
    remove = agents.add_parser("remove", help="remove an agent and its token")
    remove.add_argument("agent_id", metavar="ID")
    remove.set_defaults(run=_agents_remove)
    rotate = agents.add_parser("rotate", help="give an agent a new token and print it")
    rotate.add_argument("agent_id", metavar="ID")
    rotate.set_defaults(run=_agents_rotate)

    secrets = commands.add_parser("secrets", help="manage the secrets servers use").add_subparsers(
        title="secrets commands", metavar="COMMAND", required=True
    )
    set_secret = secrets.add_parser("set", help="store a secret (value read from stdin or a prompt)")
    set_secret.add_argument("name", metavar="NAME")
    set_secret.set_defaults(run=_secrets_set)
    remove_secret = secrets.add_parser("remove", help="remove a secret")
    remove_secret.add_argument("name", metavar="NAME")
    remove_secret.set_defaults(run=_secrets_remove)
    secrets.add_parser("backend", help="say where secrets are stored").set_defaults(run=_secrets_backend)

    cli_approvals.add_parser(commands)
    cli_logs.add_parser(commands)
    cli_clients.add_parser(commands)
    return parser


def _serve(args: argparse.Namespace, paths: Paths) -> int:
    from gateway_core.serve import serve

    return serve(paths, args.config, args.port)


def _config_check(args: argparse.Namespace, paths: Paths) -> int:
    path: Path = args.config if args.config is not None else _ensure_config(paths)
    try:
        config = load_config(path)
    except ConfigError as exc:
        _say(f"config has {len(exc.problems)} problem(s): {path}")
        for problem in exc.problems:
            _say(f"  {problem}")
        return EXIT_ERROR
    for warning in policy_warnings(config, source=path.name):
        _say(f"warning: {warning}")
    store = open_secret_store(paths)
    missing = [
        f"  {path.name}: {ref.json_path}: secret {ref.name!r} is not in the secret store; "
        f"add it with `toolgate secrets set {ref.name}`"
        for ref in secret_references(config)
        if store.get(ref.name) is None
    ]
    if missing:
        _say(f"config has {len(missing)} problem(s): {path}")
        for problem in missing:
            _say(problem)
        return EXIT_ERROR
    print(f"config OK: {path} ({_count(len(config.servers), 'server')}, {_count(len(config.agents), 'agent')})")
    return EXIT_OK


def _config_path(args: argparse.Namespace, paths: Paths) -> int:
    print(paths.config_file)
    return EXIT_OK


def _agents_add(args: argparse.Namespace, paths: Paths) -> int:
    store, directory = _directory(paths)
    token = directory.add(args.agent_id, args.name)
    print(token)
    _say(f"Added agent {args.agent_id!r} to {paths.config_file}.")
    _explain_token(store)
    return EXIT_OK


def _agents_rotate(args: argparse.Namespace, paths: Paths) -> int:
    store, directory = _directory(paths)
    token = directory.rotate(args.agent_id)
    print(token)
    _say(f"Agent {args.agent_id!r} has a new token; a running gateway stops accepting the old one within seconds.")
    _explain_token(store)
    return EXIT_OK


def _agents_list(args: argparse.Namespace, paths: Paths) -> int:
    _, directory = _directory(paths)
    agents = directory.list()
    if not agents:
        _say("No agents yet; add one with `toolgate agents add ID`.")
        return EXIT_OK
    rows = [("ID", "NAME", "TOKEN STORED")] + [(a.id, a.name, "yes" if a.has_token else "no") for a in agents]
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    for agent_id, name, stored in rows:
        print(f"{agent_id:<{widths[0]}}  {name:<{widths[1]}}  {stored}")
    return EXIT_OK


def _agents_remove(args: argparse.Namespace, paths: Paths) -> int:
    _, directory = _directory(paths)
    directory.remove(args.agent_id)
    _say(f"Removed agent {args.agent_id!r} and its token.")
    return EXIT_OK


def _secrets_set(args: argparse.Namespace, paths: Paths) -> int:
    name: str = args.name
    _check_secret_name(name)
    if sys.stdin.isatty():
        value = getpass.getpass(f"Value for secret {name!r} (not shown): ")
    else:
        value = sys.stdin.read().rstrip("\r\n")
    if not value:
        raise SecretError(f"no value given for secret {name!r}; type it at the prompt or pipe it on stdin")
    store = open_secret_store(paths)
    store.set(name, value)
    _say(f"Stored secret {name!r} in {store.backend_name}; use it as ${{secret:{name}}} in env or headers.")
    return EXIT_OK


def _secrets_remove(args: argparse.Namespace, paths: Paths) -> int:
    name: str = args.name
    _check_secret_name(name)
    store = open_secret_store(paths)
    if not store.delete(name):
        raise SecretError(f"there is no secret {name!r} in {store.backend_name}")
    _say(f"Removed secret {name!r} from {store.backend_name}.")
    return EXIT_OK


def _secrets_backend(args: argparse.Namespace, paths: Paths) -> int:
    store = open_secret_store(paths)
    print(store.backend_name)
    _say("Secrets are encrypted by the OS keychain." if store.encrypted else _NOT_ENCRYPTED)
    return EXIT_OK


_NOT_ENCRYPTED = "Secrets are NOT encrypted: no OS keychain is available, so they are kept in a file only you can read."


def _check_secret_name(name: str) -> None:
    if not SECRET_NAME_PATTERN.fullmatch(name):
        raise SecretError(f'{name!r} is not a valid secret name: use letters, digits, "_", "." or "-"')


def _directory(paths: Paths) -> tuple[SecretStore, AgentDirectory]:
    config_path = _ensure_config(paths)
    store = open_secret_store(paths)
    return store, AgentDirectory(config_path, store, token_files=TokenFiles.of(paths))


def _ensure_config(paths: Paths) -> Path:
    path, created = ensure_config(paths)
    if created:
        _say(f"Created a default config (no servers, no agents) at {path}.")
    return path


def _explain_token(store: SecretStore) -> None:
    _say(f"The token above is stored in {store.backend_name}.")
    if not store.encrypted:
        _say(_NOT_ENCRYPTED)
    _say("It is shown only now. Give it to the agent in one of two ways:")
    _say("  HTTP clients: the gateway's /mcp URL (see `toolgate serve`) with `Authorization: Bearer <token>`")
    _say("  stdio clients: run `toolgate-shim --agent ID` with TOOLGATE_TOKEN=<token> in its environment")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _say(message: str) -> None:
    print(message, file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())

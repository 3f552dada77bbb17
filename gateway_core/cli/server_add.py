"""``toolgate servers add|remove``: add a server from a command line, a URL or a README's ``mcpServers`` entry.

The entry is built here, checked as a whole, then its secrets are stored and config.json is written
through the same checked edit the GUI uses (``gateway_core.config.edit.put_server``); a running
gateway applies it live (its config watcher). Secret values never reach config.json: ``--secret-env``
and ``--secret-header`` read them from a prompt without echo (or stdin), and values of secret-looking
names given in clear (``--env GITHUB_TOKEN=…``, a pasted entry) are moved to the secret store too.
"""

from __future__ import annotations

import argparse
import getpass
import json
import re
import sys
from collections.abc import Callable
from typing import Any

from gateway_core.cli.agents import ensure_config_said
from gateway_core.cli.applied import tell_applied
from gateway_core.cli.output import EXIT_OK, say
from gateway_core.cli.server_catalogue import catalogue_entry
from gateway_core.clients.found import read_entry
from gateway_core.clients.importer import is_secret_name
from gateway_core.config import Config, load_config, secret_name
from gateway_core.config.edit import check_server_entry, put_server, remove_server
from gateway_core.errors import ConfigError, SecretError
from gateway_core.paths import Paths
from gateway_core.secrets import SecretStore, open_secret_store

ADD_USAGE = """toolgate servers add NAME [options] -- COMMAND [ARGS ...]
       toolgate servers add NAME [options] --url URL [--sse]
       toolgate servers add NAME [options] --json ENTRY
       toolgate servers add NAME [options] --catalogue ID [--input ID=VALUE ...]"""
ADD_EPILOG = """examples:
  toolgate servers add time -- uvx mcp-server-time --local-timezone UTC
  toolgate servers add gh --url https://api.githubcopilot.com/mcp/ \\
      --secret-header Authorization
  toolgate servers add memory --json \\
    '{"command": "npx", "args": ["-y", "@modelcontextprotocol/server-memory"]}'
  echo "$TOKEN" | toolgate servers add github --secret-env GITHUB_TOKEN \\
      -- npx -y @modelcontextprotocol/server-github
  toolgate servers add fs --catalogue filesystem --input folder=~/projects

Everything after -- is the command and its arguments, so options go before it.
--json takes the entry a server's README publishes: the entry itself, or an
"mcpServers" (or "servers") block holding one server. --secret-env and
--secret-header ask for each value without showing it (one line each from
stdin when it is not a terminal); config.json gets only ${secret:NAME.KEY}.
Values of --env, --header or --json whose names look secret (token, key,
password, authorization) go to the secret store too.

Exit codes: 0 added, 1 error (config.json is then unchanged), 2 bad usage."""
# Toolgate's own keys, kept when a pasted entry has them; READ_KEYS are the client keys read_entry takes.
TOOLGATE_KEYS = ("enabled", "prefix", "timeout_s", "isolation", "idle_timeout_s")
READ_KEYS = frozenset(
    {"command", "args", "env", "cwd", "url", "serverUrl", "httpUrl", "type", "transport", "headers", "http_headers"}
)
SECRET_REFERENCE = re.compile(r"\$\{secret:([A-Za-z0-9_.-]+)\}")


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``servers add`` and ``servers remove`` to the ``servers`` group."""
    add = commands.add_parser(
        "add",
        help="add a server: -- COMMAND [ARGS...], --url URL, or --json ENTRY (applied live)",
        usage=ADD_USAGE,
        epilog=ADD_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add.add_argument("name", metavar="NAME", help="the server's name (its tools are listed as NAME__tool)")
    add.add_argument("--url", metavar="URL", help="a remote server's address (Streamable HTTP)")
    add.add_argument("--sse", action="store_true", help="the URL is a legacy SSE endpoint")
    add.add_argument("--json", dest="entry", metavar="ENTRY", help="the server's entry as JSON (see below)")
    add.add_argument("--env", action="append", default=[], metavar="K=V", help="an environment variable (stdio)")
    add.add_argument("--header", action="append", default=[], metavar="K=V", help="an HTTP header (remote)")
    add.add_argument(
        "--secret-env", action="append", default=[], metavar="K", help="an environment variable kept as a secret"
    )
    add.add_argument(
        "--secret-header", action="append", default=[], metavar="K", help="an HTTP header kept as a secret"
    )
    add.add_argument("--cwd", metavar="DIR", help="the folder a stdio server starts in")
    add.add_argument("--catalogue", metavar="ID", help="a well-known server (`toolgate servers catalogue`)")
    add.add_argument(
        "--input", dest="inputs", action="append", default=[], metavar="ID=VALUE", help="a value --catalogue asks for"
    )
    add.set_defaults(run=_add, takes_command=True)
    remove = commands.add_parser(
        "remove",
        help="remove a server (a running gateway stops it at once)",
        description="Remove a server from config.json. Exit codes: 0 removed, 1 error (e.g. no such server).",
        epilog="example: toolgate servers remove github",
    )
    remove.add_argument("name", metavar="NAME")
    remove.set_defaults(run=_remove)


def build_entry(args: argparse.Namespace) -> dict[str, Any]:
    """The config.json entry ``servers add`` was given, before its secrets are asked for.

    Raises:
        ConfigError: the ways of giving the server are missing or mixed, or a ``K=V`` or the JSON is malformed.
    """
    command: list[str] = args.command_line
    ways = (("-- COMMAND", command), ("--url", args.url), ("--json", args.entry), ("--catalogue", args.catalogue))
    given = [way for way, present in ways if present]
    if len(given) != 1:
        found = " and ".join(given) if given else "none"
        raise ConfigError(
            [
                "give the server one way: -- COMMAND [ARGS...], --url URL, --json ENTRY or --catalogue ID "
                f"(found {found})"
            ]
        )
    if args.inputs and args.catalogue is None:
        raise ConfigError(["--input goes with --catalogue ID"])
    if args.catalogue is not None:
        entry, _ = catalogue_entry(args.catalogue, args.inputs, args.name, None)
    elif args.entry is not None:
        entry = parse_json_entry(args.entry)
    elif args.url is not None:
        entry = {"url": args.url}
    else:
        entry = {"command": command[0], "args": command[1:]}
    remote = "url" in entry
    if args.sse:
        if not remote:
            raise ConfigError(["--sse goes with --url (a remote server)"])
        entry["type"] = "sse"
    if remote and (args.env or args.secret_env or args.cwd):
        raise ConfigError(["--env, --secret-env and --cwd are for stdio servers; a remote server takes --header"])
    if not remote and (args.header or args.secret_header):
        raise ConfigError(["--header and --secret-header are for remote servers; a stdio server takes --env"])
    block = "headers" if remote else "env"
    values = {**entry.get(block, {}), **pairs(args.header if remote else args.env, f"--{block.rstrip('s')}")}
    if values:
        entry[block] = values
    if args.cwd is not None:
        entry["cwd"] = args.cwd
    return entry


def parse_json_entry(text: str) -> dict[str, Any]:
    """The Toolgate entry for a pasted ``mcpServers`` entry, or for a block holding exactly one.

    Accepts the shapes clients use (``gateway_core.clients.found.read_entry``).

    Raises:
        ConfigError: the text is not JSON or holds no single server entry.
    """
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise ConfigError([f"--json: not JSON ({exc})"]) from exc
    for key in ("mcpServers", "servers", "mcp_servers"):
        if isinstance(raw, dict) and isinstance(raw.get(key), dict):
            raw = raw[key]
    if isinstance(raw, dict) and len(raw) == 1 and read_entry(raw) is None:
        raw = next(iter(raw.values()))  # {"github": {...}}
    fields = read_entry(raw)
    if fields is None:
        raise ConfigError(
            ['--json: expected one server entry, such as {"command": "npx", "args": [...]} or {"url": "https://..."}']
        )
    entry: dict[str, Any]
    if fields["transport"] == "stdio":
        entry = {"command": fields["command"], "args": list(fields["args"])}
        if fields["env"]:
            entry["env"] = dict(fields["env"])
        if isinstance(raw.get("cwd"), str):
            entry["cwd"] = raw["cwd"]
    else:
        entry = {"url": fields["url"], **({"type": "sse"} if fields["transport"] == "sse" else {})}
        if fields["headers"]:
            entry["headers"] = dict(fields["headers"])
        if fields.get("via"):
            say(f"--json: an {fields['via']} bridge: added as the remote server {fields['url']} it reaches.")
        if fields.get("oauth"):
            say('--json: its OAuth client settings were left out; add an "oauth" block by hand if it needs one.')
    entry.update({key: raw[key] for key in TOOLGATE_KEYS if key in raw})
    ignored = sorted(set(raw) - READ_KEYS - set(TOOLGATE_KEYS))
    if ignored:
        say(f"--json: left out what Toolgate does not use: {', '.join(ignored)}.")
    return entry


def pairs(items: list[str], option: str) -> dict[str, str]:
    """``KEY=VALUE`` items as a dict.

    Raises:
        ConfigError: an item has no ``=`` or no key.
    """
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError([f"{option} takes KEY=VALUE, found {item!r}"])
        pairs[key] = value
    return pairs


def _add(args: argparse.Namespace, paths: Paths) -> int:
    entry = build_entry(args)
    block = "headers" if "url" in entry else "env"
    prompted: list[str] = args.secret_header if block == "headers" else args.secret_env
    config_path = ensure_config_said(paths)
    problems = check_server_entry(args.name, entry)
    if args.name in load_config(config_path).servers:
        problems.setdefault("name", f"a server named {args.name!r} already exists; pick another name")
    if problems:
        raise ConfigError(
            [f"{field or 'entry'}: {problem}" if field != "name" else problem for field, problem in problems.items()]
        )
    catalogued: dict[str, str] = {}
    if args.catalogue is not None:  # checked with stand-ins (the entry holds only references): now ask
        _, catalogued = catalogue_entry(args.catalogue, args.inputs, args.name, _secret_reader())
    entry, stored = move_secrets(args.name, entry, block, prompted)
    stored = {**catalogued, **stored}
    store = open_secret_store(paths)
    config = write_with_secrets(store, stored, lambda: put_server(config_path, args.name, entry))
    where = f"; its secrets are in {store.backend_name} ({', '.join(stored)})" if stored else ""
    say(f"Added server {args.name!r} to {config_path}{where}.")
    tell_applied(paths, config, args.name)
    return EXIT_OK


def move_secrets(
    server: str, entry: dict[str, Any], block: str, prompted: list[str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """``entry`` with its secret values replaced by references, and the secrets to store (name → value).

    A value is a secret when its key is in ``prompted`` (asked for now, without echo) or its name looks
    secret and it is given in clear (not already a ``${secret:…}``).

    Raises:
        SecretError: a prompted value was not given.
    """
    values: dict[str, str] = dict(entry.get(block, {}))
    secrets: dict[str, str] = {}
    for key, value in values.items():
        if is_secret_name(key) and value and "${secret:" not in value and key not in prompted:
            secrets[key] = value
            say(f"{key} looks like a secret: its value goes to the secret store, not to config.json.")
    read = _secret_reader()
    for key in prompted:
        secrets[key] = read(f"Value of {block.rstrip('s')} {key} for server {server!r} (not shown): ")
    stored = {secret_name(server, key): value for key, value in secrets.items()}
    entry = dict(entry)
    entry[block] = {**values, **{key: f"${{secret:{secret_name(server, key)}}}" for key in secrets}}
    if not entry[block]:
        del entry[block]
    return entry, stored


def write_with_secrets(store: SecretStore, stored: dict[str, str], write: Callable[[], Config]) -> Config:
    """Store ``stored`` (name → value), then ``write`` config.json; a refused write puts the store back."""
    earlier = {name: store.get(name) for name in stored}  # kept if this write fails
    for name, value in stored.items():
        store.set(name, value)
    try:
        return write()
    except ConfigError:
        for name, before in earlier.items():
            if before is None:
                store.delete(name)
            else:
                store.set(name, before)
        raise


def _secret_reader() -> Callable[[str], str]:
    interactive = sys.stdin.isatty()

    def read(prompt: str) -> str:
        value = getpass.getpass(prompt) if interactive else sys.stdin.readline().rstrip("\r\n")
        if not value:
            raise SecretError(f"no value given ({prompt.split(' (')[0].lower()}); type it at the prompt or pipe it")
        return value

    return read


def _remove(args: argparse.Namespace, paths: Paths) -> int:
    config_path = ensure_config_said(paths)
    entry = load_config(config_path).servers.get(args.name)
    config = remove_server(config_path, args.name)
    say(f"Removed server {args.name!r} from {config_path}.")
    kept = (
        sorted({name for value in (entry.env | entry.headers).values() for name in SECRET_REFERENCE.findall(value)})
        if entry
        else []
    )
    if kept:
        say(f"Its secrets stay in the secret store ({', '.join(kept)}); `toolgate secrets remove NAME` removes one.")
    tell_applied(paths, config)
    return EXIT_OK

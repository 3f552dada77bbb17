"""``toolgate servers edit NAME [options]``: change an existing server, as the GUI's edit form does.

Each option changes one thing of the entry as config.json holds it; everything not named stays as it
is (``${secret:…}`` references, an ``oauth`` block). Giving a command to a remote server, or a URL to a
stdio server, changes its transport, and what only the old transport used is dropped (and said). The
result is checked as a whole and written through the checked edit the GUI uses
(``gateway_core.config.edit.put_server``); a running gateway applies it live, restarting the server.
New secret values go to the secret store as in ``servers add``; when only a secret's value changed, the
server is restarted so it reads the new one.
"""

from __future__ import annotations

import argparse
from typing import Any

from gateway_core.cli.agents import ensure_config_said
from gateway_core.cli.applied import tell_applied
from gateway_core.cli.control_client import ControlClient
from gateway_core.cli.output import ERROR_PREFIX, EXIT_OK, EXIT_USAGE, fail, say
from gateway_core.cli.server_add import SECRET_REFERENCE, move_secrets, pairs, write_with_secrets
from gateway_core.config import read_raw_config
from gateway_core.config.edit import check_server_entry, put_server
from gateway_core.control_file import ControlError, control_file_path, read_control_file
from gateway_core.errors import ConfigError
from gateway_core.paths import Paths
from gateway_core.secrets import open_secret_store

EDIT_USAGE = "toolgate servers edit NAME [options] [-- COMMAND [ARGS ...]]"
EDIT_EPILOG = """examples:
  toolgate servers edit github --env GITHUB_HOST=ghe.example.com --timeout 120
  toolgate servers edit github --secret-env GITHUB_TOKEN   # asks for the value
  toolgate servers edit time -- uvx mcp-server-time --local-timezone UTC
  toolgate servers edit linear --rename linear2 --url https://mcp.linear.app/mcp
  toolgate servers edit files --isolation per_agent --reset prefix

Only what an option names changes; the rest of the entry stays as it is.
Everything after -- is the new command and its arguments (options go before it);
--command changes the command alone and --arg (repeated) replaces the arguments.
A command given to a remote server, or --url given to a stdio server, changes
its transport: what only the old one used (arguments, env, cwd or headers) goes.
--reset FIELD puts a field back to its default (args, cwd, prefix, timeout,
isolation, idle-timeout). --secret-env and --secret-header ask for the value
without showing it (one line each from stdin when it is not a terminal).

Exit codes: 0 changed, 1 error (config.json is then unchanged), 2 bad usage."""
# --reset's names for the entry's keys.
RESETTABLE = {
    "args": "args",
    "cwd": "cwd",
    "prefix": "prefix",
    "timeout": "timeout_s",
    "isolation": "isolation",
    "idle-timeout": "idle_timeout_s",
}
STDIO_ONLY = ("command", "args", "env", "cwd")
ORDER = ("command", "args", "env", "cwd", "url", "type", "headers", "oauth")
REMOTE_ONLY = ("url", "headers", "oauth")


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``servers edit`` to the ``servers`` group."""
    edit = commands.add_parser(
        "edit",
        help="change a server's command, arguments, env, URL, headers, timeout… (applied live)",
        usage=EDIT_USAGE,
        epilog=EDIT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    edit.add_argument("name", metavar="NAME", help="the server to change")
    edit.add_argument("--rename", metavar="NEW", help="give the server a new name (its rules keep the old one)")
    edit.add_argument("--command", metavar="COMMAND", help="a new command, keeping the arguments (stdio)")
    edit.add_argument("--arg", action="append", metavar="ARG", help="the arguments, replaced (repeat for each)")
    edit.add_argument("--cwd", metavar="DIR", help="the folder the command starts in (stdio)")
    edit.add_argument("--env", action="append", default=[], metavar="K=V", help="set an environment variable")
    edit.add_argument("--unset-env", action="append", default=[], metavar="K", help="remove an environment variable")
    edit.add_argument(
        "--secret-env", action="append", default=[], metavar="K", help="set an environment variable kept as a secret"
    )
    edit.add_argument("--url", metavar="URL", help="a new address (a remote server)")
    transport = edit.add_mutually_exclusive_group()
    transport.add_argument("--sse", action="store_true", help="the URL is a legacy SSE endpoint")
    transport.add_argument("--http", action="store_true", help="the URL is Streamable HTTP (the default)")
    edit.add_argument("--header", action="append", default=[], metavar="K=V", help="set an HTTP header")
    edit.add_argument("--unset-header", action="append", default=[], metavar="K", help="remove an HTTP header")
    edit.add_argument(
        "--secret-header", action="append", default=[], metavar="K", help="set an HTTP header kept as a secret"
    )
    edit.add_argument("--prefix", metavar="PREFIX", help='what its tool names start with ("" for nothing)')
    edit.add_argument("--timeout", type=float, metavar="SECONDS", help="how long a call may take")
    edit.add_argument(
        "--isolation", choices=("shared", "per_agent"), help="per_agent: a separate process for each agent (stdio)"
    )
    edit.add_argument("--idle-timeout", type=float, metavar="SECONDS", help="when an agent's own process stops")
    enabled = edit.add_mutually_exclusive_group()
    enabled.add_argument("--enable", dest="enabled", action="store_const", const=True, help="enable it")
    enabled.add_argument("--disable", dest="enabled", action="store_const", const=False, help="disable it")
    edit.add_argument(
        "--reset", action="append", default=[], choices=tuple(RESETTABLE), metavar="FIELD", help="back to the default"
    )
    edit.set_defaults(run=_edit, takes_command=True)


def edited_entry(old: dict[str, Any], args: argparse.Namespace) -> tuple[dict[str, Any], list[str]]:
    """The entry ``old`` becomes with ``args``' changes (secrets not yet moved), and what was dropped.

    Raises:
        ConfigError: the options contradict each other or a ``K=V`` is malformed.
    """
    entry = dict(old)
    command_line: list[str] = args.command_line
    if command_line and args.command is not None:
        raise ConfigError(["give the command once: --command COMMAND or -- COMMAND [ARGS...]"])
    if command_line and args.arg is not None:
        raise ConfigError(["give the arguments once: --arg ARG... or -- COMMAND [ARGS...]"])
    new_command = command_line[0] if command_line else args.command
    if new_command is not None and args.url is not None:
        raise ConfigError(["give a command (stdio) or --url (remote), not both"])
    dropped: list[str] = []
    if new_command is not None:
        dropped = [key for key in (*REMOTE_ONLY, "type") if entry.pop(key, None) is not None and key != "type"]
        entry["command"] = new_command
        if command_line:
            entry["args"] = command_line[1:]
    if args.url is not None:
        dropped = [key for key in STDIO_ONLY if entry.pop(key, None) is not None and key != "command"]
        if entry.get("type") == "stdio":
            del entry["type"]
        entry["url"] = args.url
    if args.arg is not None:
        entry["args"] = list(args.arg)
    if args.sse or args.http:
        if "url" not in entry:
            raise ConfigError([f"--{'sse' if args.sse else 'http'} is for a remote server (one with a URL)"])
        if args.sse:
            entry["type"] = "sse"
        else:
            entry.pop("type", None)
    remote = "url" in entry
    block, other = ("headers", "env") if remote else ("env", "headers")
    given = {
        "env": (args.env, args.unset_env, args.secret_env),
        "headers": (args.header, args.unset_header, args.secret_header),
    }
    if any(given[other]):
        raise ConfigError(
            ["--header, --unset-header and --secret-header are for remote servers; a stdio server takes --env"]
            if other == "headers"
            else ["--env, --unset-env and --secret-env are for stdio servers; a remote server takes --header"]
        )
    if remote and args.cwd is not None:
        raise ConfigError(["--cwd is for stdio servers; a remote server has no folder"])
    values = dict(entry.get(block) or {})
    for key in given[block][1]:
        if values.pop(key, None) is None:
            raise ConfigError([f"server has no {'variable' if block == 'env' else 'header'} {key!r} to unset"])
    values.update(pairs(given[block][0], f"--{block.rstrip('s')}"))
    if values:
        entry[block] = values
    else:
        entry.pop(block, None)
    for key, value in (
        ("cwd", args.cwd),
        ("prefix", args.prefix),
        ("timeout_s", args.timeout),
        ("isolation", args.isolation),
        ("idle_timeout_s", args.idle_timeout),
    ):
        if value is not None:
            entry[key] = value
    if args.enabled is not None:
        if args.enabled:
            entry.pop("enabled", None)
        else:
            entry["enabled"] = False
    for field in args.reset:
        entry.pop(RESETTABLE[field], None)
    # The transport's keys first, as `servers add` writes them; the rest in the order they had.
    first = [key for key in ORDER if key in entry]
    return {key: entry[key] for key in (*first, *(key for key in entry if key not in ORDER))}, dropped


def _edit(args: argparse.Namespace, paths: Paths) -> int:
    changes = [
        args.command_line,
        args.rename,
        args.command,
        args.arg,
        args.cwd,
        args.env,
        args.unset_env,
        args.secret_env,
        args.url,
        args.sse,
        args.http,
        args.header,
        args.unset_header,
        args.secret_header,
        args.prefix,
        args.timeout,
        args.isolation,
        args.idle_timeout,
        args.enabled,
        args.reset,
    ]
    if all(change is None or change == [] or change is False for change in changes):
        return _usage(f"nothing to change; say what, e.g. `toolgate servers edit {args.name} --timeout 120`")
    config_path = ensure_config_said(paths)
    servers = read_raw_config(config_path).get("servers")
    old = servers.get(args.name) if isinstance(servers, dict) else None
    if not isinstance(old, dict):
        return fail(f"there is no server {args.name!r}; `toolgate servers list` shows the servers")
    name = args.rename or args.name
    entry, dropped = edited_entry(old, args)
    problems = check_server_entry(name, entry)
    if name != args.name and isinstance(servers, dict) and name in servers:
        problems.setdefault("name", f"a server named {name!r} already exists; pick another name")
    if problems:
        raise ConfigError(
            [f"{field or 'entry'}: {problem}" if field != "name" else problem for field, problem in problems.items()]
        )
    block = "headers" if "url" in entry else "env"
    fresh = {key: value for key, value in (entry.get(block) or {}).items() if (old.get(block) or {}).get(key) != value}
    prompted: list[str] = args.secret_header if block == "headers" else args.secret_env
    moved, stored = move_secrets(name, {block: fresh}, block, prompted)
    entry[block] = {**(entry.get(block) or {}), **moved.get(block, {})}
    if not entry[block]:
        del entry[block]
    store = open_secret_store(paths)
    config = write_with_secrets(store, stored, lambda: put_server(config_path, name, entry, replacing=args.name))
    renamed = f" (now {name!r})" if name != args.name else ""
    where = f"; its new secrets are in {store.backend_name} ({', '.join(stored)})" if stored else ""
    say(f"Changed server {args.name!r}{renamed} in {config_path}{where}.")
    if dropped:
        kind = "remote" if "url" in entry else "stdio"
        say(f"It is now a {kind} server; what only the old transport used was dropped: {', '.join(dropped)}.")
    left = sorted(set(_references(old)) - set(_references(entry)))
    if left:
        say(f"Secrets it no longer uses stay in the secret store ({', '.join(left)}); `toolgate secrets remove NAME`.")
    if name != args.name and _named_in_rules(read_raw_config(config_path), args.name):
        say(f"Agents' rules naming {args.name!r} stay as they are; `toolgate agents rules AGENT` shows them.")
    applied = tell_applied(paths, config, name)
    if applied and stored and entry == old and name == args.name:
        _restart(paths, name)
    return EXIT_OK


def _restart(paths: Paths, name: str) -> None:
    """Restart ``name`` in the running gateway: its entry is unchanged, but a secret it reads at start is new."""
    if not control_file_path(paths).exists():
        return
    try:
        ControlClient(read_control_file(paths)).restart_server(name)
    except ControlError as exc:
        say(f"Restart it to use the new value: `toolgate servers restart {name}` ({exc}).")
        return
    say(f"Server {name!r} restarts to read its new secret.")


def _named_in_rules(data: dict[str, Any], server: str) -> bool:
    agents = data.get("agents")
    entries = agents.values() if isinstance(agents, dict) else []
    rules = [rule for entry in entries if isinstance(entry, dict) for rule in entry.get("rules") or []]
    return any(isinstance(rule, dict) and str(rule.get("match", "")).split("/")[0] == server for rule in rules)


def _references(entry: dict[str, Any]) -> list[str]:
    values = [*(entry.get("env") or {}).values(), *(entry.get("headers") or {}).values()]
    return [name for value in values if isinstance(value, str) for name in SECRET_REFERENCE.findall(value)]


def _usage(message: str) -> int:
    say(f"{ERROR_PREFIX}{message}")
    return EXIT_USAGE

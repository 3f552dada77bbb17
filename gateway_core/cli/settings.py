"""``toolgate settings [list]|get|set|unset``: the gateway settings the Settings panel changes, and the rest of them.

The keys are config.json's ``gateway`` and ``audit`` blocks (``gateway.port``, ``audit.retention_days``…;
a key unique in both blocks may be given without its block). ``set`` and ``unset`` go through the
checked config edit (``gateway_core.config.edit.change_settings``): a value the configuration refuses
leaves config.json as it was. A running gateway applies most at once; ``gateway.host``,
``gateway.port`` and the ``audit`` block when Toolgate restarts, and the commands say which.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from pydantic import BaseModel

from gateway_core.cli.agents import ensure_config_said
from gateway_core.cli.applied import tell_applied
from gateway_core.cli.output import EXIT_OK, printable, result, say
from gateway_core.cli.table import print_table
from gateway_core.clients.service import Clients
from gateway_core.config import AuditSettings, GatewaySettings, load_config
from gateway_core.config.edit import change_settings
from gateway_core.control_file import control_file_path
from gateway_core.errors import ConfigError, ToolgateError
from gateway_core.paths import Paths

BLOCKS: dict[str, type[BaseModel]] = {"gateway": GatewaySettings, "audit": AuditSettings}
# Settings read only when Toolgate starts; every other one applies to the next request.
ON_RESTART = frozenset({"gateway.host", "gateway.port", "audit.enabled", "audit.retention_days", "audit.max_size_mb"})
NOW, RESTART = "now", "on restart"
HEADERS = ("KEY", "VALUE", "DEFAULT", "APPLIES")
TRUE, FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")
NONE_WORDS = ("none", "null")
EXIT_CODES = "Exit codes: 0 done, 1 error (config.json is then unchanged), 2 bad usage."
SET_EPILOG = """examples:
  toolgate settings set port 47801
  toolgate settings set allowed_origins http://localhost:3000 https://app.test
  toolgate settings set audit.retention_days 90
  toolgate settings set max_request_body_mb none

A list (allowed_origins) takes every value at once; `none` clears an optional
number. `toolgate settings` lists the keys with their values and defaults.
gateway.host, gateway.port and audit.* apply when Toolgate restarts; the rest
at once.

Exit codes: 0 done, 1 error (config.json is then unchanged), 2 bad usage."""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``settings list|get|set|unset`` to the ``toolgate`` command."""
    settings = subparsers.add_parser(
        "settings",
        help="show or change the gateway settings (port, origins, approval timeout, audit retention…)",
        description=f"The gateway settings in config.json. {EXIT_CODES}",
        epilog="example: toolgate settings set approval_timeout_s 300",
    )
    settings.add_argument("--json", action="store_true", help="with no command: one JSON object per key and line")
    settings.set_defaults(run=_list)
    commands = settings.add_subparsers(title="settings commands", metavar="COMMAND")
    listing = commands.add_parser(
        "list",
        help="every setting with its value, its default and when a change applies (the default command)",
        description=f"Every setting with its value, its default and when a change applies. {EXIT_CODES}",
        epilog="example: toolgate settings list --json | jq -r 'select(.key == \"gateway.port\") | .value'",
    )
    listing.add_argument("--json", action="store_true", help="print one JSON object per key and line")
    listing.set_defaults(run=_list)
    get = commands.add_parser(
        "get",
        help="print one setting's value (JSON)",
        description=f"Print one setting's value as JSON, alone on stdout. {EXIT_CODES}",
        epilog="example: toolgate settings get port",
    )
    get.add_argument("key", metavar="KEY", choices=_key_choices())
    get.set_defaults(run=_get)
    change = commands.add_parser(
        "set",
        help="change one setting (through the checked config edit)",
        usage="toolgate settings set KEY VALUE [VALUE ...]",
        description="Change one setting in config.json.",
        epilog=SET_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    change.add_argument("key", metavar="KEY", choices=_key_choices())
    change.add_argument("values", metavar="VALUE", nargs="+")
    change.set_defaults(run=_set)
    unset = commands.add_parser(
        "unset",
        help="put a setting back to its default",
        description=f"Remove a setting from config.json, so its default applies. {EXIT_CODES}",
        epilog="example: toolgate settings unset approval_timeout_s",
    )
    unset.add_argument("key", metavar="KEY", choices=_key_choices())
    unset.set_defaults(run=_unset)


def full_key(key: str) -> str:
    """``key`` with its block (``port`` → ``gateway.port``)."""
    if "." in key:
        return key
    return next(f"{block}.{key}" for block, model in BLOCKS.items() if key in model.model_fields)


def parse_value(key: str, values: list[str]) -> Any:
    """The JSON value ``values`` (as typed) stand for, for setting ``key``.

    Raises:
        ConfigError: the words cannot be such a value (a number that is not one, two values for one).
    """
    block, name = key.split(".", 1)
    default = BLOCKS[block].model_fields[name].default
    annotation = str(BLOCKS[block].model_fields[name].annotation)
    if "tuple" in annotation:
        return [] if values == [""] else list(values)
    if len(values) != 1:
        raise ConfigError([f"{key} takes one value, found {len(values)}: {' '.join(values)}"])
    word = values[0]
    if "None" in annotation and word.lower() in NONE_WORDS:
        return None
    if isinstance(default, bool):
        if word.lower() in TRUE + FALSE:
            return word.lower() in TRUE
        raise ConfigError([f"{key} takes true or false, found {word!r}"])
    if annotation == "int" or isinstance(default, int):
        try:
            return int(word)
        except ValueError:
            raise ConfigError([f"{key} takes a whole number, found {word!r}"]) from None
    if "float" in annotation:
        try:
            return float(word)
        except ValueError:
            raise ConfigError([f"{key} takes a number, found {word!r}"]) from None
    return word


def settings_rows(paths: Paths) -> list[dict[str, Any]]:
    """Every setting: ``key``, ``value`` (config.json's, or the default), ``default``, ``applies``."""
    config = load_config(ensure_config_said(paths))
    rows = []
    for block, model in BLOCKS.items():
        current = getattr(config, block)
        for name, field in model.model_fields.items():
            key = f"{block}.{name}"
            rows.append(
                {
                    "key": key,
                    "value": _json(getattr(current, name)),
                    "default": _json(field.default),
                    "applies": RESTART if key in ON_RESTART else NOW,
                }
            )
    return rows


def _list(args: argparse.Namespace, paths: Paths) -> int:
    rows = settings_rows(paths)
    if args.json:
        for row in rows:
            result(json.dumps(row))
        return EXIT_OK
    print_table(HEADERS, [(r["key"], _text(r["value"]), _text(r["default"]), r["applies"]) for r in rows], give_way=1)
    return EXIT_OK


def _get(args: argparse.Namespace, paths: Paths) -> int:
    key = full_key(args.key)
    value = next(row["value"] for row in settings_rows(paths) if row["key"] == key)
    result(json.dumps(value))
    return EXIT_OK


def _set(args: argparse.Namespace, paths: Paths) -> int:
    key = full_key(args.key)
    block, name = key.split(".", 1)
    value = parse_value(key, args.values)
    config_path = ensure_config_said(paths)
    old = getattr(load_config(config_path), block)
    config = change_settings(config_path, block, {name: value})
    say(f"{key} is {_text(_json(getattr(getattr(config, block), name)))} in {config_path}.")
    _tell(paths, config, key)
    if key == "gateway.port" and old.port != value:
        _warn_connected(paths, value)
    return EXIT_OK


def _unset(args: argparse.Namespace, paths: Paths) -> int:
    key = full_key(args.key)
    block, name = key.split(".", 1)
    config_path = ensure_config_said(paths)
    old = getattr(load_config(config_path), block)
    config = change_settings(config_path, block, unset=[name])
    new = getattr(getattr(config, block), name)
    say(f"{key} is back to its default, {_text(_json(new))}, in {config_path}.")
    _tell(paths, config, key)
    if key == "gateway.port" and old.port != new:
        _warn_connected(paths, new)
    return EXIT_OK


def _tell(paths: Paths, config: Any, key: str) -> None:
    if key in ON_RESTART:
        running = " (the running gateway keeps the old value until then)" if control_file_path(paths).exists() else ""
        say(f"It takes effect when Toolgate restarts{running}.")
        return
    tell_applied(paths, config)


def _warn_connected(paths: Paths, port: int) -> None:
    """Name the IDEs whose config still points at the old port, as the Settings panel does."""
    try:
        connected = sorted({item.file.client.name for item in Clients(paths).installed() if item.connected})
    except (OSError, ToolgateError, ValueError):
        return
    if connected:
        them = "it" if len(connected) == 1 else "them"
        say(
            f"{', '.join(connected)} {'is' if len(connected) == 1 else 'are'} connected to the old port. Once "
            f"Toolgate restarts on {port or 'a free port'}, connect {them} again (`toolgate connect CLIENT`) "
            "so HTTP entries use the new port; toolgate-shim entries find it by themselves."
        )


def _key_choices() -> list[str]:
    keys = [f"{block}.{name}" for block, model in BLOCKS.items() for name in model.model_fields]
    short = [key.split(".", 1)[1] for key in keys]
    return keys + [name for name in short if short.count(name) == 1]


def _json(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _text(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return " ".join(printable(str(item)) for item in value) if value else "(none)"
    if isinstance(value, float) and value.is_integer():
        return f"{value:g}"
    return printable(str(value))

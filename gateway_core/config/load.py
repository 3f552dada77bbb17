"""Reading and checking config.json: its text to a ``Config``, or every problem as one sentence each.

Problems name where they are (``servers.github.env.TOKEN``), what was expected and what was found
(secret-looking values never in clear), and suggest the key that was probably meant.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import UnionType
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from gateway_core.config.model import Config
from gateway_core.errors import ConfigError

# Server names become tool-name prefixes (MCP names: up to 128 of [A-Za-z0-9_.-]); agent ids share the rule.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,47}")
NAME_RULE = 'expected 1 to 48 letters, digits, "_", "." or "-", starting with a letter or digit'
SECRET_NAME_PATTERN = re.compile(r"[A-Za-z0-9_.-]+")
SECRET_REFERENCE = re.compile(r"\$\{secret:([A-Za-z0-9_.-]+)\}")
_NOT_IN_SECRET_NAMES = re.compile(r"[^A-Za-z0-9_.-]")


def secret_name(server: str, key: str) -> str:
    """The secret store name for ``server``'s value ``key``: ``<server>.<KEY>``, other characters as ``_``."""
    return _NOT_IN_SECRET_NAMES.sub("_", f"{server}.{key}")


# Anything that looks like an attempted reference once the valid ones are removed: "${secret:}",
# "${secrt:X}", "${SECRET:X}", "${secret}", an unclosed "${secret:X".
_LOOKS_LIKE_REFERENCE = re.compile(r"\$\{[^}]*:[^}]*\}?|\$\{\s*secret[^}]*\}?", re.IGNORECASE)
# Only these blocks of a server entry may hold ``${secret:NAME}``; they never reach a log or the GUI in clear.
SECRET_BLOCKS = ("env", "headers")
# Besides those blocks, the one other place a reference may be: a pre-registered OAuth client's secret.
OAUTH_SECRET = ("oauth", "client_secret")
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")
_FOUND_MAX_CHARS = 40
_JSON_KIND = {
    type(None): "null",
    str: "text",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    list: "a list",
    dict: "an object",
}

_TIME = 'a time with its zone, e.g. "2026-12-02T18:55:00Z"'
_EXPECTED_BY_ERROR_TYPE = {
    "string_type": "text (a JSON string)",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "dict_type": "an object ({...})",
    "model_type": "an object ({...})",
    "model_attributes_type": "an object ({...})",
    "tuple_type": "a list ([...])",
    "list_type": "a list ([...])",
    "datetime_type": _TIME,
    "datetime_parsing": _TIME,
    "datetime_from_date_parsing": _TIME,
    "timezone_aware": _TIME,
}


@dataclass(frozen=True)
class SecretReference:
    """One ``${secret:NAME}`` in a server's ``env`` or ``headers``.

    Attributes:
        server: the server's name.
        json_path: where the reference is, e.g. ``servers.github.env.GITHUB_TOKEN``.
        name: the secret's name in the store.
    """

    server: str
    json_path: str
    name: str


def load_config(path: Path) -> Config:
    """Read and check config.json.

    Args:
        path: the config file.

    Returns:
        The checked configuration; ``${secret:NAME}`` references are left unresolved.

    Raises:
        ConfigError: the file cannot be read or is invalid; one sentence per problem.
    """
    return parse_config(_read_text(path), source=path.name)


def parse_config(text: str, *, source: str = "config.json") -> Config:
    """Check the text of a config file and build the configuration.

    Args:
        text: the file's content.
        source: the file name used at the start of every problem sentence.

    Returns:
        The checked configuration.

    Raises:
        ConfigError: the text is not valid JSON or not a valid configuration; one sentence per problem.
    """
    data = _parse_json(text, source)
    if not isinstance(data, dict):
        raise ConfigError([f"{source}: expected a JSON object ({{...}}) at the top level, found {_found(data)}"])
    problems = _check_names(data, source)
    try:
        config = Config.model_validate_json(text, strict=True)
    except ValidationError as exc:
        problems.extend(_translate(error, source) for error in exc.errors(include_url=False))
        config = None
    problems.extend(_check_secret_references(data, source))
    if problems:
        raise ConfigError(list(dict.fromkeys(problems)))
    assert config is not None
    return config


def check_name(name: str, kind: str) -> str | None:
    """Say what is wrong with a server name or an agent id, or None if it is valid.

    Args:
        name: the name to check.
        kind: what it names, for the sentence (``"server name"``, ``"agent id"``).
    """
    if NAME_PATTERN.fullmatch(name):
        return None
    return f"{json.dumps(name)} is not a valid {kind}: {NAME_RULE}"


def secret_references(config: Config) -> list[SecretReference]:
    """Every ``${secret:NAME}`` the configured servers use, in file order.

    Args:
        config: a checked configuration.
    """
    found: list[SecretReference] = []
    for server_name, server in config.servers.items():
        oauth = {"client_secret": server.oauth.client_secret} if server.oauth and server.oauth.client_secret else {}
        for block, values in (("env", server.env), ("headers", server.headers), ("oauth", oauth)):
            for key, value in values.items():
                where = json_path(("servers", server_name, block, key))
                found.extend(
                    SecretReference(server_name, where, match.group(1)) for match in SECRET_REFERENCE.finditer(value)
                )
    return found


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        problem = f"{path.name}: there is no config file at {path}; `toolgate config path` shows the default one"
        raise ConfigError([problem]) from exc
    except UnicodeDecodeError as exc:
        problem = f"{path.name}: expected UTF-8 text, found bytes that are not (at byte {exc.start})"
        raise ConfigError([problem]) from exc
    except OSError as exc:
        raise ConfigError([f"{path.name}: cannot read {path}: {exc.strerror or exc}"]) from exc


def _parse_json(text: str, source: str) -> Any:
    duplicates: list[str] = []

    def keep_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                duplicates.append(key)
            result[key] = value
        return result

    try:
        data = json.loads(text, object_pairs_hook=keep_pairs)
    except json.JSONDecodeError as exc:
        raise ConfigError([f"{source} line {exc.lineno} column {exc.colno}: not valid JSON: {exc.msg}"]) from exc
    if duplicates:
        raise ConfigError(
            [
                f"{source}: key {json.dumps(key)} appears twice in the same object; only one may stay"
                for key in dict.fromkeys(duplicates)
            ]
        )
    return data


def _check_names(data: dict[str, Any], source: str) -> list[str]:
    problems: list[str] = []
    for section, kind in (("servers", "server name"), ("agents", "agent id")):
        block = data.get(section)
        if not isinstance(block, dict):
            continue
        for name in block:
            problem = check_name(name, kind)
            if problem is not None:
                problems.append(f"{source}: {json_path((section, name))}: {problem}")
    return problems


def _check_secret_references(data: Any, source: str, loc: tuple[str | int, ...] = ()) -> list[str]:
    if isinstance(data, dict):
        return [p for key, value in data.items() for p in _check_secret_references(value, source, (*loc, key))]
    if isinstance(data, list):
        return [p for i, value in enumerate(data) for p in _check_secret_references(value, source, (*loc, i))]
    if not isinstance(data, str):
        return []
    where = f"{source}: {json_path(loc)}"
    allowed = len(loc) == 4 and loc[0] == "servers" and (loc[2] in SECRET_BLOCKS or loc[2:] == OAUTH_SECRET)
    if not allowed:
        if SECRET_REFERENCE.search(data) or (_LOOKS_LIKE_REFERENCE.search(data) and "secret" in data.lower()):
            return [
                f'{where}: a ${{secret:NAME}} reference is only allowed in "env" and "headers" values '
                'and in "oauth.client_secret"'
            ]
        return []
    leftover = SECRET_REFERENCE.sub("", data)
    return [
        f"{where}: expected a secret reference of the form ${{secret:NAME}} "
        f'(NAME made of letters, digits, "_", "." or "-"), found {json.dumps(match.group(0)[:_FOUND_MAX_CHARS])}'
        for match in _LOOKS_LIKE_REFERENCE.finditer(leftover)
    ]


def _translate(error: ErrorDetails, source: str) -> str:
    loc = tuple(error["loc"])
    where = f"{source}: {json_path(loc)}" if loc else source
    kind = error["type"]
    ctx = error.get("ctx") or {}
    value = error["input"]
    sensitive = len(loc) >= 3 and loc[0] == "servers" and (loc[2] in SECRET_BLOCKS or loc[2:4] == OAUTH_SECRET)
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        hint = ""
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        if close:
            hint = f'; did you mean "{close[0]}"?'
        return f"{where}: unknown key (expected one of: {', '.join(allowed)}){hint}"
    if kind == "missing":
        return f"{where}: expected {_expected_for(loc)}, found nothing (this key is required)"
    if kind == "value_error":
        message = str(ctx.get("error", error["msg"])).removeprefix("Value error, ")
        if "exactly one of" in message and isinstance(value, dict):
            message += ", found both" if {"command", "url"} <= value.keys() else ", found neither"
        return f"{where}: {message}"
    expected_text = _expected_from_error(kind, ctx)
    if expected_text is None:
        return f"{where}: {error['msg'][:1].lower()}{error['msg'][1:]}, found {_found(value, sensitive=sensitive)}"
    return f"{where}: expected {expected_text}, found {_found(value, sensitive=sensitive)}"


def _expected_from_error(kind: str, ctx: Mapping[str, Any]) -> str | None:
    if kind in _EXPECTED_BY_ERROR_TYPE:
        return _EXPECTED_BY_ERROR_TYPE[kind]
    if kind in ("literal_error", "enum"):
        return "one of " + str(ctx.get("expected", "")).replace("'", '"')
    bounds = {
        "greater_than": ("gt", "a number greater than {}"),
        "greater_than_equal": ("ge", "a number of at least {}"),
        "less_than": ("lt", "a number less than {}"),
        "less_than_equal": ("le", "a number of at most {}"),
    }
    if kind in bounds:
        key, template = bounds[kind]
        return template.format(_number(ctx.get(key)))
    if kind == "string_too_short":
        length = ctx.get("min_length", 1)
        return "non-empty text" if length == 1 else f"text of at least {length} characters"
    return None


def _expected_for(loc: tuple[str | int, ...]) -> str:
    annotation = _annotation_at(loc)
    if annotation is str or annotation == str | None:
        return "text (a JSON string)"
    return "a value"


def _allowed_keys(loc: tuple[str | int, ...]) -> list[str]:
    model = _annotation_at(loc)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


def _annotation_at(loc: tuple[str | int, ...]) -> Any:
    current: Any = Config
    for part in loc:
        current = _unwrap_optional(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return None
            current = field.annotation
        elif get_origin(current) is dict:
            current = get_args(current)[1]
        elif get_origin(current) in (tuple, list) and isinstance(part, int):
            current = get_args(current)[0]
        else:
            return None
    return _unwrap_optional(current)


def _unwrap_optional(annotation: Any) -> Any:
    """``Model | None`` as ``Model``; any other annotation as it is."""
    present = [arg for arg in get_args(annotation) if arg is not type(None)]
    return present[0] if get_origin(annotation) in (Union, UnionType) and len(present) == 1 else annotation


def json_path(loc: tuple[str | int, ...]) -> str:
    """A pydantic location as the JSON path people read, e.g. ``agents.cursor.rules[2].match``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _PLAIN_KEY.fullmatch(part):
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(part)}]"
    return text or "(top level)"


def _found(value: Any, *, sensitive: bool = False) -> str:
    if sensitive:
        # env and headers values may be credentials pasted in clear: name the kind of value, never the value.
        return _JSON_KIND.get(type(value), "a value")
    if value is None or isinstance(value, bool | int | float):
        return json.dumps(value)
    if isinstance(value, str):
        shown = json.dumps(value[:_FOUND_MAX_CHARS])
        return shown if len(value) <= _FOUND_MAX_CHARS else shown[:-1] + '…"'
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)

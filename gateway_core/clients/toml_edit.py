"""Small, text-preserving edits of the ``[mcp_servers.NAME]`` tables in Codex CLI's ``config.toml``.

Reading uses ``tomllib``. Writing never re-serialises the file: ``set_server`` and ``remove_server`` cut
or insert one server's block (its header, its keys and its own sub-tables such as
``[mcp_servers.NAME.env]``) and keep every other byte — top-level keys, other tables, comments, blank
lines, the comments just before the next table and the file's line endings. Each result is parsed
again and must read back as intended, otherwise ``TomlEditError`` is raised and nothing is returned.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_DECODE_POSITION = re.compile(r"^(?P<reason>.*) \(at line (?P<line>\d+), column (?P<column>\d+)\)$", re.DOTALL)
_SHORT_ESCAPES = {"\\": "\\\\", '"': '\\"', "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


class TomlEditError(ValueError):
    """``config.toml`` cannot be read, or an edit of it cannot be made safely.

    Args:
        message: what went wrong and what to do.
        line: the 1-based line of a syntax error, when known.
        column: the 1-based column of a syntax error, when known.
    """

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        super().__init__(message)
        self.line = line
        self.column = column


def parse(text: str) -> dict[str, Any]:
    """The document ``text`` as plain Python values.

    Args:
        text: the contents of a ``config.toml``.

    Returns:
        The parsed document.

    Raises:
        TomlEditError: the text is not valid TOML; the message names the line and column.
    """
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = _DECODE_POSITION.match(str(exc))
        if found is None:
            raise TomlEditError(f"config.toml is not valid TOML: {exc}") from exc
        line, column = int(found["line"]), int(found["column"])
        message = f"config.toml is not valid TOML: {found['reason']} (line {line}, column {column})"
        raise TomlEditError(message, line, column) from exc


def servers(text: str) -> dict[str, dict[str, Any]]:
    """The MCP servers configured in ``text``, by name (empty when there is no ``mcp_servers`` table).

    Raises:
        TomlEditError: the text is not valid TOML, or ``mcp_servers`` is not a table of tables.
    """
    table = parse(text).get("mcp_servers", {})
    if not isinstance(table, dict) or not all(isinstance(entry, dict) for entry in table.values()):
        raise TomlEditError("mcp_servers in config.toml must be a table of [mcp_servers.NAME] tables; fix it by hand")
    return table


def set_server(text: str, name: str, entry: Mapping[str, Any]) -> str:
    """``text`` with ``[mcp_servers.NAME]`` holding exactly ``entry``, everything else untouched.

    An existing block for ``name`` is replaced where it stands; otherwise the new block is appended after
    one blank line.

    Args:
        text: the contents of a ``config.toml``.
        name: the server's name.
        entry: its keys: strings, booleans, numbers, arrays, and mappings (written as inline tables).

    Returns:
        The new contents.

    Raises:
        TomlEditError: the text is not valid TOML, the server is written in a form this module does not
            edit (an inline table or dotted keys), or the result would not read back as ``entry``.
    """
    before = parse(text)
    lines = text.splitlines(keepends=True)
    spans = _server_spans(lines, name)
    newline = "\r\n" if lines and lines[0].endswith("\r\n") else "\n"
    block = _render_block(name, entry, newline)
    if spans:
        result = _splice(lines, [(spans[0], block)] + [(span, "") for span in spans[1:]])
    else:
        _refuse_other_forms(text, name)
        result = _append(text, block, newline)
    _check(result, before, name, _plain(entry), what=f"writing [mcp_servers.{_key(name)}]")
    return result


def remove_server(text: str, name: str) -> str:
    """``text`` without the ``[mcp_servers.NAME]`` block and its sub-tables (unchanged if there is none).

    One blank line next to the block goes with it, so removing a server ``set_server`` appended gives
    back the original text.

    Raises:
        TomlEditError: the text is not valid TOML, or the server is written as an inline table or with
            dotted keys.
    """
    before = parse(text)
    lines = text.splitlines(keepends=True)
    spans = _server_spans(lines, name)
    if not spans:
        _refuse_other_forms(text, name)
        return text
    result = _splice(lines, [(_with_separator(lines, span), "") for span in spans])
    _check(result, before, name, None, what=f"removing [mcp_servers.{_key(name)}]")
    return result


@dataclass(frozen=True)
class _Line:
    """Where a line starts: a table header, or whether it starts outside any string or array."""

    clean: bool
    header: tuple[str, ...] | None


def _scan(lines: Sequence[str]) -> list[_Line]:
    """Classify each line, following multi-line strings and arrays so their contents are never headers."""
    scanned: list[_Line] = []
    closer: str | None = None  # the delimiter of the multi-line string we are inside, if any
    depth = 0
    for line in lines:
        clean = closer is None and depth == 0
        header = _header_path(line) if clean and line.lstrip().startswith("[") else None
        scanned.append(_Line(clean, header))
        i = 0
        while i < len(line):
            if closer is not None:
                end = _find_closer(line, i, closer)
                if end < 0:
                    break
                i, closer = end, None
                continue
            char = line[i]
            if char == "#":
                break
            if line.startswith(('"""', "'''"), i):
                closer, i = line[i : i + 3], i + 3
            elif char in "\"'":
                i = _find_closer(line, i + 1, char)
                if i < 0:  # only in invalid TOML, which parse() has already refused
                    break
            else:
                depth += (char in "[{") - (char in "]}")
                i += 1
    return scanned


def _find_closer(line: str, start: int, closer: str) -> int:
    """The index just past ``closer`` (and up to two extra quotes) in ``line``, or -1 if it is not there."""
    i = start
    while i < len(line):
        if line[i] == "\\" and closer[0] == '"':
            i += 2
        elif line.startswith(closer, i):
            i += len(closer)
            extra = 2 if len(closer) == 3 else 0
            while extra and line.startswith(closer[0], i):
                i, extra = i + 1, extra - 1
            return i
        else:
            i += 1
    return -1


def _header_path(line: str) -> tuple[str, ...]:
    """The key path a header line names, e.g. ``("mcp_servers", "github", "env")``."""
    path: list[str] = []
    node: Any = tomllib.loads(line)
    while isinstance(node, dict) and node:
        key, node = next(iter(node.items()))
        path.append(key)
    return tuple(path)


def _server_spans(lines: Sequence[str], name: str) -> list[tuple[int, int]]:
    """Line ranges ``[start, end)`` of the server's blocks, without the comments before the next table."""
    scanned = _scan(lines)
    ours = [(line.header or ())[:2] == ("mcp_servers", name) for line in scanned]
    headers = [i for i, line in enumerate(scanned) if line.header is not None]
    spans: list[tuple[int, int]] = []
    for number, start in enumerate(headers):
        if not ours[start] or (number and ours[headers[number - 1]]):
            continue  # not ours, or one of our sub-tables right after our table
        end = next((i for i in headers[number + 1 :] if not ours[i]), len(lines))
        while end - 1 > start and scanned[end - 1].clean and lines[end - 1].strip()[:1] in ("", "#"):
            end -= 1
        spans.append((start, end))
    return spans


def _with_separator(lines: Sequence[str], span: tuple[int, int]) -> tuple[int, int]:
    """The span widened by one blank line before it, or else after it, when there is one."""
    start, end = span
    if start > 0 and not lines[start - 1].strip():
        return start - 1, end
    if end < len(lines) and not lines[end].strip():
        return start, end + 1
    return span


def _splice(lines: Sequence[str], edits: Sequence[tuple[tuple[int, int], str]]) -> str:
    """The lines with each ``(start, end)`` range replaced by its text (non-overlapping ranges)."""
    out = list(lines)
    for (start, end), text in sorted(edits, reverse=True):
        out[start:end] = [text]
    return "".join(out)


def _append(text: str, block: str, newline: str) -> str:
    """``text`` ending in a newline, then one blank line, then ``block``."""
    if not text:
        return block
    if not text.endswith("\n"):
        text += newline
    if not text.endswith(("\n\n", "\n\r\n")):
        text += newline
    return text + block


def _refuse_other_forms(text: str, name: str) -> None:
    """Raise if ``name`` is configured without a ``[mcp_servers.NAME]`` header of its own."""
    if name in servers(text):
        raise TomlEditError(
            f"the MCP server {name!r} in config.toml is written as an inline table (or with dotted keys); "
            "edit it by hand"
        )


def _check(result: str, before: dict[str, Any], name: str, expected: dict[str, Any] | None, what: str) -> None:
    """Raise unless ``result`` holds ``expected`` for ``name`` (None: nothing) and everything else as before."""
    try:
        after = parse(result)
    except TomlEditError as exc:
        raise TomlEditError(
            f"{what} would break config.toml (mcp_servers may be written as an inline table); edit it by hand: {exc}"
        ) from exc
    found = after.get("mcp_servers", {}).get(name)
    if found != expected or _without(after, name) != _without(before, name):
        raise TomlEditError(f"{what} did not read back as intended; config.toml was left unchanged, edit it by hand")


def _without(document: dict[str, Any], name: str) -> dict[str, Any]:
    """The document minus the server ``name`` (and minus ``mcp_servers`` if nothing else is left in it)."""
    rest = {key: value for key, value in document.items() if key != "mcp_servers"}
    others = {key: value for key, value in document.get("mcp_servers", {}).items() if key != name}
    return rest | ({"mcp_servers": others} if others else {})


def _render_block(name: str, entry: Mapping[str, Any], newline: str) -> str:
    """The ``[mcp_servers.NAME]`` header and one ``key = value`` line per entry."""
    lines = [f"[mcp_servers.{_key(name)}]"] + [f"{_key(key)} = {_value(value)}" for key, value in entry.items()]
    return "".join(line + newline for line in lines)


def _key(key: str) -> str:
    """A key, bare when TOML allows it and quoted otherwise."""
    return key if _BARE_KEY.fullmatch(key) else _string(key)


def _value(value: Any) -> str:
    """``value`` as a TOML value (mappings as inline tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, Mapping):
        items = ", ".join(f"{_key(key)} = {_value(item)}" for key, item in value.items())
        return f"{{ {items} }}" if items else "{}"
    if isinstance(value, Sequence):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    raise TypeError(f"cannot write a {type(value).__name__} to config.toml: {value!r}")


def _string(text: str) -> str:
    """A TOML basic string, with control characters escaped."""
    escaped = "".join(
        _SHORT_ESCAPES.get(char) or (f"\\u{ord(char):04X}" if ord(char) < 0x20 or ord(char) == 0x7F else char)
        for char in text
    )
    return f'"{escaped}"'


def _plain(value: Any) -> Any:
    """``value`` as ``tomllib`` would read it back: mappings as dicts, sequences as lists."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_plain(item) for item in value]
    return value

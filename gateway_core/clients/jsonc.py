"""Reading and editing JSON-with-comments (JSONC) files without disturbing anything else in them.

IDE config files may hold ``//`` and ``/* */`` comments, trailing commas, odd formatting and keys Toolgate
knows nothing about. A small hand-written scanner parses the text into nodes that remember where each
object member's key, value and comma sit, so every edit is a splice into the original string: bytes
outside the edited member stay exactly as they were (apart from the comma of the member before it).
New members follow the file's newline style (LF or CRLF), its indentation unit (spaces or a tab) and its
trailing-comma habit. Parsing is strict otherwise (double-quoted strings and keys only); the last of
duplicate keys wins, as in VS Code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

DEFAULT_INDENT = "  "
MAX_DEPTH = 200  # far deeper than any config file; keeps the recursive scanner inside Python's stack

_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
_STRING_BODY = re.compile(r'"(?:[^"\\\x00-\x1f]|\\.)*')
_LITERALS: dict[str, bool | None] = {"true": True, "false": False, "null": None}


class JsoncError(ValueError):
    """The text is not valid JSONC, or cannot take the edit asked for; the message says where."""

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(f"line {line}, column {column}: {message}")
        self.line = line
        self.column = column


@dataclass
class _Node:
    """A parsed value and the span ``[start, end)`` of its text."""

    start: int
    end: int
    value: Any
    is_object: bool = False
    members: list[_Member] = field(default_factory=list)


@dataclass
class _Member:
    """One ``"key": value`` of an object, with the offset of its key and of the comma after it."""

    key: str
    key_start: int
    value: _Node
    comma: int | None = None


def _error(text: str, pos: int, message: str) -> JsoncError:
    if pos >= len(text):
        message += " (the text ended)"
    line_start = text.rfind("\n", 0, pos) + 1
    return JsoncError(message, text.count("\n", 0, pos) + 1, pos - line_start + 1)


class _Scanner:
    """Recursive-descent parser over ``text`` that builds ``_Node``s."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.depth = 0

    def document(self) -> _Node:
        node = self.value()
        self.skip()
        if self.pos < len(self.text):
            raise _error(self.text, self.pos, "unexpected text after the end of the JSON value")
        return node

    def peek(self) -> str:
        return self.text[self.pos : self.pos + 1]

    def skip(self) -> None:
        """Move past whitespace and comments."""
        text = self.text
        while self.pos < len(text):
            if text[self.pos] in " \t\r\n":
                self.pos += 1
            elif text.startswith("//", self.pos):
                end = text.find("\n", self.pos)
                self.pos = len(text) if end < 0 else end
            elif text.startswith("/*", self.pos):
                end = text.find("*/", self.pos + 2)
                if end < 0:
                    raise _error(text, self.pos, "unclosed /* comment (no */ after it)")
                self.pos = end + 2
            else:
                return

    def value(self) -> _Node:
        self.skip()
        start, char = self.pos, self.peek()
        if char in ("{", "["):
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise _error(self.text, start, f"nested deeper than {MAX_DEPTH} levels")
            node = self.container()
            self.depth -= 1
            return node
        if char == '"':
            string = self.string()
            return _Node(start, self.pos, string)
        number = _NUMBER.match(self.text, start)
        if number:
            self.pos = number.end()
            token = number.group()
            return _Node(start, self.pos, float(token) if any(c in token for c in ".eE") else int(token))
        for word, literal in _LITERALS.items():
            if self.text.startswith(word, start):
                self.pos += len(word)
                return _Node(start, self.pos, literal)
        raise _error(self.text, start, "expected a value: an object, array, string, number, true, false or null")

    def string(self) -> str:
        text, start = self.text, self.pos
        body = _STRING_BODY.match(text, start)
        end = body.end() if body else start
        if text.startswith('"', end):
            self.pos = end + 1
            try:
                decoded: str = json.loads(text[start : self.pos])
            except json.JSONDecodeError as exc:
                raise _error(text, start + exc.pos, "invalid escape in a string") from exc
            return decoded
        if end >= len(text) or text[end] in "\r\n":
            raise _error(text, start, "unterminated string (no closing '\"' on its line)")
        if text[end] == "\\":
            raise _error(text, end, "invalid escape in a string")
        raise _error(text, end, "control character in a string (write it as an escape such as \\t)")

    def container(self) -> _Node:
        """An object or an array: items separated by commas, a trailing comma allowed."""
        is_object = self.peek() == "{"
        close, what = ("}", "a member") if is_object else ("]", "an element")
        node = _Node(self.pos, self.pos, {} if is_object else [], is_object)
        self.pos += 1
        while True:
            self.skip()
            if self.peek() == close:
                break
            if is_object:
                member = self.member()
                node.members.append(member)
                node.value[member.key] = member.value.value
            else:
                node.value.append(self.value().value)
            self.skip()
            if self.peek() != ",":
                if self.peek() != close:
                    raise _error(self.text, self.pos, f"expected ',' or '{close}' after {what}")
                break
            if is_object:
                node.members[-1].comma = self.pos
            self.pos += 1
        self.pos += 1
        node.end = self.pos
        return node

    def member(self) -> _Member:
        if self.peek() != '"':
            raise _error(self.text, self.pos, "expected a key in double quotes or '}'")
        key_start = self.pos
        key = self.string()
        self.skip()
        if self.peek() != ":":
            raise _error(self.text, self.pos, "expected ':' after a key")
        self.pos += 1
        return _Member(key, key_start, self.value())


def parse(text: str) -> Any:
    """Parse JSON that may hold comments and trailing commas.

    Args:
        text: the file's text.

    Returns:
        Plain Python values: dict, list, str, int, float, bool or None.

    Raises:
        JsoncError: the text is not valid JSONC.
    """
    return _Scanner(text).document().value


def get(text: str, path: Sequence[str]) -> Any:
    """The value at ``path`` (object keys from the root), or None when it is absent or the text is blank.

    Raises:
        JsoncError: the text is not valid JSONC.
    """
    value = parse(text) if text.strip() else None
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def set_member(text: str, path: Sequence[str], key: str, value: Any) -> str:
    """Return ``text`` with ``key`` set to ``value`` in the object at ``path``, creating missing objects.

    An existing value's text is replaced in place; a new member goes last in its object, indented like
    its siblings. A blank text becomes a new object.

    Args:
        text: the file's text.
        path: object keys from the root to the object that holds ``key``.
        key: the member's key.
        value: any JSON-serialisable value.

    Returns:
        The edited text; every byte outside the member (and the comma before it) is unchanged.

    Raises:
        JsoncError: the text is not valid JSONC, its root is not an object, or a value on ``path`` is not
            an object.
        TypeError: ``value`` cannot be written as JSON.
        ValueError: ``value`` holds NaN or an infinity.
    """
    if not text.strip():
        return _Layout("\n", DEFAULT_INDENT).render(_nest([*path, key], value), "") + "\n"
    root = _root_object(text)
    layout = _Layout.of(text, root)
    node, depth = _walk(root, path)
    if depth < len(path):
        blocker = _find(node, path[depth])
        if blocker is not None:
            raise _error(text, blocker.value.start, f"{json.dumps(path[depth])} holds a value that is not an object")
        return _insert(text, node, path[depth], _nest([*path[depth + 1 :], key], value), layout)
    member = _find(node, key)
    if member is None:
        return _insert(text, node, key, value, layout)
    rendered = layout.render(value, _own_line_indent(text, member.key_start))
    return text[: member.value.start] + rendered + text[member.value.end :]


def remove_member(text: str, path: Sequence[str], key: str) -> str:
    """Return ``text`` without ``key`` in the object at ``path`` (every copy of a duplicated key).

    The member goes with its comma (or the previous member's, when it is last) and, when it sits alone
    on its lines, with those lines and any comment after it on its last line. Other comments stay.

    Args:
        text: the file's text.
        path: object keys from the root to the object that holds ``key``.
        key: the member's key.

    Returns:
        The edited text, or ``text`` itself when the path or the key is absent.

    Raises:
        JsoncError: the text is not valid JSONC or its root is not an object.
    """
    if not text.strip():
        return text
    while True:
        node, depth = _walk(_root_object(text), path)
        indexes = [i for i, member in enumerate(node.members) if member.key == key]
        if depth < len(path) or not indexes:
            return text
        text = _cut(text, node, indexes[-1])


@dataclass(frozen=True)
class _Layout:
    """How the file writes a line break and one level of indentation."""

    newline: str
    unit: str

    @classmethod
    def of(cls, text: str, root: _Node) -> _Layout:
        return cls("\r\n" if "\r\n" in text else "\n", _indent_unit(text, root))

    def render(self, value: Any, indent: str | None) -> str:
        """``value`` as JSON: on one line when ``indent`` is None, else multi-line below ``indent``."""
        if indent is None:
            return json.dumps(value, ensure_ascii=False, allow_nan=False)
        lines = json.dumps(value, indent=self.unit, ensure_ascii=False, allow_nan=False)
        return lines.replace("\n", self.newline + indent)

    def entry(self, key: str, value: Any, indent: str | None) -> str:
        return f"{json.dumps(key, ensure_ascii=False)}: {self.render(value, indent)}"


def _indent_unit(text: str, root: _Node) -> str:
    """The first step in indentation between an object's line and its members' lines, breadth first."""
    queue = [root]
    for node in queue:
        outer = _line_indent(text, node.start)
        for member in node.members:
            indent = _own_line_indent(text, member.key_start)
            step = indent[len(outer) :] if indent is not None and indent.startswith(outer) else ""
            if step and len(set(step)) == 1:
                return step
        queue.extend(member.value for member in node.members if member.value.is_object)
    return DEFAULT_INDENT


def _root_object(text: str) -> _Node:
    root = _Scanner(text).document()
    if not root.is_object:
        raise _error(text, root.start, "the top level must be an object ({...})")
    return root


def _nest(path: Sequence[str], value: Any) -> Any:
    for key in reversed(path):
        value = {key: value}
    return value


def _walk(root: _Node, path: Sequence[str]) -> tuple[_Node, int]:
    """The deepest object along ``path`` that exists, and how many keys of ``path`` led to it."""
    node = root
    for depth, key in enumerate(path):
        member = _find(node, key)
        if member is None or not member.value.is_object:
            return node, depth
        node = member.value
    return node, len(path)


def _find(node: _Node, key: str) -> _Member | None:
    """The member that counts for ``key``: the last one, as duplicate keys go."""
    return next((member for member in reversed(node.members) if member.key == key), None)


def _line_indent(text: str, pos: int) -> str:
    line_start = text.rfind("\n", 0, pos) + 1
    line = text[line_start:pos]
    return line[: len(line) - len(line.lstrip(" \t"))]


def _own_line_indent(text: str, pos: int) -> str | None:
    """The whitespace before ``pos`` on its line, or None when something else comes first."""
    before = text[text.rfind("\n", 0, pos) + 1 : pos]
    return None if before.strip(" \t") else before


def _end_of_line(text: str, pos: int) -> int:
    """Where the line goes on from ``pos`` past blanks and comments: its line break, or the next token."""
    while True:
        while pos < len(text) and text[pos] in " \t":
            pos += 1
        if text.startswith("//", pos):
            newline = text.find("\n", pos)
            return len(text) if newline < 0 else newline - (text[newline - 1] == "\r")
        if not text.startswith("/*", pos):
            return pos
        close = text.find("*/", pos + 2)
        if "\n" in text[pos:close]:
            return pos
        pos = close + 2


def _insertion_point(text: str, pos: int) -> int:
    """Where a new line goes after the member ending at ``pos``: after its comments, before blanks."""
    return len(text[: _end_of_line(text, pos)].rstrip(" \t"))


def _insert(text: str, obj: _Node, key: str, value: Any, layout: _Layout) -> str:
    """Add a member as the last of ``obj``, following the style of the members already there."""
    if not obj.members:
        outer = _line_indent(text, obj.start)
        inner = outer + layout.unit
        close = obj.end - 1
        cut = obj.start + 1 + len(text[obj.start + 1 : close].rstrip())
        added = layout.newline + inner + layout.entry(key, value, inner) + layout.newline + outer
        return text[:cut] + added + text[close:]
    last = obj.members[-1]
    indent = _own_line_indent(text, last.key_start)
    entry = layout.entry(key, value, indent)
    if last.comma is not None:
        at = last.comma + 1 if indent is None else _insertion_point(text, last.comma + 1)
        gap = " " if indent is None else layout.newline + indent
        return text[:at] + gap + entry + "," + text[at:]
    end = last.value.end
    if indent is None:
        return text[:end] + ", " + entry + text[end:]
    at = _insertion_point(text, end)
    return text[:end] + "," + text[end:at] + layout.newline + indent + entry + text[at:]


def _cut(text: str, obj: _Node, index: int) -> str:
    """Remove ``obj``'s member at ``index`` with the comma that belongs with it."""
    member = obj.members[index]
    previous = obj.members[index - 1] if index else None
    previous_comma = previous.comma if member.comma is None and previous is not None else None
    end = member.value.end if member.comma is None else member.comma + 1
    line_end = _end_of_line(text, end)
    indent = _own_line_indent(text, member.key_start)
    if indent is not None and (line_end == len(text) or text[line_end] in "\r\n"):
        start = member.key_start - len(indent)
        stop = line_end + (2 if text.startswith("\r\n", line_end) else 1)
    elif member.comma is not None:
        start = member.key_start
        stop = end + len(text[end:]) - len(text[end:].lstrip(" \t"))
    elif previous_comma is not None and not text[previous_comma + 1 : member.key_start].strip():
        start, stop, previous_comma = previous_comma, end, None
    else:
        start, stop = member.key_start, end
    if len(obj.members) == 1 and not (text[obj.start + 1 : start] + text[stop : obj.end - 1]).strip():
        start, stop = obj.start + 1, obj.end - 1  # the object is left empty: "{}", not "{\n}"
    text = text[:start] + text[stop:]
    if previous_comma is not None:
        text = text[:previous_comma] + text[previous_comma + 1 :]
    return text

"""Conditions a policy rule puts on a call's arguments: ``"when": {"path": {"under": ["~/work/project"]}}``.

``when`` maps an argument name to one condition; every condition must hold for the rule to apply. A
condition is an object with one or more of these operators, all of which must hold:

- ``under``: a path, or a list of paths; the argument is a path inside one of them. Both are read as
  the server would open them: ``~`` expanded, ``..`` and symlinks resolved (``os.path.realpath``), so
  ``~/p/../secrets`` or a link out of the folder is not under ``~/p``. The argument is resolved at each
  call, the folders once when the configuration is loaded. A relative argument cannot be checked
  (Toolgate does not know the server's working folder).
- ``equals``: the argument is this JSON value (``1`` and ``true`` differ; ``1`` and ``1.0`` do not).
- ``one_of``: the argument equals one of these values.
- ``glob``: the argument is text matching this glob (``fnmatch``, case-sensitive, the whole text).
- ``regex``: the argument is text the regular expression matches as a whole (``re.fullmatch``). The
  pattern may be at most ``MAX_REGEX_CHARS`` long; text longer than ``MAX_REGEX_INPUT_CHARS`` cannot
  be checked.
- ``min`` / ``max``: the argument is a number at least / at most this.

A condition *cannot be checked* when its argument is missing or of the wrong type (text for ``under``,
``glob``, ``regex``; a number for ``min``/``max``). ``holds`` then answers None, and the policy reads that
as failing closed: such a rule never allows (``gateway_core.policy``).
"""

from __future__ import annotations

import fnmatch
import json
import math
import os
import re
from collections.abc import Callable, Mapping
from functools import cached_property
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MAX_REGEX_CHARS = 256
MAX_REGEX_INPUT_CHARS = 4096
_OPERATORS = ("under", "equals", "one_of", "glob", "regex", "min", "max")


class Condition(BaseModel):
    """One argument's condition: the operators set on it (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    under: tuple[str, ...] | None = None
    equals: Any = None
    one_of: tuple[Any, ...] | None = None
    glob: str | None = None
    regex: str | None = Field(default=None, max_length=MAX_REGEX_CHARS)
    min: float | None = None
    max: float | None = None

    @field_validator("under", mode="before")
    @classmethod
    def _one_path_or_many(cls, value: Any) -> Any:
        if isinstance(value, str):
            return (value,)
        return tuple(value) if isinstance(value, list) else value

    @field_validator("under")
    @classmethod
    def _paths_not_empty(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None and (not value or any(not path.strip() for path in value)):
            raise ValueError("expected one or more paths, none of them empty")
        if value is not None and any(not os.path.isabs(os.path.expanduser(path)) for path in value):
            raise ValueError("expected absolute paths (or starting with ~)")
        return value

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _has_an_operator(self) -> Condition:
        if not self.model_fields_set & set(_OPERATORS):
            raise ValueError(f"expected one or more of: {', '.join(_OPERATORS)}")
        return self

    def holds(self, present: bool, value: Any) -> bool | None:
        """Whether the argument meets every operator: True, False, or None when it cannot be checked.

        Args:
            present: whether the call has the argument at all.
            value: the argument's value (ignored when not present).
        """
        if not present:
            return None
        verdict: bool | None = True
        for check in self._checks:
            holds = check(value)
            if holds is False:
                return False
            if holds is None:
                verdict = None
        return verdict

    @cached_property
    def _checks(self) -> tuple[Callable[[Any], bool | None], ...]:
        # Built once per condition (the config's lifetime): the operators set, cheapest first.
        checks: list[Callable[[Any], bool | None]] = []
        if "equals" in self.model_fields_set:
            expected = self.equals
            checks.append(lambda value: _same(value, expected))
        if self.one_of is not None:
            choices = self.one_of
            checks.append(lambda value: any(_same(value, choice) for choice in choices))
        if self.min is not None or self.max is not None:
            low, high = self.min, self.max
            checks.append(lambda value: _within(value, low, high))
        if self.glob is not None:
            glob = re.compile(fnmatch.translate(self.glob)).match
            checks.append(lambda value: glob(value) is not None if isinstance(value, str) else None)
        if self.regex is not None:
            pattern = re.compile(self.regex).fullmatch
            checks.append(
                lambda value: (
                    pattern(value) is not None
                    if isinstance(value, str) and len(value) <= MAX_REGEX_INPUT_CHARS
                    else None
                )
            )
        if self.under is not None:
            roots = tuple(_resolved(root) for root in self.under)
            checks.append(lambda value: _under(value, roots))
        return tuple(checks)

    @cached_property
    def text(self) -> str:
        """The condition as people read it, e.g. ``is under ~/work/p`` or ``is at least 1 and at most 10``."""
        parts = []
        fields = self.model_fields_set
        if self.under is not None:
            parts.append("is under " + " or ".join(self.under))
        if "equals" in fields:
            parts.append(f"equals {json.dumps(self.equals)}")
        if self.one_of is not None:
            parts.append(f"is one of {json.dumps(list(self.one_of))}")
        if self.glob is not None:
            parts.append(f"matches {json.dumps(self.glob)}")
        if self.regex is not None:
            parts.append(f"matches the regex {json.dumps(self.regex)}")
        if self.min is not None:
            parts.append(f"is at least {self.min:g}")
        if self.max is not None:
            parts.append(f"is at most {self.max:g}")
        return " and ".join(parts)


# Argument names that usually hold a path, tried first for a suggestion.
_PATH_NAMES = ("path", "file", "file_path", "filepath", "filename", "directory", "dir", "folder", "target")


def folder_suggestion(arguments: Mapping[str, Any]) -> tuple[str, str] | None:
    """The argument and folder for "Always allow when ARG is under FOLDER", pre-filled from one call.

    The first argument (names like ``path`` first) holding an absolute path gives its folder: the
    path itself when it is a directory, else the one holding it, symlinks resolved. None when no
    argument holds one, or the folder would be a file system root (that would allow everything).
    """
    for name, value in sorted(arguments.items(), key=lambda item: item[0].lower() not in _PATH_NAMES):
        if not isinstance(value, str) or "\0" in value:
            continue
        expanded = os.path.expanduser(value)
        if not os.path.isabs(expanded):
            continue
        resolved = os.path.realpath(expanded)
        folder = resolved if os.path.isdir(resolved) else os.path.dirname(resolved)
        if os.path.dirname(folder) != folder:
            return name, folder
    return None


def conditions_hold(when: Mapping[str, Condition], arguments: Mapping[str, Any] | None) -> bool | None:
    """Whether a call's ``arguments`` meet every condition: True, False, or None when one cannot be checked.

    A condition that fails decides False even if another cannot be checked. Without arguments at all
    (``None``: a prompt or resource, which has none to look at) nothing can be checked.
    """
    if arguments is None:
        return None
    verdict: bool | None = True
    for name, condition in when.items():
        holds = condition.holds(name in arguments, arguments.get(name))
        if holds is False:
            return False
        if holds is None:
            verdict = None
    return verdict


def when_text(when: Mapping[str, Condition]) -> str:
    """``path is under ~/p and mode equals "w"``."""
    return " and ".join(f"{name} {condition.text}" for name, condition in when.items())


def _and(left: bool | None, right: bool | None) -> bool | None:
    if left is False or right is False:
        return False
    if left is None or right is None:
        return None
    return True


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _same(value: Any, expected: Any) -> bool:
    """JSON equality: numbers by value, but a boolean is never a number; lists and objects item by item."""
    if _number(value) and _number(expected):
        return bool(value == expected)
    if type(value) is not type(expected):
        return False
    if isinstance(value, list):
        return len(value) == len(expected) and all(_same(a, b) for a, b in zip(value, expected, strict=True))
    if isinstance(value, dict):
        return value.keys() == expected.keys() and all(_same(value[k], expected[k]) for k in value)
    return bool(value == expected)


def _within(value: Any, low: float | None, high: float | None) -> bool | None:
    if not _number(value) or not math.isfinite(value):
        return None
    return (low is None or value >= low) and (high is None or value <= high)


def _resolved(path: str) -> str:
    """``path`` as the file system reaches it.

    ``~`` expanded, ``..`` and symlinks resolved, case folded where the file system ignores case.
    """
    return os.path.normcase(os.path.realpath(os.path.expanduser(path)))


def _under(value: Any, roots: tuple[str, ...]) -> bool | None:
    """Whether ``value`` is a path inside one of ``roots`` (already resolved); None when it is not an absolute path."""
    if not isinstance(value, str) or "\0" in value:
        return None
    expanded = os.path.expanduser(value)
    if not os.path.isabs(expanded):
        return None
    target = os.path.normcase(os.path.realpath(expanded))
    for root in roots:
        if target == root or target.startswith(root.rstrip(os.sep) + os.sep):
            return True
    return False

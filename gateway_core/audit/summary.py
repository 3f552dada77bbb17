"""The one-line argument summary the audit log keeps, with secret-looking keys and values redacted.

Redaction happens before truncation, so a secret is never shown in part. A summary searches only the
start of a long string (what it can show, and more), so a large argument costs no more than a small one.
"""

from __future__ import annotations

import functools
import itertools
import json
import re
from collections.abc import Mapping
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from typing import Any

REDACTED = "[redacted]"
ELLIPSIS = "…"

# Keys whose values are secrets, matched as case-insensitive substrings of the key.
SECRET_KEY_PARTS = (
    "token",
    "password",
    "passwd",
    "secret",
    "authorization",
    "api_key",
    "apikey",
    "api-key",
    "private_key",
    "credential",
    "cookie",
    "session",
)

# Well-known token prefixes (bearer headers, OpenAI, GitHub, Slack, Toolgate agent tokens, AWS access keys).
# At least 8 token characters must follow, so words such as "sk-learn" are kept.
_PREFIXED_TOKEN = re.compile(
    r"(?i:bearer|basic)\s+[^\s\"']+"
    r"|(?:sk-|ghp_|gho_|ghs_|ghu_|ghr_|github_pat_|xox[a-z]-|tg_|AKIA)[A-Za-z0-9_\-]{8,}"
)
# A long run of base64 / hex characters: a key, unless it reads like words (see _looks_random). Inside
# a longer text "/" ends a run, so paths and URLs are judged segment by segment.
_LONG_RUN = re.compile(r"[A-Za-z0-9+=_\-]{32,}")
_WHOLE_RUN = re.compile(r"[A-Za-z0-9+/=_\-]{32,}")
_HEX = re.compile(r"[0-9a-fA-F]+")
# In random base64, characters mostly come in short same-class stretches (upper, lower, digit): 99 % of
# 32-character keys have under 60 % of their characters in stretches of 3 or more; words and identifiers
# have far more.
_MAX_WORDLIKE_SHARE = 0.6
# Nesting below this depth is summarized as "…" (also protects against self-referencing containers).
_MAX_DEPTH = 8
# How much of a long string a summary searches for secrets: far more than it shows, even when each key
# it shows is replaced by the shorter "[redacted]". A 20 MB argument took seconds of the event loop.
_SCANNED_CHARS = 4096
# A run shorter than _LONG_RUN's 32 characters is not judged; cut there, it would show in part.
_RUN_CHAR = re.compile(r"[A-Za-z0-9+=_\-]")
_TRAILING_RUN = re.compile(r"(?<![A-Za-z0-9+=_\-])[A-Za-z0-9+=_\-]{1,31}$")
# Shorter than this, only a prefixed token can be a secret (both runs need 32 characters).
_MIN_RUN_CHARS = 32
# What ``json.dumps(..., ensure_ascii=False, separators=(", ", ": "))`` builds on every call, built once.
_SUMMARY_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": "))
_NO_ARGUMENTS = "{}"
# The C encoder that ``_SUMMARY_ENCODER.encode`` makes afresh for every dict or list, made once. What it is
# given is ``_clean``'s output, built anew and cut at ``_MAX_DEPTH``: it never holds a cycle to check for.
_C_ENCODE = (
    None
    if c_make_encoder is None
    else c_make_encoder(None, _SUMMARY_ENCODER.default, encode_basestring, None, ": ", ", ", False, False, True)
)


def summarize_arguments(
    arguments: Mapping[str, Any] | None, *, max_value_chars: int = 80, max_total_chars: int = 400
) -> str:
    """A one-line, JSON-like summary of a call's arguments, safe to store and show.

    Values under secret-looking keys (see ``SECRET_KEY_PARTS``) and strings that look like tokens or
    keys become ``"[redacted]"``, in nested objects and lists too; long strings are cut to
    ``max_value_chars`` and the whole summary to ``max_total_chars``, ending with "…".

    Args:
        arguments: the call's arguments; None reads as no arguments.
        max_value_chars: the longest a single string value (or key) may be.
        max_total_chars: the longest the whole summary may be.

    Returns:
        The summary, e.g. ``{"repo": "octo/hello", "token": "[redacted]"}``.
    """
    if not arguments and max_total_chars >= len(_NO_ARGUMENTS):
        return _NO_ARGUMENTS  # what the general way below makes of no arguments
    if type(arguments) is dict:
        summary = _plain_summary(arguments, max_value_chars)
        if summary is not None:
            return summary if len(summary) <= max_total_chars else _truncate(summary, max_total_chars)
    cleaned = _clean(arguments or {}, max_value_chars, 0)
    summary = _SUMMARY_ENCODER.encode(cleaned) if _C_ENCODE is None else "".join(_C_ENCODE(cleaned, 0))
    return summary if len(summary) <= max_total_chars else _truncate(summary, max_total_chars)


def _plain_summary(arguments: dict[Any, Any], max_chars: int) -> str | None:
    """The summary of arguments that are a few plain words and whole numbers: None unless each is one.

    Each key a short string that is not a secret's; each value a whole number or a short ASCII string
    that cannot hold a key or token (too short for a run, and none of the characters every prefixed
    token holds): what ``_clean`` keeps as it is, written as the encoder writes it, without either.
    """
    if len(arguments) > _PLAIN_ITEMS:
        return None
    parts = []
    for key, item in arguments.items():
        if type(key) is not str or len(key) > max_chars or len(key) > _JUDGED_KEY_CHARS or _judged_key(key):
            return None
        kind = type(item)
        if kind is str:
            if (
                len(item) >= _MIN_RUN_CHARS
                or len(item) > max_chars
                or not item.isascii()
                or "-" in item
                or "_" in item
                or "b" in item
                or "B" in item
                or "AKIA" in item
            ):
                return None
            parts.append(f"{encode_basestring(key)}: {encode_basestring(item)}")
        elif kind is int:
            parts.append(f"{encode_basestring(key)}: {int.__repr__(item)}")
        else:
            return None
    return "{" + ", ".join(parts) + "}"


# Arguments with more items than this are summarized the general way (a plain summary would be cut anyway).
_PLAIN_ITEMS = 8


def redact_arguments(value: Any) -> Any:
    """``value`` (decoded JSON) with its secrets replaced by ``"[redacted]"``; nothing is shortened.

    The one redaction for every place that shows a call's arguments (the audit log, ``toolgate
    approvals``): values under secret-looking keys and strings that look like tokens or keys, at any
    depth below ``_MAX_DEPTH``.
    """
    return _clean(value, None, 0)


def is_secret_key(key: str) -> bool:
    """Whether values under ``key`` are treated as secrets."""
    lowered = key.lower()
    return any(part in lowered for part in SECRET_KEY_PARTS)


def redact_text(text: str) -> str:
    """``text`` with every token- or key-looking part replaced by ``"[redacted]"``.

    A string that is nothing but such a part becomes ``"[redacted]"`` as a whole.
    """
    if len(text) < _MIN_RUN_CHARS and _PREFIXED_TOKEN.search(text) is None:
        return text  # what the two searches below would find nothing in: one search instead of four
    stripped = text.strip()
    if _PREFIXED_TOKEN.match(stripped) or (_WHOLE_RUN.fullmatch(stripped) and _looks_random(stripped)):
        return REDACTED
    text = _PREFIXED_TOKEN.sub(REDACTED, text)
    return _LONG_RUN.sub(lambda m: REDACTED if _looks_random(m.group()) else m.group(), text)


# Key names repeat from call to call: each short one is judged once (bounded, so odd keys cannot grow it).
_judged_key = functools.lru_cache(maxsize=4096)(is_secret_key)
_JUDGED_KEY_CHARS = 64


_PLAIN = frozenset({type(None), bool, int, float})


def _clean(value: Any, max_chars: int | None, depth: int) -> Any:
    kind = type(value)
    if kind is str:
        if (
            len(value) < _MIN_RUN_CHARS
            and (max_chars is None or len(value) <= max_chars)
            and _PREFIXED_TOKEN.search(value) is None
        ):
            return value  # what the general way below keeps whole: too short to be a key, no token in it
    elif kind in _PLAIN or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        start = _scanned_start(value, max_chars)
        return _truncate(redact_text(start) + (ELLIPSIS if len(start) < len(value) else ""), max_chars)
    if depth >= _MAX_DEPTH:
        return ELLIPSIS
    if kind is dict or isinstance(value, Mapping):
        cleaned: dict[str, Any] = {}
        for key, item in value.items():
            text = key if type(key) is str else str(key)
            name = text if max_chars is None or len(text) <= max_chars else _truncate(text, max_chars)
            if _judged_key(text) if len(text) <= _JUDGED_KEY_CHARS else is_secret_key(text):
                cleaned[name] = REDACTED
            elif (
                type(item) is str
                and len(item) < _MIN_RUN_CHARS
                and (max_chars is None or len(item) <= max_chars)
                and _PREFIXED_TOKEN.search(item) is None
            ):
                cleaned[name] = item  # what ``_clean`` keeps whole (its first case), kept without the call
            else:
                cleaned[name] = _clean(item, max_chars, depth + 1)
        return cleaned
    if isinstance(value, list | tuple | set | frozenset):
        return [_clean(item, max_chars, depth + 1) for item in value]
    if isinstance(value, bytes | bytearray):
        return f"<{len(value)} bytes>"
    return _truncate(redact_text(str(value)), max_chars)


def _scanned_start(text: str, max_chars: int | None) -> str:
    """What of ``text`` a summary searches: all of it, or the start of a long one (``max_chars`` None: all)."""
    if max_chars is None or len(text) <= _SCANNED_CHARS:
        return text
    start = text[:_SCANNED_CHARS]
    if _RUN_CHAR.match(text, _SCANNED_CHARS):
        start = _TRAILING_RUN.sub("", start)  # a run the cut goes through, too short here to be judged: dropped
    return start


def _looks_random(run: str) -> bool:
    if _HEX.fullmatch(run):
        return True
    # Random base64 holds a "/" about once in 64 characters; a path far more often.
    if run.startswith("/") or run.count("/") * 16 > len(run):
        return False
    if not (any(c.isupper() for c in run) and any(c.islower() for c in run) and any(c.isdigit() for c in run)):
        return False
    stretches = [len(list(group)) for _, group in itertools.groupby(run, _char_class)]
    wordlike = sum(length for length in stretches if length >= 3)
    return wordlike < _MAX_WORDLIKE_SHARE * len(run)


def _char_class(char: str) -> int:
    if char.isupper():
        return 0
    if char.islower():
        return 1
    if char.isdigit():
        return 2
    return 3


def _truncate(text: str, max_chars: int | None) -> str:
    if max_chars is None or len(text) <= max_chars:
        return text
    return text[: max(max_chars - 1, 0)] + ELLIPSIS

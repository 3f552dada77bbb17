"""The ``instructions`` an agent is given: those of the servers behind the gateway, merged.

An agent's ``initialize`` result (handshake era) or ``server/discover`` result (2026-07-28) carries
the instructions of each ready server it may use, in configuration order, each under a heading
naming the server and the prefix its tools and prompts carry. A lone server with an empty prefix
gives its text unchanged, as the agent would get it directly. Together they are bounded by
``MAX_INSTRUCTIONS_CHARS``: beyond it the longest are cut to fair shares, each ending with a note.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# They reach the model's context in every session: enough for a few thorough servers, not a flood.
MAX_INSTRUCTIONS_CHARS = 16_000
# Room kept for the note that ends a cut text (the note is never longer).
NOTE_ROOM = 100
SEPARATOR = "\n\n"


@dataclass(frozen=True)
class ServerInstructions:
    """One server's instructions, and what the agent needs to tell its tools from the others'."""

    server: str
    prefix: str
    text: str


def merged_instructions(given: Sequence[ServerInstructions]) -> str | None:
    """The instructions to give an agent that may use the servers of ``given`` (None: there are none)."""
    if not given:
        return None
    lone = len(given) == 1 and not given[0].prefix
    headings = [""] if lone else [_heading(one) for one in given]
    overhead = sum(map(len, headings)) + len(SEPARATOR) * (len(given) - 1)
    texts = _fit([one.text for one in given], MAX_INSTRUCTIONS_CHARS - overhead)
    return SEPARATOR.join(heading + text for heading, text in zip(headings, texts, strict=True))


def _heading(one: ServerInstructions) -> str:
    named = f" (its tools and prompts are named {one.prefix}…)" if one.prefix else ""
    return f"## {one.server}{named}{SEPARATOR}"


def _fit(texts: list[str], room: int) -> list[str]:
    """``texts`` within ``room`` characters together: the longest cut to equal shares of what is left."""
    if sum(map(len, texts)) <= room:
        return texts
    fitted = list(texts)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    for done, i in enumerate(order):
        share = min(len(texts[i]), max(room // (len(order) - done), 0))
        if share < len(texts[i]):
            keep = max(share - NOTE_ROOM, 0)
            cut = len(texts[i]) - keep
            note = f"\n[… {cut} more characters cut by Toolgate: {MAX_INSTRUCTIONS_CHARS} is the limit for all servers]"
            fitted[i] = texts[i][:keep] + note
        room -= share
    return fitted

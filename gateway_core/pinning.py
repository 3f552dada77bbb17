"""Pinned tools (rug-pull protection): each tool's definition as the person accepted it, and what changed since.

The first time Toolgate lists a server's tools, each tool's definition (title, description, input and
output schemas, annotations) is pinned as it is. When that server later lists a tool whose definition
differs from its pin, the tool is *changed*: every agent must ask before calling it (``held_for_review``)
until the person accepts the new definition (``ToolPins.accept``), which pins it. A tool first seen on a
server whose tools were pinned before is pinned at once and listed as *new* (without asking) when some
agent may call it without being asked, until the person acknowledges it the same way. A server going
back to its pinned definition ends the change. Pins and open changes live in ``PinFile`` and survive
restarts; a server that is down or removed keeps its pins.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import mcp_types as types

from gateway_core.errors import ToolgateError
from gateway_core.policy import Decision, Effect

# What a tool's definition is made of (the names MCP's tools/list uses); everything else (_meta, icons,
# execution) may change without review.
DEFINITION_FIELDS = ("title", "description", "inputSchema", "outputSchema", "annotations")
# The rule text a call held for review is decided by, in prompts, refusals and the audit log.
CHANGED_RULE = "changed definition → ask"


class PinError(ToolgateError):
    """There is no change to accept (the tool is unknown, unchanged, or changed again since it was shown)."""


class ChangedAgain(PinError):
    """The tool changed again since the definition the person reviewed was shown; nothing was accepted."""


class ChangeKind(StrEnum):
    """What the person is asked to review about a tool."""

    CHANGED = "changed"
    """Its definition differs from the one pinned: calls ask until it is accepted."""
    NEW = "new"
    """It appeared on a server whose tools were pinned before, and some agent may call it unasked."""


def definition(tool: types.Tool) -> dict[str, Any]:
    """The parts of ``tool`` that are pinned, as MCP spells them in JSON (absent parts left out)."""
    dumped = tool.model_dump(mode="json", by_alias=True, exclude_none=True)
    return {key: dumped[key] for key in DEFINITION_FIELDS if key in dumped}


def fingerprint(pinned: Mapping[str, Any]) -> str:
    """A SHA-256 (hex) of a definition in canonical JSON: the same whatever order its keys come in."""
    canonical = json.dumps(pinned, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def changed_fields(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> tuple[str, ...]:
    """Which parts of a definition differ between ``old`` and ``new`` (all present ones for a new tool)."""
    if old is None:
        return tuple(key for key in DEFINITION_FIELDS if key in new)
    return tuple(key for key in DEFINITION_FIELDS if old.get(key) != new.get(key))


@dataclass(frozen=True)
class Pin:
    """A tool's accepted definition and when it was pinned (POSIX timestamp)."""

    definition: dict[str, Any]
    pinned_at: float

    @property
    def fingerprint(self) -> str:
        """The definition's fingerprint."""
        return fingerprint(self.definition)


@dataclass(frozen=True)
class ToolChange:
    """One tool waiting for the person's review.

    Attributes:
        server: the configured server's name.
        tool: the tool's name on that server.
        kind: changed or new.
        old: the accepted definition (None for a new tool).
        new: the definition the server lists now.
        seen_at: when Toolgate first listed ``new`` (POSIX timestamp).
    """

    server: str
    tool: str
    kind: ChangeKind
    old: dict[str, Any] | None
    new: dict[str, Any]
    seen_at: float

    @property
    def fingerprint(self) -> str:
        """The fingerprint of ``new``: what accepting pins."""
        return fingerprint(self.new)

    @property
    def fields(self) -> tuple[str, ...]:
        """The parts of the definition that differ (see ``changed_fields``)."""
        return changed_fields(self.old, self.new)

    @property
    def sentence(self) -> str:
        """What happened, for the audit log and notifications."""
        name = f"{self.server}/{self.tool}"
        if self.kind is ChangeKind.NEW:
            return f"server {self.server!r} lists a new tool {name}, which an agent may call without being asked"
        return (
            f"server {self.server!r} changed the {', '.join(self.fields)} of tool {name} since it was accepted: "
            f"every agent must ask before calling it until the person accepts the change "
            f"(`toolgate tools changes`, `toolgate tools accept {name}`)"
        )


@dataclass(frozen=True)
class HeldForReview(Decision):
    """A decision turned to *ask* because the tool's definition changed since it was accepted."""

    allowed_by: str = ""

    @property
    def rule_text(self) -> str:
        """``changed definition → ask``, then the rule that would have decided, in brackets."""
        return f"{CHANGED_RULE} ({self.allowed_by})"


def held_for_review(decision: Decision, change: ToolChange | None) -> Decision:
    """``decision``, or *ask* with the reason saying so when the tool's definition changed since it was accepted.

    A deny stays a deny; an ask gains the reason; an allow becomes an ask.
    """
    if change is None or change.kind is not ChangeKind.CHANGED or decision.effect is Effect.DENY:
        return decision
    name = f"{change.server}/{change.tool}"
    reason = (
        f"the definition of {name} changed since it was accepted ({', '.join(change.fields)}), so every call asks "
        f"until the person reviews and accepts the change (Servers ▸ {change.server} ▸ Changes, or "
        f"`toolgate tools changes` and `toolgate tools accept {name}`); otherwise {decision.reason}"
    )
    return HeldForReview(Effect.ASK, decision.rule, reason, decision.looked_at, allowed_by=decision.rule_text)


# Whether a tool first seen on a known server is worth showing as new: given the server and tool names.
AnnounceNew = Callable[[str, str], bool]


class ToolPins:
    """Every server's pinned tool definitions and the changes waiting for review (in memory; see ``PinFile``).

    Args:
        pins: server → tool → pin, as loaded.
        changes: server → tool → change, as loaded.
        clock: the time of day (POSIX timestamp) pins and changes are stamped with.
    """

    def __init__(
        self,
        pins: Mapping[str, Mapping[str, Pin]] | None = None,
        changes: Mapping[str, Mapping[str, ToolChange]] | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._pins = {server: dict(tools) for server, tools in (pins or {}).items()}
        self._changes = {server: dict(tools) for server, tools in (changes or {}).items()}
        self._clock = clock
        self.version = 0  # counts edits, so a writer knows whether there is anything to save

    def observe(self, server: str, tools: Iterable[types.Tool], announce_new: AnnounceNew) -> list[ToolChange]:
        """Compare what ``server`` lists now with its pins: pin what is new, note what changed.

        Args:
            server: the server that listed ``tools``.
            tools: every tool it lists now.
            announce_new: whether a tool first seen on a server known before is shown as new.

        Returns:
            The changes seen for the first time (a definition not seen before), for the audit log.
        """
        known = self._pins.get(server)
        first_listing = not known
        pins = self._pins.setdefault(server, {})
        changes = self._changes.setdefault(server, {})
        fresh: list[ToolChange] = []
        now = self._clock()
        for tool in tools:
            current = definition(tool)
            pin = pins.get(tool.name)
            open_change = changes.get(tool.name)
            if pin is None:
                pins[tool.name] = Pin(current, now)
                self.version += 1
                if not first_listing and announce_new(server, tool.name):
                    change = ToolChange(server, tool.name, ChangeKind.NEW, None, current, now)
                    changes[tool.name] = change
                    fresh.append(change)
            elif pin.definition == current:
                if open_change is not None and open_change.kind is ChangeKind.CHANGED:
                    del changes[tool.name]  # the server went back to what was accepted
                    self.version += 1
            elif open_change is None or open_change.new != current or open_change.kind is ChangeKind.NEW:
                change = ToolChange(server, tool.name, ChangeKind.CHANGED, pin.definition, current, now)
                changes[tool.name] = change
                fresh.append(change)
                self.version += 1
        if not changes:
            del self._changes[server]
        return fresh

    def change(self, server: str, tool: str) -> ToolChange | None:
        """The change of ``server``'s tool ``tool`` waiting for review, if any."""
        changes = self._changes.get(server)
        return None if changes is None else changes.get(tool)

    def changes(self) -> list[ToolChange]:
        """Every change waiting for review, by server and tool."""
        return sorted(
            (change for tools in self._changes.values() for change in tools.values()),
            key=lambda change: (change.server, change.tool),
        )

    def accept(self, server: str, tool: str | None = None, *, seen: str | None = None) -> list[ToolChange]:
        """Pin the definitions the person reviewed: one tool's, or (``tool`` None) every change of ``server``.

        Args:
            server: the server.
            tool: the tool; None for all of the server's changes.
            seen: the fingerprint of the definition the person was shown; when the server changed the
                tool again since, nothing is accepted.

        Returns:
            The changes accepted.

        Raises:
            PinError: there is nothing to accept, or ``seen`` is not what the server lists now.
        """
        changes = self._changes.get(server, {})
        names = list(changes) if tool is None else [tool]
        if not names or any(name not in changes for name in names):
            what = f"server {server!r}" if tool is None else f"tool {server}/{tool}"
            raise PinError(f"{what} has no change waiting for review; `toolgate tools changes` lists them")
        if seen is not None and tool is not None and changes[tool].fingerprint != seen:
            raise ChangedAgain(f"tool {server}/{tool} changed again since it was shown; review it again")
        accepted = [changes.pop(name) for name in names]
        now = self._clock()
        for change in accepted:
            self._pins.setdefault(server, {})[change.tool] = Pin(change.new, now)
        if not changes:
            self._changes.pop(server, None)
        self.version += 1
        return accepted

    def pins(self) -> dict[str, dict[str, Pin]]:
        """A copy of every pin: server → tool → pin."""
        return {server: dict(tools) for server, tools in self._pins.items()}

    def to_json(self) -> dict[str, Any]:
        """Everything to save, as ``PinFile`` writes it."""
        return {
            "version": 1,
            "pins": {
                server: {name: {"definition": p.definition, "pinned_at": p.pinned_at} for name, p in tools.items()}
                for server, tools in self._pins.items()
            },
            "changes": [change_to_json(change) for change in self.changes()],
        }

    @classmethod
    def from_json(cls, document: Any, *, clock: Callable[[], float] = time.time) -> ToolPins:
        """Read what ``to_json`` wrote.

        Raises:
            ValueError: ``document`` is not such a document.
        """
        if not isinstance(document, dict) or document.get("version") != 1:
            raise ValueError("expected a pins document of version 1")
        pins: dict[str, dict[str, Pin]] = {}
        for server, tools in _mapping(document.get("pins", {})).items():
            for name, pin in _mapping(tools).items():
                entry = _mapping(pin)
                pins.setdefault(server, {})[name] = Pin(_mapping(entry["definition"]), float(entry["pinned_at"]))
        changes: dict[str, dict[str, ToolChange]] = {}
        for item in document.get("changes", []):
            change = change_from_json(_mapping(item))
            changes.setdefault(change.server, {})[change.tool] = change
        return cls(pins, changes, clock=clock)


def definition_diff(name: str, old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[str]:
    """A unified diff of two definitions of tool ``name`` as indented JSON with sorted keys (``old`` None: new).

    Returns:
        The diff's lines, without line ends: ``--- name (accepted)``, ``+++ name (now)``, hunks.
    """
    before = [] if old is None else _json_lines(old)
    old_label = f"{name} (not listed before)" if old is None else f"{name} (accepted)"
    return list(difflib.unified_diff(before, _json_lines(new), old_label, f"{name} (now)", lineterm=""))


def _json_lines(value: Mapping[str, Any]) -> list[str]:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False).splitlines()


def change_to_json(change: ToolChange) -> dict[str, Any]:
    """One change as the pins file and the control channel carry it."""
    return {
        "server": change.server,
        "tool": change.tool,
        "kind": change.kind.value,
        "fields": list(change.fields),
        "accepted": change.old,
        "now": change.new,
        "fingerprint": change.fingerprint,
        "seen_at": change.seen_at,
    }


def change_from_json(item: dict[str, Any]) -> ToolChange:
    """One change as ``change_to_json`` wrote it.

    Raises:
        ValueError, KeyError, TypeError: ``item`` is not such a change.
    """
    old = item.get("accepted")
    return ToolChange(
        server=str(item["server"]),
        tool=str(item["tool"]),
        kind=ChangeKind(item["kind"]),
        old=None if old is None else _mapping(old),
        new=_mapping(item["now"]),
        seen_at=float(item["seen_at"]),
    )


def _mapping(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"expected an object, found {type(value).__name__}")
    return value

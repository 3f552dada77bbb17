"""Per-agent policy: which tools each agent may call (allow), must ask about (ask), or may not see (deny).

A rule's ``match`` is ``"server-glob/tool-glob"`` (case-sensitive fnmatch ``*``, ``?``, ``[...]``). For one call
the most specific matching rule decides, in this order:

1. an exact tool: ``fs/write_file`` (no glob characters, except single ones escaped as ``[*]``, ``[?]``, ``[[]``,
   ``[]]`` for names that hold them: ``fs/get[*]`` is the tool named ``get*`` alone, see ``literal_match``);
2. a tool glob inside one server: ``github/delete_*`` (server literal, tool part a glob other than ``*``);
3. tools across servers: ``*/read_*``, ``*/write_file`` (server part a glob, tool part not ``*``);
4. a whole server: ``github/*``;
5. servers by glob: ``git*/*``, ``*/*``;
6. the agent's default.

A rule may be narrowed by the tool's annotations (``"annotations"``, e.g. ``{"readOnlyHint": true}``), by
conditions on the call's arguments (``"when"``, ``gateway_core.conditions``) and by an expiry (``"expires"``, a timed
grant). Within one step, the more narrowed rule comes first (annotations, conditions and an expiry count one each):
``fs/write_file → allow when path is under ~/p`` is tried before ``fs/write_file → ask``, ``*/* → allow for tools
marked readOnlyHint=true`` before ``*/* → ask``, and the person's "allow for 1 hour" wins over the rule that asked
them until it expires. Between equally narrowed rules of one step deny > ask > allow; among rules with the same
effect the first listed is named.

Annotation rules keep their place in the steps above: ``*/*`` with ``{"readOnlyHint": true}`` is a step-5 rule, so a
rule naming a server or a tool (``github/*``, ``fs/write_file``) still decides before it; "read-only tools: allow;
destructive: ask" is two ``*/*`` rules with the default (or a plain ``*/*`` rule) for the rest. A rule's annotations
are compared with the hints (``readOnlyHint``, ``destructiveHint``, ``idempotentHint``, ``openWorldHint``) the
server states in the tool's definition; each must be stated with the rule's value. A hint the server leaves out is
unknown, never read as the MCP spec's default (readOnlyHint false, destructiveHint true, idempotentHint false,
openWorldHint true): a tool with no annotations matches no annotation rule, whatever its effect, and is decided by
the rules after it. Annotations are the server's word, and a server may misstate them; an annotation rule is only as
good as the server it trusts. Prompts and resources have no annotations, so annotation rules never decide for them.

A rule *applies* when it matches, is in force and its conditions hold; the first rule in this order that applies
decides, so a call whose arguments do not meet a rule's conditions falls through to the next rule. An expired rule
is no rule at all: ``evaluate`` compares ``expires`` with the time it is given, so an expired grant never allows
even before it is removed from the config. Conditions that cannot be checked (a missing argument, a wrong type,
no arguments at all as for prompts and resources) fail closed: such an ``allow`` rule does not apply, such an
``ask`` or ``deny`` rule does. For what an agent is *shown* (``listing``), a rule with conditions counts unless it
denies, so a tool that some calls may use is listed. (An agent's call limits, ``gateway_core.rate_limits``, are
counted before any rule is looked at.)

Steps 3 and 5 place server-glob rules: a rule that picks out tools says more about a call than one taking a whole
server (so ``*/delete_*`` → deny is not undone by ``github/*`` → allow), and at the same tool level a named server
beats a server glob. ``AgentPolicy`` compiles one agent's rules once; ``evaluate`` is the plain scan it must equal.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC
from enum import IntEnum, StrEnum
from functools import cached_property
from typing import Any, Literal, get_args

from pydantic import AwareDatetime, BaseModel, ConfigDict, StrictBool, field_validator, model_validator

from gateway_core.conditions import Condition, conditions_hold, when_text

Hint = Literal["readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"]
HINTS: tuple[Hint, ...] = get_args(Hint)
"""The tool annotations rules may match on, as the MCP spec names them."""


class Effect(StrEnum):
    """What happens when an agent calls a tool."""

    ALLOW = "allow"
    ASK = "ask"
    DENY = "deny"


class Rank(IntEnum):
    """How specific a rule's ``match`` is: the steps of the module docstring; a lower rank wins."""

    EXACT_TOOL = 1
    TOOL_GLOB = 2
    TOOLS_ACROSS_SERVERS = 3
    WHOLE_SERVER = 4
    SERVER_GLOB = 5
    DEFAULT = 6


# Ties fail closed: of two equally specific rules, the more restrictive one decides.
_STRENGTH = {Effect.DENY: 0, Effect.ASK: 1, Effect.ALLOW: 2}
_GLOB_CHARACTERS = frozenset("*?[]")
MATCH_SHAPE = 'expected "server/tool" with glob patterns'
_TOOL_VERBS = {Effect.ALLOW: "may call", Effect.ASK: "must ask before calling", Effect.DENY: "may not call"}
_SERVER_VERBS = {Effect.ALLOW: "may use", Effect.ASK: "must ask before using", Effect.DENY: "may not use"}


def check_match(match: str) -> str | None:
    """Say what is wrong with a rule's ``match``, or None if it is valid.

    Args:
        match: the ``"server-glob/tool-glob"`` text.

    Returns:
        One sentence, e.g. ``expected "server/tool" with glob patterns, found "github"``, or None.
    """
    found = f"{MATCH_SHAPE}, found {json.dumps(match)}"
    if match.count("/") != 1:
        return found
    server, tool = match.split("/")
    for part, name in ((server, "server"), (tool, "tool")):
        problem = "is empty" if not part else _check_glob(part)
        if problem is not None:
            return f"{found}: the {name} part {problem}"
    return None


class RuleSource(BaseModel):
    """Where a rule came from when Toolgate wrote it: ``{"answer": "3fa2c1", "at": "2026-…Z"}`` or ``{"imported": …}``.

    Rules written by hand carry no ``source``. A rule written by a person's answer has ``answer``, the
    approval request's id (as in ``toolgate approvals``), ``at`` when it was answered, and ``replaced``, the
    effect of the plain rule for the same match that the answer overwrote, which undoing the answer puts
    back. A rule written by an import that allowed a client's agent the servers the client had has
    ``imported``, the client's id (``cursor``, ``vscode`` …), and ``at`` when it was imported. Exactly one of
    ``answer`` and ``imported`` is set.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    answer: str | None = None
    imported: str | None = None
    at: AwareDatetime
    replaced: Effect | None = None

    @model_validator(mode="after")
    def _answer_or_import(self) -> RuleSource:
        if (self.answer is None) == (self.imported is None):
            raise ValueError('expected either "answer" (the approval answer that wrote the rule) or "imported"')
        return self


class Rule(BaseModel):
    """One ``rules`` entry of an agent: ``{"match": "server-glob/tool-glob", "effect": "allow|ask|deny"}``.

    Optional keys: ``annotations``: hints the tool's server must state, each with this value, e.g.
    ``{"readOnlyHint": true}`` (see the module docstring); ``when``: conditions on the call's arguments
    (``gateway_core.conditions``);
    ``expires`` (an ISO 8601 time with a zone, e.g. ``"2026-12-02T18:55:00Z"``): the rule
    applies until then and is removed from the config afterwards (a timed grant); ``source``: where it
    came from (``RuleSource``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    match: str
    effect: Effect
    annotations: dict[Hint, StrictBool] | None = None
    when: dict[str, Condition] | None = None
    expires: AwareDatetime | None = None
    source: RuleSource | None = None

    @field_validator("when")
    @classmethod
    def _named_conditions(cls, when: dict[str, Condition] | None) -> dict[str, Condition] | None:
        if when is not None and (not when or any(not name for name in when)):
            raise ValueError("expected one or more argument names, each with its condition")
        return when

    @field_validator("annotations")
    @classmethod
    def _some_hints(cls, annotations: dict[Hint, bool] | None) -> dict[Hint, bool] | None:
        if annotations is not None and not annotations:
            raise ValueError(f"expected one or more of {', '.join(HINTS)}, each true or false")
        return annotations

    @field_validator("match")
    @classmethod
    def _valid_match(cls, match: str) -> str:
        problem = check_match(match)
        if problem is not None:
            raise ValueError(problem)
        return match

    @property
    def server_pattern(self) -> str:
        """The part of ``match`` before the ``/``."""
        return self.match.partition("/")[0]

    @property
    def tool_pattern(self) -> str:
        """The part of ``match`` after the ``/``."""
        return self.match.partition("/")[2]

    @property
    def rank(self) -> Rank:
        """How specific this rule is (see the module docstring)."""
        return _rank(self.server_pattern, self.tool_pattern)

    @cached_property
    def text(self) -> str:
        """The rule as people read it: ``github/delete_* → deny``, ``fs/x → allow until 2026-12-02 18:55:00 UTC``."""
        return f"{self.match} → {self.effect.value}{self.narrowing_text}"

    @property
    def narrowing_text(self) -> str:
        """What narrows the rule, e.g. `` until 2026-12-02 18:55:00 UTC``; empty when nothing does."""
        text = "" if self.annotations is None else f" for tools marked {hints_text(self.annotations)}"
        if self.when is not None:
            text += f" when {when_text(self.when)}"
        if self.expires is not None:
            text += f" until {self.expires.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
        return text

    @property
    def expires_at(self) -> float | None:
        """``expires`` as a POSIX timestamp, or None for a rule that does not expire."""
        return None if self.expires is None else self.expires.timestamp()

    @property
    def narrowed(self) -> int:
        """How many narrowings (annotations, conditions, an expiry) it has; in one step the more narrowed first."""
        return int(self.annotations is not None) + int(self.when is not None) + int(self.expires is not None)

    def fits(self, hints: Mapping[str, bool] | None) -> bool:
        """Whether a tool whose server states ``hints`` (None: none) has every annotation this rule asks for."""
        wanted = self.annotations
        if wanted is None:
            return True
        if hints is None:
            return False
        return all(hints.get(name) is value for name, value in wanted.items())

    def in_force(self, now: float) -> bool:
        """Whether the rule applies at ``now`` (a POSIX timestamp): it has no expiry or it is still ahead."""
        expires_at = self.expires_at
        return expires_at is None or now < expires_at

    def matches(self, server: str, tool: str) -> bool:
        """Whether this rule applies to ``server``'s tool ``tool``."""
        return fnmatch.fnmatchcase(server, self.server_pattern) and fnmatch.fnmatchcase(tool, self.tool_pattern)

    def matches_server(self, server: str) -> bool:
        """Whether this rule's server part matches ``server`` (whatever its tool part)."""
        return fnmatch.fnmatchcase(server, self.server_pattern)


@dataclass(frozen=True)
class Decision:
    """What one agent may do with one tool (or one server's resources and prompts), and why.

    Attributes:
        effect: allow, ask or deny.
        rule: the rule that decided, or None when the agent's default did.
        reason: one sentence naming the agent, the tool and ``rule_text``; shown in the GUI, the audit
            log and the error an agent sees.
        looked_at: the arguments that rules' conditions looked at on the way to this decision.
    """

    effect: Effect
    rule: Rule | None
    reason: str
    looked_at: tuple[str, ...] = ()

    @cached_property  # a decision is kept and read for every call it decides (``CompiledPolicy.evaluate``)
    def rule_text(self) -> str:
        """The deciding rule, e.g. ``github/delete_* → deny``, or ``default → ask``."""
        return f"default → {self.effect.value}" if self.rule is None else self.rule.text

    @property
    def rank(self) -> Rank:
        """Which step of the precedence decided (``Rank.DEFAULT`` for the agent's default)."""
        return Rank.DEFAULT if self.rule is None else self.rule.rank


def evaluate(
    agent_id: str,
    default: Effect,
    rules: Sequence[Rule],
    server: str,
    tool: str,
    *,
    now: float,
    arguments: Mapping[str, Any] | None = None,
    annotations: Mapping[str, bool] | None = None,
    listing: bool = False,
) -> Decision:
    """Decide whether an agent may call a tool: the plain reading of the precedence in the module docstring.

    Args:
        agent_id: the agent, named in the reason.
        default: the agent's default effect.
        rules: the agent's rules, in file order.
        server: the configured server's name.
        tool: the tool's name on that server (without Toolgate's prefix).
        now: the time of the call (POSIX timestamp); rules whose ``expires`` is not after it do not apply.
        arguments: the call's arguments, which rules' ``when`` conditions look at; None when there are
            none to look at (then no rule with conditions allows).
        annotations: the hints the tool's server states (``tool_hints``); None when it states none (then no rule
            with ``annotations`` matches).
        listing: decide what the agent is shown rather than one call: a rule with conditions counts
            unless it denies (a tool some calls may use is listed).

    Returns:
        The effect, the rule that decided it (None for the default) and a one-sentence reason.
    """
    matching = [
        (index, rule)
        for index, rule in enumerate(rules)
        if rule.in_force(now) and rule.matches(server, tool) and rule.fits(annotations)
    ]
    matching.sort(key=lambda pair: (pair[1].rank, *_order(pair[1]), pair[0]))
    skipped: list[Rule] = []
    for _, rule in matching:
        verdict = _verdict(rule, arguments, listing)
        if verdict is not False:
            return _decision(agent_id, _TOOL_VERBS, f"{server}/{tool}", rule, default, verdict, skipped)
        skipped.append(rule)
    return _decision(agent_id, _TOOL_VERBS, f"{server}/{tool}", None, default, True, skipped)


def _order(rule: Rule) -> tuple[int, int]:
    """Within one step: the more narrowed rule first, then the stronger effect (file order breaks the last tie)."""
    return -rule.narrowed, _STRENGTH[rule.effect]


def _verdict(rule: Rule, arguments: Mapping[str, Any] | None, listing: bool) -> bool | None:
    """Whether a matching rule in force applies.

    True; False (the call falls through to the next rule); or None: it applies although its conditions
    could not be checked (it asks or denies: fail closed).
    """
    when = rule.when
    if when is None:
        return True
    if listing:
        return rule.effect is not Effect.DENY
    holds = conditions_hold(when, arguments)
    if holds is None:
        return False if rule.effect is Effect.ALLOW else None
    return holds


_Matcher = Callable[[str], object]
_NEVER = float("inf")
# How many decisions an agent's policy keeps (one per tool called); past that it starts over.
MAX_KEPT_DECISIONS = 4096


class AgentPolicy:
    """One agent's rules, compiled once (globs translated, exact rules indexed) so each decision is cheap.

    Gives the same decisions as ``evaluate``. A call's decision that no rule's conditions took part in is
    kept and given again for the same server, tool and hints until its rule expires (a policy is compiled
    anew whenever the agent's rules change).

    Args:
        agent_id: the agent, named in every reason.
        default: the agent's default effect.
        rules: the agent's rules, in file order.
    """

    def __init__(self, agent_id: str, default: Effect, rules: Sequence[Rule]) -> None:
        self.agent_id = agent_id
        self.default = default
        self.rules = tuple(rules)
        # Each candidate carries its expiry (inf for none), compared with the call's time at each decision.
        self._exact_tools: dict[tuple[str, str], list[tuple[float, Rule]]] = {}
        self._tool_globs: dict[str, list[tuple[_Matcher, float, Rule]]] = {}
        self._tools_across_servers: list[tuple[_Matcher, _Matcher, float, Rule]] = []
        self._whole_servers: dict[str, list[tuple[float, Rule]]] = {}
        self._server_globs: list[tuple[_Matcher, float, Rule]] = []
        # Within a step: most narrowed first, then strongest effect, then file order; the first that applies decides.
        ordered = sorted(enumerate(self.rules), key=lambda pair: (*_order(pair[1]), pair[0]))
        for _, rule in ordered:
            server, tool = rule.server_pattern, rule.tool_pattern
            rank = rule.rank
            until = _NEVER if rule.expires_at is None else rule.expires_at
            if rank is Rank.EXACT_TOOL:
                self._exact_tools.setdefault((_name(server), _name(tool)), []).append((until, rule))
            elif rank is Rank.TOOL_GLOB:
                self._tool_globs.setdefault(_name(server), []).append((_compile(tool), until, rule))
            elif rank is Rank.TOOLS_ACROSS_SERVERS:
                self._tools_across_servers.append((_compile(server), _compile(tool), until, rule))
            elif rank is Rank.WHOLE_SERVER:
                self._whole_servers.setdefault(_name(server), []).append((until, rule))
            else:
                self._server_globs.append((_compile(server), until, rule))
        # One regex per glob bucket says at once whether any of its globs can match: most calls match none.
        self._any_tool_glob = {
            server: _any_of(rule.tool_pattern for _, _, rule in rules) for server, rules in self._tool_globs.items()
        }
        self._any_across = _any_of(rule.tool_pattern for _, _, _, rule in self._tools_across_servers)
        self._any_server_glob = _any_of(rule.server_pattern for _, _, rule in self._server_globs)
        # Call decisions no rule's conditions took part in, by server and tool: they hold for any arguments,
        # for the same hints, from when they were made until the deciding rule expires.
        self._decided: dict[tuple[str, str], tuple[float, float, Mapping[str, bool] | None, Decision]] = {}

    def evaluate(
        self,
        server: str,
        tool: str,
        *,
        now: float,
        arguments: Mapping[str, Any] | None = None,
        annotations: Mapping[str, bool] | None = None,
        listing: bool = False,
    ) -> Decision:
        """Decide whether this agent may call ``server``'s tool ``tool``.

        Args:
            server: the configured server's name.
            tool: the tool's name on that server (without Toolgate's prefix).
            now: the time of the call (POSIX timestamp).
            arguments: the call's arguments (see the module-level ``evaluate``).
            annotations: the hints the tool's server states (see the module-level ``evaluate``).
            listing: decide what the agent is shown (see the module-level ``evaluate``).

        Returns:
            The same decision as the module-level ``evaluate``.
        """
        if listing:
            return self._evaluate(server, tool, now, arguments, annotations, listing, [])
        known = self._decided.get((server, tool))
        if known is not None and known[0] <= now < known[1] and known[2] == annotations:
            return known[3]
        skipped: list[Rule] = []
        decision = self._evaluate(server, tool, now, arguments, annotations, listing, skipped)
        rule = decision.rule
        if not skipped and (rule is None or rule.when is None):
            if len(self._decided) >= MAX_KEPT_DECISIONS:
                self._decided.clear()
            until = _NEVER if rule is None or rule.expires_at is None else rule.expires_at
            self._decided[(server, tool)] = (now, until, None if annotations is None else dict(annotations), decision)
        return decision

    def _evaluate(
        self,
        server: str,
        tool: str,
        now: float,
        arguments: Mapping[str, Any] | None,
        annotations: Mapping[str, bool] | None,
        listing: bool,
        skipped: list[Rule],
    ) -> Decision:
        for until, rule in self._exact_tools.get((server, tool), ()):
            if now < until and (rule.annotations is None or rule.fits(annotations)):
                verdict = True if rule.when is None else _verdict(rule, arguments, listing)
                if verdict is not False:
                    return _decision(
                        self.agent_id, _TOOL_VERBS, f"{server}/{tool}", rule, self.default, verdict, skipped
                    )
                skipped.append(rule)
        any_tool_glob = self._any_tool_glob.get(server)
        for tool_glob, until, rule in self._tool_globs.get(server, ()) if any_tool_glob and any_tool_glob(tool) else ():
            if now < until and tool_glob(tool) and (rule.annotations is None or rule.fits(annotations)):
                verdict = True if rule.when is None else _verdict(rule, arguments, listing)
                if verdict is not False:
                    return _decision(
                        self.agent_id, _TOOL_VERBS, f"{server}/{tool}", rule, self.default, verdict, skipped
                    )
                skipped.append(rule)
        for server_glob, tool_glob, until, rule in self._tools_across_servers if self._any_across(tool) else ():
            if (
                now < until
                and server_glob(server)
                and tool_glob(tool)
                and (rule.annotations is None or rule.fits(annotations))
            ):
                verdict = True if rule.when is None else _verdict(rule, arguments, listing)
                if verdict is not False:
                    return _decision(
                        self.agent_id, _TOOL_VERBS, f"{server}/{tool}", rule, self.default, verdict, skipped
                    )
                skipped.append(rule)
        server_rule, verdict = self._server_rule(server, now, arguments, annotations, listing, skipped)
        return _decision(self.agent_id, _TOOL_VERBS, f"{server}/{tool}", server_rule, self.default, verdict, skipped)

    def evaluate_server(self, server: str, *, now: float) -> Decision:
        """Decide for ``server/*`` as a whole: what applies to that server's resources and prompts.

        Only rules whose tool part is ``*`` count (steps 4 and 5), then the default. There are no tool
        arguments to look at, so a rule with conditions never allows here.

        Args:
            server: the configured server's name.
            now: the time of the request (POSIX timestamp).
        """
        skipped: list[Rule] = []
        server_rule, verdict = self._server_rule(server, now, None, None, False, skipped)
        return _decision(self.agent_id, _SERVER_VERBS, f"server {server}", server_rule, self.default, verdict, skipped)

    def visible(self, server: str, tool: str, *, now: float, annotations: Mapping[str, bool] | None = None) -> bool:
        """Whether the agent is shown the tool (whose server states ``annotations``): some call may be allowed."""
        return self.evaluate(server, tool, now=now, annotations=annotations, listing=True).effect is not Effect.DENY

    def next_expiry(self, after: float) -> float | None:
        """When the first of this agent's timed rules expires after ``after`` (POSIX timestamps), or None."""
        return min(
            (r.expires_at for r in self.rules if r.expires_at is not None and r.expires_at > after), default=None
        )

    def _server_rule(
        self,
        server: str,
        now: float,
        arguments: Mapping[str, Any] | None,
        annotations: Mapping[str, bool] | None,
        listing: bool,
        skipped: list[Rule],
    ) -> tuple[Rule | None, bool | None]:
        for until, rule in self._whole_servers.get(server, ()):
            if now < until and (rule.annotations is None or rule.fits(annotations)):
                verdict = True if rule.when is None else _verdict(rule, arguments, listing)
                if verdict is not False:
                    return rule, verdict
                skipped.append(rule)
        for server_glob, until, rule in self._server_globs if self._any_server_glob(server) else ():
            if now < until and server_glob(server) and (rule.annotations is None or rule.fits(annotations)):
                verdict = True if rule.when is None else _verdict(rule, arguments, listing)
                if verdict is not False:
                    return rule, verdict
                skipped.append(rule)
        return None, True


def _decision(
    agent_id: str,
    verbs: Mapping[Effect, str],
    subject: str,
    rule: Rule | None,
    default: Effect,
    verdict: bool | None,
    skipped: Sequence[Rule],
) -> Decision:
    effect = default if rule is None else rule.effect
    if rule is None:
        why = f"no rule matches, so the agent's default decides (default → {default.value})"
    else:
        why = f"rule {rule.text}"
        if verdict is None:
            why += " (its conditions cannot be checked against this call's arguments, so it applies)"
    if skipped:
        why += f"; the call does not meet {' nor '.join(r.text for r in skipped)}"
    looked_at = tuple(dict.fromkeys(name for r in (*skipped, rule) if r is not None and r.when for name in r.when))
    return Decision(effect, rule, f"agent {agent_id!r} {verbs[effect]} {subject}: {why}", looked_at)


def tool_hints(annotations: Mapping[str, Any] | None) -> dict[str, bool] | None:
    """The hints a tool's annotations state (``{"readOnlyHint": True, …}``, by the spec's names), or None for none.

    Args:
        annotations: the tool's ``annotations`` as JSON (by alias); values that are not true or false are left out.
    """
    if not annotations:
        return None
    hints: dict[str, bool] = {name: value for name in HINTS if isinstance(value := annotations.get(name), bool)}
    return hints or None


def hints_text(hints: Mapping[Any, bool]) -> str:
    """Annotations as people read them in a rule: ``readOnlyHint=true, destructiveHint=false``."""
    return ", ".join(f"{name}={json.dumps(value)}" for name, value in hints.items())


def literal_match(server: str, tool: str) -> str:
    """The ``match`` that means exactly this server's tool, whatever characters their names hold.

    Each glob character is escaped as a one-character set (``get*`` → ``get[*]``), which fnmatch reads
    literally and the precedence ranks as an exact tool. Rules written from a person's answer use it.
    """
    return f"{_escape(server)}/{_escape(tool)}"


def _escape(name: str) -> str:
    return "".join(f"[{c}]" if c in _GLOB_CHARACTERS else c for c in name)


def _literal(part: str) -> str | None:
    """The one name ``part`` matches when it holds no glob but escaped characters; None for a real glob."""
    name: list[str] = []
    i = 0
    while i < len(part):
        if part[i] in "*?]":
            return None
        if part[i] == "[":
            if part[i + 1 : i + 2] in ("", "!") or part[i + 2 : i + 3] != "]":
                return None  # a set of several characters, a negation, or unclosed: a glob
            name.append(part[i + 1])
            i += 3
            continue
        name.append(part[i])
        i += 1
    return "".join(name)


def _rank(server: str, tool: str) -> Rank:
    server_is_glob = _is_glob(server)
    if _matches_everything(tool):
        return Rank.SERVER_GLOB if server_is_glob else Rank.WHOLE_SERVER
    if server_is_glob:
        return Rank.TOOLS_ACROSS_SERVERS
    return Rank.TOOL_GLOB if _is_glob(tool) else Rank.EXACT_TOOL


def _is_glob(part: str) -> bool:
    return not _GLOB_CHARACTERS.isdisjoint(part) and _literal(part) is None


def _name(part: str) -> str:
    """The name a part that is not a glob stands for (its escaped characters unescaped)."""
    literal = _literal(part)
    assert literal is not None, part
    return literal


def _matches_everything(part: str) -> bool:
    return part != "" and part.strip("*") == ""


def _compile(pattern: str) -> _Matcher:
    return re.compile(fnmatch.translate(pattern)).match


def _any_of(patterns: Iterable[str]) -> _Matcher:
    """A matcher for "any of these globs matches" (none: matches nothing)."""
    alternatives = "|".join(dict.fromkeys(f"(?:{fnmatch.translate(pattern)})" for pattern in patterns))
    return re.compile(alternatives or "(?!)").match


def _check_glob(part: str) -> str | None:
    # fnmatch silently reads an unclosed "[" or a stray "]" as a literal; names never hold them, so it is a typo.
    i = 0
    while i < len(part):
        if part[i] == "]":
            return 'has a "]" with no opening "["'
        if part[i] == "[":
            j = i + 1
            if j < len(part) and part[j] == "!":
                j += 1
            if j < len(part) and part[j] == "]":
                j += 1  # fnmatch: a "]" first in a set is part of the set
            j = part.find("]", j)
            if j == -1:
                return 'has a "[" with no closing "]"'
            i = j
        i += 1
    return None

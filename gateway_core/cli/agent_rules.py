"""``toolgate agents allow|ask|deny|unset|default|rules|why|undo|rename``: what each agent may do, from a terminal.

Rules are written through the checked config edit the Agents panel uses
(``gateway_core.config.edit.set_agent_rule`` / ``set_agent_default``); a running gateway applies them to
the next request (its config watcher). ``why`` asks the one ``gateway_core.policy.evaluate`` with the
agent's rules in config.json, then ``gateway_core.pinning.held_for_review`` with the tool's change waiting
for review (from the running gateway, else from pins.json), as the gateway's guard does, so it says what
the gateway decides, in the words the audit log uses.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from gateway_core.cli.agents import ensure_config_said
from gateway_core.cli.control_client import ControlClient
from gateway_core.cli.output import EXIT_OK, result, say
from gateway_core.cli.table import print_table
from gateway_core.cli.tool_changes import recorded_changes
from gateway_core.config import load_config, read_raw_config
from gateway_core.config.edit import (
    put_rule,
    remove_rule,
    remove_timed_rules,
    rename_agent,
    set_agent_default,
    set_agent_rule,
    undo_answer,
)
from gateway_core.control_file import NotRunningError, read_control_file
from gateway_core.errors import AgentError, ConfigError, ToolgateError
from gateway_core.paths import Paths
from gateway_core.pinning import HeldForReview, ToolChange, change_from_json, held_for_review
from gateway_core.policy import HINTS, Effect, Rule, check_match, evaluate, hints_text

RULE_HEADERS = ("MATCH", "EFFECT", "FROM", "ONLY")
CONFIG_SOURCE = "config"
_GLOB = frozenset("*?[")
_VERB_HELP = {
    Effect.ALLOW: "let an agent call a server's tools (or those matching a glob) without asking",
    Effect.ASK: "make an agent ask before each call to a server's tools (or those matching a glob)",
    Effect.DENY: "refuse an agent a server's tools (or those matching a glob), hidden from its tools/list",
}


_HINT_EXAMPLE = {Effect.ALLOW: "--read-only", Effect.ASK: "--destructive", Effect.DENY: "github --destructive"}


def add_parsers(agents: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the policy commands to the ``agents`` group."""
    for effect in Effect:
        verb = agents.add_parser(
            effect.value,
            help=_VERB_HELP[effect],
            description=f"{_VERB_HELP[effect].capitalize()}. Exit codes: 0 done, 1 error (e.g. no such agent).",
            epilog=(
                f"examples: toolgate agents {effect.value} cursor 'github/delete_*'; "
                f"toolgate agents {effect.value} cursor {_HINT_EXAMPLE[effect]}"
            ),
        )
        _agent_and_match(verb)
        verb.set_defaults(run=_set_rule, effect=effect)
    unset = agents.add_parser(
        "unset",
        help="remove an agent's rule for exactly this match (broader rules or the default decide again)",
        description=(
            "Remove an agent's rule for exactly this match; with --timed, end its timed grants for that "
            "match now (the Agents panel's End now). Exit codes: 0 done, 1 error (e.g. no such rule)."
        ),
        epilog="example: toolgate agents unset cursor 'github/delete_*'",
    )
    _agent_and_match(unset)
    unset.add_argument(
        "--timed", action="store_true", help="end the timed grants (Allow/Deny for 15 minutes…) for this match now"
    )
    unset.set_defaults(run=_set_rule, effect=None)
    default = agents.add_parser(
        "default",
        help="what applies to an agent where no rule matches: allow, ask or deny",
        epilog="example: toolgate agents default cursor ask",
    )
    default.add_argument("agent_id", metavar="AGENT")
    default.add_argument("effect", choices=[e.value for e in Effect], metavar="allow|ask|deny")
    default.set_defaults(run=_set_default)
    rename = agents.add_parser(
        "rename",
        help="change an agent's display name (its id and token stay)",
        epilog='example: toolgate agents rename cursor "Cursor (work laptop)"',
    )
    rename.add_argument("agent_id", metavar="AGENT")
    rename.add_argument("name", metavar="NAME")
    rename.set_defaults(run=_rename)
    undo = agents.add_parser(
        "undo",
        help="take back the rules an approval answer wrote (an 'always' or timed answer)",
        description=(
            "Removes the rules written by one approval answer (FROM in `toolgate agents rules`) and puts back "
            "the rule it overwrote, if any. Exit codes: 0 done, 1 error (e.g. no rule from that answer)."
        ),
        epilog="example: toolgate agents undo cursor 3fa2c1",
    )
    undo.add_argument("agent_id", metavar="AGENT")
    undo.add_argument("answer", metavar="ANSWER", help="the approval's id, as `toolgate agents rules` shows it")
    undo.set_defaults(run=_undo)
    rules = agents.add_parser(
        "rules",
        help="an agent's default and rules, with where each rule came from",
        description=(
            "An agent's default and rules in file order. FROM is 'config' for a rule written in config.json or "
            "with `toolgate agents allow|ask|deny`, the approval answer that wrote it (`toolgate agents undo` "
            "takes it back), or the import that wrote it (`toolgate import CLIENT --policy`); ONLY says what "
            "narrows the rule: the tools' annotations, conditions on the "
            "arguments, an expiry."
        ),
        epilog="example: toolgate agents rules cursor --json | jq '.rules[] | select(.effect == \"deny\")'",
    )
    rules.add_argument("agent_id", metavar="AGENT")
    rules.add_argument("--json", action="store_true", help="print one JSON document")
    rules.set_defaults(run=_rules)
    why = agents.add_parser(
        "why",
        help="whether an agent may call a tool, and the rule that decides",
        description=(
            "The decision of config.json's policy for one tool, from the same evaluate() the gateway uses. A tool "
            "whose definition changed since it was accepted asks (rule `changed definition → ask (RULE)`) until "
            "the change is accepted, as the running gateway (or, with none running, pins.json) says. "
            "Grants for one session, given in an approval answer, are not in config.json and not counted."
        ),
        epilog="example: toolgate agents why cursor github/delete_repo",
    )
    why.add_argument("agent_id", metavar="AGENT")
    why.add_argument("tool", metavar="SERVER/TOOL", help="a server's name and its tool's own name")
    why.add_argument("--json", action="store_true", help="print one JSON document")
    why.set_defaults(run=_why)


def _agent_and_match(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("agent_id", metavar="AGENT")
    parser.add_argument(
        "match",
        metavar="SERVER[/TOOL-GLOB]",
        nargs="?",
        help="a server (all its tools), or server/tool with * ? [...] globs; with an annotation flag, every "
        "server's tools when left out",
    )
    hints = parser.add_argument_group(
        "annotations",
        "only tools whose server marks them so (servers may misstate their tools: trust the server first)",
    )
    hints.add_argument(
        "--read-only", dest="hints", action="append_const", const=("readOnlyHint", True), help="readOnlyHint=true"
    )
    hints.add_argument(
        "--destructive",
        dest="hints",
        action="append_const",
        const=("destructiveHint", True),
        help="destructiveHint=true",
    )
    hints.add_argument(
        "--hint",
        dest="hints",
        action="append",
        type=_hint,
        metavar="HINT=true|false",
        help=f"any of {', '.join(HINTS)}, e.g. --hint openWorldHint=false",
    )


def _hint(text: str) -> tuple[str, bool]:
    name, equals, value = text.partition("=")
    if name not in HINTS or not equals or value not in ("true", "false"):
        raise argparse.ArgumentTypeError(
            f"expected HINT=true|false with HINT one of {', '.join(HINTS)}, found {text!r}"
        )
    return name, value == "true"


def rule_match(text: str) -> str:
    """The rule ``match`` a person typed: ``github`` means ``github/*``.

    Raises:
        ConfigError: it is not ``server`` or ``server/tool-glob``.
    """
    match = text if "/" in text else f"{text}/*"
    problem = check_match(match)
    if problem is not None:
        raise ConfigError([problem])
    return match


def _set_rule(args: argparse.Namespace, paths: Paths) -> int:
    config_path = ensure_config_said(paths)
    hints: dict[str, bool] = dict(args.hints or ())
    if args.match is None and not hints:
        raise ConfigError(["expected SERVER[/TOOL-GLOB] (or an annotation flag such as --read-only)"])
    match = rule_match(args.match or "*/*")
    effect: Effect | None = args.effect
    if hints:
        return _set_annotation_rule(config_path, args.agent_id, match, effect, hints)
    config = load_config(config_path)
    server = match.partition("/")[0]
    if effect is not None and _GLOB.isdisjoint(server) and server not in config.servers:
        say(f"Warning: there is no server {server!r} yet; the rule applies once one of that name is added.")
    if effect is None:
        agent = config.agents.get(args.agent_id)
        rules = [rule for rule in agent.rules if rule.match == match] if agent is not None else []
        timed = [rule for rule in rules if rule.expires is not None]
        plain = [rule for rule in rules if rule.expires is None and rule.when is None]
        if agent is not None and not (timed if args.timed else plain):
            if args.timed:
                raise AgentError(f"agent {args.agent_id!r} has no timed grant for exactly {match!r}")
            hint = (
                f"; its timed grant ends now with `toolgate agents unset {args.agent_id} {match} --timed`"
                if timed
                else " (`toolgate agents rules` shows its rules)"
            )
            raise AgentError(f"agent {args.agent_id!r} has no rule for exactly {match!r}{hint}")
        if args.timed:
            remove_timed_rules(config_path, args.agent_id, match)
            say(f"Ended agent {args.agent_id!r}'s timed grant for {match} now.")
            say("A running gateway applies it to the agent's next request.")
            return EXIT_OK
    set_agent_rule(config_path, args.agent_id, match, effect)
    if effect is None:
        say(f"Removed agent {args.agent_id!r}'s rule {match}.")
    else:
        say(f"Agent {args.agent_id!r}: {match} → {effect.value}.")
    say("A running gateway applies it to the agent's next request.")
    return EXIT_OK


def _set_annotation_rule(
    config_path: Path, agent_id: str, match: str, effect: Effect | None, hints: dict[str, bool]
) -> int:
    if effect is None:
        agent = load_config(config_path).agents.get(agent_id)
        rules = () if agent is None else agent.rules
        rule = next((r for r in rules if r.match == match and r.annotations == hints and r.narrowed == 1), None)
        if agent is None:
            raise AgentError(f"there is no agent {agent_id!r} (`toolgate agents list`)")
        if rule is None:
            raise AgentError(
                f"agent {agent_id!r} has no rule for exactly {match!r} for tools marked {hints_text(hints)} "
                "(`toolgate agents rules`)"
            )
        remove_rule(config_path, agent_id, rule)
        say(f"Removed agent {agent_id!r}'s rule {rule.text}.")
    else:
        rule = Rule.model_validate({"match": match, "effect": effect.value, "annotations": hints})
        put_rule(config_path, agent_id, rule)
        say(f"Agent {agent_id!r}: {rule.text}.")
        say("Annotations are what the tool's server says about it; a server may misstate them.")
    say("A running gateway applies it to the agent's next request.")
    return EXIT_OK


def _set_default(args: argparse.Namespace, paths: Paths) -> int:
    set_agent_default(ensure_config_said(paths), args.agent_id, Effect(args.effect))
    say(f"Agent {args.agent_id!r}: default → {args.effect} where no rule matches.")
    say("A running gateway applies it to the agent's next request.")
    return EXIT_OK


def _undo(args: argparse.Namespace, paths: Paths) -> int:
    config_path = ensure_config_said(paths)
    before = load_config(config_path).agents.get(args.agent_id)
    undo_answer(config_path, args.agent_id, args.answer)
    for rule in before.rules if before is not None else ():
        if rule.source is not None and rule.source.answer is not None and rule.source.answer == args.answer:
            say(f"Removed agent {args.agent_id!r}'s rule {rule.text} (answer {args.answer}).")
            if rule.source.replaced is not None:
                say(f"Put back {rule.match} → {rule.source.replaced.value}.")
    say("A running gateway applies it to the agent's next request.")
    return EXIT_OK


def _rename(args: argparse.Namespace, paths: Paths) -> int:
    rename_agent(ensure_config_said(paths), args.agent_id, args.name)
    say(f"Agent {args.agent_id!r} is now called {args.name.strip()!r}.")
    return EXIT_OK


def _rules(args: argparse.Namespace, paths: Paths) -> int:
    config_path = ensure_config_said(paths)
    agent = load_config(config_path).agents.get(args.agent_id)
    if agent is None:
        raise AgentError(f"there is no agent {args.agent_id!r} (`toolgate agents list`)")
    raw_rules = _raw_rules(read_raw_config(config_path), args.agent_id)
    sources = [_source(raw_rules, index) for index in range(len(agent.rules))]
    if args.json:
        rules = [
            {
                "match": rule.match,
                "effect": rule.effect.value,
                **rule.model_dump(mode="json", include={"annotations", "when", "expires"}, exclude_none=True),
                "source": source,
            }
            for rule, source in zip(agent.rules, sources, strict=True)
        ]
        result(json.dumps({"agent": args.agent_id, "default": agent.default.value, "rules": rules}))
        return EXIT_OK
    if agent.rules:
        rows = [
            (rule.match, rule.effect.value, describe_source(source), rule.narrowing_text.strip())
            for rule, source in zip(agent.rules, sources, strict=True)
        ]
        print_table(RULE_HEADERS, rows, give_way=3, wrap=True)
    else:
        say(f"Agent {args.agent_id!r} has no rules.")
    result(f"default → {agent.default.value} (where no rule matches)")
    return EXIT_OK


def _raw_rules(data: dict[str, Any], agent_id: str) -> list[Any]:
    agents = data.get("agents")
    entry = agents.get(agent_id) if isinstance(agents, dict) else None
    rules = entry.get("rules") if isinstance(entry, dict) else None
    return rules if isinstance(rules, list) else []


def _source(raw_rules: list[Any], index: int) -> dict[str, Any] | None:
    raw = raw_rules[index] if index < len(raw_rules) else None
    source = raw.get("source") if isinstance(raw, dict) else None
    return source if isinstance(source, dict) else None


def describe_source(source: dict[str, Any] | None) -> str:
    """Where a rule came from, for FROM: ``config``, ``answer ID at TIME`` or ``import from CLIENT at TIME``."""
    if source is None:
        return CONFIG_SOURCE
    at = f" at {source['at']}" if source.get("at") else ""
    if "answer" in source:
        return f"answer {source['answer']}{at}"
    if "imported" in source:
        return f"import from {source['imported']}{at}"
    return ", ".join(f"{key} {value}" for key, value in source.items()) or CONFIG_SOURCE


def _why(args: argparse.Namespace, paths: Paths) -> int:
    server, slash, tool = args.tool.partition("/")
    if not slash or not server or not tool or "/" in tool:
        raise ConfigError([f"expected SERVER/TOOL (the server's name and its tool's own name), found {args.tool!r}"])
    config = load_config(ensure_config_said(paths))
    agent = config.agents.get(args.agent_id)
    if agent is None:
        raise AgentError(f"there is no agent {args.agent_id!r} (`toolgate agents list`)")
    if server not in config.servers:
        say(f"Warning: there is no server {server!r}; this is what would apply to one of that name.")
    hints = _stated_hints(paths, server, tool) if any(r.annotations for r in agent.rules) else None
    decision = evaluate(args.agent_id, agent.default, agent.rules, server, tool, now=time.time(), annotations=hints)
    change, checked = _waiting_change(paths, server, tool)
    decision = held_for_review(decision, change)
    if args.json:
        document = {
            "agent": args.agent_id,
            "server": server,
            "tool": tool,
            "effect": decision.effect.value,
            "rule": decision.rule_text,
            "reason": decision.reason,
            "annotations": hints,
            # Whether the tool's definition changed since it was accepted (null: it could not be checked).
            "held_for_review": isinstance(decision, HeldForReview) if checked else None,
        }
        result(json.dumps(document))
    else:
        result(f"{decision.effect.value}: {decision.reason}")
    return EXIT_OK


def _stated_hints(paths: Paths, server: str, tool: str) -> dict[str, bool] | None:
    """The annotation hints the running gateway's server states for ``tool``; None (said why) when unknown."""
    try:
        listing = ControlClient(read_control_file(paths)).names()
    except ToolgateError:
        say(
            "Note: no running gateway to ask for the tool's annotations, so rules on annotations are not counted "
            "(start Toolgate and ask again)."
        )
        return None
    for name in listing["names"]:
        if name.get("kind") == "tool" and (name.get("server"), name.get("upstream_name")) == (server, tool):
            hints = name.get("annotations")
            return {k: v for k, v in hints.items() if isinstance(v, bool)} if isinstance(hints, dict) else None
    say(f"Note: the running gateway lists no tool {tool!r} of {server!r}, so rules on annotations are not counted.")
    return None


def _waiting_change(paths: Paths, server: str, tool: str) -> tuple[ToolChange | None, bool]:
    """The tool's change waiting for review, if any, and whether that could be checked (said when not).

    Asked of the running gateway; with none running, read from what the last one saved in pins.json.
    """
    name = f"{server}/{tool}"
    try:
        changes = ControlClient(read_control_file(paths)).tool_changes()
        running = True
    except NotRunningError:
        running = False
        try:
            changes = recorded_changes(paths)
        except ToolgateError as exc:
            say(f"Note: whether the definition of {name} changed since it was accepted could not be checked: {exc}.")
            return None, False
    except ToolgateError as exc:
        say(f"Note: whether the definition of {name} changed since it was accepted could not be checked: {exc}.")
        return None, False
    for item in changes:
        if isinstance(item, dict) and (item.get("server"), item.get("tool")) == (server, tool):
            try:
                change = change_from_json(item)
            except (ValueError, KeyError, TypeError) as exc:
                say(f"Note: the change waiting for review of {name} could not be read ({exc}), so it is not counted.")
                return None, False
            if not running:
                say("Note: Toolgate is not running; this is the change waiting for review it saved in pins.json.")
            return change, True
    return None, True

"""Warnings about a valid configuration: policy rules that match nothing, repeat another, or never decide.

Errors make a configuration unusable (``gateway_core.config``); these only point at rules that are
probably not what the person meant. ``toolgate config check`` prints them.
"""

from __future__ import annotations

import difflib

from gateway_core.config import Config, json_path
from gateway_core.policy import Effect, Rule


def policy_warnings(config: Config, *, source: str = "config.json") -> list[str]:
    """Rules that are valid but probably not what was meant, one sentence each with its JSON path.

    Warns about a rule whose server part matches no configured server, per-server limits for a server
    that is not configured, a rule that repeats another rule's ``match``, and a rule that never decides
    because an equally specific rule covering every call it matches has a stronger effect (deny > ask > allow).

    Args:
        config: a checked configuration.
        source: the file name used at the start of every sentence.
    """
    warnings: list[str] = []
    for agent_id, agent in config.agents.items():
        for index, rule in enumerate(agent.rules):
            where = f"{source}: {json_path(('agents', agent_id, 'rules', index))}"
            unmatched = _unmatched_server(rule, list(config.servers))
            if unmatched is not None:
                warnings.append(f"{where}.match: {unmatched}")
            overruled = _overruled(index, agent.rules)
            if overruled is not None:
                warnings.append(f"{where}: {overruled}")
        for server in agent.limits.servers:
            if server not in config.servers:
                where = f"{source}: {json_path(('agents', agent_id, 'limits', 'servers', server))}"
                warnings.append(
                    f"{where}: there is no server {server!r}; these limits apply once one of that name is added"
                )
    return warnings


def _unmatched_server(rule: Rule, servers: list[str]) -> str | None:
    if any(rule.matches_server(server) for server in servers):
        return None
    warning = f"rule {rule.text} matches no configured server"
    if not servers:
        return warning + " (there are none yet)"
    close = difflib.get_close_matches(rule.server_pattern, servers, n=1)
    if close:
        return f'{warning}; did you mean "{close[0]}/{rule.tool_pattern}"?'
    return f"{warning} (configured: {', '.join(servers)})"


# Effects from the weakest to the strongest between equally specific rules.
_EFFECT_ORDER = (Effect.ALLOW, Effect.ASK, Effect.DENY)


def _overruled(index: int, rules: tuple[Rule, ...]) -> str | None:
    rule = rules[index]
    if rule.narrowed:
        return None  # a timed rule decides before the plain rule of its step, whatever their effects
    for other_index, other in enumerate(rules[:index]):
        if other.match != rule.match or other.narrowed:
            continue
        if other.effect is rule.effect:
            return f"rule {rule.text} repeats rules[{other_index}]; remove one"
        strongest = max(other.effect, rule.effect, key=_EFFECT_ORDER.index)
        return (
            f"rule {rule.text} repeats the match of rules[{other_index}] ({other.text}); "
            f"only the {strongest.value} rule can decide, so remove the other"
        )
    for other_index, other in enumerate(rules):
        stronger = _EFFECT_ORDER.index(other.effect) > _EFFECT_ORDER.index(rule.effect)
        if stronger and not other.narrowed and other.match != rule.match and _covers(other, rule):
            return (
                f"rule {rule.text} never decides: rules[{other_index}] ({other.text}) is as specific, "
                f"matches every call this one does, and {other.effect.value} wins over {rule.effect.value}"
            )
    return None


def _covers(wide: Rule, narrow: Rule) -> bool:
    # Only the plain cases: each part of ``wide`` is "*" or equals that part of ``narrow``.
    server_covered = wide.server_pattern in ("*", narrow.server_pattern)
    tool_covered = wide.tool_pattern in ("*", narrow.tool_pattern)
    return wide.rank is narrow.rank and server_covered and tool_covered

"""Edits of config.json made by the GUI: each one is checked as a whole before it is written.

Every function reads the file as plain JSON, changes one thing, checks that the result is a valid
configuration, and only then replaces the file atomically; keys it does not touch (``${secret:…}``
references, unknown agents' rules, formatting aside) are kept. A rejected edit raises ``ConfigError``
and leaves the file as it was.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gateway_core.config.files import _agents_block, read_raw_config, write_config_atomically
from gateway_core.config.load import _found, check_name, json_path, parse_config
from gateway_core.config.model import Config, ServerConfig, ToolsMode
from gateway_core.errors import AgentError, ConfigError
from gateway_core.policy import Effect, Rule, RuleSource, check_match

SERVER_FIELDS = ("command", "args", "env", "cwd", "url", "type", "headers", "enabled", "prefix", "timeout_s")


def check_server_entry(name: str, entry: Mapping[str, Any]) -> dict[str, str]:
    """Problems with one ``servers`` entry, by field, for a form to show next to each field.

    Args:
        name: the server's name (checked as ``"name"``).
        entry: the entry's JSON object.

    Returns:
        Field name (``"name"``, ``"command"``, ``"url"``, …, or ``""`` for the entry as a whole) to a
        message; empty when the entry is valid.
    """
    problems: dict[str, str] = {}
    name_problem = check_name(name, "server name")
    if name_problem is not None:
        problems["name"] = name_problem
    try:
        ServerConfig.model_validate(dict(entry))
    except ValidationError as exc:
        for error in exc.errors():
            loc = error["loc"]
            field = str(loc[0]) if loc and loc[0] in SERVER_FIELDS else ""
            message = error["msg"].removeprefix("Value error, ")
            problems.setdefault(field, message)
    return problems


def edit_config(path: Path, change: Callable[[dict[str, Any]], None]) -> Config:
    """Apply ``change`` to config.json's JSON data, check the result, and write it.

    Args:
        path: the config file.
        change: mutates the raw data in place; may raise ``ConfigError`` or ``AgentError``.

    Returns:
        The new configuration, ready for ``Gateway.apply_config``.

    Raises:
        ConfigError: the file cannot be read or written, or the result is not a valid configuration
            (the file is then unchanged).
    """
    data = read_raw_config(path)
    change(data)
    config = parse_config(json.dumps(data), source=path.name)
    write_config_atomically(path, data)
    return config


def put_server(path: Path, name: str, entry: Mapping[str, Any], *, replacing: str | None = None) -> Config:
    """Add server ``name`` or replace server ``replacing`` (which may be renamed to ``name``) in place.

    Raises:
        ConfigError: the name is taken or invalid, or the entry is not valid.
    """

    def change(data: dict[str, Any]) -> None:
        problem = check_name(name, "server name")
        if problem is not None:
            raise ConfigError([f"{path.name}: servers: {problem}"])
        servers = _object_at(data, "servers", path)
        if name in servers and name != replacing:
            raise ConfigError([f"{path.name}: servers: a server named {name!r} already exists; pick another name"])
        if replacing is not None and replacing not in servers:
            raise ConfigError([f"{path.name}: servers: there is no server {replacing!r} to change"])
        # Rebuild in order so an edited (or renamed) server keeps its place in the list.
        items = [(name, dict(entry)) if key == replacing else (key, value) for key, value in servers.items()]
        if replacing is None:
            items.append((name, dict(entry)))
        servers.clear()
        servers.update(items)

    return edit_config(path, change)


def remove_server(path: Path, name: str) -> Config:
    """Remove server ``name``; agents' rules that mention it stay (they match nothing until it is back)."""
    return take_server(path, name)[0]


def take_server(path: Path, name: str) -> tuple[Config, dict[str, Any], int]:
    """Remove server ``name`` as ``remove_server`` does; also returns its entry as written and its place.

    ``put_back_server`` with these restores it exactly.
    """
    taken: list[tuple[dict[str, Any], int]] = []

    def change(data: dict[str, Any]) -> None:
        servers = _object_at(data, "servers", path)
        if name not in servers:
            raise ConfigError([f"{path.name}: servers: there is no server {name!r}"])
        taken.append((servers[name], list(servers).index(name)))
        del servers[name]

    config = edit_config(path, change)
    return config, *taken[0]


def put_back_server(path: Path, name: str, entry: Mapping[str, Any], index: int) -> Config:
    """Put removed server ``name`` back with its ``entry``, at place ``index`` in the list (undo of a removal).

    Raises:
        ConfigError: a server of that name was added meanwhile, or the entry is no longer valid.
    """

    def change(data: dict[str, Any]) -> None:
        servers = _object_at(data, "servers", path)
        if name in servers:
            raise ConfigError([f"{path.name}: servers: a server named {name!r} was added meanwhile"])
        items = list(servers.items())
        items.insert(min(index, len(items)), (name, dict(entry)))
        servers.clear()
        servers.update(items)

    return edit_config(path, change)


def set_server_enabled(path: Path, name: str, enabled: bool) -> Config:
    """Enable or disable server ``name`` (a disabled server is stopped and its tools disappear)."""

    def change(data: dict[str, Any]) -> None:
        entry = _object_at(data, "servers", path).get(name)
        if not isinstance(entry, dict):
            raise ConfigError([f"{path.name}: servers: there is no server {name!r}"])
        if enabled:
            entry.pop("enabled", None)
        else:
            entry["enabled"] = False

    return edit_config(path, change)


def set_agent_default(path: Path, agent_id: str, effect: Effect) -> Config:
    """Set the effect that applies to agent ``agent_id`` where no rule matches."""

    def change(data: dict[str, Any]) -> None:
        _agent_entry(data, path, agent_id)["default"] = effect.value

    return edit_config(path, change)


def set_agent_rule(
    path: Path, agent_id: str, match: str, effect: Effect | None, *, source: RuleSource | None = None
) -> Config:
    """Set the rule for exactly ``match`` (e.g. ``"github/*"`` or ``"github/create_issue"``).

    With ``effect=None`` the rule for ``match`` is removed, so the decision is inherited again from
    broader rules or the agent default. Other rules keep their order; a new rule goes first. Timed
    rules (with ``expires``) and rules with conditions (``when``) for the same match are neither
    changed nor removed. ``source`` records the answer that wrote the rule; a rule set without one
    is written by hand and loses any source.
    """

    def change(data: dict[str, Any]) -> None:
        rules = _rules_of(data, path, agent_id, match)
        index = next((i for i, rule in enumerate(rules) if _is_plain_rule_for(rule, match)), None)
        written: dict[str, Any] = {"match": match}
        if effect is not None:
            written["effect"] = effect.value
        if source is not None:
            written["source"] = _source_json(source)
            old_effect = rules[index].get("effect") if index is not None else None
            replaceable = source.answer is not None and old_effect in {e.value for e in Effect}
            if replaceable and old_effect != written.get("effect"):
                written["source"]["replaced"] = old_effect  # undoing the answer puts it back
        if effect is None:
            if index is not None:
                del rules[index]
        elif index is None:
            rules.insert(0, written)
        else:
            kept = {key: value for key, value in rules[index].items() if key != "source"}
            rules[index] = {**kept, **written}

    return edit_config(path, change)


def add_rule(path: Path, agent_id: str, rule: Mapping[str, Any], *, source: RuleSource | None = None) -> Config:
    """Add ``rule`` (a ``rules`` entry, e.g. with ``when`` conditions) first in agent ``agent_id``'s rules.

    The same rule already there (``source`` aside) is replaced rather than repeated.
    """

    def change(data: dict[str, Any]) -> None:
        rules = _rules_of(data, path, agent_id, str(rule.get("match", "")))
        written = {**rule, **({"source": _source_json(source)} if source is not None else {})}
        same = {key: value for key, value in rule.items() if key != "source"}
        rules[:] = [
            kept
            for kept in rules
            if not (isinstance(kept, dict) and {k: v for k, v in kept.items() if k != "source"} == same)
        ]
        rules.insert(0, written)

    return edit_config(path, change)


def rule_json(rule: Rule) -> dict[str, Any]:
    """``rule`` as config.json holds it (the keys it sets, times in ISO 8601)."""
    written = rule.model_dump(mode="json", exclude_none=True, by_alias=True)
    if rule.expires is not None:
        written["expires"] = iso_time(rule.expires)
    if rule.source is not None:
        written["source"] = _source_json(rule.source)
    return written


def put_rule(path: Path, agent_id: str, rule: Rule) -> Config:
    """Put ``rule`` first in agent ``agent_id``'s rules, replacing any rule that differs from it only in effect.

    So one match with one narrowing (annotations, conditions, expiry) has one effect: choosing "ask" for
    read-only tools replaces "allow" for them.
    """
    wanted = rule.model_copy(update={"effect": Effect.ALLOW, "source": None})

    def change(data: dict[str, Any]) -> None:
        rules = _rules_of(data, path, agent_id, rule.match)
        rules[:] = [kept for kept in rules if _parsed(kept, effect=Effect.ALLOW) != wanted]
        rules.insert(0, rule_json(rule))

    return edit_config(path, change)


def remove_rule(path: Path, agent_id: str, rule: Rule) -> Config:
    """Remove agent ``agent_id``'s rules that read as ``rule`` (``source`` aside).

    Raises:
        AgentError: there is no such agent, or it has no such rule.
    """
    wanted = rule.model_copy(update={"source": None})

    def change(data: dict[str, Any]) -> None:
        rules = _rules_of(data, path, agent_id, rule.match)
        kept = [r for r in rules if _parsed(r) != wanted]
        if len(kept) == len(rules):
            raise AgentError(f"agent {agent_id!r} has no rule {rule.text} (`toolgate agents rules`)")
        rules[:] = kept

    return edit_config(path, change)


def _parsed(raw: Any, *, effect: Effect | None = None) -> Rule | None:
    """A raw ``rules`` entry as a rule without its source (and with ``effect``, when given), or None if invalid."""
    try:
        rule = Rule.model_validate(raw)
    except ValidationError:
        return None
    return rule.model_copy(update={"source": None, **({"effect": effect} if effect is not None else {})})


def put_timed_rule(
    path: Path, agent_id: str, match: str, effect: Effect, expires: datetime, *, source: RuleSource | None = None
) -> Config:
    """Add a rule for exactly ``match`` that applies until ``expires`` (a timed grant), first in the agent's rules.

    An earlier timed rule for the same match is replaced (the latest answer counts); the plain rule
    for the match, if any, stays and applies again once this one expires.
    """

    def change(data: dict[str, Any]) -> None:
        rules = _rules_of(data, path, agent_id, match)
        rules[:] = [rule for rule in rules if not (_is_timed(rule) and rule.get("match") == match)]
        written: dict[str, Any] = {"match": match, "effect": effect.value, "expires": iso_time(expires)}
        if source is not None:
            written["source"] = _source_json(source)
        rules.insert(0, written)

    return edit_config(path, change)


def remove_timed_rules(path: Path, agent_id: str, match: str) -> Config:
    """Remove agent ``agent_id``'s timed rules for exactly ``match`` before they expire."""

    def change(data: dict[str, Any]) -> None:
        rules = _rules_of(data, path, agent_id, match)
        rules[:] = [rule for rule in rules if not (_is_timed(rule) and rule.get("match") == match)]

    return edit_config(path, change)


def remove_expired_rules(path: Path, now: float) -> Config | None:
    """Remove every agent's rules whose ``expires`` is not after ``now`` (a POSIX timestamp).

    Returns:
        The new configuration, or None when no rule had expired (the file is then not written).

    Raises:
        ConfigError: the file cannot be read or written, or is not a valid configuration.
    """
    data = read_raw_config(path)
    removed = False
    agents = data.get("agents")
    for entry in agents.values() if isinstance(agents, dict) else ():
        rules = entry.get("rules") if isinstance(entry, dict) else None
        if not isinstance(rules, list):
            continue
        kept = [rule for rule in rules if not _expired(rule, now)]
        if len(kept) != len(rules):
            entry["rules"] = kept
            removed = True
    if not removed:
        return None
    config = parse_config(json.dumps(data), source=path.name)
    write_config_atomically(path, data)
    return config


def iso_time(moment: datetime) -> str:
    """``moment`` as config.json writes times: UTC, whole seconds, e.g. ``2026-12-02T18:55:00Z``."""
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _source_json(source: RuleSource) -> dict[str, str]:
    written = {"answer": source.answer} if source.answer is not None else {"imported": str(source.imported)}
    written["at"] = iso_time(source.at)
    if source.replaced is not None:
        written["replaced"] = source.replaced.value
    return written


def undo_answer(path: Path, agent_id: str, answer: str) -> Config:
    """Take back what the approval answer ``answer`` wrote into agent ``agent_id``'s rules.

    Its rules ("always", timed, "always when under") are removed; where it overwrote a plain rule for the
    same match (``source.replaced``), that rule's effect is put back in its place.

    Raises:
        AgentError: there is no such agent, or none of its rules was written by that answer (it may have
            expired, or been changed by hand since).
    """

    def change(data: dict[str, Any]) -> None:
        rules = _rules_of(data, path, agent_id, "*/*")
        undone: list[Any] = []
        for rule in rules:
            source = rule.get("source") if isinstance(rule, dict) else None
            if not (isinstance(source, dict) and source.get("answer") == answer):
                undone.append(rule)
            elif source.get("replaced") in {e.value for e in Effect}:
                undone.append({"match": rule.get("match"), "effect": source["replaced"]})
        if len(undone) == len(rules) and all(a is b for a, b in zip(undone, rules, strict=True)):
            raise AgentError(
                f"agent {agent_id!r} has no rule written by answer {answer!r} (it may have expired or been "
                "changed since; `toolgate agents rules` lists where each rule came from)"
            )
        rules[:] = undone

    return edit_config(path, change)


def _rules_of(data: dict[str, Any], path: Path, agent_id: str, match: str) -> list[Any]:
    entry = _agent_entry(data, path, agent_id)
    problem = check_match(match)
    if problem is not None:
        raise ConfigError([f"{path.name}: {json_path(('agents', agent_id, 'rules'))}: {problem}"])
    rules = entry.setdefault("rules", [])
    if not isinstance(rules, list):
        where = json_path(("agents", agent_id, "rules"))
        raise ConfigError([f"{path.name}: {where}: expected a list ([...]), found {_found(rules)}"])
    return rules


def _is_timed(rule: Any) -> bool:
    return isinstance(rule, dict) and "expires" in rule


def _is_plain_rule_for(rule: Any, match: str) -> bool:
    """A rule for exactly ``match`` that neither expires nor has conditions or annotations: what the Setting edits."""
    return (
        isinstance(rule, dict)
        and rule.get("match") == match
        and not _is_timed(rule)
        and "when" not in rule
        and "annotations" not in rule
    )


def _expired(rule: Any, now: float) -> bool:
    if not _is_timed(rule) or not isinstance(rule["expires"], str):
        return False
    try:
        expires = datetime.fromisoformat(rule["expires"])
    except ValueError:
        return False  # not a time: the config check names it
    return expires.tzinfo is not None and expires.timestamp() <= now


def set_agent_tools(path: Path, agent_id: str, mode: ToolsMode) -> Config:
    """Set what agent ``agent_id``'s ``tools/list`` holds; ``all``, the default, is written by leaving the key out."""

    def change(data: dict[str, Any]) -> None:
        entry = _agent_entry(data, path, agent_id)
        if mode is ToolsMode.ALL:
            entry.pop("tools", None)
        else:
            entry["tools"] = mode.value

    return edit_config(path, change)


def rename_agent(path: Path, agent_id: str, name: str) -> Config:
    """Change the display name of agent ``agent_id`` (its id and token stay)."""

    def change(data: dict[str, Any]) -> None:
        if not name.strip():
            raise AgentError("an agent's name cannot be empty")
        _agent_entry(data, path, agent_id)["name"] = name.strip()

    return edit_config(path, change)


def set_gateway_settings(path: Path, **settings: Any) -> Config:
    """Set keys of the ``gateway`` block (``port``, ``allowed_origins``, ``approval_timeout_s``, …)."""

    def change(data: dict[str, Any]) -> None:
        _object_at(data, "gateway", path).update(settings)

    return edit_config(path, change)


def change_settings(
    path: Path, block: str, values: Mapping[str, Any] | None = None, *, unset: Iterable[str] = ()
) -> Config:
    """Set keys of a settings block (``gateway`` or ``audit``) and remove the keys in ``unset`` (their defaults apply).

    Raises:
        ConfigError: a value is not valid for its key (the file is then unchanged).
    """

    def change(data: dict[str, Any]) -> None:
        settings = _object_at(data, block, path)
        settings.update(values or {})
        for key in unset:
            settings.pop(key, None)

    return edit_config(path, change)


def _object_at(data: dict[str, Any], key: str, path: Path) -> dict[str, Any]:
    block = data.setdefault(key, {})
    if not isinstance(block, dict):
        raise ConfigError([f"{path.name}: {key}: expected an object ({{...}}), found {_found(block)}"])
    return block


def _agent_entry(data: dict[str, Any], path: Path, agent_id: str) -> dict[str, Any]:
    entry = _agents_block(data, path, create=False).get(agent_id)
    if entry is None:
        raise AgentError(f"there is no agent {agent_id!r}")
    if not isinstance(entry, dict):
        where = json_path(("agents", agent_id))
        raise ConfigError([f"{path.name}: {where}: expected an object ({{...}}), found {_found(entry)}"])
    return entry

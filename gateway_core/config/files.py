"""config.json on disk: created with defaults, replaced in one step, and the raw edits agents need.

Edits here work on the raw JSON (so ``${secret:NAME}`` references and unknown-to-us formatting
choices survive); ``gateway_core.config.edit`` checks a whole edited configuration before writing it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gateway_core.config.load import _found, _parse_json, _read_text, check_name
from gateway_core.config.model import Config
from gateway_core.errors import AgentError, ConfigError
from gateway_core.files import Links, write_atomically
from gateway_core.paths import Paths


def default_config_data() -> dict[str, Any]:
    """The content of a new config.json: gateway defaults, no servers, no agents."""
    return Config().model_dump(mode="json")


def ensure_config(paths: Paths) -> tuple[Path, bool]:
    """Write the default config.json if there is none.

    Args:
        paths: where Toolgate's files live; missing folders are created (0700).

    Returns:
        The config file's path, and whether it was created now.

    Raises:
        ConfigError: the file could not be written.
    """
    path = paths.config_file
    if path.exists():
        return path, False
    try:
        paths.ensure_dirs()
    except OSError as exc:
        raise ConfigError([f"{path.name}: cannot create the folder {path.parent}: {exc.strerror}"]) from exc
    write_config_atomically(path, default_config_data())
    return path, True


def write_config_atomically(path: Path, data: Mapping[str, Any]) -> None:
    """Replace config.json with ``data`` in one step (mode 0600; written through a link the person made).

    Args:
        path: the config file; its folder must exist.
        data: the whole JSON content.

    Raises:
        ConfigError: the file could not be written; the previous content is kept.
    """
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    try:
        write_atomically(path, text, links=Links.FOLLOW)  # a config.json linked from dotfiles stays linked
    except OSError as exc:
        problem = f"{path.name}: cannot write {path}: {exc.strerror or exc}; the file was not changed"
        raise ConfigError([problem]) from exc


def read_raw_config(path: Path) -> dict[str, Any]:
    """config.json as plain JSON values, unchecked, for edits that must keep everything else as it is.

    Args:
        path: the config file.

    Raises:
        ConfigError: the file cannot be read, is not valid JSON, or is not a JSON object.
    """
    data = _parse_json(_read_text(path), path.name)
    if not isinstance(data, dict):
        raise ConfigError([f"{path.name}: expected a JSON object ({{...}}) at the top level, found {_found(data)}"])
    return data


def read_agent_names(path: Path) -> dict[str, str]:
    """Agent id to display name, read leniently from config.json (an entry without a name shows its id).

    Args:
        path: the config file.

    Raises:
        ConfigError: the file cannot be read, or its ``agents`` value is not an object.
    """
    agents = _agents_block(read_raw_config(path), path, create=False)
    names: dict[str, str] = {}
    for agent_id, entry in agents.items():
        name = entry.get("name") if isinstance(entry, dict) else None
        names[agent_id] = name if isinstance(name, str) and name else agent_id
    return names


def add_agent_entry(path: Path, agent_id: str, entry: Mapping[str, Any]) -> None:
    """Add ``agents.<agent_id> = entry`` to config.json, keeping every other value as it is.

    Args:
        path: the config file.
        agent_id: the new agent's id.
        entry: the agent's JSON object, e.g. ``{"name": "Cursor"}``.

    Raises:
        AgentError: the id is not valid or is already taken.
        ConfigError: the file cannot be read or written.
    """
    problem = check_name(agent_id, "agent id")
    if problem is not None:
        raise AgentError(problem)
    data = read_raw_config(path)
    agents = _agents_block(data, path, create=True)
    if agent_id in agents:
        raise AgentError(f"agent {agent_id!r} already exists; pick another id or remove it first")
    agents[agent_id] = dict(entry)
    write_config_atomically(path, data)


def take_agent_entry(path: Path, agent_id: str) -> tuple[dict[str, Any], int] | None:
    """Remove ``agents.<agent_id>`` as ``remove_agent_entry`` does; returns the entry and its place (None: absent).

    Raises:
        ConfigError: the file cannot be read or written.
    """
    data = read_raw_config(path)
    agents = _agents_block(data, path, create=False)
    if agent_id not in agents:
        return None
    taken = agents[agent_id], list(agents).index(agent_id)
    del agents[agent_id]
    write_config_atomically(path, data)
    return taken


def put_back_agent_entry(path: Path, agent_id: str, entry: Mapping[str, Any], index: int) -> None:
    """Put a removed agent's entry back at place ``index`` among the agents (undo of a removal).

    Raises:
        AgentError: an agent with that id was added meanwhile.
        ConfigError: the file cannot be read or written.
    """
    data = read_raw_config(path)
    agents = _agents_block(data, path, create=True)
    if agent_id in agents:
        raise AgentError(f"agent {agent_id!r} was added again meanwhile")
    items = list(agents.items())
    items.insert(min(index, len(items)), (agent_id, dict(entry)))
    agents.clear()
    agents.update(items)
    write_config_atomically(path, data)


def remove_agent_entry(path: Path, agent_id: str) -> bool:
    """Remove ``agents.<agent_id>`` from config.json, keeping every other value as it is.

    Args:
        path: the config file.
        agent_id: the agent to remove.

    Returns:
        Whether the entry was there.

    Raises:
        ConfigError: the file cannot be read or written.
    """
    data = read_raw_config(path)
    agents = _agents_block(data, path, create=False)
    if agent_id not in agents:
        return False
    del agents[agent_id]
    write_config_atomically(path, data)
    return True


def _agents_block(data: dict[str, Any], path: Path, *, create: bool) -> dict[str, Any]:
    agents = data.get("agents")
    if agents is None:
        agents = {}
        if create:
            data["agents"] = agents
    if not isinstance(agents, dict):
        raise ConfigError([f"{path.name}: agents: expected an object ({{...}}), found {_found(agents)}"])
    return agents

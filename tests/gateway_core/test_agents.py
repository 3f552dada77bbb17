from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from gateway_core.agents import AgentDirectory, AgentInfo, new_token
from gateway_core.config import ensure_config
from gateway_core.errors import AgentError
from gateway_core.paths import Paths
from gateway_core.secrets import open_secret_store
from gateway_core.token_files import TokenFiles
from tests.fakes.memory_keyring import MemoryKeyring


def make_config() -> Path:
    path, _ = ensure_config(Paths.from_env())
    return path


def test_new_tokens_are_prefixed_random_and_url_safe() -> None:
    tokens = {new_token() for _ in range(20)}

    assert len(tokens) == 20
    assert all(re.fullmatch(r"tg_[A-Za-z0-9_-]{43}", t) for t in tokens)


def test_add_list_rotate_remove_round_trip_keeps_tokens_out_of_config() -> None:
    config_path = make_config()
    store = open_secret_store(Paths.from_env(), backend=MemoryKeyring())
    agents = AgentDirectory(config_path, store)

    token = agents.add("cursor", "Cursor")
    listed = agents.list()
    rotated = agents.rotate("cursor")
    config_text = config_path.read_text()
    agents.remove("cursor")

    assert listed == [AgentInfo(id="cursor", name="Cursor", has_token=True)]
    assert rotated != token
    assert store.get("agent-token:cursor") is None
    assert token not in config_text and rotated not in config_text
    assert json.loads(config_text)["agents"] == {"cursor": {"name": "Cursor"}}
    assert agents.list() == []


def test_an_agent_added_without_a_name_is_named_by_its_id() -> None:
    agents = AgentDirectory(make_config(), open_secret_store(Paths.from_env()))

    agents.add("claude")

    assert agents.list() == [AgentInfo(id="claude", name="claude", has_token=True)]


def test_taken_invalid_and_unknown_ids_are_agent_errors() -> None:
    agents = AgentDirectory(make_config(), open_secret_store(Paths.from_env()))
    token = agents.add("cursor")

    with pytest.raises(AgentError, match="already exists"):
        agents.add("cursor")
    with pytest.raises(AgentError, match="not a valid agent id"):
        agents.add("bad/id")
    with pytest.raises(AgentError, match="there is no agent 'ghost'"):
        agents.rotate("ghost")
    with pytest.raises(AgentError, match="there is no agent 'ghost'"):
        agents.remove("ghost")
    assert agents.read_tokens() == {"cursor": token}


def test_a_taken_agent_is_put_back_with_its_entry_place_token_and_token_file() -> None:
    config_path = make_config()
    paths = Paths.from_env()
    store = open_secret_store(paths, backend=MemoryKeyring())
    files = TokenFiles.of(paths)
    agents = AgentDirectory(config_path, store, token_files=files)
    for agent_id in ("a", "b", "c"):
        agents.add(agent_id)
    token = agents.rotate("b")
    files.publish("b", token)
    data = json.loads(config_path.read_text())
    data["agents"]["b"]["rules"] = [{"match": "x/*", "effect": "deny"}]
    config_path.write_text(json.dumps(data))
    before = config_path.read_text()

    removed = agents.take("b")
    assert store.get("agent-token:b") is None and not files.path("b").exists()
    assert token not in repr(removed)
    agents.put_back(removed)

    assert json.loads(config_path.read_text()) == json.loads(before)
    assert list(json.loads(config_path.read_text())["agents"]) == ["a", "b", "c"]
    assert store.get("agent-token:b") == token
    assert files.path("b").read_text().strip() == token
    with pytest.raises(AgentError, match="added again meanwhile"):
        agents.put_back(removed)

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from gateway_core.agents import AgentDirectory, AgentInfo, new_token
from gateway_core.config import ensure_config
from gateway_core.errors import AgentError
from gateway_core.paths import Paths
from gateway_core.secrets import KeyringSecretStore, SecretStore, open_secret_store
from tests.fakes.memory_keyring import MemoryKeyring


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingStore:
    """A secret store that counts reads, to see when the directory goes back to the files."""

    def __init__(self, inner: SecretStore) -> None:
        self.inner = inner
        self.reads = 0
        self.encrypted = inner.encrypted
        self.backend_name = inner.backend_name

    def get(self, name: str) -> str | None:
        self.reads += 1
        return self.inner.get(name)

    def set(self, name: str, value: str) -> None:
        self.inner.set(name, value)

    def delete(self, name: str) -> bool:
        return self.inner.delete(name)


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
    assert agents.identify(token) == "cursor"


def test_identify_knows_tokens_and_refuses_others() -> None:
    agents = AgentDirectory(make_config(), open_secret_store(Paths.from_env()))
    cursor = agents.add("cursor")
    claude = agents.add("claude")

    assert agents.identify(cursor) == "cursor"
    assert agents.identify(claude) == "claude"
    assert agents.identify(cursor + "x") is None
    assert agents.identify("") is None
    assert agents.identify("tg_ünïcode") is None


def test_identify_sees_an_agent_added_by_another_process_on_the_next_unknown_token() -> None:
    config_path = make_config()
    backend = MemoryKeyring()
    clock = FakeClock()
    serving = AgentDirectory(config_path, KeyringSecretStore(backend), clock=clock)
    assert serving.identify("tg_nobody") is None

    token = AgentDirectory(config_path, KeyringSecretStore(backend)).add("cursor")
    clock.now += 1.0

    assert serving.identify(token) == "cursor"


def test_unknown_tokens_reread_the_files_at_most_once_a_second() -> None:
    config_path = make_config()
    store = CountingStore(open_secret_store(Paths.from_env()))
    clock = FakeClock()
    agents = AgentDirectory(config_path, store, clock=clock)
    agents.add("cursor")
    agents.reload()
    reads_after_load = store.reads

    for _ in range(100):
        agents.identify("tg_garbage")
    reads_within_the_second = store.reads - reads_after_load
    clock.now += 1.0
    agents.identify("tg_garbage")

    assert reads_within_the_second == 0
    assert store.reads - reads_after_load == 1


def test_a_removed_agents_token_stops_working_once_the_cache_is_revalidated() -> None:
    config_path = make_config()
    backend = MemoryKeyring()
    clock = FakeClock()
    serving = AgentDirectory(config_path, KeyringSecretStore(backend), clock=clock)
    cli = AgentDirectory(config_path, KeyringSecretStore(backend))
    old = cli.add("cursor")
    assert serving.identify(old) == "cursor"

    new = cli.rotate("cursor")
    clock.now += 5.0
    old_after_rotation = serving.identify(old)
    cli.remove("cursor")
    clock.now += 5.0

    assert old_after_rotation is None
    assert serving.identify(new) is None


def test_identify_keeps_the_known_tokens_when_config_becomes_unreadable(caplog: pytest.LogCaptureFixture) -> None:
    config_path = make_config()
    clock = FakeClock()
    agents = AgentDirectory(config_path, open_secret_store(Paths.from_env()), clock=clock)
    token = agents.add("cursor")
    assert agents.identify(token) == "cursor"

    config_path.write_text("{ broken")
    clock.now += 5.0

    assert agents.identify(token) == "cursor"
    assert "could not be re-read" in caplog.text

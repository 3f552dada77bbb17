"""AgentTokens: identifying a request is a lookup; the tokens are read off the event loop."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path

import anyio
import pytest

from gateway_core.agent_tokens import AgentTokens
from gateway_core.agents import AgentDirectory
from gateway_core.config import ensure_config
from gateway_core.errors import SecretError
from gateway_core.paths import Paths
from gateway_core.secrets import KeyringSecretStore, open_secret_store
from tests.fakes.memory_keyring import MemoryKeyring

pytestmark = pytest.mark.anyio

WAIT_S = 10.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingReads:
    """Reads a directory's tokens, counting the reads."""

    def __init__(self, directory: AgentDirectory) -> None:
        self.directory = directory
        self.count = 0

    def __call__(self) -> Mapping[str, str]:
        self.count += 1
        return self.directory.read_tokens()


def make_config() -> Path:
    path, _ = ensure_config(Paths.from_env())
    return path


async def test_identify_knows_tokens_and_refuses_others() -> None:
    agents = AgentDirectory(make_config(), open_secret_store(Paths.from_env()))
    cursor, claude = agents.add("cursor"), agents.add("claude")
    tokens = AgentTokens(agents.read_tokens)
    await tokens.refresh()

    assert await tokens.identify(cursor) == "cursor"
    assert await tokens.identify(claude) == "claude"
    assert await tokens.identify(cursor + "x") is None
    assert await tokens.identify("") is None
    assert await tokens.identify("tg_ünïcode\udcff") is None


async def test_an_agent_added_by_another_process_is_known_on_its_first_request() -> None:
    config_path, backend = make_config(), MemoryKeyring()
    clock = FakeClock()
    tokens = AgentTokens(AgentDirectory(config_path, KeyringSecretStore(backend)).read_tokens, clock=clock)
    async with anyio.create_task_group() as tg:
        await tg.start(tokens.run)
        token = AgentDirectory(config_path, KeyringSecretStore(backend)).add("cursor")
        clock.now += 1.0

        with anyio.fail_after(WAIT_S):
            found = await tokens.identify(token)
        tg.cancel_scope.cancel()

    assert found == "cursor"


async def test_unknown_tokens_reread_the_tokens_at_most_once_a_second() -> None:
    agents = AgentDirectory(make_config(), open_secret_store(Paths.from_env()))
    agents.add("cursor")
    reads, clock = CountingReads(agents), FakeClock()
    tokens = AgentTokens(reads, clock=clock)
    async with anyio.create_task_group() as tg:
        await tg.start(tokens.run)
        clock.now += 1.0
        with anyio.fail_after(WAIT_S):
            await tokens.identify("tg_garbage")  # one re-read
            for _ in range(100):
                await tokens.identify("tg_garbage")
        tg.cancel_scope.cancel()

    assert reads.count == 2  # the first read, and one for the burst of unknown tokens


async def test_a_removed_or_rotated_token_stops_working_at_the_next_read() -> None:
    config_path, backend = make_config(), MemoryKeyring()
    cli = AgentDirectory(config_path, KeyringSecretStore(backend))
    old = cli.add("cursor")
    tokens = AgentTokens(AgentDirectory(config_path, KeyringSecretStore(backend)).read_tokens)
    await tokens.refresh()
    assert await tokens.identify(old) == "cursor"

    new = cli.rotate("cursor")
    await tokens.refresh()
    old_after_rotation = await tokens.identify(old)
    cli.remove("cursor")
    await tokens.refresh()

    assert old_after_rotation is None
    assert await tokens.identify(new) is None


async def test_the_tokens_are_read_again_unasked_so_a_rotation_takes_effect() -> None:
    config_path, backend = make_config(), MemoryKeyring()
    cli = AgentDirectory(config_path, KeyringSecretStore(backend))
    old = cli.add("cursor")
    reads = CountingReads(AgentDirectory(config_path, KeyringSecretStore(backend)))
    tokens = AgentTokens(reads, revalidate_after_s=0.01)
    async with anyio.create_task_group() as tg:
        await tg.start(tokens.run)
        cli.rotate("cursor")
        with anyio.fail_after(WAIT_S):
            while await tokens.identify(old) is not None:
                await tokens.wait_refreshed()
        tg.cancel_scope.cancel()

    assert reads.count >= 2


async def test_the_known_tokens_stay_when_they_cannot_be_read(caplog: pytest.LogCaptureFixture) -> None:
    config_path = make_config()
    agents = AgentDirectory(config_path, open_secret_store(Paths.from_env()))
    token = agents.add("cursor")
    tokens = AgentTokens(agents.read_tokens)
    await tokens.refresh()

    config_path.write_text("{ broken")
    await tokens.refresh()

    assert await tokens.identify(token) == "cursor"
    assert "could not be re-read" in caplog.text


async def test_a_hung_keychain_never_holds_up_a_known_agent_or_the_event_loop() -> None:
    release = threading.Event()
    reading = threading.Event()
    calls = 0

    def read() -> Mapping[str, str]:
        nonlocal calls
        calls += 1
        if calls > 1:  # every read after the first hangs, like a keychain waiting for an unlock dialog
            reading.set()
            if not release.wait(WAIT_S):
                raise SecretError("the test's keychain never answered")
        return {"cursor": "tg_cursor"}

    tokens = AgentTokens(read, miss_wait_s=0.05)
    async with anyio.create_task_group() as tg:
        await tg.start(tokens.run)
        tokens.refresh_soon()
        with anyio.fail_after(WAIT_S):
            await anyio.to_thread.run_sync(reading.wait)
            known = await tokens.identify("tg_cursor")  # answered from the map, while the read hangs
            unknown = await tokens.identify("tg_someone_else")  # refused after miss_wait_s, not stuck
        release.set()
        tg.cancel_scope.cancel()

    assert known == "cursor"
    assert unknown is None


async def test_a_fixed_map_identifies_exactly_its_tokens() -> None:
    tokens = AgentTokens.of({"a": "tg_a"})
    await tokens.refresh()

    assert await tokens.identify("tg_a") == "a"
    assert await tokens.identify("tg_b") is None


async def test_a_change_made_in_this_process_applies_at_once_without_reading_anything() -> None:
    reads = 0

    def read() -> Mapping[str, str]:
        nonlocal reads
        reads += 1
        return {"a": "tg_a"}

    clock = FakeClock()
    tokens = AgentTokens(read, clock=clock)  # the clock stands still: no unknown token may re-read
    await tokens.refresh()
    tokens.put("a", "tg_a2")
    tokens.put("b", "tg_b")
    after_rotation = [await tokens.identify(t) for t in ("tg_a", "tg_a2", "tg_b")]
    tokens.put("b", None)

    assert after_rotation == [None, "a", "b"]
    assert await tokens.identify("tg_b") is None
    assert reads == 1

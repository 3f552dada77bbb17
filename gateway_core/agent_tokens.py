"""Who a request comes from: the agents' tokens as one frozen map in the runtime, read off the event loop.

Identifying a request is one dictionary lookup of its token's SHA-256 digest: no file, no keychain,
no lock, and nothing about a token learnt from how long it took. The map is read in a worker thread
when the gateway starts, every ``REVALIDATE_AFTER_S`` (so a removed or rotated token stops working),
when asked (config.json changed), and when a request brings a token the map does not know — at
most once per ``MISS_RELOAD_INTERVAL_S``, so ``toolgate agents add`` works on a running gateway at
once and garbage tokens cannot keep the gateway reading files. A slow keychain delays only the
request with the unknown token (by at most ``MISS_WAIT_S``), never the event loop or other agents.
When the tokens cannot be read, the previous map stays in use.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from types import MappingProxyType

import anyio
import anyio.abc

from gateway_core.config import Config
from gateway_core.errors import ConfigError, SecretError
from gateway_core.frontend.runtime import Runtime, RuntimeCell

logger = logging.getLogger(__name__)

# A known token is trusted from the map for at most this long, so removal or rotation takes effect quickly.
REVALIDATE_AFTER_S = 5.0
# An unknown token re-reads the tokens at most this often.
MISS_RELOAD_INTERVAL_S = 1.0
# How long a request with an unknown token waits for that re-read before it is refused.
MISS_WAIT_S = 3.0

ReadTokens = Callable[[], Mapping[str, str]]
"""Reads every agent's token (agent id → token); blocking, run in a worker thread."""


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class AgentTokens:
    """The gateway's frozen map from token to agent, kept fresh by ``run``.

    Args:
        read: reads the tokens (``AgentDirectory.read_tokens``); may raise ConfigError or SecretError.
        runtime: where the map is kept (the gateway's runtime); a private one when None.
        revalidate_after_s: how often ``run`` reads them again unasked.
        miss_wait_s: how long ``identify`` waits for a re-read on an unknown token.
        clock: a monotonic clock in seconds.
    """

    def __init__(
        self,
        read: ReadTokens,
        *,
        runtime: RuntimeCell | None = None,
        revalidate_after_s: float = REVALIDATE_AFTER_S,
        miss_wait_s: float = MISS_WAIT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read = read
        self._runtime = runtime if runtime is not None else RuntimeCell(Runtime.of(Config()))
        self._revalidate_after_s = revalidate_after_s
        self._miss_wait_s = miss_wait_s
        self._clock = clock
        self._loaded_at: float | None = None
        self._reads_started = 0
        self._reads_done = 0  # the latest read (by start order) whose result is in the map or failed
        self._wanted = anyio.Event()
        self._refreshed = anyio.Event()

    @classmethod
    def of(cls, tokens: Mapping[str, str]) -> AgentTokens:
        """A map of exactly ``tokens`` (agent id → token), read from nowhere else."""
        fixed = dict(tokens)
        return cls(lambda: fixed)

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Read the tokens, report started, then keep them fresh until cancelled."""
        await self.refresh()
        task_status.started()
        while True:
            with anyio.move_on_after(self._revalidate_after_s):
                await self._wanted.wait()
            await self.refresh()

    def put(self, agent_id: str, token: str | None) -> None:
        """Give ``agent_id`` this token from now on (None: no token), as this process just changed it.

        A new frozen map replaces the old one; no file or keychain is read.
        """
        kept = {digest: agent for digest, agent in self._runtime.now.tokens.items() if agent != agent_id}
        if token:
            kept[_digest(token)] = agent_id
        self._runtime.swap(lambda runtime: dataclasses.replace(runtime, tokens=MappingProxyType(kept)))

    def refresh_soon(self) -> None:
        """Have ``run`` read the tokens again now (config.json changed)."""
        self._wanted.set()

    async def refresh(self) -> None:
        """Read the tokens in a worker thread and swap the map; on failure keep the old one (logged)."""
        self._wanted = anyio.Event()
        self._reads_started += 1
        this_read = self._reads_started
        try:
            tokens = await anyio.to_thread.run_sync(self._read, abandon_on_cancel=True)
        except (ConfigError, SecretError, OSError) as exc:
            logger.warning("Agent tokens could not be re-read; the previous ones stay in use: %s", exc)
        else:
            if this_read > self._reads_done:  # an older read finishing late never replaces a newer map
                fresh = MappingProxyType({_digest(token): agent for agent, token in tokens.items() if token})
                self._runtime.swap(lambda runtime: dataclasses.replace(runtime, tokens=fresh))
        self._reads_done = max(self._reads_done, this_read)
        self._loaded_at = self._clock()
        refreshed, self._refreshed = self._refreshed, anyio.Event()
        refreshed.set()

    async def wait_refreshed(self) -> None:
        """Wait until the next read of the tokens has ended (its map swapped in, or it failed)."""
        await self._refreshed.wait()

    async def identify(self, token: str) -> str | None:
        """The id of the agent whose token this is, or None.

        Args:
            token: the bearer token from a request.
        """
        if not token:
            return None
        digest = _digest(token)
        found = self._runtime.now.tokens.get(digest)
        if found is not None or not self._may_reload():
            return found
        # A read already under way may have started before this token existed: wait for a later one.
        needed = self._reads_started + 1
        self.refresh_soon()
        with anyio.move_on_after(self._miss_wait_s):
            while self._reads_done < needed:
                await self._refreshed.wait()
        return self._runtime.now.tokens.get(digest)

    def _may_reload(self) -> bool:
        return self._loaded_at is None or self._clock() - self._loaded_at >= MISS_RELOAD_INTERVAL_S

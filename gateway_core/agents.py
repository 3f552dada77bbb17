"""Agents and their bearer tokens: who may talk to the gateway.

An agent is an ``agents.<id>`` entry in config.json plus a token in the secret store under
``agent-token:<id>``; the token is never written to config.json. ``AgentDirectory`` manages both and
identifies a request's token. It re-reads them when a token is unknown (so ``toolgate agents add``
works on a running gateway) and every few seconds otherwise (so a removed or rotated token stops
working), never more than once a second.
"""

from __future__ import annotations

import builtins
import hmac
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gateway_core.config import add_agent_entry, check_name, read_agent_names, remove_agent_entry
from gateway_core.errors import AgentError, ConfigError, SecretError
from gateway_core.secrets import SecretStore
from gateway_core.token_files import TokenFiles

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "tg_"
TOKEN_SECRET_PREFIX = "agent-token:"
# 32 random bytes: far beyond guessing, and short enough to paste into an IDE's settings.
TOKEN_BYTES = 32
# An unknown token re-reads agents at most this often, so garbage tokens cannot make the gateway loop on files.
MISS_RELOAD_INTERVAL_S = 1.0
# A known token is trusted from the cache for at most this long, so removal or rotation takes effect quickly.
HIT_REVALIDATE_AFTER_S = 5.0


def new_token() -> str:
    """A fresh agent token: ``"tg_"`` followed by 32 random bytes, URL-safe base64."""
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def token_secret_name(agent_id: str) -> str:
    """The secret-store name of ``agent_id``'s token."""
    return TOKEN_SECRET_PREFIX + agent_id


@dataclass(frozen=True)
class AgentInfo:
    """One agent, as listed.

    Attributes:
        id: the agent id (the key in config.json's ``agents``).
        name: its display name.
        has_token: whether the secret store holds a token for it.
    """

    id: str
    name: str
    has_token: bool


class AgentDirectory:
    """The agents in config.json and their tokens in the secret store.

    Several directories may work on the same files at once (the CLI while ``toolgate serve`` runs);
    each reads the files afresh for every change, and ``identify`` re-reads them as described in
    the module docstring.

    Args:
        config_path: config.json.
        store: the secret store holding the tokens.
        clock: a monotonic clock in seconds, for the reload intervals.
    """

    def __init__(
        self,
        config_path: Path,
        store: SecretStore,
        *,
        token_files: TokenFiles | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config_path = config_path
        self._store = store
        self._token_files = token_files
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens: dict[str, bytes] = {}
        self._loaded_at: float | None = None

    def add(self, agent_id: str, name: str | None = None) -> str:
        """Add an agent and give it a token.

        Args:
            agent_id: the new agent's id.
            name: its display name; the id when None or empty.

        Returns:
            The agent's token. It is stored, but this is the only time it is shown.

        Raises:
            AgentError: the id is not valid or is already taken.
            ConfigError: config.json cannot be read or written.
            SecretError: the token cannot be stored.
        """
        problem = check_name(agent_id, "agent id")
        if problem is not None:
            raise AgentError(problem)
        if agent_id in read_agent_names(self._config_path):
            raise AgentError(f"agent {agent_id!r} already exists; pick another id, or use `toolgate agents rotate`")
        token = new_token()
        self._store.set(token_secret_name(agent_id), token)
        try:
            add_agent_entry(self._config_path, agent_id, {"name": name or agent_id})
        except BaseException:
            self._store.delete(token_secret_name(agent_id))
            raise
        with self._lock:
            self._tokens[agent_id] = token.encode()
        return token

    def remove(self, agent_id: str) -> None:
        """Remove an agent's config entry, its token and its token file.

        Raises:
            AgentError: there is no such agent.
            ConfigError: config.json cannot be read or written.
            SecretError: the token cannot be removed.
        """
        removed_entry = remove_agent_entry(self._config_path, agent_id)
        removed_token = self._store.delete(token_secret_name(agent_id))
        if self._token_files is not None:
            self._token_files.remove(agent_id)
        with self._lock:
            self._tokens.pop(agent_id, None)
        if not (removed_entry or removed_token):
            raise AgentError(f"there is no agent {agent_id!r}; `toolgate agents list` shows the agents")

    def rotate(self, agent_id: str) -> str:
        """Replace an agent's token; the old one stops working.

        Returns:
            The new token (also in the agent's token file for the shim, when it has one).

        Raises:
            AgentError: there is no such agent, or its token file could not be rewritten.
            ConfigError: config.json cannot be read.
            SecretError: the token cannot be stored.
        """
        if agent_id not in read_agent_names(self._config_path):
            raise AgentError(f"there is no agent {agent_id!r}; `toolgate agents list` shows the agents")
        token = new_token()
        self._store.set(token_secret_name(agent_id), token)
        with self._lock:
            self._tokens[agent_id] = token.encode()
        if self._token_files is not None:
            try:
                self._token_files.refresh(agent_id, token)
            except OSError as exc:
                raise AgentError(
                    f"the new token works, but its copy for the shim ({self._token_files.path(agent_id)}) "
                    f"could not be written: {exc.strerror or exc}; run `toolgate connect` for the project again"
                ) from exc
        return token

    def token(self, agent_id: str) -> str | None:
        """Agent ``agent_id``'s token, for the person to copy into an IDE; ``None`` when it has none.

        Raises:
            SecretError: the secret store cannot be read.
        """
        return self._store.get(token_secret_name(agent_id))

    def list(self) -> builtins.list[AgentInfo]:
        """Every agent in config.json, in file order, with whether it has a token.

        Raises:
            ConfigError: config.json cannot be read.
            SecretError: the secret store cannot be read.
        """
        return [
            AgentInfo(agent_id, name, self._store.get(token_secret_name(agent_id)) is not None)
            for agent_id, name in read_agent_names(self._config_path).items()
        ]

    def reload(self) -> None:
        """Re-read the agents and their tokens now.

        Raises:
            ConfigError: config.json cannot be read.
            SecretError: the secret store cannot be read.
        """
        tokens = self._read_tokens()
        with self._lock:
            self._tokens = tokens
            self._loaded_at = self._clock()

    def identify(self, token: str) -> str | None:
        """The id of the agent whose token this is, or None.

        Every known token is compared in constant time, without stopping at a match. If the files
        cannot be read, the tokens read last stay in use (and the problem is logged).

        Args:
            token: the bearer token from a request.
        """
        if not token:
            return None
        candidate = token.encode()
        with self._lock:
            now = self._clock()
            if self._loaded_at is None or now - self._loaded_at >= HIT_REVALIDATE_AFTER_S:
                self._reload_keeping_old(now)
            found = self._match(candidate)
            if found is None and self._loaded_at is not None and now - self._loaded_at >= MISS_RELOAD_INTERVAL_S:
                self._reload_keeping_old(now)
                found = self._match(candidate)
            return found

    def _match(self, candidate: bytes) -> str | None:
        found: str | None = None
        for agent_id, known in self._tokens.items():
            if hmac.compare_digest(candidate, known) and found is None:
                found = agent_id
        return found

    def _reload_keeping_old(self, now: float) -> None:
        self._loaded_at = now
        try:
            self._tokens = self._read_tokens()
        except (ConfigError, SecretError) as exc:
            logger.warning("Agent tokens could not be re-read; the previous ones stay in use: %s", exc)

    def _read_tokens(self) -> dict[str, bytes]:
        tokens: dict[str, bytes] = {}
        for agent_id in read_agent_names(self._config_path):
            token = self._store.get(token_secret_name(agent_id))
            if token:
                tokens[agent_id] = token.encode()
        return tokens

"""Agents and their bearer tokens: who may talk to the gateway.

An agent is an ``agents.<id>`` entry in config.json plus a token in the secret store under
``agent-token:<id>``; the token is never written to config.json. ``AgentDirectory`` manages both;
the running gateway identifies requests with ``gateway_core.agent_tokens``, which reads them through
``AgentDirectory.read_tokens`` off the event loop.
"""

from __future__ import annotations

import builtins
import logging
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway_core.config import (
    ToolsMode,
    add_agent_entry,
    check_name,
    put_back_agent_entry,
    read_agent_names,
    read_raw_config,
    remove_agent_entry,
    take_agent_entry,
)
from gateway_core.config.edit import set_agent_tools
from gateway_core.errors import AgentError
from gateway_core.secrets import SecretStore
from gateway_core.token_files import TokenFiles

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "tg_"
TOKEN_SECRET_PREFIX = "agent-token:"
# 32 random bytes: far beyond guessing, and short enough to paste into an IDE's settings.
TOKEN_BYTES = 32


def new_token() -> str:
    """A fresh agent token: ``"tg_"`` followed by 32 random bytes, URL-safe base64."""
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def token_secret_name(agent_id: str) -> str:
    """The secret-store name of ``agent_id``'s token."""
    return TOKEN_SECRET_PREFIX + agent_id


@dataclass(frozen=True)
class RemovedAgent:
    """What removing an agent took away, so that Undo can put it back exactly (its token kept in memory only).

    ``entry`` is its config.json entry as written (name, default, rules…), ``index`` its place among the
    agents; ``token`` its token, so IDEs that use it keep working after Undo (never printed: no repr);
    ``token_file`` whether the shim had a copy of it.
    """

    agent_id: str
    entry: dict[str, Any]
    index: int
    token: str | None = field(repr=False)
    token_file: bool


@dataclass(frozen=True)
class AgentInfo:
    """One agent, as listed.

    Attributes:
        id: the agent id (the key in config.json's ``agents``).
        name: its display name.
        has_token: whether the secret store holds a token for it.
        tools: what its ``tools/list`` holds (``all`` when config.json's value is missing or not valid).
    """

    id: str
    name: str
    has_token: bool
    tools: ToolsMode = ToolsMode.ALL


class AgentDirectory:
    """The agents in config.json and their tokens in the secret store.

    Several directories may work on the same files at once (the CLI while ``toolgate serve`` runs);
    each reads the files afresh for every change.

    Args:
        config_path: config.json.
        store: the secret store holding the tokens.
        token_files: the agents' token files for the shim, kept current on rotate and remove.
    """

    def __init__(
        self,
        config_path: Path,
        store: SecretStore,
        *,
        token_files: TokenFiles | None = None,
    ) -> None:
        self._config_path = config_path
        self._store = store
        self._token_files = token_files

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
        if not (removed_entry or removed_token):
            raise AgentError(f"there is no agent {agent_id!r}; `toolgate agents list` shows the agents")

    def take(self, agent_id: str) -> RemovedAgent:
        """Remove an agent as ``remove`` does, and return what was removed for ``put_back``.

        Raises:
            AgentError: there is no such agent.
            ConfigError: config.json cannot be read or written.
            SecretError: the token cannot be read or removed.
        """
        token = self._store.get(token_secret_name(agent_id))
        token_file = self._token_files is not None and self._token_files.path(agent_id).is_file()
        taken = take_agent_entry(self._config_path, agent_id)
        if taken is None:
            raise AgentError(f"there is no agent {agent_id!r}; `toolgate agents list` shows the agents")
        self._store.delete(token_secret_name(agent_id))
        if self._token_files is not None:
            self._token_files.remove(agent_id)
        return RemovedAgent(agent_id, taken[0], taken[1], token, token_file)

    def put_back(self, removed: RemovedAgent) -> None:
        """Undo ``take``: the entry at its place, the same token (and the shim's copy of it, if it had one).

        Raises:
            AgentError: an agent with that id was added meanwhile.
            ConfigError: config.json cannot be read or written.
            SecretError: the token cannot be stored.
        """
        agent_id = removed.agent_id
        if agent_id in read_agent_names(self._config_path):
            raise AgentError(f"agent {agent_id!r} was added again meanwhile")
        if removed.token is not None:
            self._store.set(token_secret_name(agent_id), removed.token)
        put_back_agent_entry(self._config_path, agent_id, removed.entry, removed.index)
        if removed.token is not None and removed.token_file and self._token_files is not None:
            self._token_files.publish(agent_id, removed.token)

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
        agents = read_raw_config(self._config_path).get("agents")
        return [
            AgentInfo(
                agent_id,
                name,
                self._store.get(token_secret_name(agent_id)) is not None,
                _tools_mode(agents.get(agent_id) if isinstance(agents, dict) else None),
            )
            for agent_id, name in read_agent_names(self._config_path).items()
        ]

    def set_tools(self, agent_id: str, mode: ToolsMode) -> None:
        """Set what agent ``agent_id``'s ``tools/list`` holds: every tool, or the on-demand tools.

        Raises:
            AgentError: there is no such agent.
            ConfigError: config.json cannot be read, or would not be valid.
        """
        try:
            set_agent_tools(self._config_path, agent_id, mode)
        except AgentError as exc:
            raise AgentError(f"{exc}; `toolgate agents list` shows the agents") from exc

    def read_tokens(self) -> dict[str, str]:
        """Every agent's token (agent id → token), read from config.json and the secret store now.

        Blocking: the gateway runs it in a worker thread (``AgentTokens``).

        Raises:
            ConfigError: config.json cannot be read.
            SecretError: the secret store cannot be read.
        """
        tokens: dict[str, str] = {}
        for agent_id in read_agent_names(self._config_path):
            token = self._store.get(token_secret_name(agent_id))
            if token:
                tokens[agent_id] = token
        return tokens


def _tools_mode(entry: object) -> ToolsMode:
    value = entry.get("tools") if isinstance(entry, dict) else None
    try:
        return ToolsMode(value) if isinstance(value, str) else ToolsMode.ALL
    except ValueError:
        return ToolsMode.ALL

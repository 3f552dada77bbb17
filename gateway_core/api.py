"""The seam between a front end (the tray app) and the core: what the GUI may read and do, in its words.

``GatewayApi`` is the protocol the tray app's bridge is written against; ``LocalGateway`` implements
it in-process: it owns the ``Gateway``, the agent directory and the secret store, and holds the
domain sequences the GUI needs (store a server's secrets, then write and apply its entry; add an
agent, then let the running gateway know its token; answer an approval). Widget tests can give the
bridge a small fake of the protocol where a real gateway adds nothing.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import anyio
import anyio.abc

from gateway_core.agents import AgentDirectory, AgentInfo, RemovedAgent
from gateway_core.approvals import Answer, ApprovalRequest
from gateway_core.audit import AuditQuery, AuditRecord, AuditStatus
from gateway_core.config import Config, ServerConfig, ToolsMode, load_config
from gateway_core.config.edit import (
    put_back_server,
    put_rule,
    put_server,
    remove_rule,
    remove_timed_rules,
    rename_agent,
    set_agent_default,
    set_agent_rule,
    set_agent_tools,
    set_gateway_settings,
    set_server_enabled,
    take_server,
    undo_answer,
)
from gateway_core.downstream.base import Catalog, ServerStatus
from gateway_core.downstream.command_check import CommandCheck, check_command
from gateway_core.downstream.oauth import SignIns
from gateway_core.downstream.sign_in import (
    SIGN_IN_TIMEOUT_S,
    Opener,
    SignedIn,
    SignInDetails,
    SignInError,
    sign_in_details,
    sign_in_server,
    sign_out_server,
)
from gateway_core.events import EventStream
from gateway_core.frontend.listing_size import ListingSizes
from gateway_core.frontend.routing import PublicName
from gateway_core.gateway import Endpoint, Gateway
from gateway_core.launch.environment import LaunchEnvironment
from gateway_core.paths import Paths
from gateway_core.pinning import ToolChange
from gateway_core.policy import AgentPolicy, Effect, Rule
from gateway_core.secrets import SecretStore, resolve
from gateway_core.token_files import TokenFiles


@dataclass(frozen=True)
class RemovedServer:
    """A removed server's config.json entry as written and its place in the list, for Undo."""

    name: str
    entry: dict[str, Any]
    index: int


class GatewayApi(Protocol):
    """What a front end may read from and do to a running gateway."""

    @property
    def events(self) -> EventStream:
        """Every change the core announces (see ``gateway_core.events``)."""

    @property
    def config(self) -> Config:
        """The running configuration."""

    @property
    def config_problems(self) -> list[str]:
        """The problems of the last rejected edit of config.json, until a change is applied."""

    @property
    def paused(self) -> bool:
        """Whether every call is refused."""

    @property
    def audit_status(self) -> AuditStatus | None:
        """Whether the audit log is being written; ``None`` when auditing is off."""

    @property
    def secret_store(self) -> SecretStore:
        """Where secrets are kept."""

    @property
    def launch(self) -> LaunchEnvironment:
        """What stdio servers' environment starts from: where their ``PATH`` came from, and why."""

    def check_command(self, name: str) -> CommandCheck | None:
        """Where stdio server ``name``'s command is found, with which ``PATH``; None for a remote or unknown one."""

    async def run(
        self, sock: socket.socket, *, task_status: anyio.abc.TaskStatus[Endpoint] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Serve on ``sock`` until ``stop()``; reports the endpoint once agents can connect."""

    def stop(self) -> None:
        """Shut down (bounded)."""

    def ready(self) -> bool:
        """Whether every enabled server has had its first start attempt."""

    async def wait_ready(self) -> None:
        """Wait until ``ready()``."""

    async def query_audit(self, query: AuditQuery) -> list[AuditRecord]:
        """Audit records, newest first; none when auditing is off."""

    def statuses(self) -> list[ServerStatus]:
        """Every configured server's state, in config order."""

    def catalog(self, name: str) -> Catalog:
        """What server ``name`` offers."""

    def stderr_lines(self, name: str) -> tuple[str, ...]:
        """The kept stderr lines of stdio server ``name``."""

    def stderr_timed_lines(self, name: str) -> tuple[tuple[float, str], ...]:
        """The kept stderr lines of stdio server ``name`` with when each arrived (epoch seconds)."""

    def public_names(self, agent_id: str | None = None) -> list[PublicName]:
        """The tools and prompts agents are listed (those ``agent_id`` may see), with their servers' own names."""

    def agents(self) -> list[AgentInfo]:
        """Every agent, in config order."""

    def listing_sizes(self) -> dict[str, ListingSizes]:
        """Each agent's ``tools/list`` size (bytes, estimated tokens) with all tools and on demand."""

    def agent_token(self, agent_id: str) -> str | None:
        """An agent's bearer token, for the person to copy."""

    def policy(self, agent_id: str) -> AgentPolicy:
        """An agent's policy under the running configuration."""

    def pending_approvals(self) -> list[ApprovalRequest]:
        """Requests waiting for an answer, oldest first."""

    def has_secret(self, name: str) -> bool:
        """Whether the secret store holds ``name``."""

    def put_server(
        self,
        name: str,
        entry: Mapping[str, Any],
        *,
        replacing: str | None = None,
        secrets: Mapping[str, str] | None = None,
    ) -> None:
        """Add or change a server, its secrets stored first."""

    def remove_server(self, name: str) -> RemovedServer:
        """Remove a server."""

    def set_server_enabled(self, name: str, enabled: bool) -> None:
        """Enable or disable a server."""

    def restart_server(self, name: str) -> bool:
        """Restart a server now; False when it is disabled or unknown."""

    async def sign_in(self, name: str, open_url: Opener, timeout_s: float = SIGN_IN_TIMEOUT_S) -> SignedIn:
        """Sign in to remote server ``name`` (as ``toolgate login``); the server then connects with the tokens."""

    async def sign_out(self, name: str) -> bool:
        """Sign out of remote server ``name`` (as ``toolgate logout``); whether it was signed in."""

    def sign_in_details(self, name: str) -> SignInDetails | None:
        """Server ``name``'s stored sign-in (issuer, scope, expiry; no token), or None."""

    def add_agent(self, agent_id: str, name: str | None = None) -> str:
        """Create an agent; returns its token."""

    def put_back_server(self, removed: RemovedServer) -> None:
        """Undo a removal: the server's entry back at its place (``ConfigError`` when its name was taken meanwhile)."""

    def remove_agent(self, agent_id: str) -> RemovedAgent:
        """Remove an agent and its token."""

    def put_back_agent(self, removed: RemovedAgent) -> None:
        """Undo a removal: the agent's entry (rules and all) at its place, and the same token."""

    def rename_agent(self, agent_id: str, name: str) -> None:
        """Change an agent's display name."""

    def rotate_token(self, agent_id: str) -> str:
        """Give an agent a new token; returns it."""

    def set_agent_default(self, agent_id: str, effect: Effect) -> None:
        """Set what applies to an agent where no rule matches."""

    def set_agent_rule(self, agent_id: str, match: str, effect: Effect | None) -> None:
        """Set (or with None remove) an agent's rule for exactly ``match``."""

    def remove_timed_rules(self, agent_id: str, match: str) -> None:
        """End an agent's timed grants for exactly ``match`` now."""

    def add_agent_rule(self, agent_id: str, rule: Rule) -> None:
        """Put ``rule`` first in an agent's rules (replacing the same rule, and one with its match and narrowing)."""

    def undo_answer(self, agent_id: str, answer: str) -> None:
        """Take back the rules approval answer ``answer`` wrote for an agent (putting back what it overwrote)."""

    def remove_agent_rule(self, agent_id: str, rule: Rule) -> None:
        """Remove an agent's rule ``rule`` (compared without its ``source``)."""

    def set_agent_tools(self, agent_id: str, mode: ToolsMode) -> None:
        """Set what an agent's ``tools/list`` holds: every tool, or the on-demand tools."""

    def set_gateway_settings(self, **settings: Any) -> None:
        """Change ``gateway`` settings."""

    def answer_approval(self, request_id: str, answer: Answer, *, for_s: float | None = None) -> None:
        """Answer a waiting request (``for_s``: how long a timed answer holds)."""

    def allow_when_under(self, request_id: str, argument: str, folder: str) -> None:
        """Allow a waiting tool call once and always when ``argument`` is a path under ``folder``."""

    def pause(self) -> None:
        """Refuse every call until ``resume``."""

    def resume(self) -> None:
        """Let calls through again."""

    def tool_changes(self) -> list[ToolChange]:
        """The tools whose definitions wait for the person's review (changed since accepted, or new)."""

    def accept_tools(self, server: str, tool: str | None = None, *, seen: str | None = None) -> list[ToolChange]:
        """Accept what ``server`` lists now for ``tool`` (all its changes when None); ``PinError``: nothing to."""


class LocalGateway:
    """``GatewayApi`` for a gateway running in this process.

    Args:
        config: the configuration to start with (already checked).
        config_path: config.json; edits go there.
        paths: Toolgate's folders (audit database, control file, token files).
        store: the secret store (agent tokens and ``${secret:…}`` values).
        launch: what stdio servers' environment starts from; Toolgate's own when None.
    """

    def __init__(
        self,
        config: Config,
        *,
        config_path: Path,
        paths: Paths,
        store: SecretStore,
        launch: LaunchEnvironment | None = None,
    ) -> None:
        self.config_path = config_path
        self._store = store
        self._launch = launch if launch is not None else LaunchEnvironment.inherited(os.environ)
        self._agents = AgentDirectory(config_path, store, token_files=TokenFiles.of(paths))
        self._gateway = Gateway(
            config,
            resolve=lambda values: resolve(values, store),
            read_tokens=self._agents.read_tokens,
            paths=paths,
            config_path=config_path,
            sign_ins=SignIns(store),
            launch=launch,
        )

    # --- reading -----------------------------------------------------------------------------------

    @property
    def events(self) -> EventStream:
        """Every change the core announces."""
        return self._gateway.events

    @property
    def config(self) -> Config:
        """The running configuration."""
        return self._gateway.config

    @property
    def launch(self) -> LaunchEnvironment:
        """What stdio servers' environment starts from (resolved once, when Toolgate started)."""
        return self._launch

    def check_command(self, name: str) -> CommandCheck | None:
        """Where stdio server ``name``'s command is found now, as its next start would look; None if remote or unknown.

        Looks at files (blocking, quick): call it when a person looks at the server, not in a loop.
        """
        server = self.config.servers.get(name)
        return None if server is None else check_command(server, self._launch)

    @property
    def config_problems(self) -> list[str]:
        """The problems of the last rejected edit of config.json, until a change is applied."""
        return self._gateway.config_problems

    @property
    def paused(self) -> bool:
        """Whether every call is refused."""
        return self._gateway.paused

    @property
    def audit_status(self) -> AuditStatus | None:
        """Whether the audit log is being written; ``None`` when auditing is off."""
        return self._gateway.audit_status

    @property
    def secret_store(self) -> SecretStore:
        """Where secrets are kept."""
        return self._store

    async def run(
        self, sock: socket.socket, *, task_status: anyio.abc.TaskStatus[Endpoint] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Serve on ``sock`` until ``stop()``; reports the endpoint once agents can connect."""
        await self._gateway.run(sock, task_status=task_status)

    def stop(self) -> None:
        """Shut down (bounded)."""
        self._gateway.stop()

    def ready(self) -> bool:
        """Whether every enabled server has had its first start attempt."""
        return self._gateway.ready()

    async def wait_ready(self) -> None:
        """Wait until ``ready()``."""
        await self._gateway.wait_ready()

    async def query_audit(self, query: AuditQuery) -> list[AuditRecord]:
        """Audit records, newest first; none when auditing is off."""
        return await self._gateway.query_audit(query)

    def statuses(self) -> list[ServerStatus]:
        """Every configured server's state, in config order (disabled ones as STOPPED)."""
        return self._gateway.statuses()

    def catalog(self, name: str) -> Catalog:
        """What server ``name`` offers; empty unless it is ready."""
        return self._gateway.catalog(name)

    def stderr_lines(self, name: str) -> tuple[str, ...]:
        """The kept stderr lines of stdio server ``name``, oldest first."""
        return self._gateway.stderr_lines(name)

    def stderr_timed_lines(self, name: str) -> tuple[tuple[float, str], ...]:
        """The kept stderr lines of stdio server ``name`` with when each arrived (epoch seconds), oldest first."""
        return self._gateway.stderr_timed_lines(name)

    def public_names(self, agent_id: str | None = None) -> list[PublicName]:
        """The tools, then the prompts, agents are listed now (only those ``agent_id`` may see, with one).

        Each has its server's own name and ``reason``, why the name agents see differs from it.

        Raises:
            AgentError: there is no agent ``agent_id``.
        """
        return self._gateway.public_names(agent_id)

    def agents(self) -> list[AgentInfo]:
        """Every agent, in config order."""
        return self._agents.list()

    def listing_sizes(self) -> dict[str, ListingSizes]:
        """Each agent's ``tools/list`` size (bytes, estimated tokens) with all tools and on demand, in config order.

        Worked out from the tools listed now and each agent's policy and ``always_listed``.
        """
        return self._gateway.listing_sizes()

    def agent_token(self, agent_id: str) -> str | None:
        """An agent's bearer token, for the person to copy; ``None`` when it has none."""
        return self._agents.token(agent_id)

    def policy(self, agent_id: str) -> AgentPolicy:
        """An agent's policy under the running configuration."""
        return self._gateway.policy(agent_id)

    def pending_approvals(self) -> list[ApprovalRequest]:
        """Requests waiting for an answer, oldest first."""
        return self._gateway.pending_approvals()

    def has_secret(self, name: str) -> bool:
        """Whether the secret store holds ``name``."""
        return self._store.get(name) is not None

    # --- actions -----------------------------------------------------------------------------------

    def put_server(
        self,
        name: str,
        entry: Mapping[str, Any],
        *,
        replacing: str | None = None,
        secrets: Mapping[str, str] | None = None,
    ) -> None:
        """Add a server, or change server ``replacing`` (possibly renaming it to ``name``).

        ``secrets`` (name → value) are stored first, for the entry's ``${secret:…}`` references; a
        server given new secret values restarts even when its entry is unchanged, to read them.

        Raises:
            SecretError: a secret could not be stored (the config is then unchanged).
            ConfigError: the entry or the name is not valid (the secrets stay stored).
        """
        for secret, value in (secrets or {}).items():
            self._store.set(secret, value)
        config = put_server(self.config_path, name, entry, replacing=replacing)
        self._gateway.apply_config(config, restart={name} if secrets else ())

    def remove_server(self, name: str) -> RemovedServer:
        """Remove server ``name`` (its process is stopped; agents' rules naming it and its secrets stay).

        Returns what ``put_back_server`` needs to undo it.
        """
        config, entry, index = take_server(self.config_path, name)
        self._gateway.apply_config(config)
        return RemovedServer(name, entry, index)

    def put_back_server(self, removed: RemovedServer) -> None:
        """Undo ``remove_server``: the entry exactly as it was, at its place; the server starts again."""
        self._gateway.apply_config(put_back_server(self.config_path, removed.name, removed.entry, removed.index))

    def set_server_enabled(self, name: str, enabled: bool) -> None:
        """Enable or disable server ``name``."""
        self._gateway.apply_config(set_server_enabled(self.config_path, name, enabled))

    def restart_server(self, name: str) -> bool:
        """Restart server ``name`` now; ``False`` when it is disabled or unknown."""
        return self._gateway.restart_server(name)

    async def sign_in(self, name: str, open_url: Opener, timeout_s: float = SIGN_IN_TIMEOUT_S) -> SignedIn:
        """Sign in to remote server ``name`` with the code ``toolgate login`` runs; it connects at once after.

        Raises:
            SignInError: not a configured remote server, refused, or timed out.
            MissingSecretError: the entry's ``oauth.client_secret`` is not stored.
        """
        server = self._remote(name)
        storage = SignIns(self._store).of(name, offer_tokens=False)
        signed_in = await sign_in_server(storage, server, self._store, open_url=open_url, timeout_s=timeout_s)
        self._gateway.sign_in_changed(name)
        return signed_in

    async def sign_out(self, name: str) -> bool:
        """Revoke and delete server ``name``'s tokens (as ``toolgate logout``); whether it was signed in."""
        server = self._remote(name)
        signed_out = await sign_out_server(SignIns(self._store).of(name), server, self._store)
        self._gateway.sign_in_changed(name)
        return signed_out

    def sign_in_details(self, name: str) -> SignInDetails | None:
        """Server ``name``'s stored sign-in (issuer, scope, expiry; never a token), or None."""
        return sign_in_details(SignIns(self._store).of(name))

    def _remote(self, name: str) -> ServerConfig:
        server = self.config.servers.get(name)
        if server is None:
            raise SignInError(f"there is no server {name!r}")
        return server

    def add_agent(self, agent_id: str, name: str | None = None) -> str:
        """Create an agent; returns its token (also kept in the secret store), which works at once."""
        token = self._agents.add(agent_id, name)
        self._gateway.put_token(agent_id, token)
        self._gateway.apply_config(load_config(self.config_path))
        return token

    def remove_agent(self, agent_id: str) -> RemovedAgent:
        """Remove an agent and its token; its connections are refused from then on.

        Returns what ``put_back_agent`` needs to undo it (the token is kept in memory only).
        """
        removed = self._agents.take(agent_id)
        self._gateway.put_token(agent_id, None)
        self._gateway.apply_config(load_config(self.config_path))
        return removed

    def put_back_agent(self, removed: RemovedAgent) -> None:
        """Undo ``remove_agent``: its entry with its rules at its place and the same token, which works again."""
        self._agents.put_back(removed)
        if removed.token is not None:
            self._gateway.put_token(removed.agent_id, removed.token)
        self._gateway.apply_config(load_config(self.config_path))

    def rename_agent(self, agent_id: str, name: str) -> None:
        """Change an agent's display name."""
        self._gateway.apply_config(rename_agent(self.config_path, agent_id, name))

    def rotate_token(self, agent_id: str) -> str:
        """Give an agent a new token (the old one stops working at once); returns it."""
        token = self._agents.rotate(agent_id)
        self._gateway.put_token(agent_id, token)
        return token

    def set_agent_default(self, agent_id: str, effect: Effect) -> None:
        """Set what applies to an agent where no rule matches."""
        self._gateway.apply_config(set_agent_default(self.config_path, agent_id, effect))

    def set_agent_rule(self, agent_id: str, match: str, effect: Effect | None) -> None:
        """Set (or with ``None`` remove) an agent's rule for exactly ``match`` (``server/*`` or ``server/tool``)."""
        self._gateway.apply_config(set_agent_rule(self.config_path, agent_id, match, effect))

    def remove_timed_rules(self, agent_id: str, match: str) -> None:
        """End an agent's timed grants (rules with ``expires``) for exactly ``match`` now."""
        self._gateway.apply_config(remove_timed_rules(self.config_path, agent_id, match))

    def add_agent_rule(self, agent_id: str, rule: Rule) -> None:
        """Put ``rule`` first in an agent's rules; a rule differing from it only in effect (or source) is replaced.

        Raises:
            AgentError: there is no agent ``agent_id``.
            ConfigError: config.json cannot be read, or would not be valid.
        """
        self._gateway.apply_config(put_rule(self.config_path, agent_id, rule))

    def undo_answer(self, agent_id: str, answer: str) -> None:
        """Take back the rules approval answer ``answer`` wrote for an agent, putting back a rule it overwrote.

        Raises:
            AgentError: there is no agent ``agent_id``, or no rule of it was written by that answer.
        """
        self._gateway.apply_config(undo_answer(self.config_path, agent_id, answer))

    def remove_agent_rule(self, agent_id: str, rule: Rule) -> None:
        """Remove an agent's rule ``rule`` (compared without its ``source``).

        Raises:
            AgentError: there is no agent ``agent_id``, or it has no such rule.
        """
        self._gateway.apply_config(remove_rule(self.config_path, agent_id, rule))

    def set_agent_tools(self, agent_id: str, mode: ToolsMode) -> None:
        """Set what an agent's ``tools/list`` holds: every tool it may use, or the on-demand tools.

        Raises:
            AgentError: there is no agent ``agent_id``.
            ConfigError: config.json cannot be read, or would not be valid.
        """
        self._gateway.apply_config(set_agent_tools(self.config_path, agent_id, mode))

    def set_gateway_settings(self, **settings: Any) -> None:
        """Change ``gateway`` settings (``port``, ``allowed_origins``, ``approval_timeout_s``, …)."""
        self._gateway.apply_config(set_gateway_settings(self.config_path, **settings))

    def answer_approval(self, request_id: str, answer: Answer, *, for_s: float | None = None) -> None:
        """Answer a waiting request (raises ``ApprovalError`` when it no longer waits).

        ``for_s`` is how long a timed answer (``ALLOW_FOR``, ``DENY_FOR``) holds, in seconds.
        """
        self._gateway.answer_approval(request_id, answer, for_s=for_s)

    def allow_when_under(self, request_id: str, argument: str, folder: str) -> None:
        """Allow a waiting tool call once, and add the rule allowing the tool when ``argument`` is under ``folder``."""
        self._gateway.allow_when_under(request_id, argument, folder)

    def pause(self) -> None:
        """Refuse every call, saying Toolgate is paused."""
        self._gateway.pause()

    def resume(self) -> None:
        """Let calls through again."""
        self._gateway.resume()

    def tool_changes(self) -> list[ToolChange]:
        """The tools whose definitions wait for the person's review (changed since accepted, or new)."""
        return self._gateway.tool_changes()

    def accept_tools(self, server: str, tool: str | None = None, *, seen: str | None = None) -> list[ToolChange]:
        """Accept what ``server`` lists now for ``tool`` (all its changes when None).

        Args:
            server: the server.
            tool: the tool; None for every change of the server.
            seen: the fingerprint of the definition the person was shown.

        Raises:
            PinError: nothing to accept; ``ChangedAgain`` when the tool changed again since ``seen``.
        """
        return self._gateway.accept_tools(server, tool, seen=seen)


_CHECKED: type[GatewayApi] = LocalGateway  # mypy checks here that LocalGateway is a GatewayApi

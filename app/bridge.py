"""The one place where the GUI meets the gateway: core events become Qt signals, GUI actions become core calls.

Widgets hold a ``GatewayBridge`` and use only its signals, read methods and actions; they never touch
the ``Gateway`` or the files behind it. Actions that change the configuration write config.json
(checked as a whole first) and apply the result at once, so they survive a restart and reach the next
request. They raise ``ToolgateError`` subclasses whose messages are written for the person.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import socket
import time
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import anyio
from PySide6.QtCore import QObject, Signal

from gateway_core import (
    AgentDirectory,
    AgentInfo,
    AgentPolicy,
    Answer,
    ApprovalRequest,
    ApprovalRequested,
    ApprovalResolved,
    AuditQuery,
    AuditRecord,
    AuditStatus,
    Catalog,
    Config,
    ConfigApplied,
    ConfigRejected,
    Effect,
    Endpoint,
    Event,
    EventLogHandler,
    Gateway,
    LogMessage,
    Paths,
    SecretStore,
    ServerStatus,
    ServerStatusChanged,
    StderrLine,
    TokenFiles,
    load_config,
    put_server,
    remove_server,
    rename_agent,
    resolve,
    set_agent_default,
    set_agent_rule,
    set_gateway_settings,
    set_server_enabled,
)

logger = logging.getLogger("toolgate.app")

# Widgets' tasks get this long to end once cancelled when the gateway stops.
TASK_CANCEL_TIMEOUT_S = 5.0
T = TypeVar("T")

# The Logs panel's second view keeps this many gateway messages and stderr lines (oldest dropped).
MAX_MESSAGES = 5000


@dataclass(frozen=True)
class GatewayMessage:
    """One line for the Logs panel's messages view: a gateway log record or a server's stderr line.

    Attributes:
        time: epoch seconds.
        level: ``"INFO"``, ``"WARNING"``, ``"ERROR"``…, or ``"STDERR"`` for a server's stderr.
        source: the logger's name, or the server's name for stderr.
        text: the message, one or more lines.
    """

    time: float
    level: str
    source: str
    text: str


class GatewayBridge(QObject):
    """Runs a ``Gateway`` on the qasync loop and speaks Qt to the widgets.

    Args:
        config: the configuration to start with (already checked).
        config_path: config.json; GUI edits go there.
        paths: Toolgate's folders (audit database, control file).
        store: the secret store (agent tokens and ``${secret:…}`` values).
    """

    server_status_changed = Signal(str)
    """A server's state, counts or stderr tail changed; carries its name (also for added or removed servers)."""
    config_applied = Signal()
    """A configuration change (from the GUI, the CLI or an editor) is now running."""
    config_rejected = Signal(list)
    """An edit of config.json was not applied; carries its problems (list of str). The running config stays."""
    agents_changed = Signal()
    """Agents were added, removed, renamed, or got a new token."""
    approval_requested = Signal(object)
    """A call waits for a person's answer; carries the ``ApprovalRequest``."""
    approval_resolved = Signal(object)
    """A waiting call was answered, timed out or withdrawn; carries the ``Resolution``."""
    audit_records_arrived = Signal(list)
    """New audit records (list of ``AuditRecord``, oldest first) were committed."""
    message_logged = Signal(object)
    """A gateway message or a server stderr line; carries a ``GatewayMessage``."""
    paused_changed = Signal(bool)
    """Pause all agents / Resume was switched; carries whether calls are now refused."""
    endpoint_ready = Signal(str)
    """The gateway accepts agents; carries the endpoint URL."""
    gateway_ready = Signal()
    """Every enabled server has had its first start attempt (ready or failed)."""
    stopped = Signal()
    """The gateway has shut down."""

    def __init__(self, config: Config, *, config_path: Path, paths: Paths, store: SecretStore) -> None:
        super().__init__()
        self.config_path = config_path
        self.paths = paths
        self._store = store
        self._agents = AgentDirectory(config_path, store, token_files=TokenFiles.of(paths))
        self._messages: collections.deque[GatewayMessage] = collections.deque(maxlen=MAX_MESSAGES)
        self._endpoint: Endpoint | None = None
        self.gateway = Gateway(
            config,
            resolve=self._resolve,
            read_tokens=self._agents.read_tokens,
            paths=paths,
            config_path=config_path,
        )
        # One subscription: every change the core announces arrives here, in order.
        self._unsubscribes = [self.gateway.events.subscribe(self._on_event)]
        self._log_handler = EventLogHandler(self.gateway.events)
        self._tasks: set[asyncio.Task[Any]] = set()

    # --- running -----------------------------------------------------------------------------------

    async def run(self, sock: socket.socket, *, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
        """Serve on ``sock`` until ``stop()``; ``task_status.started()`` once agents can connect."""
        self._log_handler.attach()
        try:
            async with anyio.create_task_group() as tg:
                self._endpoint = await tg.start(self._serve, sock, tg.cancel_scope)
                self.endpoint_ready.emit(self._endpoint.url)
                tg.start_soon(self._feed_audit)
                tg.start_soon(self._announce_ready)
                task_status.started()
        finally:
            await self._cancel_tasks()
            self._log_handler.detach()
            for unsubscribe in self._unsubscribes:
                unsubscribe()
            self._endpoint = None
            self.stopped.emit()

    async def _serve(
        self, sock: socket.socket, feeders: anyio.CancelScope, *, task_status: Any = anyio.TASK_STATUS_IGNORED
    ) -> None:
        try:
            await self.gateway.run(sock, task_status=task_status)
        finally:
            feeders.cancel()  # the audit feed and readiness waiters end with the gateway

    def spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run ``coro`` on the loop for a widget (an audit query, an export); it is cancelled when the gateway stops."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _cancel_tasks(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=TASK_CANCEL_TIMEOUT_S)

    def stop(self) -> None:
        """Shut the gateway down (bounded); ``stopped`` is emitted when it is done."""
        self.gateway.stop()

    async def _announce_ready(self) -> None:
        await self.gateway.wait_ready()
        self.gateway_ready.emit()

    async def _feed_audit(self) -> None:
        if self.gateway.audit is None:
            return
        async with self.gateway.audit.subscribe() as feed:
            while True:
                self.audit_records_arrived.emit(await feed.next_batch())

    # --- reading -----------------------------------------------------------------------------------

    @property
    def config(self) -> Config:
        """The running configuration."""
        return self.gateway.config

    @property
    def endpoint_url(self) -> str | None:
        """Where agents connect (``http://127.0.0.1:PORT/mcp``), once serving."""
        return self._endpoint.url if self._endpoint is not None else None

    @property
    def endpoint_port(self) -> int | None:
        """The port agents connect to now, once serving (it may differ from a port saved since)."""
        return self._endpoint.port if self._endpoint is not None else None

    @property
    def ready(self) -> bool:
        """Whether every enabled server has had its first start attempt."""
        return self.gateway.ready()

    @property
    def paused(self) -> bool:
        """Whether every call is refused (Pause all agents)."""
        return self.gateway.paused

    @property
    def secret_store(self) -> SecretStore:
        """Where the gateway keeps secrets (for the Import and Connect panes)."""
        return self._store

    @property
    def secrets_encrypted(self) -> bool:
        """False when secrets are kept in the 0600 file fallback instead of the OS keychain."""
        return self._store.encrypted

    @property
    def audit_status(self) -> AuditStatus | None:
        """Whether the audit log is being written; ``None`` when auditing is off."""
        return self.gateway.audit_status

    @property
    def config_problems(self) -> list[str]:
        """The problems of the last rejected edit of config.json, until a change is applied."""
        rejection = self.gateway.config_rejection
        return list(rejection.problems) if rejection is not None else []

    def statuses(self) -> list[ServerStatus]:
        """Every configured server's state, in config order (disabled ones as STOPPED)."""
        return self.gateway.statuses()

    def status(self, name: str) -> ServerStatus | None:
        """Server ``name``'s state, or ``None`` when it is not configured."""
        return next((s for s in self.statuses() if s.name == name), None)

    def catalog(self, name: str) -> Catalog:
        """What server ``name`` offers (tools, resources, prompts); empty unless it is ready."""
        return self.gateway.catalog(name)

    def stderr_lines(self, name: str) -> tuple[str, ...]:
        """The kept stderr lines of stdio server ``name``, oldest first."""
        return self.gateway.stderr_lines(name)

    def public_tool_name(self, server: str, tool: str) -> str:
        """The name agents see for ``server``'s tool ``tool`` (with the server's prefix)."""
        return self.config.prefix_for(server) + tool if server in self.config.servers else tool

    def agents(self) -> list[AgentInfo]:
        """Every agent, in config order."""
        return self._agents.list()

    def agent_token(self, agent_id: str) -> str | None:
        """Agent ``agent_id``'s bearer token, for the person to copy; ``None`` when it has none."""
        return self._agents.token(agent_id)

    def policy(self, agent_id: str) -> AgentPolicy:
        """Agent ``agent_id``'s policy under the running configuration (its ``evaluate`` gives the "why")."""
        return self.gateway.policy(agent_id)

    def pending_approvals(self) -> list[ApprovalRequest]:
        """Calls waiting for an answer, oldest first."""
        return sorted(self.gateway.approvals.pending(), key=lambda r: r.created_at)

    @property
    def approval_timeout_s(self) -> float:
        """How long a call waits for an answer before it is denied."""
        return self.config.gateway.approval_timeout_s

    def messages(self) -> list[GatewayMessage]:
        """The kept gateway messages and stderr lines, oldest first (at most ``MAX_MESSAGES``)."""
        return list(self._messages)

    async def query_audit(self, query: AuditQuery) -> list[AuditRecord]:
        """Read audit records, newest first (off the GUI thread); none when auditing is off."""
        if self.gateway.audit is None:
            return []
        return await self.gateway.audit.query(query)

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
        self.gateway.apply_config(config, restart={name} if secrets else ())

    def remove_server(self, name: str) -> None:
        """Remove server ``name`` (its process is stopped; agents' rules naming it stay)."""
        self._apply(remove_server(self.config_path, name))

    def set_server_enabled(self, name: str, enabled: bool) -> None:
        """Enable or disable server ``name``."""
        self._apply(set_server_enabled(self.config_path, name, enabled))

    def restart_server(self, name: str) -> bool:
        """Restart server ``name`` now; ``False`` when it is disabled or unknown."""
        return self.gateway.restart_server(name)

    def add_agent(self, agent_id: str, name: str | None = None) -> str:
        """Create an agent; returns its token (also kept in the secret store)."""
        token = self._agents.add(agent_id, name)
        self.gateway.tokens.put(agent_id, token)
        self._apply(load_config(self.config_path))
        self.agents_changed.emit()
        return token

    def remove_agent(self, agent_id: str) -> None:
        """Remove an agent and its token; its connections are refused from then on."""
        self._agents.remove(agent_id)
        self.gateway.tokens.put(agent_id, None)
        self._apply(load_config(self.config_path))
        self.agents_changed.emit()

    def rename_agent(self, agent_id: str, name: str) -> None:
        """Change an agent's display name."""
        self._apply(rename_agent(self.config_path, agent_id, name))
        self.agents_changed.emit()

    def rotate_token(self, agent_id: str) -> str:
        """Give an agent a new token (the old one stops working); returns it."""
        token = self._agents.rotate(agent_id)
        self.gateway.tokens.put(agent_id, token)
        self.agents_changed.emit()
        return token

    def set_agent_default(self, agent_id: str, effect: Effect) -> None:
        """Set what applies to an agent where no rule matches."""
        self._apply(set_agent_default(self.config_path, agent_id, effect))

    def set_agent_rule(self, agent_id: str, match: str, effect: Effect | None) -> None:
        """Set (or with ``None`` remove) an agent's rule for exactly ``match`` (``server/*`` or ``server/tool``)."""
        self._apply(set_agent_rule(self.config_path, agent_id, match, effect))

    def set_gateway_settings(self, **settings: Any) -> None:
        """Change ``gateway`` settings (``port``, ``allowed_origins``, ``approval_timeout_s``)."""
        self._apply(set_gateway_settings(self.config_path, **settings))

    def answer_approval(self, request_id: str, answer: Answer) -> None:
        """Answer a waiting call (raises ``ApprovalError`` when it no longer waits)."""
        self.gateway.approvals.answer(request_id, answer)

    def pause(self) -> None:
        """Refuse every call, saying Toolgate is paused."""
        self.gateway.pause()
        self.paused_changed.emit(True)

    def resume(self) -> None:
        """Let calls through again."""
        self.gateway.resume()
        self.paused_changed.emit(False)

    # --- internals ---------------------------------------------------------------------------------

    def _apply(self, config: Config) -> None:
        self.gateway.apply_config(config)

    def _resolve(self, values: Mapping[str, str]) -> dict[str, str]:
        return resolve(values, self._store)

    def _on_event(self, event: Event) -> None:
        match event:
            case ServerStatusChanged(name=name):
                self.server_status_changed.emit(name)
            case ConfigApplied():
                self.config_applied.emit()
            case ConfigRejected(problems=problems):
                self.config_rejected.emit(list(problems))
            case ApprovalRequested(request=request):
                self.approval_requested.emit(request)
            case ApprovalResolved(resolution=resolution):
                self.approval_resolved.emit(resolution)
            case StderrLine(server=server, line=line):
                self._add_message(GatewayMessage(time.time(), "STDERR", server, line))
            case LogMessage(time=when, level=level, source=source, text=text):
                self._add_message(GatewayMessage(when, level, source, text))
            case _:
                pass  # sessions ending are the core's business

    def _add_message(self, message: GatewayMessage) -> None:
        self._messages.append(message)
        self.message_logged.emit(message)

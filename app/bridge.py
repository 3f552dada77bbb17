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
from typing import Any, TypeVar

import anyio
from PySide6.QtCore import QObject, Signal

from gateway_core import (
    AgentInfo,
    AgentPolicy,
    Answer,
    ApprovalRequest,
    ApprovalRequested,
    ApprovalResolved,
    AuditQuery,
    AuditRecord,
    AuditStatus,
    CallsRecorded,
    Catalog,
    CatalogChanged,
    Config,
    ConfigApplied,
    ConfigRejected,
    Effect,
    Endpoint,
    Event,
    EventLogHandler,
    GatewayApi,
    LogMessage,
    Paths,
    SecretStore,
    ServerStatus,
    ServerStatusChanged,
    StderrLine,
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
    """Runs the gateway on the qasync loop and speaks Qt to the widgets: ``GatewayApi`` calls in, signals out.

    Args:
        api: the gateway, as the GUI may use it (``LocalGateway`` in the app; a fake in some tests).
        paths: Toolgate's folders (the theme setting, the Connect pane's backups).
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

    def __init__(self, api: GatewayApi, *, paths: Paths) -> None:
        super().__init__()
        self.api = api
        self.paths = paths
        self.config_path = paths.config_file
        self._messages: collections.deque[GatewayMessage] = collections.deque(maxlen=MAX_MESSAGES)
        self._endpoint: Endpoint | None = None
        # One subscription: every change the core announces arrives here, in order.
        self._unsubscribes = [api.events.subscribe(self._on_event)]
        self._log_handler = EventLogHandler(api.events)
        self._tasks: set[asyncio.Task[Any]] = set()

    # --- running -----------------------------------------------------------------------------------

    async def run(self, sock: socket.socket, *, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
        """Serve on ``sock`` until ``stop()``; ``task_status.started()`` once agents can connect."""
        self._log_handler.attach()
        try:
            async with anyio.create_task_group() as tg:
                self._endpoint = await tg.start(self._serve, sock, tg.cancel_scope)
                self.endpoint_ready.emit(self._endpoint.url)
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
            await self.api.run(sock, task_status=task_status)
        finally:
            feeders.cancel()  # readiness waiters end with the gateway

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
        self.api.stop()

    async def _announce_ready(self) -> None:
        await self.api.wait_ready()
        self.gateway_ready.emit()

    # --- reading -----------------------------------------------------------------------------------

    @property
    def config(self) -> Config:
        """The running configuration."""
        return self.api.config

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
        return self.api.ready()

    @property
    def paused(self) -> bool:
        """Whether every call is refused (Pause all agents)."""
        return self.api.paused

    @property
    def secret_store(self) -> SecretStore:
        """Where the gateway keeps secrets (for the Import and Connect panes)."""
        return self.api.secret_store

    @property
    def secrets_encrypted(self) -> bool:
        """False when secrets are kept in the 0600 file fallback instead of the OS keychain."""
        return self.api.secret_store.encrypted

    @property
    def audit_status(self) -> AuditStatus | None:
        """Whether the audit log is being written; ``None`` when auditing is off."""
        return self.api.audit_status

    @property
    def config_problems(self) -> list[str]:
        """The problems of the last rejected edit of config.json, until a change is applied."""
        return self.api.config_problems

    def statuses(self) -> list[ServerStatus]:
        """Every configured server's state, in config order (disabled ones as STOPPED)."""
        return self.api.statuses()

    def status(self, name: str) -> ServerStatus | None:
        """Server ``name``'s state, or ``None`` when it is not configured."""
        return next((s for s in self.statuses() if s.name == name), None)

    def catalog(self, name: str) -> Catalog:
        """What server ``name`` offers (tools, resources, prompts); empty unless it is ready."""
        return self.api.catalog(name)

    def stderr_lines(self, name: str) -> tuple[str, ...]:
        """The kept stderr lines of stdio server ``name``, oldest first."""
        return self.api.stderr_lines(name)

    def public_tool_name(self, server: str, tool: str) -> str:
        """The name agents see for ``server``'s tool ``tool`` (with the server's prefix)."""
        return self.config.prefix_for(server) + tool if server in self.config.servers else tool

    def agents(self) -> list[AgentInfo]:
        """Every agent, in config order."""
        return self.api.agents()

    def agent_token(self, agent_id: str) -> str | None:
        """Agent ``agent_id``'s bearer token, for the person to copy; ``None`` when it has none."""
        return self.api.agent_token(agent_id)

    def policy(self, agent_id: str) -> AgentPolicy:
        """Agent ``agent_id``'s policy under the running configuration (its ``evaluate`` gives the "why")."""
        return self.api.policy(agent_id)

    def pending_approvals(self) -> list[ApprovalRequest]:
        """Calls waiting for an answer, oldest first."""
        return self.api.pending_approvals()

    @property
    def approval_timeout_s(self) -> float:
        """How long a call waits for an answer before it is denied."""
        return self.config.gateway.approval_timeout_s

    def messages(self) -> list[GatewayMessage]:
        """The kept gateway messages and stderr lines, oldest first (at most ``MAX_MESSAGES``)."""
        return list(self._messages)

    async def query_audit(self, query: AuditQuery) -> list[AuditRecord]:
        """Read audit records, newest first (off the GUI thread); none when auditing is off."""
        return await self.api.query_audit(query)

    def has_secret(self, name: str) -> bool:
        """Whether the secret store holds ``name``."""
        return self.api.has_secret(name)

    # --- actions -----------------------------------------------------------------------------------

    def put_server(
        self,
        name: str,
        entry: Mapping[str, Any],
        *,
        replacing: str | None = None,
        secrets: Mapping[str, str] | None = None,
    ) -> None:
        """Add a server, or change server ``replacing``; its ``secrets`` are stored first (see ``GatewayApi``)."""
        self.api.put_server(name, entry, replacing=replacing, secrets=secrets)

    def remove_server(self, name: str) -> None:
        """Remove server ``name`` (its process is stopped; agents' rules naming it stay)."""
        self.api.remove_server(name)

    def set_server_enabled(self, name: str, enabled: bool) -> None:
        """Enable or disable server ``name``."""
        self.api.set_server_enabled(name, enabled)

    def restart_server(self, name: str) -> bool:
        """Restart server ``name`` now; ``False`` when it is disabled or unknown."""
        return self.api.restart_server(name)

    def add_agent(self, agent_id: str, name: str | None = None) -> str:
        """Create an agent; returns its token (also kept in the secret store)."""
        token = self.api.add_agent(agent_id, name)
        self.agents_changed.emit()
        return token

    def remove_agent(self, agent_id: str) -> None:
        """Remove an agent and its token; its connections are refused from then on."""
        self.api.remove_agent(agent_id)
        self.agents_changed.emit()

    def rename_agent(self, agent_id: str, name: str) -> None:
        """Change an agent's display name."""
        self.api.rename_agent(agent_id, name)
        self.agents_changed.emit()

    def rotate_token(self, agent_id: str) -> str:
        """Give an agent a new token (the old one stops working); returns it."""
        token = self.api.rotate_token(agent_id)
        self.agents_changed.emit()
        return token

    def set_agent_default(self, agent_id: str, effect: Effect) -> None:
        """Set what applies to an agent where no rule matches."""
        self.api.set_agent_default(agent_id, effect)

    def set_agent_rule(self, agent_id: str, match: str, effect: Effect | None) -> None:
        """Set (or with ``None`` remove) an agent's rule for exactly ``match`` (``server/*`` or ``server/tool``)."""
        self.api.set_agent_rule(agent_id, match, effect)

    def set_gateway_settings(self, **settings: Any) -> None:
        """Change ``gateway`` settings (``port``, ``allowed_origins``, ``approval_timeout_s``)."""
        self.api.set_gateway_settings(**settings)

    def answer_approval(self, request_id: str, answer: Answer) -> None:
        """Answer a waiting call (raises ``ApprovalError`` when it no longer waits)."""
        self.api.answer_approval(request_id, answer)

    def pause(self) -> None:
        """Refuse every call, saying Toolgate is paused."""
        self.api.pause()
        self.paused_changed.emit(True)

    def resume(self) -> None:
        """Let calls through again."""
        self.api.resume()
        self.paused_changed.emit(False)

    # --- internals ---------------------------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        match event:
            case ServerStatusChanged(name=name) | CatalogChanged(name=name):
                self.server_status_changed.emit(name)
            case ConfigApplied():
                self.config_applied.emit()
            case ConfigRejected(problems=problems):
                self.config_rejected.emit(list(problems))
            case ApprovalRequested(request=request):
                self.approval_requested.emit(request)
            case ApprovalResolved(resolution=resolution):
                self.approval_resolved.emit(resolution)
            case CallsRecorded(records=records):
                self.audit_records_arrived.emit(list(records))
            case StderrLine(server=server, line=line):
                self._add_message(GatewayMessage(time.time(), "STDERR", server, line))
            case LogMessage(time=when, level=level, source=source, text=text):
                self._add_message(GatewayMessage(when, level, source, text))
            case _:
                pass  # sessions ending are the core's business

    def _add_message(self, message: GatewayMessage) -> None:
        self._messages.append(message)
        self.message_logged.emit(message)

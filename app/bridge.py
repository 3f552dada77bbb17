"""The one place where the GUI meets the gateway: core events become Qt signals, GUI actions become core calls.

Widgets hold a ``GatewayBridge``. They read and act through ``bridge.api`` (the ``GatewayApi``) and
redraw on the bridge's signals; they never touch the ``Gateway`` or the files behind it. The bridge's
own methods are the ones that add to the API: actions the core does not announce emit a signal here
(agents, pause), and the bridge keeps what only the GUI needs (the endpoint, the messages view's lines,
widgets' tasks). Actions that change the configuration write config.json (checked as a whole first)
and apply the result at once; they raise ``ToolgateError`` subclasses whose messages are written for
the person.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import socket
import time
import webbrowser
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
from PySide6.QtCore import QObject, Signal

from app.batches import Batches
from gateway_core import (
    ApprovalRequested,
    ApprovalResolved,
    AuditRecord,
    CallsRecorded,
    CatalogChanged,
    ConfigApplied,
    ConfigRejected,
    Effect,
    Endpoint,
    Event,
    EventLogHandler,
    GatewayApi,
    LogMessage,
    NameKind,
    NamesChanged,
    Paths,
    PausedChanged,
    PublicName,
    RemovedAgent,
    ServerStatus,
    ServerStatusChanged,
    StderrLine,
    ToolChangesChanged,
    ToolgateError,
)

logger = logging.getLogger("toolgate.app")
EFFECT_WORDS = {Effect.ALLOW: "allowed", Effect.ASK: "asked about", Effect.DENY: "denied"}


async def open_in_browser(url: str) -> bool:
    """Open ``url`` in the system browser (``BROWSER`` is honoured); whether one could be opened."""
    return await anyio.to_thread.run_sync(webbrowser.open, url)


# Widgets' tasks get this long to end once cancelled when the gateway stops.
TASK_CANCEL_TIMEOUT_S = 5.0
T = TypeVar("T")

# The Logs panel's second view keeps this many gateway messages and stderr lines (oldest dropped).
MAX_MESSAGES = 5000
# New audit records, messages and stderr lines reach the widgets at most this often (see ``Batches``).
DELIVERY_INTERVAL_S = 0.25


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
    """Runs the gateway on the app's event loop and tells the widgets, as Qt signals, what changed in it.

    Args:
        api: the gateway, as the GUI may use it (``LocalGateway`` in the app; a fake in some tests); kept
            as ``api``, which widgets read and act through.
        paths: Toolgate's folders (the theme setting, the Connect pane's backups).
    """

    server_status_changed = Signal(str)
    """A server's state, counts or stderr tail changed; carries its name (also for added or removed servers)."""
    names_changed = Signal()
    """The names agents see for the servers' tools or prompts changed (read them with ``public_name``)."""
    tool_changes_changed = Signal()
    """Tools waiting for review (a definition changed since it was accepted, a new tool) came or went."""
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
    """New audit records (list of ``AuditRecord``, oldest first) were committed.

    At most every ``DELIVERY_INTERVAL_S``: the first records after a quiet spell come at once, records
    committed within the interval after a delivery come together at its end, and the last ones when
    the gateway stops. None is left out or repeated.
    """
    messages_logged = Signal(list)
    """Gateway messages and server stderr lines (list of ``GatewayMessage``, oldest first).

    Delivered as ``audit_records_arrived`` is: at most every ``DELIVERY_INTERVAL_S``, all of them; and
    always before a ``server_status_changed``, so that a server's last lines come before what became of it.
    """
    paused_changed = Signal(bool)
    """Pause all agents / Resume was switched; carries whether calls are now refused."""
    endpoint_ready = Signal(str)
    """The gateway accepts agents; carries the endpoint URL."""
    gateway_ready = Signal()
    """Every enabled server has had its first start attempt (ready or failed)."""
    stopped = Signal()
    """The gateway has shut down."""
    sign_in_finished = Signal(str, str)
    """A sign-in or sign-out started here ended; carries the server's name and why it failed ("" when it did not)."""

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
        self._names: dict[tuple[NameKind, str, str], PublicName] | None = None  # read again after NamesChanged
        self._new_records: Batches[AuditRecord] = Batches(self.audit_records_arrived.emit, DELIVERY_INTERVAL_S, self)
        self._new_messages: Batches[GatewayMessage] = Batches(self._deliver_messages, DELIVERY_INTERVAL_S, self)

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
            self._new_records.flush()
            self._new_messages.flush()
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
    def endpoint_url(self) -> str | None:
        """Where agents connect (``http://127.0.0.1:PORT/mcp``), once serving."""
        return self._endpoint.url if self._endpoint is not None else None

    @property
    def endpoint_port(self) -> int | None:
        """The port agents connect to now, once serving (it may differ from a port saved since)."""
        return self._endpoint.port if self._endpoint is not None else None

    def status(self, name: str) -> ServerStatus | None:
        """Server ``name``'s state, or ``None`` when it is not configured."""
        return next((s for s in self.api.statuses() if s.name == name), None)

    def public_name(self, server: str, name: str, kind: NameKind = NameKind.TOOL) -> PublicName | None:
        """How agents see ``server``'s tool (or prompt) ``name``, and why that differs; None while it is not listed."""
        if self._names is None:
            self._names = {(n.kind, n.server, n.upstream_name): n for n in self.api.public_names()}
        return self._names.get((kind, server, name))

    def messages(self) -> list[GatewayMessage]:
        """The kept gateway messages and stderr lines, oldest first (at most ``MAX_MESSAGES``)."""
        return list(self._messages)

    # --- actions -----------------------------------------------------------------------------------

    def add_agent(self, agent_id: str, name: str | None = None) -> str:
        """Create an agent; returns its token (also kept in the secret store)."""
        token = self.api.add_agent(agent_id, name)
        self.agents_changed.emit()
        return token

    def remove_agent(self, agent_id: str) -> RemovedAgent:
        """Remove an agent and its token; its connections are refused from then on. Returns what Undo needs."""
        removed = self.api.remove_agent(agent_id)
        self.agents_changed.emit()
        return removed

    def put_back_agent(self, removed: RemovedAgent) -> None:
        """Undo a removal: the agent with its rules and the same token."""
        self.api.put_back_agent(removed)
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

    def pause(self) -> None:
        """Refuse every call, saying Toolgate is paused."""
        self.api.pause()  # paused_changed comes with the core's PausedChanged

    def resume(self) -> None:
        """Let calls through again."""
        self.api.resume()

    def start_sign_in(self, name: str) -> asyncio.Task[None]:
        """Sign in to remote server ``name`` as ``toolgate login`` does, in the system browser (``webbrowser``).

        ``sign_in_finished`` says how it ended; the server connects at once when it worked.
        """
        return self.spawn(self._signing(name, lambda: self.api.sign_in(name, open_in_browser)))

    def start_sign_out(self, name: str) -> asyncio.Task[None]:
        """Revoke and delete remote server ``name``'s tokens, as ``toolgate logout`` does."""
        return self.spawn(self._signing(name, lambda: self.api.sign_out(name)))

    async def _signing(self, name: str, action: Callable[[], Awaitable[object]]) -> None:
        try:
            await action()
        except ToolgateError as exc:  # refused, timed out, a secret missing: said in one sentence, no token in it
            self.sign_in_finished.emit(name, str(exc))
            return
        self.sign_in_finished.emit(name, "")
        self.server_status_changed.emit(name)  # what the detail view shows of the sign-in changed

    # --- internals ---------------------------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        match event:
            case ServerStatusChanged(name=name) | CatalogChanged(name=name):
                # A server's last stderr lines (a crash's traceback) come before what became of it.
                self._new_messages.flush()
                self.server_status_changed.emit(name)
            case ToolChangesChanged():
                self.tool_changes_changed.emit()
            case NamesChanged():
                self._names = None
                self.names_changed.emit()
            case ConfigApplied():
                self.config_applied.emit()
            case ConfigRejected(problems=problems):
                self.config_rejected.emit(list(problems))
            case PausedChanged(paused=paused):
                self.paused_changed.emit(paused)
            case ApprovalRequested(request=request):
                self.approval_requested.emit(request)
            case ApprovalResolved(resolution=resolution):
                self.approval_resolved.emit(resolution)
            case CallsRecorded(records=records):
                self._new_records.add(records)
            case StderrLine(server=server, line=line):
                self._new_messages.add((GatewayMessage(time.time(), "STDERR", server, line),))
            case LogMessage(time=when, level=level, source=source, text=text):
                self._new_messages.add((GatewayMessage(when, level, source, text),))
            case _:
                pass  # sessions ending are the core's business

    def _deliver_messages(self, messages: list[GatewayMessage]) -> None:
        self._messages.extend(messages)  # ``messages()`` holds what was delivered: a view opened now misses none
        self.messages_logged.emit(messages)

"""Overview: where agents connect, whether everything is running, and what needs attention."""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import QFormLayout, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app.bridge import GatewayBridge
from app.common import ToneLabel, copy_text
from app.palette import Tone
from app.panels.checklist import GetStarted
from gateway_core import AuditQuery, AuditRecord, RecordKind, ServerState, unencrypted_reason

HOUR_S = 3600.0
# "Copied ✓" shows this long on the Copy button.
COPIED_MS = 2000
# Calls in the last hour are recounted from the audit log this often (so old calls age out).
RECOUNT_INTERVAL_MS = 60_000
# Counting stops here and shows "10000+"; the Logs panel has the full history.
MAX_COUNTED_CALLS = 10_000


class OverviewPanel(QWidget):
    """Get started (until done), endpoint with Copy, state, counts, recent calls, approvals, warnings.

    Args:
        bridge: the running gateway.
        show_panel: switches the window to another panel (``"approvals"``, ``"servers"``).
        open_clients: opens the Agents panel's Import (``"import"``) or Connect (``"connect"``) pane.
        add_server: opens the Servers panel's Add form.
    """

    def __init__(
        self,
        bridge: GatewayBridge,
        *,
        show_panel: Callable[[str], None],
        open_clients: Callable[[str], None] | None = None,
        add_server: Callable[[], None] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._bridge = bridge
        self._show_panel = show_panel
        self._call_times: list[float] = []  # when each call of the last hour ended, oldest first
        self._calls_capped = False
        self.checklist = GetStarted(
            bridge,
            open_clients=open_clients or (lambda _mode: show_panel("agents")),
            open_agents=lambda: show_panel("agents"),
            add_server=add_server or (lambda: show_panel("servers")),
        )
        self.endpoint = QLabel("starting…")
        self.endpoint.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.copy_endpoint = QPushButton("C&opy")
        self.copy_endpoint.setEnabled(False)
        # Wide enough for "Copied ✓" from the start, so the button does not grow under the pointer.
        self.copy_endpoint.setMinimumWidth(self.copy_endpoint.fontMetrics().horizontalAdvance("Copied ✓") + 32)
        self.copy_endpoint.clicked.connect(self._copy_endpoint)
        self.state = QLabel()
        self.resume = QPushButton("Re&sume")
        self.resume.setToolTip("Let agents' calls through again")
        self.resume.clicked.connect(bridge.resume)
        self._copied_timer = QTimer(self, singleShot=True, interval=COPIED_MS)
        self._copied_timer.timeout.connect(lambda: self.copy_endpoint.setText("C&opy"))
        self.agents = QLabel()
        self.servers = QLabel()
        self.tools = QLabel()
        self.calls = QLabel("…")
        self.pending = QLabel()
        self.review = QPushButton("Re&view…")
        self.review.clicked.connect(lambda: show_panel("approvals"))
        self.warnings = ToneLabel(Tone.WARN)
        self.warnings.setWordWrap(True)
        self.warnings.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        endpoint_row = QHBoxLayout()
        endpoint_row.addWidget(self.endpoint, 1)
        endpoint_row.addWidget(self.copy_endpoint)
        state_row = QHBoxLayout()
        state_row.addWidget(self.state, 1)
        state_row.addWidget(self.resume)
        pending_row = QHBoxLayout()
        pending_row.addWidget(self.pending, 1)
        pending_row.addWidget(self.review)
        form = QFormLayout()
        form.addRow("Endpoint", endpoint_row)
        form.addRow("State", state_row)
        form.addRow("Agents", self.agents)
        form.addRow("Servers", self.servers)
        form.addRow("Tools", self.tools)
        form.addRow("Calls in the last hour", self.calls)
        form.addRow("Pending approvals", pending_row)
        heading = QLabel("<h2>Toolgate</h2>")
        layout = QVBoxLayout(self)
        layout.addWidget(heading)
        layout.addWidget(self.checklist)
        layout.addLayout(form)
        layout.addWidget(self.warnings)
        layout.addStretch(1)

        bridge.endpoint_ready.connect(self._show_endpoint)
        for signal in (
            bridge.server_status_changed,
            bridge.config_applied,
            bridge.config_rejected,
            bridge.agents_changed,
            bridge.paused_changed,
            bridge.approval_requested,
            bridge.approval_resolved,
            bridge.gateway_ready,
        ):
            signal.connect(self.refresh)
        bridge.audit_records_arrived.connect(self._count_new_calls)
        self._recount_timer = QTimer(self)
        self._recount_timer.setInterval(RECOUNT_INTERVAL_MS)
        self._recount_timer.timeout.connect(self.recount_calls)
        self._recount_timer.start()
        if bridge.endpoint_url is not None:
            self._show_endpoint(bridge.endpoint_url)
        self.refresh()
        self.recount_calls()

    def showEvent(self, event: QShowEvent) -> None:  # noqa: D102 (Qt override)
        super().showEvent(event)
        if self.checklist.isVisibleTo(self):
            self.checklist.rescan()  # an IDE may have been set up since

    def refresh(self, *_: object) -> None:
        """Redraw every line from the gateway's current state."""
        statuses = self._bridge.api.statuses()
        ready = [s for s in statuses if s.state is ServerState.READY]
        failed = [s for s in statuses if s.state is ServerState.FAILED]
        signed_out = [s for s in statuses if s.state is ServerState.NEEDS_SIGN_IN]
        if self._bridge.api.paused:
            state = "Paused: every call is refused until you resume"
        elif failed:
            state = f"Running; {_count(len(failed), 'server')} failed ({', '.join(s.name for s in failed)})"
        elif signed_out:
            names = ", ".join(s.name for s in signed_out)
            need = "needs" if len(signed_out) == 1 else "need"
            state = f"Running; {_count(len(signed_out), 'server')} {need} a sign-in ({names}: Servers ▸ Sign in…)"
        elif not self._bridge.api.ready():
            state = "Starting servers…"
        else:
            state = "Running"
        self.state.setText(state)
        self.resume.setVisible(self._bridge.api.paused)
        self.agents.setText(str(len(self._bridge.api.config.agents)))
        self.servers.setText(f"{len(statuses)} configured, {len(ready)} ready")
        self.tools.setText(str(sum(s.tools for s in ready)))
        pending = len(self._bridge.api.pending_approvals())
        self.pending.setText(str(pending))
        self.review.setVisible(pending > 0)
        self.warnings.setText("\n".join(self._warnings()))
        self.warnings.setVisible(bool(self.warnings.text()))

    def _warnings(self) -> list[str]:
        warnings = []
        if not self._bridge.api.secret_store.encrypted:
            warnings.append(f"Secrets are not encrypted on this system: {unencrypted_reason()}.")
        audit = self._bridge.api.audit_status
        if audit is not None and not audit.healthy:
            warnings.append(f"Calls are not being recorded: {audit.problem}")
        problems = self._bridge.api.config_problems
        if problems:
            warnings.append("Your last edit of config.json was not applied (the running configuration stays):")
            warnings.extend(f"  {problem}" for problem in problems)
        return warnings

    def recount_calls(self) -> None:
        """Count the calls of the last hour again from the audit log (off the GUI thread)."""
        self._bridge.spawn(self._recount())

    async def _recount(self) -> None:
        since = time.time() - HOUR_S
        records = await self._bridge.api.query_audit(AuditQuery(since=since, limit=MAX_COUNTED_CALLS * 2))
        self._call_times = sorted(r.time for r in records if _is_call_outcome(r))
        self._calls_capped = len(records) >= MAX_COUNTED_CALLS * 2
        self._show_calls()

    def _count_new_calls(self, records: list[AuditRecord]) -> None:
        for record in records:
            if _is_call_outcome(record):
                bisect.insort(self._call_times, record.time)  # at the end but for calls ending at once
        self._show_calls()

    def _show_calls(self) -> None:
        """Show how many calls ended within the hour; older ones are dropped (the times are kept in order)."""
        del self._call_times[: bisect.bisect_left(self._call_times, time.time() - HOUR_S)]
        count = len(self._call_times)
        self.calls.setText(f"{count}+" if self._calls_capped else str(count))

    def _show_endpoint(self, url: str) -> None:
        self.endpoint.setText(url)
        self.copy_endpoint.setEnabled(True)

    def _copy_endpoint(self) -> None:
        if self._bridge.endpoint_url is not None:
            copy_text(self._bridge.endpoint_url)
            self.copy_endpoint.setText("Copied ✓")  # for a moment, then "Copy" again
            self._copied_timer.start()


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _is_call_outcome(record: AuditRecord) -> bool:
    """An agent's call that ended (a server's question to an agent is not one of the agent's calls)."""
    return record.kind is RecordKind.OUTCOME and not record.is_question and not record.is_definition

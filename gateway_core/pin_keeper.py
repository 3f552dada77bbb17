"""The gateway's side of pinned tools: each listing compared with the pins, what changed recorded, accepting.

``PinKeeper`` owns the ``PinFile``. ``run`` (a task of the gateway, started before the servers) reads the
pins and then saves them whenever they change; ``observe`` is called with each server's tools whenever it
lists them; ``accept`` is what ``toolgate tools accept`` and the window's Accept do. Each change, each new
tool and each acceptance is a record pair in the audit log (agent ``*``), a log line and a
``ToolChangesChanged`` event.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import anyio
import anyio.to_thread
import mcp_types as types
from anyio.abc import TaskStatus

from gateway_core.audit import AuditLog
from gateway_core.audit.records import DEFINITION_ACCEPTED_RULE, DEFINITION_CHANGED_RULE, DEFINITION_NEW_RULE
from gateway_core.events import ToolChangesChanged
from gateway_core.pin_file import PinFile
from gateway_core.pinning import ChangeKind, ToolChange
from gateway_core.policy import AgentPolicy, Effect, Rank

logger = logging.getLogger(__name__)

# Whom the audit records of pinned tools are about: every agent.
PINS_AGENT = "*"
# How much of a definition's fingerprint its audit records show: enough to tell two apart, and short enough
# not to be taken for a secret and redacted.
FINGERPRINT_SHOWN = 16


class PinKeeper:
    """Pinned tools of one gateway.

    Args:
        path: where the pins are kept (``pin_file.pins_path``); None keeps them in memory only.
        audit: the audit log, or None when auditing is off.
        publish: announces ``ToolChangesChanged`` on the gateway's event stream.
        policies: every agent's policy in force (a new tool is shown as new when one may call it unasked).
    """

    def __init__(
        self,
        path: Path | None,
        *,
        audit: AuditLog | None,
        publish: Callable[[ToolChangesChanged], None],
        policies: Callable[[], Iterable[AgentPolicy]],
    ) -> None:
        self._file = PinFile(path)
        self._audit = audit
        self._publish = publish
        self._policies = policies

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Read the pins (off the event loop), then save them after each change until cancelled."""
        await anyio.to_thread.run_sync(self._file.load)
        await self._file.run(task_status=task_status)

    def change(self, server: str, tool: str) -> ToolChange | None:
        """The change of ``server``'s tool ``tool`` waiting for review, if any (read at every call)."""
        return self._file.pins.change(server, tool)

    def changes(self) -> list[ToolChange]:
        """The tools whose definitions wait for the person's review (changed, or new), by server and tool."""
        return self._file.pins.changes()

    def observe(self, server: str, tools: Iterable[types.Tool]) -> None:
        """Compare what ``server`` lists now with its pins; record and announce what is new."""
        pins = self._file.pins
        before = pins.version
        for change in pins.observe(server, tools, self._may_call_unasked):
            logger.warning("%s", change.sentence[:1].upper() + change.sentence[1:])
            changed = change.kind is ChangeKind.CHANGED
            self._record(
                change,
                Effect.ASK if changed else Effect.ALLOW,
                DEFINITION_CHANGED_RULE if changed else DEFINITION_NEW_RULE,
                change.sentence,
            )
        if pins.version != before:
            self._file.save_soon()
            self._publish(ToolChangesChanged())

    def accept(self, server: str, tool: str | None = None, *, seen: str | None = None) -> list[ToolChange]:
        """Pin what ``server`` lists now for ``tool`` (every change of it when None); see ``ToolPins.accept``.

        Raises:
            PinError: nothing to accept; ``ChangedAgain`` when the tool changed since ``seen`` was shown.
        """
        accepted = self._file.pins.accept(server, tool, seen=seen)
        for change in accepted:
            name = f"{change.server}/{change.tool}"
            logger.info("the person accepted the definition of tool %s", name)
            reason = f"the person accepted the {change.kind.value} definition of tool {name}; its rules decide again"
            self._record(change, Effect.ALLOW, DEFINITION_ACCEPTED_RULE, reason)
        self._file.save_soon()
        self._publish(ToolChangesChanged())
        return accepted

    def _record(self, change: ToolChange, effect: Effect, rule: str, reason: str) -> None:
        if self._audit is None:
            return
        self._audit.record_notice(
            agent=PINS_AGENT,
            server=change.server,
            tool=change.tool,
            effect=effect.value,
            rule=rule,
            reason=reason,
            details={"fields": list(change.fields), "definition": change.fingerprint[:FINGERPRINT_SHOWN]},
        )

    def _may_call_unasked(self, server: str, tool: str) -> bool:
        """Whether some agent may call a tool it was never shown without being asked (no rule names it)."""
        now = time.time()
        for policy in self._policies():
            decision = policy.evaluate(server, tool, now=now)
            if decision.effect is Effect.ALLOW and decision.rank is not Rank.EXACT_TOOL:
                return True
        return False

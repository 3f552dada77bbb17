"""What the Logs panel shows of a call: its filter, its row (decision and outcome), and its detail text."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from app.common import EFFECT_TEXT, format_duration, format_time
from app.palette import Tone, ToneMap
from gateway_core import Answer, AuditQuery, AuditRecord, CallOutcome, Effect, RecordKind

RUNNING_TEXT = "running…"
OUTCOME_TEXT = {
    CallOutcome.OK: "OK",
    CallOutcome.TOOL_ERROR: "Tool error",
    CallOutcome.PROTOCOL_ERROR: "Protocol error",
    CallOutcome.TIMEOUT: "Timed out",
    CallOutcome.WITHDRAWN: "Withdrawn",
    CallOutcome.DENIED: "Denied",
    CallOutcome.UNAVAILABLE: "Server unavailable",
    CallOutcome.RATE_LIMITED: "Rate limited",
}
OUTCOME_COLOR = ToneMap(
    {
        CallOutcome.OK: Tone.GOOD,
        CallOutcome.TOOL_ERROR: Tone.BAD,
        CallOutcome.PROTOCOL_ERROR: Tone.BAD,
        CallOutcome.TIMEOUT: Tone.WARN,
        CallOutcome.WITHDRAWN: Tone.WARN,
        CallOutcome.DENIED: Tone.BAD,
        CallOutcome.UNAVAILABLE: Tone.BAD,
        CallOutcome.RATE_LIMITED: Tone.WARN,
    }
)
# Keyed by the answer's value: the audit log keeps answers as text.
ANSWER_TEXT: dict[str, str] = {
    Answer.ALLOW_ONCE: "allowed once",
    Answer.ALLOW_SESSION: "allowed for this session",
    Answer.ALLOW_ALWAYS: "always allowed",
    Answer.DENY: "denied",
    Answer.DENY_ALWAYS: "always denied",
    Answer.ALLOW_FOR: "allowed for a while",
    Answer.DENY_FOR: "denied for a while",
}


@dataclass(frozen=True)
class LogFilter:
    """Which calls the Logs panel shows; ``None`` or ``""`` means any.

    Attributes:
        agent: only this agent's calls (its id).
        server: only calls to this server.
        outcome: only calls that ended this way.
        text: a case-insensitive substring of the tool, the argument summary or the reason.
    """

    agent: str | None = None
    server: str | None = None
    outcome: CallOutcome | None = None
    text: str = ""

    def query(self, **page: Any) -> AuditQuery:
        """The audit query for this filter, with ``page`` (``limit``, ``before_id``, ``after_id``)."""
        return AuditQuery(
            agent=self.agent,
            server=self.server,
            outcome=None if self.outcome is None else self.outcome.value,
            text=self.text or None,
            **page,
        )

    def matches(self, record: AuditRecord) -> bool:
        """Whether ``record`` is one the audit query for this filter selects."""
        if self.agent is not None and record.agent != self.agent:
            return False
        if self.server is not None and record.server != self.server:
            return False
        if self.outcome is not None and record.outcome != self.outcome:
            return False
        if self.text:
            needle = self.text.casefold()
            return any(needle in (field or "").casefold() for field in (record.tool, record.arguments, record.reason))
        return True

    @property
    def drops_half_calls(self) -> bool:
        """Whether the filter can select a call's decision without its outcome, or the reverse."""
        return self.outcome is not None or bool(self.text)


@dataclass(eq=False)
class CallRow:
    """One call: its decision record and its outcome record, as far as they are known."""

    call_id: str
    decision: AuditRecord | None = None
    outcome: AuditRecord | None = None

    def add(self, record: AuditRecord) -> bool:
        """Take ``record`` as this call's decision or outcome; whether anything changed."""
        name = "decision" if record.kind is RecordKind.DECISION else "outcome"
        if getattr(self, name) == record:
            return False
        setattr(self, name, record)
        return True

    @property
    def first(self) -> AuditRecord:
        """The earliest known record of the call."""
        record = self.decision or self.outcome
        assert record is not None, "a call row always has a record"
        return record

    @property
    def ids(self) -> list[int]:
        """The ids of the known records."""
        return [r.id for r in (self.decision, self.outcome) if r is not None]

    def _pick(self, name: str) -> Any:
        for record in (self.decision, self.outcome):
            if record is not None and getattr(record, name) is not None:
                return getattr(record, name)
        return None

    @property
    def effect(self) -> Effect | None:
        """What the policy decided."""
        value = self._pick("effect")
        return None if value is None else Effect(value)

    @property
    def rule(self) -> str | None:
        """The rule that decided."""
        return self._pick("rule")  # type: ignore[no-any-return]

    @property
    def reason(self) -> str | None:
        """The policy's sentence."""
        return self._pick("reason")  # type: ignore[no-any-return]

    @property
    def answer(self) -> str | None:
        """The person's answer, when the call was asked about."""
        return None if self.outcome is None else self.outcome.answer


def describe_call(row: CallRow, agent: str) -> str:
    """The detail pane's text for a call; ``agent`` is how its agent is shown."""
    first = row.first
    outcome = row.outcome
    lines = [
        f"{first.server} / {first.tool}",
        f"Agent: {agent}",
        f"Started: {format_time(first.time)}",
        f"Decision: {EFFECT_TEXT[row.effect] if row.effect else '—'}",
        f"Rule: {row.rule or '—'}",
        f"Reason: {row.reason or '—'}",
    ]
    if outcome is not None and outcome.answer:
        lines.append(f"Answer: {ANSWER_TEXT.get(outcome.answer, outcome.answer)}")
    if outcome is not None and outcome.waited_s is not None:
        lines.append(f"Waited: {format_duration(outcome.waited_s)}")
    if outcome is None or outcome.outcome is None:
        lines.append(f"Outcome: {RUNNING_TEXT}")
    else:
        lines.append(f"Outcome: {OUTCOME_TEXT[outcome.outcome]}")
        lines.append(f"Latency: {format_duration(outcome.latency_s)}")
        size = "—" if outcome.result_size is None else f"{outcome.result_size} bytes"
        lines.append(f"Result size: {size}")
    lines += ["", "Arguments (secrets redacted):", pretty_arguments(row.decision.arguments) if row.decision else "—"]
    return "\n".join(lines)


def pretty_arguments(summary: str) -> str:
    """The stored argument summary, indented when it is whole JSON (a summary cut short is shown as is)."""
    try:
        parsed = json.loads(summary)
    except ValueError:
        return summary
    return json.dumps(parsed, indent=2, ensure_ascii=False)

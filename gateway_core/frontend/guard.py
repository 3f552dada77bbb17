"""What stands between an agent's call and the downstream server: policy, approvals, pause and the audit log.

For every tools/call (and every prompt or resource read) the guard decides with the agent's policy,
records the decision in the audit journal *before* anything is forwarded, waits for an approval when
the effect is ``ask``, and afterwards records the outcome. A refusal is a tool result the model can
act on, naming the agent, the tool and the rule, with the error code in ``_meta``. A tool whose definition
changed since the person accepted it asks instead of being allowed (``gateway_core.pinning``), and an
earlier "allow for this session" does not cover it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
import mcp_types as types

from gateway_core.approvals import ApprovalBroker, Outcome, RequestKind, Resolution
from gateway_core.audit import AuditedCall, AuditLog, CallOutcome, new_call_id
from gateway_core.audit.records import QUESTION_ASKED_RULE, QUESTION_REFUSED_RULE
from gateway_core.errors import ErrorCode
from gateway_core.frontend.runtime import RuntimeCell
from gateway_core.pinning import HeldForReview, ToolChange, held_for_review
from gateway_core.policy import AgentPolicy, Decision, Effect
from gateway_core.rate_limits import NO_LIMITS, LimitHit, RateLimiter

# How often a waiting approval checks that its agent is still connected (HTTP gives no push for it).
DISCONNECT_POLL_S = 0.25
# Where a refusal's machine-readable code travels in a tool result.
ERROR_META_KEY = "io.toolgate/error"


@dataclass(frozen=True)
class Admission:
    """The guard's verdict on one call: forward it (``allowed``) or answer with ``refusal``."""

    call_id: str
    decision: Decision
    resolution: Resolution | None = None
    refusal: str | None = None
    # The decision's audit record, which the outcome's shares its columns with (None: auditing is off).
    audited: AuditedCall | None = None

    @property
    def allowed(self) -> bool:
        """Whether the call may be forwarded downstream."""
        return self.refusal is None

    @property
    def refused_as(self) -> str:
        """The outcome a refusal is recorded and counted as: ``timeout`` (nobody answered) or ``denied``."""
        timed_out = self.resolution is not None and self.resolution.outcome is Outcome.TIMED_OUT
        return "timeout" if timed_out else "denied"


@dataclass(frozen=True)
class Asking:
    """A call whose decision is recorded and says ``ask``: what ``CallGuard.ask`` puts to the person."""

    call_id: str
    agent: str
    session_id: str | None
    server: str
    audited_tool: str
    public_name: str
    arguments: Mapping[str, Any] | None
    kind: RequestKind
    decision: Decision
    audited: AuditedCall | None


class CallGuard:
    """Applies the runtime's policies to calls, and records what happened.

    Args:
        runtime: where the policies in force are read, at each decision.
        broker: where ``ask`` calls wait for a person's answer.
        audit: the audit log, or ``None`` when auditing is off.
        limiter: counts calls against agents' ``limits``.
        changed: the change of a server's tool waiting for review, if any (pinned tools); None: none ever.
    """

    def __init__(
        self,
        runtime: RuntimeCell,
        broker: ApprovalBroker,
        audit: AuditLog | None,
        limiter: RateLimiter | None = None,
        *,
        changed: Callable[[str, str], ToolChange | None] | None = None,
    ) -> None:
        self._runtime = runtime
        self._broker = broker
        self._audit = audit
        # Whether outcomes are recorded (so whether they are worth measuring).
        self.auditing = audit is not None
        self._limiter = limiter or RateLimiter()
        self._changed = changed
        self.paused = False

    def policy(self, agent: str) -> AgentPolicy:
        """The agent's policy; an agent no longer in the configuration may do nothing."""
        return self._runtime.now.policy(agent)

    def session_ended(self, session_id: str) -> None:
        """A handshake-era session ended (DELETE, idle expiry, crash): its "allow for this session" grants end."""
        self._broker.end_session(session_id)

    def may_see(self, agent: str, server: str, tool: str | None = None) -> bool:
        """Whether ``agent`` is shown the tool (or, with no tool, the server's prompts and resources)."""
        policy = self.policy(agent)
        now = time.time()
        if tool is None:
            return policy.evaluate_server(server, now=now).effect is not Effect.DENY
        return policy.visible(server, tool, now=now, annotations=self.hints(server, tool))

    def hints(self, server: str, tool: str) -> dict[str, bool] | None:
        """The annotation hints ``server`` states for its tool ``tool`` as it lists it now (None: none)."""
        return self._runtime.now.routes.hints.get((server, tool))

    def limit(self, *, agent: str, server: str, tool: str, arguments: Mapping[str, Any] | None) -> LimitHit | None:
        """Count one tool call against its agent's ``limits`` (and those for its server) before anything else decides.

        Returns:
            None when it may go on (then ``release(agent, server)`` exactly once when it ends), or the limit
            it is over; that refusal is recorded (decision ``deny`` by the limit, outcome ``rate_limited``).
        """
        entry = self._runtime.now.config.agents.get(agent)
        hit = self._limiter.acquire(agent, entry.limits if entry is not None else NO_LIMITS, server)
        if hit is None or self._audit is None:
            return hit
        reason = hit.reason(agent)
        call = self._audit.decide(
            call_id=new_call_id(),
            agent=agent,
            server=server,
            tool=tool,
            effect=Effect.DENY.value,
            rule=hit.rule_text,
            reason=reason,
            arguments=arguments,
        )
        self._audit.finish(call, outcome=CallOutcome.RATE_LIMITED.value, latency_s=0.0, reason=reason)
        return hit

    def release(self, agent: str, server: str) -> None:
        """A call ``limit`` let through (``agent``'s, to ``server``) has ended."""
        self._limiter.release(agent, server)

    async def admit(
        self,
        *,
        agent: str,
        session_id: str | None,
        server: str,
        tool: str | None,
        public_name: str,
        arguments: Mapping[str, Any] | None,
        disconnected: Callable[[], Awaitable[bool]] | None = None,
        kind: RequestKind = "tool",
        ask: bool = True,
    ) -> Admission:
        """Decide on one call, record the decision, and wait for an approval if one is needed.

        ``tool`` is the upstream tool name, or ``None`` for a prompt or resource (decided for the
        whole server; ``kind`` says which). Cancellation while waiting withdraws the approval, is
        recorded, and propagates; so does the agent going away, which ``disconnected`` reports
        (checked while waiting). With ``ask`` False a decision to ask refuses at once: for requests
        too frequent to put to a person (completions).
        """
        verdict = self.verdict(
            agent=agent,
            session_id=session_id,
            server=server,
            tool=tool,
            public_name=public_name,
            arguments=arguments,
            kind=kind,
            ask=ask,
        )
        return await self.ask(verdict, disconnected) if isinstance(verdict, Asking) else verdict

    def verdict(
        self,
        *,
        agent: str,
        session_id: str | None,
        server: str,
        tool: str | None,
        public_name: str,
        arguments: Mapping[str, Any] | None,
        kind: RequestKind = "tool",
        ask: bool = True,
    ) -> Admission | Asking:
        """``admit`` up to the person: the admission, or, when a person must be asked, what ``ask`` asks.

        Deciding and recording need no waiting: a call that is allowed or refused at once (nearly every
        one) is admitted without a coroutine.
        """
        call_id = new_call_id()
        runtime = self._runtime.now  # what ``policy`` and ``hints`` read, read once
        policy = runtime.policies.get(agent) or runtime.policy(agent)
        if tool is None:
            decision = policy.evaluate_server(server, now=time.time())
        else:
            hints = runtime.routes.hints.get((server, tool))
            decision = policy.evaluate(server, tool, now=time.time(), arguments=arguments or {}, annotations=hints)
        if tool is not None and kind == "tool" and self._changed is not None:
            change = self._changed(server, tool)
            if change is not None:  # a definition waiting for review (nearly always none)
                decision = held_for_review(decision, change)
        audited_tool = public_name if tool is None else tool
        audited = (
            None
            if self._audit is None
            else self._audit.decide(
                call_id=call_id,
                agent=agent,
                server=server,
                tool=audited_tool,
                effect=_EFFECT_TEXTS[decision.effect],
                rule=decision.rule_text,
                reason=decision.reason,
                arguments=arguments,
            )
        )
        if self.paused:
            return self._refuse(call_id, agent, server, audited_tool, decision, None, PAUSED_MESSAGE, audited)
        if decision.effect is Effect.DENY:
            refusal = f"Toolgate: agent {agent!r} may not call {public_name} (rule: {decision.rule_text})"
            return self._refuse(call_id, agent, server, audited_tool, decision, None, refusal, audited)
        if decision.effect is Effect.ALLOW:
            return _allowed(call_id, decision, audited)
        if not ask:
            refusal = (
                f"Toolgate: agent {agent!r} may only ask for {public_name} (rule: {decision.rule_text}), and a "
                f"{kind} is never put to the person; allow server {server!r} for the agent to get it"
            )
            return self._refuse(call_id, agent, server, audited_tool, decision, None, refusal, audited)
        return Asking(call_id, agent, session_id, server, audited_tool, public_name, arguments, kind, decision, audited)

    async def ask(self, asking: Asking, disconnected: Callable[[], Awaitable[bool]] | None) -> Admission:
        """Put a call ``verdict`` could not settle to the person and wait (see ``admit``)."""
        call_id, agent, server, audited_tool = asking.call_id, asking.agent, asking.server, asking.audited_tool
        public_name, decision, audited = asking.public_name, asking.decision, asking.audited
        try:
            resolution = await self._ask_while_connected(
                disconnected,
                agent=agent,
                server=server,
                tool=audited_tool,
                public_name=public_name,
                arguments=dict(asking.arguments or {}),
                rule_text=decision.rule_text,
                reason=decision.reason,
                # A session grant given before the definition changed must not cover the changed tool.
                session_id=None if isinstance(decision, HeldForReview) else asking.session_id,
                kind=asking.kind,
                looked_at=decision.looked_at,
                held_for_review=isinstance(decision, HeldForReview),
            )
        except BaseException:
            self._record_withdrawn(call_id, agent, server, audited_tool, decision, audited)
            raise
        if resolution is None:
            self._record_withdrawn(call_id, agent, server, audited_tool, decision, audited)
            gone = f"Toolgate: agent {agent!r} went away before an answer"
            return Admission(call_id, decision, None, gone, audited)
        if resolution.allowed:
            return Admission(call_id, decision, resolution, None, audited)
        if resolution.outcome is Outcome.TIMED_OUT:
            refusal = (
                f"Toolgate: nobody approved {public_name} for agent {agent!r} within "
                f"{resolution.waited_s:.0f} s, so it was not run (rule: {decision.rule_text})"
            )
        else:
            refusal = (
                f"Toolgate: the person denied agent {agent!r} the call to {public_name} (rule: {decision.rule_text})"
            )
        return self._refuse(call_id, agent, server, audited_tool, decision, resolution, refusal, audited)

    async def _ask_while_connected(
        self, disconnected: Callable[[], Awaitable[bool]] | None, **request: Any
    ) -> Resolution | None:
        """Wait for the broker's answer; ``None`` if the agent disconnected first (the request is withdrawn)."""
        if disconnected is None:
            return await self._broker.ask(**request)
        resolution: Resolution | None = None
        async with anyio.create_task_group() as tg:

            async def withdraw_when_gone() -> None:
                # HTTP gives no push when a client goes away; polling is the only way to notice.
                while not await disconnected():  # noqa: ASYNC110
                    await anyio.sleep(DISCONNECT_POLL_S)
                tg.cancel_scope.cancel()

            tg.start_soon(withdraw_when_gone)
            resolution = await self._broker.ask(**request)
            tg.cancel_scope.cancel()
        return resolution

    def record_outcome(
        self,
        admission: Admission,
        *,
        agent: str,
        server: str,
        tool: str,
        outcome: str,
        latency_s: float,
        result_size: int | None,
    ) -> None:
        """Record the outcome of a forwarded call."""
        audit = self._audit
        if audit is None:
            return
        resolution = admission.resolution
        answer = resolution.answer.value if resolution and resolution.answer else None
        waited_s = resolution.waited_s if resolution else None
        call = admission.audited
        if call is not None and call.agent == agent and call.server == server and call.tool == tool:
            # What the decision's record holds already (id, agent, server, tool, effect, rule), encoded there.
            audit.finish(
                call, outcome=outcome, latency_s=latency_s, result_size=result_size, answer=answer, waited_s=waited_s
            )
            return
        audit.record_outcome(
            call_id=admission.call_id,
            agent=agent,
            server=server,
            tool=tool,
            outcome=outcome,
            latency_s=latency_s,
            result_size=result_size,
            answer=answer,
            waited_s=waited_s,
            effect=admission.decision.effect.value,
            rule=admission.decision.rule_text,
        )

    async def record_question(self, agent: str, server: str, method: str, outcome: str, latency_s: float) -> None:
        """Record a question ``server`` put to ``agent`` during its call (sampling, elicitation, roots).

        The record pair reads like a call: the method as the tool, ``deny`` when the agent could
        not be asked (it lacks the capability), and how the exchange ended.
        """
        if self._audit is None:
            return
        call_id = new_call_id()
        asked = outcome != "denied"
        rule = QUESTION_ASKED_RULE if asked else QUESTION_REFUSED_RULE
        reason = (
            f"server {server!r} asked agent {agent!r} ({method}) during a call"
            if asked
            else f"server {server!r} asked agent {agent!r} ({method}), which it did not advertise support for"
        )
        effect = "allow" if asked else "deny"
        await self._audit.record_decision(
            call_id=call_id,
            agent=agent,
            server=server,
            tool=method,
            effect=effect,
            rule=rule,
            reason=reason,
            arguments=None,
        )
        self._audit.record_outcome(
            call_id=call_id,
            agent=agent,
            server=server,
            tool=method,
            outcome=outcome,
            latency_s=latency_s,
            effect=effect,
            rule=rule,
            reason=reason,
        )

    def _refuse(
        self,
        call_id: str,
        agent: str,
        server: str,
        tool: str,
        decision: Decision,
        resolution: Resolution | None,
        refusal: str,
        audited: AuditedCall | None,
    ) -> Admission:
        admission = Admission(call_id, decision, resolution, refusal, audited)
        self.record_outcome(
            admission,
            agent=agent,
            server=server,
            tool=tool,
            outcome=admission.refused_as,
            latency_s=0.0,
            result_size=None,
        )
        return admission

    def _record_withdrawn(
        self, call_id: str, agent: str, server: str, tool: str, decision: Decision, audited: AuditedCall | None
    ) -> None:
        admission = Admission(call_id, decision, None, None, audited)
        self.record_outcome(
            admission, agent=agent, server=server, tool=tool, outcome="withdrawn", latency_s=0.0, result_size=None
        )


def _allowed(call_id: str, decision: Decision, audited: AuditedCall | None) -> Admission:
    """``Admission(call_id, decision, None, None, audited)``, without the frozen constructor's five setattr calls."""
    admission = _NEW(Admission)
    admission.__dict__.update(call_id=call_id, decision=decision, resolution=None, refusal=None, audited=audited)
    return admission


_NEW = object.__new__
# Each effect's text, as the audit log records it (``Effect.value``, without the enum's lookup).
_EFFECT_TEXTS: dict[Effect, str] = {effect: effect.value for effect in Effect}
PAUSED_MESSAGE = "Toolgate: the gateway is paused, so no tool calls run until the person resumes it."


def rate_limited_result(agent: str, hit: LimitHit) -> types.CallToolResult:
    """The tool result for a call over its agent's limit: which limit, when to retry, and the code in ``_meta``."""
    code = ErrorCode.TOO_MANY_REQUESTS
    retry = None if hit.retry_after_s is None else math.ceil(hit.retry_after_s)
    return types.CallToolResult(
        content=[types.TextContent(text=f"Toolgate: {hit.reason(agent)}")],
        is_error=True,
        _meta={
            ERROR_META_KEY: {
                "code": int(code),
                "name": code.name,
                "limit": hit.limit,
                "retry_after_s": retry,
                **({"server": hit.server} if hit.server is not None else {}),
            }
        },
    )


def refusal_result(admission: Admission) -> types.CallToolResult:
    """The tool result an agent gets for a refused call: readable text plus the error code in ``_meta``."""
    code = ErrorCode.DENIED_BY_POLICY
    return types.CallToolResult(
        content=[types.TextContent(text=admission.refusal or "")],
        is_error=True,
        _meta={ERROR_META_KEY: {"code": int(code), "name": code.name}},
    )

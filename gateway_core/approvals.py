"""The approvals broker: a tool call whose effect is ``ask`` waits here for a person's answer.

Each request ends exactly once (qutebrowser's ``Question``): answered (allowed or denied), timed
out, or withdrawn because its caller went away. Everything but an allow is a deny. "Allow for this
session" grants live in memory until ``end_session``; "always" answers are handed to ``on_always``,
which writes them into the config as rules; "for 15 minutes" (timed) answers to ``on_timed`` with
their expiry, which writes them as rules with ``expires``. State changes happen synchronously on the event loop,
so an answer and a timeout can never both win.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal, TypeAlias

import anyio

from gateway_core.errors import ToolgateError
from gateway_core.policy import Effect

logger = logging.getLogger(__name__)

# 3 random bytes give 6 hex digits: short enough to type in `toolgate approvals allow ID`.
_ID_BYTES = 3
# A timed grant is for a while, not for ever: longer than this is an "always" answer.
MAX_GRANT_S = 90 * 24 * 3600.0


class ApprovalError(ToolgateError):
    """An answer names no pending approval, e.g. one already answered, timed out or withdrawn."""


class BadDuration(ApprovalError):
    """A timed answer without a usable duration, or a duration with an untimed answer; nothing was answered."""


class AlwaysNotPossible(ApprovalError):
    """An "always" answer to a request it cannot be kept for (a prompt or a resource); nothing was answered."""


RequestKind: TypeAlias = Literal["tool", "prompt", "resource", "subscription", "completion"]


class Answer(StrEnum):
    """What a person answered to an approval request."""

    ALLOW_ONCE = "allow_once"
    ALLOW_SESSION = "allow_session"
    ALLOW_ALWAYS = "allow_always"
    ALLOW_FOR = "allow_for"
    DENY = "deny"
    DENY_ALWAYS = "deny_always"
    DENY_FOR = "deny_for"

    @property
    def allows(self) -> bool:
        """Whether this answer lets the call through."""
        return self in (Answer.ALLOW_ONCE, Answer.ALLOW_SESSION, Answer.ALLOW_ALWAYS, Answer.ALLOW_FOR)

    @property
    def timed(self) -> bool:
        """Whether this answer is for a while (``for_s`` seconds): it writes a rule that expires."""
        return self in (Answer.ALLOW_FOR, Answer.DENY_FOR)

    @property
    def rule_effect(self) -> Effect | None:
        """The effect of the rule an "always" or timed answer writes, or None for the other answers."""
        return {
            Answer.ALLOW_ALWAYS: Effect.ALLOW,
            Answer.DENY_ALWAYS: Effect.DENY,
            Answer.ALLOW_FOR: Effect.ALLOW,
            Answer.DENY_FOR: Effect.DENY,
        }.get(self)

    @property
    def always_effect(self) -> Effect | None:
        """The rule effect an "always" answer writes, or None for the other answers."""
        return {Answer.ALLOW_ALWAYS: Effect.ALLOW, Answer.DENY_ALWAYS: Effect.DENY}.get(self)


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)([smhd]))+")
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
TOMORROW = "tomorrow"


def parse_duration(text: str, *, now: datetime | None = None) -> float:
    """Seconds in a duration like ``90s``, ``15m``, ``1h``, ``1h30m``, ``2d``, or ``tomorrow`` (see ``until_tomorrow``).

    Args:
        text: the duration as a person typed it (case and surrounding spaces ignored).
        now: the local time ``tomorrow`` counts from; the current one when None.

    Raises:
        BadDuration: ``text`` is none of these.
    """
    cleaned = text.strip().lower().replace(" ", "")
    if cleaned == TOMORROW:
        return until_tomorrow(now or datetime.now().astimezone())
    if not _DURATION.fullmatch(cleaned):
        raise BadDuration(f"{text!r} is not a duration; write e.g. 90s, 15m, 1h, 1h30m, 2d or tomorrow")
    return sum(float(amount) * _UNITS[unit] for amount, unit in _PART.findall(cleaned))


def until_tomorrow(now: datetime) -> float:
    """Seconds from ``now`` (an aware local time) to the start of the next day there: "until tomorrow"."""
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tzinfo=now.tzinfo)
    return (midnight - now).total_seconds()


class Outcome(StrEnum):
    """How an approval request ended; only ``ALLOWED`` lets the call through."""

    ALLOWED = "allowed"
    DENIED = "denied"
    TIMED_OUT = "timed_out"
    WITHDRAWN = "withdrawn"


@dataclass(frozen=True)
class ApprovalRequest:
    """One tool call waiting for a person's answer.

    Attributes:
        id: a short id, unique within this broker's life, typed in ``toolgate approvals allow ID``.
        agent: the calling agent's id.
        server: the configured server the call goes to.
        tool: the tool's upstream name.
        public_name: the name the agent called.
        arguments: the call's arguments.
        rule_text: the policy rule that asked for approval, as shown to the person.
        reason: the policy's human sentence explaining the decision.
        session_id: the agent's MCP session, or None when the call has no session.
        created_at: when the request was made (``time.time()``).
        kind: ``tool``, or ``prompt``, ``resource``, ``subscription`` (to a resource's updates) or
            ``completion``. All but tools are decided for their whole server, so only a tool's
            request can be answered "always" (a rule for that tool).
        looked_at: the arguments the policy's conditions looked at on the way to asking.
        held_for_review: it asks because the tool's definition changed since the person accepted it
            (``gateway_core.pinning``); answering it accepts nothing.
    """

    id: str
    agent: str
    server: str
    tool: str
    public_name: str
    arguments: dict[str, Any]
    rule_text: str
    reason: str
    session_id: str | None
    created_at: float
    kind: RequestKind = "tool"
    looked_at: tuple[str, ...] = ()
    held_for_review: bool = False

    @property
    def can_be_always(self) -> bool:
        """Whether an "always" answer can be kept: it writes a rule for exactly this tool."""
        return self.kind == "tool"


@dataclass(frozen=True)
class Resolution:
    """How an approval request ended.

    Attributes:
        request: the request.
        outcome: how it ended.
        answer: the person's answer; None when it timed out or was withdrawn.
        waited_s: seconds between the request and its end (0 for a session grant).
    """

    request: ApprovalRequest
    outcome: Outcome
    answer: Answer | None
    waited_s: float

    @property
    def allowed(self) -> bool:
        """Whether the call may go ahead."""
        return self.outcome is Outcome.ALLOWED


@dataclass(frozen=True)
class ApprovalRequested:
    """A request now waits for an answer."""

    request: ApprovalRequest


@dataclass(frozen=True)
class ApprovalResolved:
    """A request has ended (answered, timed out or withdrawn) and no longer waits."""

    resolution: Resolution


ApprovalEvent: TypeAlias = ApprovalRequested | ApprovalResolved
_GrantKey: TypeAlias = tuple[str, str, str, str]  # (agent, session_id, server, tool)


@dataclass
class _Pending:
    request: ApprovalRequest
    started: float
    done: anyio.Event = field(default_factory=anyio.Event)
    resolution: Resolution | None = None


class ApprovalBroker:
    """Holds the pending approval requests and resolves each from the first answer, timeout or withdrawal.

    Use it from one event loop: ``ask`` from the call handlers; ``answer`` from the GUI or the
    control channel.

    Args:
        timeout_s: returns the current approval timeout in seconds; read once per request, so a
            config change applies to the next request.
        on_always: writes an "always" answer as a rule (effect ALLOW or DENY) for the request's agent.
            If it raises, the error is logged and the answer still applies to the request.
        on_timed: writes a timed answer as a rule that expires at the given POSIX timestamp; errors
            as for ``on_always``. Without it timed answers are refused.
        clock: a monotonic clock for ``Resolution.waited_s``.
        wall_clock: the time of day (POSIX timestamp) a timed answer's expiry counts from.
    """

    def __init__(
        self,
        *,
        timeout_s: Callable[[], float],
        on_always: Callable[[ApprovalRequest, Effect], None],
        on_timed: Callable[[ApprovalRequest, Effect, float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._timeout_s = timeout_s
        self._on_always = on_always
        self._on_timed = on_timed
        self._clock = clock
        self._wall_clock = wall_clock
        self._pending: dict[str, _Pending] = {}
        self._issued_ids: set[str] = set()
        self._session_grants: set[_GrantKey] = set()
        self._listeners: list[Callable[[ApprovalEvent], None]] = []

    async def ask(
        self,
        *,
        agent: str,
        server: str,
        tool: str,
        public_name: str,
        arguments: dict[str, Any],
        rule_text: str,
        reason: str,
        session_id: str | None,
        kind: RequestKind = "tool",
        looked_at: tuple[str, ...] = (),
        held_for_review: bool = False,
    ) -> Resolution:
        """Wait for a person to allow or deny one tool call (or prompt, or resource read).

        An earlier "allow for this session" for the same agent, session, server and tool allows at
        once, without a request. Otherwise the request is published and waits for the first of an
        answer or the timeout.

        Args:
            agent: the calling agent's id.
            server: the configured server the call goes to.
            tool: the tool's upstream name.
            public_name: the name the agent called.
            arguments: the call's arguments.
            rule_text: the policy rule that asked for approval.
            reason: the policy's human sentence explaining the decision.
            session_id: the agent's MCP session; None disables session grants for this call.
            kind: what is asked for (see ``ApprovalRequest.kind``).
            looked_at: the arguments the policy's conditions looked at.
            held_for_review: it asks because the tool's definition changed since it was accepted.

        Returns:
            The resolution; only ``resolution.allowed`` lets the call through.

        Raises:
            anyio.get_cancelled_exc_class(): the waiting task was cancelled (the agent went away);
                the request is withdrawn first and the cancellation is never swallowed.
        """
        request = ApprovalRequest(
            id=self._new_id(),
            agent=agent,
            server=server,
            tool=tool,
            public_name=public_name,
            arguments=dict(arguments),
            rule_text=rule_text,
            reason=reason,
            session_id=session_id,
            created_at=time.time(),
            kind=kind,
            looked_at=looked_at,
            held_for_review=held_for_review,
        )
        if session_id is not None and (agent, session_id, server, tool) in self._session_grants:
            return Resolution(request, Outcome.ALLOWED, Answer.ALLOW_SESSION, 0.0)

        pending = _Pending(request, started=self._clock())
        self._pending[request.id] = pending
        self._publish(ApprovalRequested(request))
        try:
            with anyio.move_on_after(self._timeout_s()):
                await pending.done.wait()
        except anyio.get_cancelled_exc_class():
            self._finish(pending, Outcome.WITHDRAWN, None)
            raise
        return self._finish(pending, Outcome.TIMED_OUT, None)

    def answer(self, request_id: str, answer: Answer, *, for_s: float | None = None) -> ApprovalRequest:
        """Answer a pending request; the call waiting on it resumes.

        Args:
            request_id: the request's id (surrounding spaces and case are ignored).
            answer: the answer. "Always" answers are also passed to ``on_always``, timed ones
                (``ALLOW_FOR``, ``DENY_FOR``) to ``on_timed`` with their expiry.
            for_s: how long a timed answer holds, in seconds (more than 0, at most ``MAX_GRANT_S``);
                only for timed answers.

        Returns:
            The request that was answered.

        Raises:
            ApprovalError: no request with that id is pending.
            BadDuration: ``for_s`` is missing, out of range or given with an answer that is not timed
                (nothing was answered).
            AlwaysNotPossible: an "always" or timed answer to a prompt's or resource's request (it
                stays pending).
        """
        self._check_duration(answer, for_s)
        pending = self._pending.get(request_id.strip().lower())
        if pending is None:
            raise ApprovalError(
                f"no pending approval with id {request_id!r} (it may have been answered, timed out or withdrawn)"
            )
        request = pending.request
        if answer.rule_effect is not None and not request.can_be_always:
            which = "timed" if answer.timed else "'always'"
            raise AlwaysNotPossible(
                f"{which} answers write a rule for one tool; this is a {request.kind} of server "
                f"{request.server!r}, which is decided for the whole server (a {request.server}/* rule). "
                "Answer it once or for this session, or set the server's rule for the agent."
            )
        if answer is Answer.ALLOW_SESSION and request.session_id is not None:
            self._session_grants.add((request.agent, request.session_id, request.server, request.tool))
        effect = answer.always_effect
        if effect is not None:
            self._write_always_rule(request, effect)
        if answer.timed and for_s is not None and self._on_timed is not None:
            self._write_timed_rule(self._on_timed, request, answer, self._wall_clock() + for_s)
        self._finish(pending, Outcome.ALLOWED if answer.allows else Outcome.DENIED, answer)
        return request

    def pending(self) -> list[ApprovalRequest]:
        """The requests waiting for an answer, oldest first."""
        return [p.request for p in self._pending.values()]

    def subscribe(self, listener: Callable[[ApprovalEvent], None]) -> Callable[[], None]:
        """Call ``listener`` with every ``ApprovalRequested`` and ``ApprovalResolved`` from now on.

        Args:
            listener: called synchronously on the event loop; it must not block. An exception it
                raises is logged and does not affect the broker or other listeners.

        Returns:
            A function that unsubscribes the listener (safe to call more than once).
        """
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def end_session(self, session_id: str) -> None:
        """Forget every "allow for this session" grant given in that session.

        Args:
            session_id: the agent's MCP session that ended.
        """
        self._session_grants = {key for key in self._session_grants if key[1] != session_id}

    def _finish(self, pending: _Pending, outcome: Outcome, answer: Answer | None) -> Resolution:
        # The first end wins; a later one (e.g. cancellation right after an answer) only reads it.
        if pending.resolution is not None:
            return pending.resolution
        resolution = Resolution(pending.request, outcome, answer, max(0.0, self._clock() - pending.started))
        pending.resolution = resolution
        del self._pending[pending.request.id]
        pending.done.set()
        self._publish(ApprovalResolved(resolution))
        return resolution

    def _check_duration(self, answer: Answer, for_s: float | None) -> None:
        if not answer.timed:
            if for_s is not None:
                raise BadDuration(f"a duration goes only with a timed answer (allow_for, deny_for), not {answer.value}")
            return
        if self._on_timed is None:
            raise BadDuration("this gateway has no config file, so it cannot keep a timed answer")
        if for_s is None or not 0 < for_s <= MAX_GRANT_S:
            days = MAX_GRANT_S / 86400
            raise BadDuration(
                f"a timed answer needs a duration of more than 0 s and at most {days:.0f} days, not {for_s!r}; "
                "answer 'always' for longer"
            )

    def _write_timed_rule(
        self,
        write: Callable[[ApprovalRequest, Effect, float], None],
        request: ApprovalRequest,
        answer: Answer,
        until: float,
    ) -> None:
        effect = answer.rule_effect
        assert effect is not None
        try:
            write(request, effect, until)
        except Exception:
            # The answer still applies to this call; only the remembered rule is lost.
            logger.exception(
                "could not save the timed %s rule for agent %r, %s/%s; this call still gets the answer",
                effect.value,
                request.agent,
                request.server,
                request.tool,
            )

    def _write_always_rule(self, request: ApprovalRequest, effect: Effect) -> None:
        try:
            self._on_always(request, effect)
        except Exception:
            # The answer still applies to this call; only the remembered rule is lost.
            logger.exception(
                "could not save the %s rule for agent %r, %s/%s; this call still gets the answer",
                effect.value,
                request.agent,
                request.server,
                request.tool,
            )

    def _publish(self, event: ApprovalEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                # A broken listener (e.g. the GUI) must not decide the fate of a call.
                logger.exception("an approval event listener failed on %s", type(event).__name__)

    def _new_id(self) -> str:
        while True:
            candidate = secrets.token_hex(_ID_BYTES)
            if candidate not in self._issued_ids:
                self._issued_ids.add(candidate)
                return candidate

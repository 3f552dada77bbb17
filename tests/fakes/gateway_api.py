"""A ``GatewayApi`` for widget tests where a real gateway adds nothing: a config, requests, recorded answers.

Only what those tests use is here; anything else raises ``AttributeError`` (a test that needs more
should run a real gateway with ``tests.app.harness.running_bridge``).
"""

from __future__ import annotations

from gateway_core import Answer, ApprovalError, ApprovalRequest, ApprovalRequested, ApprovalResolved, Config, Outcome
from gateway_core.approvals import Resolution
from gateway_core.events import EventStream


class FakeGatewayApi:
    """Pending approval requests the test adds with ``ask``; answers are recorded and announced like the core does."""

    def __init__(self, config: Config) -> None:
        self.events = EventStream()
        self.config = config
        self.answers: list[tuple[str, Answer]] = []
        self.durations: list[float | None] = []  # each answer's for_s
        self.under: list[tuple[str, str, str]] = []  # allow_when_under calls
        self._pending: dict[str, ApprovalRequest] = {}

    def ask(self, request: ApprovalRequest) -> None:
        """A request starts waiting, as when an agent's call needs an answer."""
        self._pending[request.id] = request
        self.events.publish(ApprovalRequested(request))

    def pending_approvals(self) -> list[ApprovalRequest]:
        return sorted(self._pending.values(), key=lambda request: request.created_at)

    def allow_when_under(self, request_id: str, argument: str, folder: str) -> None:
        self.under.append((request_id, argument, folder))
        self.answer_approval(request_id, Answer.ALLOW_ONCE)

    def answer_approval(self, request_id: str, answer: Answer, *, for_s: float | None = None) -> None:
        request = self._pending.pop(request_id, None)
        if request is None:
            raise ApprovalError(f"no pending approval with id {request_id!r}")
        self.answers.append((request_id, answer))
        self.durations.append(for_s)
        outcome = Outcome.ALLOWED if answer.allows else Outcome.DENIED
        self.events.publish(ApprovalResolved(Resolution(request, outcome, answer, 1.0)))

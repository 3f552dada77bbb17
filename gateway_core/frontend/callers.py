"""The agent behind a forwarded request, as the one a server's question is put to.

A server may ask during a call: sample the agent's model (``sampling/createMessage``), ask the
person (``elicitation/create``, form or URL mode), or ask for the agent's workspace folders
(``roots/list``). ``downstream/asking.py`` finds which caller a question belongs to; this module
puts it to that agent in the agent's own protocol era:

* a handshake-era agent gets the same request from Toolgate, on the stream of its call;
* a 2026-07-28 agent has no back-channel: the question goes back inside the call's result as an
  ``InputRequiredResult``, and the agent's retry brings the answer (``rounds.py`` keeps the call
  running in between).

An agent that did not advertise the capability a question needs gets no question; the server gets
an error saying so. Every question put to an agent is recorded in the audit log with its outcome.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import Any

import anyio
import mcp_types as types
from mcp.server.session import ServerSession
from mcp.shared.exceptions import MCPError
from mcp.shared.message import ServerMessageMetadata
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

# Records one question: (agent, server, method, outcome, latency_s, the agent's answer if it gave one).
RecordQuestion = Callable[[str, str, str, str, float, "types.InputResponse | None"], Awaitable[None]]

_ANSWER_TYPES: dict[str, TypeAdapter[Any]] = {
    "sampling/createMessage": TypeAdapter(types.CreateMessageResult | types.CreateMessageResultWithTools),
    "elicitation/create": TypeAdapter(types.ElicitResult),
    "roots/list": TypeAdapter(types.ListRootsResult),
}


class _AnyResult(BaseModel):
    """Whatever the agent answered, kept whole until it is checked against the question's result type."""

    model_config = ConfigDict(extra="allow")


def needed_capability(request: types.InputRequest) -> str:
    """The capability a question needs, as a person would name it."""
    if isinstance(request, types.CreateMessageRequest):
        return "sampling"
    if isinstance(request, types.ListRootsRequest):
        return "roots"
    if isinstance(request.params, types.ElicitRequestURLParams):
        return "URL elicitation"
    return "elicitation"


def supports(capabilities: types.ClientCapabilities | None, request: types.InputRequest) -> bool:
    """Whether an agent with ``capabilities`` may be asked ``request``."""
    if capabilities is None:
        return False
    if isinstance(request, types.CreateMessageRequest):
        return capabilities.sampling is not None
    if isinstance(request, types.ListRootsRequest):
        return capabilities.roots is not None
    elicitation = capabilities.elicitation
    if elicitation is None:
        return False
    if isinstance(request.params, types.ElicitRequestURLParams):
        return elicitation.url is not None
    # An empty elicitation capability (from before modes existed) means form mode.
    return elicitation.form is not None or elicitation.url is None


def interactive(capabilities: types.ClientCapabilities | None) -> bool:
    """Whether an agent with ``capabilities`` can answer any question at all."""
    return capabilities is not None and any(
        c is not None for c in (capabilities.sampling, capabilities.elicitation, capabilities.roots)
    )


def unsupported(agent: str, request: types.InputRequest, *, modern: bool = False) -> types.ErrorData:
    """The error a server gets for a question the agent cannot answer.

    A handshake-era agent would itself refuse the request (-32600). A 2026-07-28 agent is never
    asked: a server of its era answers its request with -32021 and the capability it lacks, and the
    same error, passed on by the server, tells it here.
    """
    capability = needed_capability(request)
    message = f"agent {agent!r} does not support {capability}: it did not advertise that capability"
    if not modern:
        return types.ErrorData(code=types.INVALID_REQUEST, message=message)
    required = types.MissingRequiredClientCapabilityErrorData(required_capabilities=_capability_of(request))
    return types.ErrorData(
        code=types.MISSING_REQUIRED_CLIENT_CAPABILITY,
        message=message,
        data=required.model_dump(by_alias=True, mode="json", exclude_none=True),
    )


def _capability_of(request: types.InputRequest) -> types.ClientCapabilities:
    if isinstance(request, types.CreateMessageRequest):
        return types.ClientCapabilities(sampling=types.SamplingCapability())
    if isinstance(request, types.ListRootsRequest):
        return types.ClientCapabilities(roots=types.RootsCapability())
    if isinstance(request.params, types.ElicitRequestURLParams):
        return types.ClientCapabilities(elicitation=types.ElicitationCapability(url=types.UrlElicitationCapability()))
    return types.ClientCapabilities(elicitation=types.ElicitationCapability(form=types.FormElicitationCapability()))


def checked_answer(request: types.InputRequest, raw: Any) -> types.InputResponse | types.ErrorData:
    """The agent's answer as the result type the question expects, or an error for the server."""
    try:
        answer: types.InputResponse = _ANSWER_TYPES[request.method].validate_python(raw, by_name=False)
    except ValidationError:
        return types.ErrorData(
            code=types.INTERNAL_ERROR, message=f"the agent's answer to {request.method} was not a valid result"
        )
    return answer


class _AgentCaller:
    """What both eras' callers share: the agent, what it can answer, and refusing what it cannot."""

    MODERN = False

    def __init__(self, agent: str, capabilities: types.ClientCapabilities | None, record: RecordQuestion) -> None:
        self._agent = agent
        self._capabilities = capabilities
        self._record = record

    @property
    def agent(self) -> str:
        """The agent's id."""
        return self._agent

    @property
    def interactive(self) -> bool:
        """Whether the agent advertised sampling, elicitation or roots."""
        return interactive(self._capabilities)

    @property
    def capabilities(self) -> types.ClientCapabilities | None:
        """What the agent declared it can do."""
        return self._capabilities

    async def ask(self, server: str, request: types.InputRequest) -> types.InputResponse | types.ErrorData:
        """Put ``server``'s question to the agent; its answer, or an error to give the server."""
        raise NotImplementedError

    async def ask_round(
        self, server: str, questions: Mapping[str, types.InputRequest]
    ) -> dict[str, types.InputResponse | types.ErrorData]:
        """Put a round of questions to the agent one after another; an answer (or error) per key."""
        return {key: await self.ask(server, request) for key, request in questions.items()}

    async def _refusal(self, server: str, request: types.InputRequest) -> types.ErrorData | None:
        """The error for a question the agent did not advertise it can answer (recorded), else None."""
        if supports(self._capabilities, request):
            return None
        await self._record(self._agent, server, request.method, "denied", 0.0, None)
        return unsupported(self._agent, request, modern=self.MODERN)


class HandshakeCaller(_AgentCaller):
    """A handshake-era agent's request: questions go to the agent as requests on that request's stream.

    Args:
        agent: the agent's id.
        session_id: the agent's ``Mcp-Session-Id`` (its questions may travel on any of its calls).
        session: the SDK session of the request being served.
        request_id: that request's JSON-RPC id, so the question travels on its stream.
        record: where each question and its outcome are recorded.
    """

    def __init__(
        self,
        agent: str,
        session_id: str | None,
        session: ServerSession,
        request_id: types.RequestId | None,
        record: RecordQuestion,
    ) -> None:
        # What ``_AgentCaller.__init__`` sets, set here without the call: one caller is made per call.
        self._agent = agent
        self._capabilities = session.client_capabilities
        self._record = record
        self._owner: Hashable = ("session", session_id) if session_id is not None else self
        self._session = session
        self._request_id = request_id

    @property
    def owner(self) -> Hashable:
        """The agent's session: its calls share a connection freely."""
        return self._owner

    async def ask(self, server: str, request: types.InputRequest) -> types.InputResponse | types.ErrorData:
        """Send the question to the agent on the call's stream; its answer, or an error for the server."""
        if (refusal := await self._refusal(server, request)) is not None:
            return refusal
        started = time.perf_counter()
        outcome, given = "withdrawn", None
        try:
            metadata = None if self._request_id is None else ServerMessageMetadata(related_request_id=self._request_id)
            raw = await self._session.send_request(_in_handshake_era(request), _AnyResult, metadata=metadata)
            answer = checked_answer(request, raw.model_dump(by_alias=True))
            if isinstance(answer, types.ErrorData):
                outcome = "protocol_error"
            else:
                outcome, given = "ok", answer
            return answer
        except MCPError as exc:
            outcome = "protocol_error"
            return exc.error
        except ValidationError:
            outcome = "protocol_error"
            return types.ErrorData(
                code=types.INTERNAL_ERROR, message=f"the agent's answer to {request.method} was invalid"
            )
        finally:
            with anyio.CancelScope(shield=True):
                await self._record(self._agent, server, request.method, outcome, time.perf_counter() - started, given)


def _in_handshake_era(request: types.InputRequest) -> types.InputRequest:
    """``request`` as a handshake-era agent expects it: a URL elicitation has an ``elicitationId``.

    2026-07-28 dropped the id (the question's key names it); 2025-11-25 requires one, so a question
    from a 2026-07-28 server gets a fresh one.
    """
    params = request.params
    if isinstance(params, types.ElicitRequestURLParams) and params.elicitation_id is None:
        params = params.model_copy(update={"elicitation_id": uuid.uuid4().hex})
        return request.model_copy(update={"params": params})
    return request


class _Question:
    def __init__(self, request: types.InputRequest) -> None:
        self.request = request
        self.sent = False
        self.answered = anyio.Event()
        self.answer: types.InputResponse | types.ErrorData | None = None

    def settle(self, answer: types.InputResponse | types.ErrorData) -> None:
        if not self.answered.is_set():
            self.answer = answer
            self.answered.set()


class RoundTripCaller(_AgentCaller):
    """A 2026-07-28 agent's call: questions are handed out in rounds and answered by its retries.

    Args:
        agent: the agent's id.
        capabilities: what the agent declared in the request's ``_meta``.
        record: where each question and its outcome are recorded.
    """

    MODERN = True

    def __init__(self, agent: str, capabilities: types.ClientCapabilities | None, record: RecordQuestion) -> None:
        super().__init__(agent, capabilities, record)
        self._questions: dict[str, _Question] = {}
        self._counter = 0
        self.asked = anyio.Event()

    @property
    def owner(self) -> Hashable:
        """The call itself: its questions can only travel back in its own result."""
        return self

    async def ask(self, server: str, request: types.InputRequest) -> types.InputResponse | types.ErrorData:
        """Hand the question out in the next round and wait for the agent's retry to answer it."""
        answers = await self.ask_round(server, {"": request})
        return answers[""]

    async def ask_round(
        self, server: str, questions: Mapping[str, types.InputRequest]
    ) -> dict[str, types.InputResponse | types.ErrorData]:
        """Hand the questions out together in the next round, under the server's own keys where it gave any.

        A question without a key (a handshake-era server's request) gets one made up. Each is
        recorded with its outcome; one the agent cannot answer is refused without being handed out.
        """
        answers: dict[str, types.InputResponse | types.ErrorData] = {}
        waiting: dict[str, tuple[str, _Question]] = {}
        for given_key, request in questions.items():
            if (refusal := await self._refusal(server, request)) is not None:
                answers[given_key] = refusal
                continue
            key = self._free_key(server, given_key)
            question = self._questions[key] = _Question(request)
            waiting[given_key] = (key, question)
        if not waiting:
            return answers
        self.asked.set()
        started = time.perf_counter()
        try:
            for given_key, (_, question) in waiting.items():
                await question.answered.wait()
                assert question.answer is not None
                answers[given_key] = question.answer
            return answers
        finally:
            with anyio.CancelScope(shield=True):
                for key, question in waiting.values():
                    del self._questions[key]
                    answer = question.answer
                    outcome = (
                        "withdrawn"
                        if answer is None
                        else "protocol_error"
                        if isinstance(answer, types.ErrorData)
                        else "ok"
                    )
                    given = None if isinstance(answer, types.ErrorData) else answer
                    latency = time.perf_counter() - started
                    await self._record(self._agent, server, question.request.method, outcome, latency, given)

    def _free_key(self, server: str, wanted: str) -> str:
        """``wanted`` if no open question has it, else a fresh key of the form ``server-N``."""
        if wanted and wanted not in self._questions:
            return wanted
        while True:
            self._counter += 1
            key = f"{server}-{self._counter}"
            if key not in self._questions:
                return key

    def take_questions(self) -> dict[str, types.InputRequest]:
        """The questions not handed to the agent yet, marked as handed out."""
        self.asked = anyio.Event()
        fresh = {key: q for key, q in self._questions.items() if not q.sent}
        for question in fresh.values():
            question.sent = True
        return {key: q.request for key, q in fresh.items()}

    def answer(self, responses: types.InputResponses | None) -> None:
        """Give each handed-out question the agent's answer; one the agent left out gets an error."""
        for key, question in list(self._questions.items()):
            if not question.sent:
                continue
            given = (responses or {}).get(key)
            if given is None:
                question.settle(
                    types.ErrorData(
                        code=types.INVALID_REQUEST, message=f"the agent sent no answer to {question.request.method}"
                    )
                )
            else:
                question.settle(checked_answer(question.request, given.model_dump(by_alias=True)))

    def abandon(self) -> None:
        """The agent will not answer (it gave up on the call): every open question gets an error."""
        for question in list(self._questions.values()):
            question.settle(
                types.ErrorData(code=types.INVALID_REQUEST, message="the agent gave up on the call before answering")
            )

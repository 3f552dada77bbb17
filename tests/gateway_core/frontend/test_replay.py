"""The bounded record of what each session's streams carried, from which a dropped stream is resumed."""

from __future__ import annotations

import pytest
from mcp.server.streamable_http import EventMessage
from mcp_types import JSONRPCNotification, JSONRPCResponse

from gateway_core.frontend.replay import ReplayBuffer, ReplayLimits

pytestmark = pytest.mark.anyio


def progress(n: int) -> JSONRPCNotification:
    return JSONRPCNotification(jsonrpc="2.0", method="notifications/progress", params={"progress": n})


def answer(request_id: int, text: str = "") -> JSONRPCResponse:
    return JSONRPCResponse(jsonrpc="2.0", id=request_id, result={"text": text})


class Sent:
    def __init__(self) -> None:
        self.events: list[EventMessage] = []

    async def __call__(self, event: EventMessage) -> None:
        self.events.append(event)

    @property
    def messages(self) -> list[object]:
        return [event.message for event in self.events]


async def test_a_replay_sends_what_followed_the_event_on_its_stream_only() -> None:
    buffer = ReplayBuffer()
    store = buffer.for_session("s1")
    priming = await store.store_event("1", None)
    await store.store_event("2", None)
    await store.store_event("1", progress(1))
    await store.store_event("2", answer(2))
    await store.store_event("1", answer(1))
    sent = Sent()

    stream = await store.replay_events_after(priming, sent)

    assert stream == "1"
    assert sent.messages == [progress(1), answer(1)]
    assert all(event.event_id for event in sent.events)


async def test_a_session_cannot_replay_another_sessions_events_though_their_stream_ids_are_the_same() -> None:
    buffer = ReplayBuffer()
    mine, theirs = buffer.for_session("mine"), buffer.for_session("theirs")
    their_priming = await theirs.store_event("1", None)
    await theirs.store_event("1", answer(1, "secret"))
    await mine.store_event("1", None)
    sent = Sent()

    assert await mine.replay_events_after(their_priming, sent) is None
    assert sent.events == []
    assert not buffer.knows("mine", their_priming)


async def test_events_stored_while_a_replay_is_sent_are_sent_too() -> None:
    buffer = ReplayBuffer()
    store = buffer.for_session("s")
    priming = await store.store_event("1", None)
    await store.store_event("1", progress(1))
    sent = Sent()

    async def send_and_meanwhile_answer(event: EventMessage) -> None:
        await sent(event)
        if len(sent.events) == 1:
            await store.store_event("1", answer(1))

    await store.replay_events_after(priming, send_and_meanwhile_answer)

    assert sent.messages == [progress(1), answer(1)]


async def test_finished_streams_are_dropped_first_oldest_first_when_a_session_has_too_many_events() -> None:
    buffer = ReplayBuffer(ReplayLimits(session_events=4))
    store = buffer.for_session("s")
    unfinished = await store.store_event("1", None)
    first_done = await store.store_event("2", None)
    await store.store_event("2", answer(2))
    second_done = await store.store_event("3", None)
    await store.store_event("3", answer(3))  # the fifth event: stream 2 goes

    assert not buffer.knows("s", first_done)
    assert buffer.knows("s", second_done)
    assert buffer.knows("s", unfinished)
    assert buffer.session_size("s")[0] == 3


async def test_without_finished_streams_the_oldest_events_go_and_a_replay_after_them_finds_nothing() -> None:
    buffer = ReplayBuffer(ReplayLimits(session_events=3))
    store = buffer.for_session("s")
    priming = await store.store_event("1", None)
    first = await store.store_event("1", progress(1))
    for n in (2, 3):
        await store.store_event("1", progress(n))
    sent = Sent()

    assert await store.replay_events_after(priming, Sent()) is None
    assert await store.replay_events_after(first, sent) == "1"
    assert sent.messages == [progress(2), progress(3)]


async def test_the_bytes_kept_are_bounded_per_session_and_in_all() -> None:
    big = "x" * 1000
    buffer = ReplayBuffer(ReplayLimits(session_bytes=2500, total_bytes=4000))
    for session in ("a", "b", "c"):
        store = buffer.for_session(session)
        for request_id in range(1, 4):
            await store.store_event(str(request_id), answer(request_id, big))

    count, size = buffer.size
    assert size <= 4000
    assert all(buffer.session_size(session)[1] <= 2500 for session in ("a", "b", "c"))
    # The oldest session's streams went first; the newest keeps what its own bound allows.
    assert buffer.session_size("a") == (0, 0)
    assert buffer.session_size("c")[0] == 2
    assert count == sum(buffer.session_size(session)[0] for session in ("a", "b", "c"))


async def test_an_ended_sessions_events_are_dropped() -> None:
    buffer = ReplayBuffer()
    store = buffer.for_session("s")
    priming = await store.store_event("1", None)
    await store.store_event("1", answer(1))

    buffer.forget("s")

    assert not buffer.knows("s", priming)
    assert buffer.size == (0, 0)


async def test_a_message_over_the_bound_is_not_kept_its_stream_goes_and_the_rest_stays() -> None:
    buffer = ReplayBuffer(ReplayLimits(session_bytes=500))
    store = buffer.for_session("s")
    kept = await store.store_event("1", None)
    await store.store_event("1", answer(1, "small"))
    huge_priming = await store.store_event("2", None)
    await store.store_event("2", answer(2, "x" * 1000))

    assert buffer.knows("s", kept)
    assert not buffer.knows("s", huge_priming)

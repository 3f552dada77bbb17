"""The event stream: typed events in order, a bounded replay, subscribers that cannot break it."""

from __future__ import annotations

import logging
import threading

import anyio
import pytest

from gateway_core.events import (
    ConfigApplied,
    EventLogHandler,
    EventStream,
    LogMessage,
    ServerStatusChanged,
    SessionEnded,
)


def test_subscribers_get_every_event_in_order_until_they_unsubscribe():
    stream = EventStream()
    heard: list[object] = []
    unsubscribe = stream.subscribe(heard.append)

    stream.publish(ServerStatusChanged("fs"))
    stream.publish(ConfigApplied())
    unsubscribe()
    unsubscribe()  # twice is harmless
    stream.publish(ServerStatusChanged("gh"))

    assert heard == [ServerStatusChanged("fs"), ConfigApplied()]


def test_a_late_subscriber_can_replay_the_recent_events_and_the_replay_is_bounded():
    stream = EventStream(replay=3)
    for name in "abcde":
        stream.publish(ServerStatusChanged(name))
    heard: list[object] = []

    stream.subscribe(heard.append, replay=True)

    assert heard == [ServerStatusChanged("c"), ServerStatusChanged("d"), ServerStatusChanged("e")]


def test_on_picks_one_kind_of_event():
    stream = EventStream()
    ended: list[str] = []
    stream.on(SessionEnded, lambda event: ended.append(event.session_id))

    stream.publish(ConfigApplied())
    stream.publish(SessionEnded("s1"))

    assert ended == ["s1"]


def test_a_failing_subscriber_is_logged_and_the_others_still_hear_the_event(caplog: pytest.LogCaptureFixture):
    stream = EventStream()
    heard: list[object] = []

    def broken(event: object) -> None:
        raise RuntimeError("the GUI fell over")

    stream.subscribe(broken)
    stream.subscribe(heard.append)
    stream.publish(ConfigApplied())

    assert heard == [ConfigApplied()]
    assert "an event subscriber failed on ConfigApplied" in caplog.text


@pytest.mark.anyio
async def test_the_cores_log_records_become_events_also_from_other_threads():
    stream = EventStream()
    messages: list[LogMessage] = []
    stream.on(LogMessage, messages.append)
    handler = EventLogHandler(stream)
    handler.attach()
    core = logging.getLogger("gateway_core.test_events")
    try:
        core.warning("on the loop: %s", "yes")
        logging.getLogger("someone.else").warning("not ours")
        thread = threading.Thread(target=core.warning, args=("from a thread",))
        thread.start()
        thread.join(5)
        with anyio.fail_after(5):
            while len(messages) < 2:
                await anyio.lowlevel.checkpoint()
    finally:
        handler.detach()

    assert [(m.level, m.source, m.text) for m in messages] == [
        ("WARNING", "gateway_core.test_events", "on the loop: yes"),
        ("WARNING", "gateway_core.test_events", "from a thread"),
    ]

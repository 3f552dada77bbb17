"""The small parts: the stderr buffer and the restart backoff."""

from __future__ import annotations

import anyio
import pytest

from gateway_core.downstream.live import Backoff
from gateway_core.downstream.stderr import StderrBuffer


def test_stderr_buffer_keeps_the_last_lines_and_cuts_long_ones() -> None:
    seen: list[str] = []
    buffer = StderrBuffer(seen.append, max_lines=3, max_line_chars=5)

    for line in ["one", "two", "three", "a very long line", "five\n"]:
        buffer.append(line)

    assert buffer.lines() == ("three", "a ve…", "five")
    assert buffer.tail(2) == ("a ve…", "five")
    assert seen[-1] == "five"


@pytest.mark.anyio
async def test_stderr_buffer_splits_a_byte_stream_into_lines() -> None:
    send, receive = anyio.create_memory_object_stream[bytes](10)
    buffer = StderrBuffer()
    for chunk in [b"fir", b"st\nsec", b"ond\n\xff bad bytes\nno newline"]:
        send.send_nowait(chunk)
    send.close()

    with receive:
        await buffer.pump(receive)  # type: ignore[arg-type]

    assert buffer.lines() == ("first", "second", "\ufffd bad bytes", "no newline")


def test_backoff_doubles_up_to_its_cap_and_resets_after_a_stable_run() -> None:
    backoff = Backoff(initial=0.5, maximum=2.0, stable_after=60.0)

    delays = [backoff.next_delay(up_for=0.0) for _ in range(5)]
    after_stable_run = backoff.next_delay(up_for=61.0)

    assert delays == [0.5, 1.0, 2.0, 2.0, 2.0]
    assert after_stable_run == 0.5


def test_stderr_since_gives_only_lines_after_those_seen_and_fewer_when_some_were_dropped() -> None:
    buffer = StderrBuffer(max_lines=3)
    for line in ("a", "b"):
        buffer.append(line)
    first, seen = buffer.since(0)
    for line in ("c", "d", "e", "f", "g"):
        buffer.append(line)

    assert (first, seen) == (("a", "b"), 2)
    assert buffer.since(seen) == (("e", "f", "g"), 7)  # c and d came and went
    assert buffer.since(7) == ((), 7)

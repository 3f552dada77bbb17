"""What pinned tools cost, measured in this process against the same work without them in one run.

(a) Per call: the guard looks up the tool's change waiting for review and passes the decision through
    ``held_for_review``. Compared: one ``AgentPolicy.evaluate`` under 100 rules alone, and the same with
    the pin check, with 10,000 pinned tools on 10 servers and 100 changes waiting (none on the called tool,
    so the decision stays an allow). Target: the check adds <= 1 µs CPU per call (median of batches).
(b) Per listing: comparing a server's 1,000-tool listing with its pins (each definition dumped and compared)
    when nothing changed, in ms of CPU; it runs on the event loop each time the server's tools are listed.
    Target: <= 20 ms (about what rebuilding the routes for such a server costs anyway).

    .venv/bin/python bench/pin_cost.py
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mcp_types as types

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway_core.pinning import ToolPins, held_for_review
from gateway_core.policy import AgentPolicy, Effect, Rule

TARGET_CHECK_US = 1.0
TARGET_LISTING_MS = 20.0
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {f"p{i}": {"type": "string", "description": "an argument " * 4} for i in range(5)},
}


def tools(count: int, description: str = "What this tool does, in a sentence or two. " * 3) -> list[types.Tool]:
    return [types.Tool(name=f"tool_{i:04d}", description=description, input_schema=SCHEMA) for i in range(count)]


def policy() -> AgentPolicy:
    rules = [Rule(match=f"server{i:02d}/other_{i}", effect=Effect.DENY) for i in range(99)]
    rules.append(Rule(match="server00/*", effect=Effect.ALLOW))
    return AgentPolicy("bench", Effect.DENY, rules)


def median_us(work: Callable[[], object], batches: int = 300, per_batch: int = 200) -> float:
    samples = []
    for _ in range(batches):
        started = time.thread_time_ns()
        for _ in range(per_batch):
            work()
        samples.append((time.thread_time_ns() - started) / per_batch / 1000)
    return statistics.median(samples)


def main() -> None:
    pins = ToolPins()
    for server in range(10):
        pins.observe(f"server{server:02d}", tools(1000), lambda s, t: False)
        pins.observe(f"server{server:02d}", tools(10, "Changed."), lambda s, t: False)
    assert len(pins.changes()) == 100
    agent = policy()
    now = time.time()

    def decide() -> object:
        return agent.evaluate("server00", "tool_0500", now=now, arguments={})

    def decide_and_check() -> object:
        decision = agent.evaluate("server00", "tool_0500", now=now, arguments={})
        return held_for_review(decision, pins.change("server00", "tool_0500"))

    assert decide_and_check() == decide()
    plain, checked = median_us(decide), median_us(decide_and_check)
    added = checked - plain
    verdict = "OK" if added <= TARGET_CHECK_US else "MISSED"
    print(f"(a) one decision under 100 rules: {plain:.2f} µs CPU; with the pin check {checked:.2f} µs")
    print(f"    the pin check adds {added:+.2f} µs per call (target <= {TARGET_CHECK_US:.0f} µs) {verdict}")

    listing = tools(1000)
    samples = []
    for _ in range(20):
        started = time.thread_time_ns()
        pins.observe("server00", listing, lambda s, t: False)
        samples.append((time.thread_time_ns() - started) / 1e6)
    listing_ms = statistics.median(samples)
    verdict = "OK" if listing_ms <= TARGET_LISTING_MS else "MISSED"
    print(
        f"(b) a 1,000-tool listing compared with its pins: median {listing_ms:.1f} ms CPU "
        f"(target <= {TARGET_LISTING_MS:.0f} ms) {verdict}"
    )


if __name__ == "__main__":
    main()

import time

from app.bridge import GatewayBridge, GatewayMessage
from gateway_core import (
    Answer,
    AuditRecord,
    CallsRecorded,
    Effect,
    LogMessage,
    ServerState,
    ServerStatusChanged,
    StderrLine,
)
from tests.app.harness import connected_agent, ended_call, eventually, run_async, running_bridge
from tests.integration.harness import stdio_fake

NOW = 1_800_000_000.0  # a fixed time: these rules have no expiry


def test_a_call_through_the_bridge_gateway_reaches_the_audit_signal(qloop):
    async def scenario():
        async with connected_agent("a", {"default": "allow"}) as (bridge, agent):
            assert bridge.status("fake").state is ServerState.READY
            # Connected before the call: the outcome's records may arrive before anything could start waiting.
            batches: list[list[AuditRecord]] = []
            bridge.audit_records_arrived.connect(batches.append)
            await agent.client.call_tool("fake__echo", {"text": "hi"})
            await eventually(lambda: any(r.outcome for batch in batches for r in batch), "the outcome's records")
            outcome = next(r for batch in batches for r in batch if r.outcome)
            assert outcome.tool == "echo"

    run_async(qloop, scenario())


def test_an_ask_call_is_signalled_and_answered_through_the_bridge(qloop):
    async def scenario():
        async with connected_agent("a", {"default": "ask"}) as (bridge, agent):
            requested = []
            bridge.approval_requested.connect(requested.append)
            call = agent.start_call("fake__echo", {"text": "hi"})
            await eventually(lambda: requested, "the approval request")
            bridge.api.answer_approval(requested[0].id, Answer.ALLOW_ONCE)
            assert (await call.result()).is_error is False

    run_async(qloop, scenario())


def test_a_rule_set_through_the_bridge_is_written_and_running(qloop):
    async def scenario():
        async with running_bridge({"fake": stdio_fake()}, agents={"a": {"default": "allow"}}) as bridge:
            bridge.api.set_agent_rule("a", "fake/echo", Effect.DENY)
            assert bridge.api.policy("a").evaluate("fake", "echo", now=NOW).effect is Effect.DENY
            assert '"fake/echo"' in bridge.config_path.read_text()
            bridge.api.set_agent_rule("a", "fake/echo", None)
            assert bridge.api.policy("a").evaluate("fake", "echo", now=NOW).effect is Effect.ALLOW

    run_async(qloop, scenario())


def test_bridge_is_a_qobject():
    assert GatewayBridge.server_status_changed is not None


def test_records_committed_in_quick_succession_reach_the_widgets_together_in_order(qloop):
    async def scenario():
        async with running_bridge({}) as bridge:
            batches: list[list[AuditRecord]] = []
            bridge.audit_records_arrived.connect(batches.append)
            first, second, third = ended_call(3), ended_call(2), ended_call(1)
            bridge.api.events.publish(CallsRecorded((first,)))
            assert batches == [[first]]  # after a quiet spell: at once
            bridge.api.events.publish(CallsRecorded((second,)))
            bridge.api.events.publish(CallsRecorded((third,)))
            assert batches == [[first]]  # within the interval: they wait
            await eventually(lambda: len(batches) == 2, "the records committed within the interval")
            assert batches[1] == [second, third]

    run_async(qloop, scenario())


def test_records_waiting_when_the_gateway_stops_still_reach_the_widgets(qloop):
    batches: list[list[AuditRecord]] = []
    waiting = ended_call(1)

    async def scenario():
        async with running_bridge({}) as bridge:
            bridge.audit_records_arrived.connect(batches.append)
            bridge.api.events.publish(CallsRecorded((ended_call(2),)))
            bridge.api.events.publish(CallsRecorded((waiting,)))
            assert len(batches) == 1

    run_async(qloop, scenario())
    assert batches[-1] == [waiting]


def test_stderr_lines_and_messages_in_quick_succession_reach_the_widgets_together_in_order(qloop):
    async def scenario():
        async with running_bridge({}) as bridge:
            batches: list[list[GatewayMessage]] = []
            bridge.messages_logged.connect(batches.append)
            bridge.api.events.publish(StderrLine("fake", "first"))
            bridge.api.events.publish(StderrLine("fake", "second"))
            bridge.api.events.publish(LogMessage(time.time(), "INFO", "gateway_core.test", "third"))
            assert [[m.text for m in batch] for batch in batches] == [["first"]]
            assert [m.text for m in bridge.messages()][-1:] == ["first"]  # what a view opened now starts from
            await eventually(lambda: len(batches) == 2, "the lines logged within the interval")
            assert [m.text for m in batches[1]] == ["second", "third"]
            assert [m.text for m in bridge.messages()][-3:] == ["first", "second", "third"]

    run_async(qloop, scenario())


def test_stderr_lines_waiting_are_delivered_before_the_servers_status_change(qloop):
    async def scenario():
        async with running_bridge({}) as bridge:
            seen: list[str] = []
            bridge.messages_logged.connect(lambda batch: seen.extend(m.text for m in batch))
            bridge.server_status_changed.connect(lambda name: seen.append(f"status of {name}"))
            bridge.api.events.publish(StderrLine("fake", "working"))
            bridge.api.events.publish(StderrLine("fake", "Traceback: the crash"))  # waits for the next delivery
            bridge.api.events.publish(ServerStatusChanged("fake"))
            assert seen == ["working", "Traceback: the crash", "status of fake"]

    run_async(qloop, scenario())

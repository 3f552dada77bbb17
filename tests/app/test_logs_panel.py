import csv
import dataclasses
import json
import logging
import time
import uuid

import pytest
from PySide6.QtCore import QModelIndex, Qt

from app.bridge import GatewayMessage
from app.panels.log_model import (
    AGENT,
    DECISION,
    MAX_ROWS,
    OUTCOME,
    PAGE_SIZE,
    SERVER,
    TOOL,
    LogTableModel,
)
from app.panels.log_rows import RUNNING_TEXT
from app.panels.logs import CallsView, LogsPanel
from app.panels.messages import MessageTableModel
from gateway_core import Answer, AuditRecord, CallOutcome, RecordKind
from gateway_core.audit import store
from tests.app.harness import connected_agent, eventually, run_async, running_bridge
from tests.integration.harness import agent_client, stdio_fake

ALLOW = {"default": "allow"}
# Showing a window on the offscreen platform warns that it cannot pass size hints on; harmless here.
SHOWN = pytest.mark.qt_log_ignore("propagateSizeHints")


def rows(model):
    return [model.call_at(i) for i in range(model.rowCount())]


def cell(model, row, column):
    return model.data(model.index(row, column))


async def idle(model):
    await eventually(lambda: not model.loading, "the calls model to finish loading")


def test_a_call_appears_in_the_calls_table_within_a_second_and_its_detail_shows_the_arguments(qloop, qtmodeltester):
    async def scenario():
        async with connected_agent("a", ALLOW) as (bridge, agent):
            panel = LogsPanel(bridge)
            model = panel.calls.model
            await idle(model)
            assert model.rowCount() == 0
            await agent.client.call_tool("fake__echo", {"text": "hello there"})
            await eventually(
                lambda: model.rowCount() == 1 and cell(model, 0, OUTCOME) == "OK",
                "the finished call",
                timeout_s=1.0,
            )
            assert [cell(model, 0, c) for c in (AGENT, SERVER, TOOL, DECISION)] == ["a", "fake", "echo", "Allow"]
            qtmodeltester.check(model)

            panel.calls.table.selectRow(0)
            detail = panel.calls.detail.toPlainText()
            assert '"text": "hello there"' in detail
            assert "Rule: default → allow" in detail and "Outcome: OK" in detail

    run_async(qloop, scenario())


def test_a_call_waiting_for_approval_shows_as_running_until_it_ends(qloop):
    async def scenario():
        async with connected_agent("a", {"default": "ask"}) as (bridge, agent):
            view = CallsView(bridge)
            await idle(view.model)
            call = agent.start_call("fake__echo", {"text": "hi"})
            await eventually(lambda: bridge.api.pending_approvals(), "the approval request")
            await eventually(lambda: view.model.rowCount() == 1, "the waiting call")
            assert cell(view.model, 0, OUTCOME) == RUNNING_TEXT
            bridge.api.answer_approval(bridge.api.pending_approvals()[0].id, Answer.DENY)
            await call.result()
            await eventually(lambda: cell(view.model, 0, OUTCOME) == "Denied", "the denied outcome")
            assert cell(view.model, 0, DECISION) == "Ask (denied)"

    run_async(qloop, scenario())


def test_calls_stay_in_time_order_after_a_filter_change_when_a_slow_call_ended_after_a_later_one(qloop):
    async def scenario():
        policy = {"default": "allow", "rules": [{"match": "fake/add", "effect": "ask"}]}
        async with connected_agent("a", policy) as (bridge, agent):
            view = CallsView(bridge)
            await idle(view.model)
            slow = agent.start_call("fake__add", {"a": 1, "b": 2})
            await eventually(lambda: bridge.api.pending_approvals(), "the approval request")
            await agent.client.call_tool("fake__echo", {"text": "later"})
            bridge.api.answer_approval(bridge.api.pending_approvals()[0].id, Answer.ALLOW_ONCE)
            await slow.result()
            await eventually(lambda: "" not in [cell(view.model, r, OUTCOME) for r in range(2)], "both outcomes")
            live = [row.first.tool for row in rows(view.model)]

            view.agent.setCurrentIndex(view.agent.findData("a"))
            await idle(view.model)
            filtered = [row.first.tool for row in rows(view.model)]
            times = [row.first.time for row in rows(view.model)]
            view.agent.setCurrentIndex(0)
            await idle(view.model)
            unfiltered = [row.first.tool for row in rows(view.model)]

        # The echo call was decided after the add call, which waited for its answer and ended last.
        assert live == ["echo", "add"]
        assert filtered == ["echo", "add"] and times == sorted(times, reverse=True)
        assert unfiltered == ["echo", "add"]

    run_async(qloop, scenario())


@SHOWN
def test_pausing_auto_scroll_keeps_the_same_calls_in_view_while_new_ones_arrive(qloop):
    async def scenario():
        async with connected_agent("a", ALLOW) as (bridge, agent):
            view = CallsView(bridge)
            view.resize(800, 400)
            view.show()
            for n in range(30):
                await agent.client.call_tool("fake__echo", {"text": f"call {n}"})
            await eventually(lambda: view.model.rowCount() == 30, "thirty calls")
            view.table.scrollToBottom()
            view.pause.setChecked(True)
            in_view = view.model.call_at(view.table.rowAt(0)).call_id
            await agent.client.call_tool("fake__echo", {"text": "newest"})
            await eventually(lambda: view.model.rowCount() == 31, "the new call")
            in_view_while_paused = view.model.call_at(view.table.rowAt(0)).call_id

            view.pause.setChecked(False)
            await agent.client.call_tool("fake__echo", {"text": "newest again"})
            await eventually(lambda: view.model.rowCount() == 32, "another call")
            top_row_after_resuming = view.table.rowAt(0)
            return in_view, in_view_while_paused, top_row_after_resuming

    in_view, in_view_while_paused, top_row_after_resuming = run_async(qloop, scenario())
    assert in_view_while_paused == in_view
    assert top_row_after_resuming == 0


def test_filters_narrow_the_calls_and_read_the_matching_history_again(qloop):
    async def scenario():
        async with running_bridge({"fake": stdio_fake()}, agents={"a": ALLOW, "b": ALLOW}) as bridge:
            async with (
                agent_client(bridge.endpoint_url, bridge.api.agent_token("a")) as a,
                agent_client(bridge.endpoint_url, bridge.api.agent_token("b")) as b,
            ):
                await b.call_tool("fake__echo", {"text": "old needle call"})
                await b.call_tool("fake__fail", {})
                for n in range(6):
                    await a.call_tool("fake__add", {"a": n, "b": 1})
                # A page of four records (two calls) holds only agent a's newest calls.
                model = LogTableModel(bridge, page_size=4)
                await idle(model)
                assert {row.first.agent for row in rows(model)} == {"a"}
                view = CallsView(bridge, model=model)

                view.agent.setCurrentIndex(view.agent.findData("b"))
                await idle(view.model)
                assert [row.first.tool for row in rows(view.model)] == ["fail", "echo"]

                view.agent.setCurrentIndex(0)
                view.outcome.setCurrentIndex(view.outcome.findData(CallOutcome.TOOL_ERROR))
                await idle(view.model)
                (failed,) = rows(view.model)
                assert failed.first.tool == "fail" and failed.decision is not None

                view.outcome.setCurrentIndex(0)
                view.search.setText("NEEDLE")
                await eventually(lambda: view.model.filter.text == "NEEDLE", "the search to apply")
                await idle(view.model)
                (found,) = rows(view.model)
                assert found.first.tool == "echo" and cell(view.model, 0, OUTCOME) == "OK"

                view.search.clear()
                view.server.setCurrentIndex(view.server.findData("fake"))
                view.agent.setCurrentIndex(view.agent.findData("b"))
                await idle(view.model)
                await a.call_tool("fake__echo", {"text": "not shown"})
                await b.call_tool("fake__echo", {"text": "shown"})
                await eventually(lambda: view.model.rowCount() == 3, "agent b's new call")
                assert {row.first.agent for row in rows(view.model)} == {"b"}

    run_async(qloop, scenario())


def stored_calls(count, *, agent="a"):
    now = time.time()
    records = []
    for n in range(count):
        call_id = uuid.uuid4().hex
        common = {"call_id": call_id, "agent": agent, "server": "fake", "tool": "echo", "effect": "allow"}
        common |= {"rule": "default → allow", "answer": None, "waited_s": None, "result_size": None}
        records.append(
            AuditRecord(
                id=0,
                time=now - count + n,
                kind=RecordKind.DECISION,
                reason="allowed",
                latency_s=0.0,
                outcome=None,
                arguments=json.dumps({"n": n}),
                **common,
            )
        )
        records.append(
            AuditRecord(
                id=0,
                time=now - count + n + 0.5,
                kind=RecordKind.OUTCOME,
                reason=None,
                latency_s=0.01,
                outcome=CallOutcome.OK,
                arguments="",
                **common,
            )
        )
    return records


@SHOWN
def test_a_hundred_thousand_stored_records_are_read_a_page_at_a_time_within_a_bounded_window(qloop):
    async def scenario():
        async with connected_agent("a", ALLOW) as (bridge, agent):
            conn = store.open_writer(bridge.paths.audit_db)
            try:
                store.insert_records(conn, stored_calls(50_000))
            finally:
                conn.close()
            panel = LogsPanel(bridge)
            view, model = panel.calls, panel.calls.model
            largest = []
            model.rowsInserted.connect(lambda *_: largest.append(model.rowCount()))
            await idle(model)
            assert model.rowCount() == PAGE_SIZE // 2
            assert cell(model, 0, OUTCOME) == "OK" and '"n": 49999' in model.call_at(0).decision.arguments

            panel.resize(900, 600)
            panel.show()
            view.table.scrollToBottom()
            await eventually(lambda: model.rowCount() == PAGE_SIZE, "the next page after scrolling to the end")

            while model.at_newest:
                await idle(model)
                model.fetchMore(QModelIndex())
            await idle(model)
            assert max(largest) <= MAX_ROWS and model.rowCount() <= MAX_ROWS
            assert view.back_to_newest.isVisible()
            newest_shown = model.call_at(0).first.id
            await agent.client.call_tool("fake__add", {"a": 1, "b": 2})
            assert "add" not in {row.first.tool for row in rows(model)}  # deep in history, live calls wait

            view.table.scrollToTop()
            await idle(model)
            assert model.call_at(0).first.id > newest_shown and model.rowCount() <= MAX_ROWS

            view.back_to_newest.click()
            await idle(model)
            assert model.at_newest and not view.back_to_newest.isVisible()
            assert model.call_at(0).first.tool == "add"
            assert model.rowCount() <= PAGE_SIZE // 2 + 1  # a page may split one call's two records

    run_async(qloop, scenario())


def test_export_writes_exactly_the_records_matching_the_filter_as_jsonl_and_csv(qloop, tmp_path):
    async def scenario():
        async with running_bridge({"fake": stdio_fake()}, agents={"a": ALLOW, "b": ALLOW}) as bridge:
            async with (
                agent_client(bridge.endpoint_url, bridge.api.agent_token("a")) as a,
                agent_client(bridge.endpoint_url, bridge.api.agent_token("b")) as b,
            ):
                for n in range(3):
                    await a.call_tool("fake__add", {"a": n, "b": 2})
                    await b.call_tool("fake__echo", {"text": f"b {n}"})
            view = CallsView(bridge)
            view.agent.setCurrentIndex(view.agent.findData("a"))
            await idle(view.model)
            await eventually(lambda: view.model.rowCount() == 3, "agent a's calls")

            jsonl, csv_file = tmp_path / "calls.jsonl", tmp_path / "calls.csv"
            view.choose_export_file()
            dialog = view._export_dialog
            assert dialog.isVisible()
            dialog.selectFile(str(jsonl))
            dialog.accept()
            exported = "Exported 3 calls (6 records"
            await eventually(lambda: jsonl.exists() and view.status.text().startswith(exported), "the JSONL export")
            assert await view.start_export(csv_file) == 6

            lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
            assert [(r["agent"], r["kind"], r["tool"]) for r in lines] == [
                ("a", "decision", "add"),
                ("a", "outcome", "add"),
            ] * 3
            assert [r["outcome"] for r in lines[1::2]] == ["ok"] * 3
            with csv_file.open(newline="") as f:
                table = list(csv.DictReader(f))
            assert [int(r["id"]) for r in table] == [r["id"] for r in lines]
            assert {r["agent"] for r in table} == {"a"} and table[0]["arguments"] == '{"a": 0, "b": 2}'
            assert table[0]["outcome"] == "" and table[1]["outcome"] == "ok"

            missing = tmp_path / "no such folder" / "calls.csv"
            assert await view.start_export(missing) is None
            assert view.error.isVisibleTo(view) and "Could not export" in view.error.text()

    run_async(qloop, scenario())


def test_messages_view_shows_a_server_stderr_line_and_a_gateway_message(qloop, qtmodeltester, caplog):
    caplog.set_level(logging.INFO, logger="gateway_core")

    async def scenario():
        async with connected_agent("a", ALLOW) as (bridge, agent):
            panel = LogsPanel(bridge)
            messages = panel.messages
            await agent.client.call_tool("fake__stderr", {"text": "a line on stderr"})
            bridge.pause()
            shown = messages.filtered

            def texts():
                return [shown.index(r, 3).data() for r in range(shown.rowCount())]

            # Lines reach the view in deliveries (at most four a second): the two may come in different ones.
            await eventually(lambda: "a line on stderr" in texts(), "the stderr line")
            await eventually(lambda: any("paused" in text for text in texts()), "the gateway's message")
            qtmodeltester.check(messages.model)
            qtmodeltester.check(shown)

            messages.kind.setCurrentIndex(messages.kind.findText("Server stderr only"))
            assert texts() and all(shown.index(r, 1).data() == "stderr" for r in range(shown.rowCount()))
            assert {shown.index(r, 2).data() for r in range(shown.rowCount())} == {"fake"}  # the server's name
            messages.kind.setCurrentIndex(messages.kind.findText("Gateway messages only"))
            messages.search.setText("PAUSED")
            assert texts() and all("paused" in text for text in texts())
            # Sources read as parts of Toolgate, not module paths; the module stays in the tooltip.
            sources = {shown.index(r, 2).data() for r in range(shown.rowCount())}
            assert sources and not any("gateway_core" in source for source in sources)
            assert "gateway_core" in shown.index(0, 2).data(Qt.ItemDataRole.ToolTipRole)

    run_async(qloop, scenario())


def test_the_messages_view_keeps_a_bounded_number_of_lines(qloop):
    async def scenario():
        async with connected_agent("a", ALLOW) as (bridge, agent):
            panel = LogsPanel(bridge)
            model = panel.messages.model
            model.max_messages = 3
            for n in range(5):
                await agent.client.call_tool("fake__stderr", {"text": f"line {n}"})
            await eventually(lambda: model.message_at(model.rowCount() - 1).text == "line 4", "the last line")
            assert model.rowCount() == 3

    run_async(qloop, scenario())


def test_messages_delivered_together_are_inserted_at_once_and_the_oldest_dropped_beyond_the_bound(qloop, qtmodeltester):
    async def scenario():
        async with running_bridge({}) as bridge:
            model = MessageTableModel(bridge, max_messages=4)
            qtmodeltester.check(model)
            insertions: list[tuple[int, int]] = []
            model.rowsInserted.connect(lambda _, first, last: insertions.append((first, last)))
            model.add([gateway_message(f"line {n}") for n in range(3)])
            model.add([gateway_message(f"line {n}") for n in range(3, 6)])
            assert insertions == [(0, 2), (1, 3)]
            assert [model.message_at(row).text for row in range(model.rowCount())] == [
                f"line {n}" for n in (2, 3, 4, 5)
            ]
            model.add([gateway_message(f"more {n}") for n in range(6)])  # more than the bound in one delivery
            assert [model.message_at(row).text for row in range(model.rowCount())] == [
                f"more {n}" for n in (2, 3, 4, 5)
            ]

    run_async(qloop, scenario())


def gateway_message(text: str) -> GatewayMessage:
    return GatewayMessage(time.time(), "INFO", "gateway_core.test", text)


def texts(model: MessageTableModel) -> list[str]:
    return [model.message_at(row).text for row in range(model.rowCount())]


def test_under_an_outcome_filter_a_call_whose_halves_are_far_apart_still_shows_its_decision(qloop):
    async def scenario():
        async with running_bridge({}, agents={"a": ALLOW}) as bridge:
            slow_decision, slow_outcome = stored_calls(1)
            slow_outcome = dataclasses.replace(slow_outcome, outcome=CallOutcome.TOOL_ERROR)
            conn = store.open_writer(bridge.paths.audit_db)
            try:
                store.insert_records(conn, [slow_decision, *stored_calls(400), slow_outcome])
            finally:
                conn.close()
            view = CallsView(bridge)
            view.outcome.setCurrentIndex(view.outcome.findData(CallOutcome.TOOL_ERROR))
            await idle(view.model)
            await eventually(lambda: view.model.rowCount() == 1, "the failed call")
            await eventually(lambda: view.model.call_at(0).decision is not None, "its decision, read by call id")
            assert '"n": 0' in view.model.call_at(0).decision.arguments
            assert cell(view.model, 0, DECISION) == "Allow"

    run_async(qloop, scenario())

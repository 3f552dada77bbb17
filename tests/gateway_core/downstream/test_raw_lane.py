"""The hot path's raw lane over stdio: one line out from the calling task, the answer straight off stdout.

The lane must answer, fail, cancel and end as the SDK's dispatcher does, and leave every other line
(notifications, the server's questions, stray answers, lines that are not JSON) to the SDK's way.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError
from mcp_types.methods import serialize_server_result

from gateway_core.downstream import raw_lane
from gateway_core.downstream.stderr import StderrBuffer
from gateway_core.downstream.stdio import QUICK_STOP, StdioCommand, open_stdio
from gateway_core.errors import DownstreamTimeoutError, ServerUnavailableError
from gateway_core.frontend.forward import without_downstream_identity
from tests.fakes.launch import FAKE_SERVER
from tests.gateway_core.downstream.conftest import WAIT_S, fake_config, ready_fake

pytestmark = pytest.mark.anyio

TAP = Path(__file__).parents[2] / "fakes" / "stdio_tap.py"

# A server that answers each request with the line it read; before a tools/call's answer it writes a
# line that is not JSON and an answer to an id nobody sent.
ECHOING_SERVER = """
import json, sys
for line in sys.stdin:
    message = json.loads(line)
    sys.stderr.write(line); sys.stderr.flush()
    if message.get("method") == "fail":
        answer = {"error": {"code": -32602, "message": "no such thing", "data": {"why": "test"}}}
    else:
        answer = {"result": {"line": line}}
        sys.stdout.write("not json\\n")
        sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": "toolgate-999", "result": {}}) + "\\n")
    sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": message["id"], **answer}) + "\\n"); sys.stdout.flush()
"""


@dataclass(frozen=True)
class Agent:
    """A calling agent (``asking.Caller``) that answers a server's sampling and roots questions."""

    agent: str = "agent-a"
    owner: Hashable = "session-a"
    interactive: bool = True
    capabilities: types.ClientCapabilities | None = None

    async def ask(self, server: str, request: types.InputRequest) -> types.InputResponse | types.ErrorData:
        if isinstance(request, types.CreateMessageRequest):
            return types.CreateMessageResult(role="assistant", content=types.TextContent(text="a summary"), model="m")
        if isinstance(request, types.ListRootsRequest):
            return types.ListRootsResult(roots=[types.Root(uri="file:///work/project")])
        return types.ErrorData(code=types.INVALID_REQUEST, message="not answered here")

    async def ask_round(
        self, server: str, questions: Mapping[str, types.InputRequest]
    ) -> dict[str, types.InputResponse | types.ErrorData]:
        return {key: await self.ask(server, question) for key, question in questions.items()}


def tapped_fake(*extra: str, **fields: object) -> Any:
    """The fake server behind ``stdio_tap --log-client``: its stderr says what the client sent."""
    return fake_config(**fields).model_copy(
        update={"args": [str(TAP), "--log-client", sys.executable, str(FAKE_SERVER), *extra]}
    )


def as_agent_gets(result: types.CallToolResult, version: str = "2025-11-25") -> dict[str, Any]:
    """What an agent of ``version`` gets of ``result`` the typed way (the forwarder's and the SDK server's steps)."""
    dumped = without_downstream_identity(result).model_dump(by_alias=True, mode="json", exclude_none=True)
    return serialize_server_result("tools/call", version, dumped)


def text_of(result: dict[str, Any] | types.CallToolResult) -> str:
    """The first text of a result passed through (a dict) or rebuilt (a model)."""
    dumped = result if isinstance(result, dict) else result.model_dump(by_alias=True, mode="json")
    return str(dumped["content"][0]["text"])


def client_said(lines: tuple[str, ...], method: str) -> list[Any]:
    """The ids (or cancelled request ids) of what the client sent with ``method``, from the tap's lines."""
    prefix = f"tap: client {method} "
    return [json.loads(line.removeprefix(prefix)) for line in lines if line.startswith(prefix)]


async def test_a_raw_request_is_one_line_with_its_own_id_and_its_answer_skips_the_sdks_reader():
    lines: list[str] = []
    others: list[Any] = []
    command = StdioCommand(sys.executable, ("-c", ECHOING_SERVER))
    async with open_stdio(command, stderr=StderrBuffer(lines.append)) as connection, anyio.create_task_group() as tg:
        assert connection.raw is not None
        read, _ = connection.streams

        async def read_the_sdks_way() -> None:
            others.extend([await read.receive(), await read.receive()])

        tg.start_soon(read_the_sdks_way)
        with anyio.fail_after(WAIT_S):
            params = {"name": "echo", "arguments": {"text": "ü"}, "_meta": {}}
            result = await connection.raw.request("tools/call", params)

    sent = '{"jsonrpc":"2.0","id":"toolgate-1","method":"tools/call","params":{"name":"echo","arguments":{"text":"ü"}}}'
    assert result == {"line": sent + "\n"}
    assert lines == [sent]
    # What answers no raw call goes the SDK's way, as before: a line that is not JSON, a stray answer.
    not_json, stray = others
    assert isinstance(not_json, ValueError)
    assert stray.message == types.JSONRPCResponse(jsonrpc="2.0", id="toolgate-999", result={})


async def test_an_error_answer_to_a_raw_request_is_raised_as_the_dispatcher_raises_it():
    command = StdioCommand(sys.executable, ("-c", ECHOING_SERVER))
    async with open_stdio(command, stderr=StderrBuffer(None)) as connection:
        assert connection.raw is not None
        with anyio.fail_after(WAIT_S), pytest.raises(MCPError) as raised:
            await connection.raw.request("fail", None)

    assert raised.value.error == types.ErrorData(code=-32602, message="no such thing", data={"why": "test"})


# A server that first answers each request in ways the SDK would not read as a response (an error that
# is not one, a result that is not an object, a request with the same id), then as it should.
MISANSWERING_SERVER = """
import json, sys
for line in sys.stdin:
    request_id = json.loads(line)["id"]
    for wrong in ({"error": {"code": "no number"}}, {"result": 5}, {"method": "ping", "result": {}}):
        sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": request_id, **wrong}) + "\\n")
    sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": request_id, "result": {"right": True}}) + "\\n")
    sys.stdout.flush()
"""


async def test_only_a_line_the_sdk_reads_as_the_answer_to_a_raw_call_settles_it_and_the_rest_goes_the_sdks_way():
    others: list[Any] = []
    command = StdioCommand(sys.executable, ("-c", MISANSWERING_SERVER))
    async with open_stdio(command, stderr=StderrBuffer(None)) as connection, anyio.create_task_group() as tg:
        assert connection.raw is not None
        read, _ = connection.streams

        async def read_the_sdks_way() -> None:
            others.extend([await read.receive() for _ in range(3)])

        tg.start_soon(read_the_sdks_way)
        with anyio.fail_after(WAIT_S):
            result = await connection.raw.request("tools/call", {"name": "echo"})

    assert result == {"right": True}
    # The SDK's reader was given all three, in order, and read them as it does any line.
    bad_error, bad_result, request = others
    assert isinstance(bad_error, Exception) and isinstance(bad_result, Exception)
    assert isinstance(request.message, types.JSONRPCRequest) and request.message.method == "ping"


async def test_a_hot_call_goes_by_the_raw_lane_and_answers_as_the_typed_way():
    async with ready_fake(tapped_fake()) as (server, changes):
        raw = await server.session.call_tool_passing_through("echo", {"text": "hi"}, caller=Agent(), meta={"k": 1})
        typed = await server.session.call_tool("echo", {"text": "hi"}, caller=Agent(), meta={"k": 1})
        refused = await server.session.call_tool_passing_through("fail", None, caller=Agent(), meta=None)
        with pytest.raises(MCPError) as raised:
            await server.session.call_tool_passing_through("no_such_tool", {}, caller=Agent(), meta=None)
        # The tap's lines come on the server's stderr, read alongside its answers: wait for all four.
        await changes.until(lambda: len(client_said(server.stderr_lines(), "tools/call")) == 4)
        calls = client_said(server.stderr_lines(), "tools/call")

    assert raw == as_agent_gets(typed)
    assert refused == {"content": [{"type": "text", "text": "it failed"}], "isError": True}
    assert (raised.value.code, raised.value.error.message) == (types.INVALID_PARAMS, "unknown tool: no_such_tool")
    # The typed call kept the SDK's integer ids; the hot calls had the lane's.
    assert [call for call in calls if isinstance(call, str)] == ["toolgate-1", "toolgate-2", "toolgate-3"]


async def test_a_2026_agents_call_by_the_raw_lane_keeps_its_result_type_and_answers_as_the_typed_way():
    async with ready_fake(tapped_fake()) as (server, _):
        raw = await server.session.call_tool_passing_through(
            "echo", {"text": "hi"}, caller=Agent(), meta=None, modern_agent=True
        )
        typed = await server.session.call_tool("echo", {"text": "hi"}, caller=Agent(), meta=None)

    assert isinstance(raw, dict)
    assert raw["resultType"] == "complete"
    assert "io.modelcontextprotocol/serverInfo" not in raw.get("_meta", {})
    # The agent-facing server checks either against the agent's version (and stamps its own identity).
    assert serialize_server_result("tools/call", "2026-07-28", raw) == as_agent_gets(typed, "2026-07-28")


async def test_a_cancelled_raw_call_tells_the_server_which_call_to_cancel():
    async with ready_fake(tapped_fake()) as (server, changes):
        async with anyio.create_task_group() as tg:
            tg.start_soon(
                lambda: server.session.call_tool_passing_through(
                    "slow", {"seconds": 60, "steps": 1}, caller=Agent(), meta=None
                )
            )
            await changes.until(lambda: "slow started" in server.stderr_lines())
            tg.cancel_scope.cancel()

        await changes.until(lambda: "slow cancelled" in server.stderr_lines())
        await changes.until(lambda: bool(client_said(server.stderr_lines(), "notifications/cancelled")))
        assert client_said(server.stderr_lines(), "notifications/cancelled") == ["toolgate-1"]
        assert await server.session.call_tool_passing_through("add", {"a": 1, "b": 2}, caller=Agent(), meta=None)


async def test_a_raw_call_past_the_timeout_fails_as_a_timeout_and_the_server_is_told_to_cancel():
    async with ready_fake(tapped_fake(timeout_s=0.5)) as (server, changes):
        with pytest.raises(DownstreamTimeoutError) as raised:
            await server.session.call_tool_passing_through("slow", {"seconds": 60}, caller=Agent(), meta=None)

        assert str(raised.value) == "server 'fake' did not answer tools/call 'slow' within 0.5 s"
        await changes.until(lambda: "slow cancelled" in server.stderr_lines())
        await changes.until(lambda: bool(client_said(server.stderr_lines(), "notifications/cancelled")))
        assert client_said(server.stderr_lines(), "notifications/cancelled") == ["toolgate-1"]


async def test_a_server_dying_during_a_raw_call_fails_it_with_the_reason_and_the_server_comes_back():
    async with ready_fake() as (server, changes):
        with anyio.fail_after(WAIT_S), pytest.raises(ServerUnavailableError) as raised:
            await server.session.call_tool_passing_through("crash", {}, caller=Agent(), meta=None)

        assert str(raised.value) == (
            "server 'fake' stopped answering during tools/call 'crash': the server process exited with code 3"
        )
        await changes.until(lambda: server.status.restarts == 1 and server.session.live is not None)
        after = await server.session.call_tool_passing_through("add", {"a": 2, "b": 3}, caller=Agent(), meta=None)
        assert after == {
            "content": [{"type": "text", "text": "5"}],
            "structuredContent": {"result": 5},
            "isError": False,
        }


@pytest.mark.parametrize("era", [("--handshake-only",), ()], ids=["server-to-client requests", "2026 rounds"])
async def test_a_servers_questions_during_a_raw_call_reach_the_calling_agent(era: tuple[str, ...]):
    async with ready_fake(fake_config(*era)) as (server, _):
        with anyio.fail_after(WAIT_S):
            sampled = await server.session.call_tool_passing_through(
                "sample", {"prompt": "p"}, caller=Agent(), meta=None
            )
            roots = await server.session.call_tool_passing_through("roots", {}, caller=Agent(), meta=None)

    assert text_of(sampled) == "sampled: a summary"
    assert "file:///work/project" in text_of(roots)


async def test_a_2026_servers_raw_call_claims_the_calling_agents_capabilities_as_the_typed_way_does():
    agent = Agent(capabilities=types.ClientCapabilities(sampling=types.SamplingCapability()))
    async with ready_fake(tapped_fake("--modern-only")) as (server, changes):
        assert server.session.live is not None and server.session.live.modern
        raw = await server.session.call_tool_passing_through("capabilities", {}, caller=agent, meta=None)
        typed = await server.session.call_tool("capabilities", {}, caller=agent)
        await changes.until(lambda: len(client_said(server.stderr_lines(), "tools/call")) == 2)
        calls = client_said(server.stderr_lines(), "tools/call")

    assert raw == as_agent_gets(typed)
    assert json.loads(raw["content"][0]["text"]) == {"sampling": {}}
    assert calls[0] == "toolgate-1" and isinstance(calls[1], int)


@pytest.mark.parametrize("era", [("--handshake-only",), ()], ids=["handshake era", "2026-07-28"])
async def test_the_server_gets_the_same_meta_by_the_raw_lane_as_the_typed_way(era: tuple[str, ...]):
    async with ready_fake(fake_config(*era)) as (server, _):
        raw = await server.session.call_tool_passing_through("meta", {}, caller=Agent(), meta={"k": [1, "ü"]})
        typed = await server.session.call_tool("meta", {}, caller=Agent(), meta={"k": [1, "ü"]})

    assert isinstance(raw, dict) and isinstance(typed, types.CallToolResult)
    assert raw["structuredContent"] == typed.structured_content
    assert raw["structuredContent"]["meta"]["k"] == [1, "ü"]


async def test_a_raw_call_to_a_server_that_reads_nothing_ends_at_its_deadline(monkeypatch: pytest.MonkeyPatch):
    # The request is larger than a pipe holds: writing it waits for the server, which never reads;
    # the call's deadline still ends the wait (and the courtesy cancel gives up after its own bound).
    monkeypatch.setattr(raw_lane, "CANCEL_WRITE_TIMEOUT_S", 0.2)
    command = StdioCommand(sys.executable, ("-c", "import time; time.sleep(60)"))
    async with open_stdio(command, stderr=StderrBuffer(None), stop_times=lambda: QUICK_STOP) as connection:
        assert connection.raw is not None
        params = {"name": "echo", "arguments": {"text": "x" * 1_000_000}}
        with anyio.fail_after(WAIT_S), pytest.raises(raw_lane.LaneTimeoutError):
            await connection.raw.request("tools/call", params, deadline=anyio.current_time() + 0.3)


async def test_what_the_server_wrote_before_a_raw_answer_reaches_the_sdk_before_the_raw_call_returns():
    # The echoing server writes a line that is not JSON, a stray answer and then the call's answer in one
    # write: the answer is handed to the call only after the lines before it went the SDK's way.
    received: list[Any] = []
    command = StdioCommand(sys.executable, ("-c", ECHOING_SERVER))
    async with open_stdio(command, stderr=StderrBuffer(None)) as connection, anyio.create_task_group() as tg:
        assert connection.raw is not None
        read, _ = connection.streams

        async def read_the_sdks_way() -> None:
            for _ in range(2):
                received.append(await read.receive())

        tg.start_soon(read_the_sdks_way)
        with anyio.fail_after(WAIT_S):
            await connection.raw.request("tools/call", {"name": "echo"})
            seen_when_answered = len(received)

    assert seen_when_answered >= 1
    assert isinstance(received[0], ValueError)


async def test_raw_calls_with_different_deadlines_each_end_at_their_own_and_a_call_without_one_waits_on():
    # The lane keeps one timer for all its calls: a later deadline noted first, an earlier one after it,
    # and the timer armed again for the next deadline once it has ended the calls due.
    command = StdioCommand(sys.executable, ("-c", "import time; time.sleep(60)"))
    ended: dict[str, float] = {}
    three_ended = anyio.Event()
    async with open_stdio(command, stderr=StderrBuffer(None), stop_times=lambda: QUICK_STOP) as connection:
        lane = connection.raw
        assert lane is not None

        async def call(name: str, deadline: float | None) -> None:
            with pytest.raises(raw_lane.LaneTimeoutError):
                await lane.request("tools/call", {"name": name}, deadline=deadline)
            ended[name] = anyio.current_time()
            if len(ended) == 3:
                three_ended.set()

        with anyio.fail_after(WAIT_S):
            async with anyio.create_task_group() as tg:
                start = anyio.current_time()
                tg.start_soon(call, "unbounded", None)
                tg.start_soon(call, "late", start + 0.6)
                tg.start_soon(call, "early", start + 0.2)
                tg.start_soon(call, "latest", start + 0.8)
                await three_ended.wait()
                assert "unbounded" not in ended
                tg.cancel_scope.cancel()

    assert start + 0.2 <= ended["early"] < ended["late"] < ended["latest"]
    assert ended["late"] >= start + 0.6 and ended["latest"] >= start + 0.8


# A server that answers the first request in three writes: a notification with a bad UTF-8 byte, a blank
# line and a line of (Unicode) spaces, then the answer with a character split across two writes and a
# bad byte of its own, then another notification.
SPLITTING_SERVER = r"""
import sys, time
sys.stdin.readline()
notice = b'{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"%s"}}\n'
for part in (
    notice % b"bad \xff" + b"\n \xc2\xa0\n" + b'{"jsonrpc":"2.0","id":"toolgate-1","result":{"text":"\xc3',
    b'\xa9\xff"}}',
    b"\n" + notice % b"end",
):
    sys.stdout.buffer.write(part); sys.stdout.buffer.flush(); time.sleep(0.05)
sys.stdin.readline()
"""


async def test_stdout_reads_as_its_utf8_text_for_a_raw_call_and_the_sdk_however_it_is_split_and_blank_lines_go():
    received: list[Any] = []
    command = StdioCommand(sys.executable, ("-c", SPLITTING_SERVER))
    async with open_stdio(command, stderr=StderrBuffer(None)) as connection, anyio.create_task_group() as tg:
        assert connection.raw is not None
        read, _ = connection.streams

        async def read_the_sdks_way() -> None:
            for _ in range(2):
                received.append(await read.receive())

        tg.start_soon(read_the_sdks_way)
        with anyio.fail_after(WAIT_S):
            result = await connection.raw.request("tools/call", {"name": "echo"})

    assert result == {"text": "é\ufffd"}
    assert [item.message.params["data"] for item in received] == ["bad \ufffd", "end"]

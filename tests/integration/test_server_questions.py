"""Questions a server asks during a call (elicitation, sampling, roots) reach the calling agent, in both eras.

The downstream is the SDK-built fake over stdio (handshake era, so it asks with real requests); the
agents are SDK clients over HTTP. A 2026 agent gets the question as an InputRequiredResult round,
which the SDK client answers through the same callbacks.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError

from gateway_core.audit import RecordKind
from gateway_core.events import CallsRecorded
from tests.fakes.launch import serve_fake
from tests.integration.harness import (
    BOTH_ERAS,
    Mode,
    RunningGateway,
    agent_client,
    running_gateway,
    stdio_fake,
    text_of,
)

pytestmark = pytest.mark.anyio

WAIT_S = 20.0


class Person:
    """An agent's user: answers elicitations with a fixed name and records every question."""

    def __init__(self, name: str, *, before_answer: Callable[[], Awaitable[None]] | None = None) -> None:
        self.name = name
        self.questions: list[str] = []
        self.urls: list[str] = []
        self.elicitation_ids: list[str | None] = []
        self._before_answer = before_answer

    async def elicit(self, context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        self.questions.append(params.message)
        if isinstance(params, types.ElicitRequestURLParams):
            self.urls.append(params.url)
            self.elicitation_ids.append(params.elicitation_id)
            return types.ElicitResult(action="accept")
        if self._before_answer is not None:
            await self._before_answer()
        return types.ElicitResult(action="accept", content={"name": self.name})

    async def sample(self, context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        prompt = params.messages[0].content
        assert isinstance(prompt, types.TextContent)
        self.questions.append(prompt.text)
        reply = types.TextContent(text=f"{self.name}'s model read {prompt.text!r}")
        return types.CreateMessageResult(role="assistant", content=reply, model="test-model")

    async def roots(self, context: Any) -> types.ListRootsResult:
        return types.ListRootsResult(roots=[types.Root(uri=f"file:///work/{self.name.lower()}", name=self.name)])

    def callbacks(self) -> dict[str, Any]:
        return {
            "elicitation_callback": self.elicit,
            "sampling_callback": self.sample,
            "list_roots_callback": self.roots,
        }


def audit_questions(gw: RunningGateway) -> list[tuple[str, str, str, str]]:
    """(agent, server, method, outcome) of every question recorded, oldest first."""
    with sqlite3.connect(gw.paths.audit_db) as db:
        rows = db.execute(
            "SELECT agent, server, tool, outcome FROM records WHERE kind = 'outcome' AND tool LIKE '%/%' ORDER BY id"
        ).fetchall()
    return [tuple(row) for row in rows]


@pytest.mark.parametrize("mode", BOTH_ERAS)
async def test_an_elicitation_during_a_call_is_answered_by_the_calling_agent(mode: Mode):
    person = Person("Alice")
    async with running_gateway({"fake": stdio_fake()}) as gw:
        await gw.wait_ready()
        async with agent_client(gw.url, gw.tokens["agent-a"], mode=mode, **person.callbacks()) as client:
            result = await client.call_tool("fake__ask", {"who": "a"})
    assert text_of(result) == "a got: Alice"
    assert person.questions == ["Question for a: your name?"]
    assert ("agent-a", "fake", "elicitation/create", "ok") in audit_questions(gw)


@pytest.mark.parametrize("mode", BOTH_ERAS)
async def test_sampling_url_elicitation_and_roots_reach_the_calling_agent(mode: Mode):
    person = Person("Bea")
    async with running_gateway({"fake": stdio_fake()}) as gw:
        await gw.wait_ready()
        async with agent_client(gw.url, gw.tokens["agent-a"], mode=mode, **person.callbacks()) as client:
            sampled = await client.call_tool("fake__sample", {"prompt": "summarise"})
            url = await client.call_tool("fake__ask_url", {"who": "bea"})
            roots = await client.call_tool("fake__roots", {})
    assert text_of(sampled) == "sampled: Bea's model read 'summarise'"
    assert text_of(url) == "bea url: accept"
    assert person.urls == ["https://example.invalid/bea"]
    # 2025-11-25 requires an elicitationId (the server, reached in 2026-07-28, gave none); 2026-07-28 has none.
    assert [bool(given) for given in person.elicitation_ids] == [mode == "legacy"]
    assert text_of(roots) == "file:///work/bea"
    methods = {(agent, method, outcome) for agent, _, method, outcome in audit_questions(gw)}
    assert {
        ("agent-a", "sampling/createMessage", "ok"),
        ("agent-a", "elicitation/create", "ok"),
        ("agent-a", "roots/list", "ok"),
    } <= methods


@pytest.mark.parametrize("mode", BOTH_ERAS)
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="the fake is let go through a named pipe")
async def test_progress_sent_while_the_agent_answers_a_question_reaches_it_in_order(mode: Mode, tmp_path: Path):
    # A 2026 agent has no request open between the question's round and its retry: progress the
    # server sends then (let go through a pipe while the agent answers) must wait for the retry.
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    progress: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    async def roots_after_progress_was_let_go(context: Any) -> types.ListRootsResult:
        with anyio.fail_after(WAIT_S):
            await anyio.to_thread.run_sync(gate.write_text, "go\n", abandon_on_cancel=True)
        return types.ListRootsResult(roots=[types.Root(uri="file:///work/cy", name="Cy")])

    # The server asks during the call (handshake era), and lets progress go meanwhile.
    async with running_gateway({"fake": stdio_fake("--handshake-only")}) as gw:
        await gw.wait_ready()
        async with agent_client(
            gw.url, gw.tokens["agent-a"], mode=mode, list_roots_callback=roots_after_progress_was_let_go
        ) as client:
            result = await client.call_tool(
                "fake__roots_amid_progress", {"gate": str(gate)}, progress_callback=on_progress
            )
    assert text_of(result) == "file:///work/cy"
    assert progress == [1, 2, 3]


class TwoAgentsAsking:
    """Two agents calling the fake's elicitation tool at once: each question is held until both calls are in."""

    def __init__(self, gw: RunningGateway) -> None:
        self.both_calling = anyio.Event()
        self.alice = Person("Alice", before_answer=self.wait_for_both)
        self.bob = Person("Bob", before_answer=self.wait_for_both)
        self.results: dict[str, str] = {}
        self._gw = gw

    async def wait_for_both(self) -> None:
        with anyio.fail_after(WAIT_S):
            await self.both_calling.wait()

    async def run(self, mode_a: Mode, mode_b: Mode) -> None:
        decided: set[str] = set()
        both_decided = anyio.Event()

        def on_recorded(event: CallsRecorded) -> None:
            decided.update(r.agent for r in event.records if r.kind is RecordKind.DECISION and r.tool == "ask")
            if decided == {"agent-a", "agent-b"}:
                both_decided.set()

        gw = self._gw
        gw.gateway.events.on(CallsRecorded, on_recorded)
        async with (
            agent_client(gw.url, gw.tokens["agent-a"], mode=mode_a, **self.alice.callbacks()) as client_a,
            agent_client(gw.url, gw.tokens["agent-b"], mode=mode_b, **self.bob.callbacks()) as client_b,
        ):

            async def call(client: Any, who: str) -> None:
                try:
                    self.results[who] = text_of(await client.call_tool("fake__ask", {"who": who}))
                except MCPError as exc:
                    self.results[who] = f"error: {exc.error.message}"

            with anyio.fail_after(WAIT_S):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(call, client_a, "a")
                    tg.start_soon(call, client_b, "b")
                    # Both calls are in the gateway once the policy's decision on each is recorded.
                    # (Not wait_all_tasks_blocked(): on asyncio its 0.1 s poll can lock in step with
                    # uvicorn's 0.1 s tick in this loop, always finding that task runnable.)
                    await both_decided.wait()
                    self.both_calling.set()


@pytest.mark.parametrize(
    ("mode_a", "mode_b"), [("legacy", "legacy"), ("2026-07-28", "legacy"), ("2026-07-28", "2026-07-28")]
)
async def test_two_agents_asked_at_once_by_a_shared_http_server_each_get_only_their_own_question(
    mode_a: Mode, mode_b: Mode
):
    # A Streamable HTTP server sends each call's question on that call's own response stream.
    with serve_fake("http") as remote:
        async with running_gateway({"fake": {"url": remote.url}}, agents=("agent-a", "agent-b")) as gw:
            await gw.wait_ready()
            agents = TwoAgentsAsking(gw)
            await agents.run(mode_a, mode_b)
    assert agents.results == {"a": "a got: Alice", "b": "b got: Bob"}
    assert agents.alice.questions == ["Question for a: your name?"]
    assert agents.bob.questions == ["Question for b: your name?"]


async def test_two_agents_asked_at_once_by_a_per_agent_stdio_server_each_get_only_their_own_question():
    async with running_gateway({"fake": stdio_fake(isolation="per_agent")}, agents=("agent-a", "agent-b")) as gw:
        await gw.wait_ready()
        agents = TwoAgentsAsking(gw)
        await agents.run("legacy", "2026-07-28")
    assert agents.results == {"a": "a got: Alice", "b": "b got: Bob"}
    assert agents.alice.questions == ["Question for a: your name?"]
    assert agents.bob.questions == ["Question for b: your name?"]


async def test_a_shared_stdio_server_asking_while_two_agents_calls_are_in_flight_never_shows_one_the_others():
    # Nothing on stdio says which call a question belongs to. A question asked while only one agent's
    # call was in flight goes to it; one asked while both were is refused (usually the second one, unless
    # the first call has ended by then).
    async with running_gateway({"fake": stdio_fake()}, agents=("agent-a", "agent-b")) as gw:
        await gw.wait_ready()
        agents = TwoAgentsAsking(gw)
        await agents.run("legacy", "legacy")
    assert agents.alice.questions in ([], ["Question for a: your name?"])
    assert agents.bob.questions in ([], ["Question for b: your name?"])
    refused = {who for who, result in agents.results.items() if "Toolgate has no agent to ask" in result}
    for who in refused:
        assert '"isolation": "per_agent"' in agents.results[who]
    for who in {"a", "b"} - refused:
        assert agents.results[who] == {"a": "a got: Alice", "b": "b got: Bob"}[who]


@pytest.mark.parametrize("mode", BOTH_ERAS)
async def test_a_server_asking_an_agent_without_the_capability_gets_an_error_naming_it(mode: Mode):
    async with running_gateway({"fake": stdio_fake()}) as gw:
        await gw.wait_ready()
        async with agent_client(gw.url, gw.tokens["agent-a"], mode=mode) as client:
            with pytest.raises(MCPError, match="agent 'agent-a' does not support elicitation") as refused:
                await client.call_tool("fake__ask", {"who": "a"})
            with pytest.raises(MCPError, match="does not support sampling"):
                await client.call_tool("fake__sample", {"prompt": "x"})
            # Still usable afterwards.
            assert text_of(await client.call_tool("fake__echo", {"text": "still here"})) == "still here"
    assert ("agent-a", "fake", "elicitation/create", "denied") in audit_questions(gw)
    if mode == "legacy":  # what the agent itself would answer the server
        assert refused.value.error.code == types.INVALID_REQUEST
    else:  # what a server of its era would answer it directly
        assert refused.value.error.code == types.MISSING_REQUIRED_CLIENT_CAPABILITY
        assert refused.value.error.data == {"requiredCapabilities": {"elicitation": {"form": {}}}}


@pytest.mark.parametrize("mode", BOTH_ERAS)
async def test_a_2026_only_servers_input_rounds_reach_the_calling_agent_in_its_own_era(mode: Mode):
    # The server refuses the handshake; Toolgate reaches it with server/discover, and answers its
    # InputRequiredResult rounds by asking the calling agent: with real requests in the handshake era.
    person = Person("Dana")
    async with running_gateway({"modern": stdio_fake("--modern-only")}) as gw:
        await gw.wait_ready()
        assert gw.status("modern").protocol_version == "2026-07-28"
        async with agent_client(gw.url, gw.tokens["agent-a"], mode=mode, **person.callbacks()) as client:
            asked = await client.call_tool("modern__ask", {"who": "d"})
            sampled = await client.call_tool("modern__sample", {"prompt": "hi"})
            echoed = await client.call_tool("modern__echo", {"text": "plain"})
    assert text_of(asked) == "d got: Dana"
    assert text_of(sampled) == "sampled: Dana's model read 'hi'"
    assert text_of(echoed) == "plain"
    assert person.questions == ["Question for d: your name?", "hi"]


async def test_a_2026_only_servers_new_tool_reaches_agents_through_its_listen_stream():
    changed = anyio.Event()

    async def on_message(message: object) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            changed.set()

    async with running_gateway({"modern": stdio_fake("--modern-only")}) as gw:
        await gw.wait_ready()
        async with agent_client(gw.url, gw.tokens["agent-a"], message_handler=on_message) as client:
            await client.call_tool("modern__add_tool", {"name": "fresh"})
            with anyio.fail_after(WAIT_S):
                await changed.wait()
            names = {tool.name for tool in (await client.list_tools()).tools}
    assert "modern__fresh" in names

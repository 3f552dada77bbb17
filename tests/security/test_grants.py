"""Grants last exactly as long as they say, and apply to exactly what they name."""

from __future__ import annotations

import json

import anyio
import anyio.lowlevel
import httpx2
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from gateway_core.approvals import Answer, Outcome
from tests.integration.harness import agent_client, running_gateway, stdio_fake
from tests.integration.test_policy_end_to_end import ASK_FOR_ADD, ask_broker_as_in_session, next_approval, text_of

pytestmark = pytest.mark.anyio


async def test_always_allowing_a_tool_whose_name_holds_a_star_allows_that_tool_and_no_other():
    changed = {"event": anyio.Event()}

    async def on_message(message: object) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            changed["event"].set()

    asking = {"default": "ask", "rules": [{"match": "fake/add_tool", "effect": "allow"}]}
    async with running_gateway({"fake": stdio_fake()}, policies={"agent-a": asking}) as gw:
        await gw.wait_ready()
        async with agent_client(gw.url, gw.tokens["agent-a"], message_handler=on_message) as client:
            await client.call_tool("fake__add_tool", {"name": "get_secrets"})
            await client.call_tool("fake__add_tool", {"name": "get*"})

            def both_routed() -> bool:
                return {"get*", "get_secrets"} <= {r.upstream_name for r in gw.gateway.routes.tools.values()}

            with anyio.fail_after(10):
                while not both_routed():
                    changed["event"] = anyio.Event()
                    if not both_routed():  # agents are told after the routes change: the event comes
                        await changed["event"].wait()
            public = {r.upstream_name: name for name, r in gw.gateway.routes.tools.items()}
            async with anyio.create_task_group() as tg:
                tg.start_soon(client.call_tool, public["get*"], {})
                gw.gateway.answer_approval(await next_approval(gw), Answer.ALLOW_ALWAYS)
            async with anyio.create_task_group() as tg:
                tg.start_soon(client.call_tool, public["get_secrets"], {})
                asked_again = gw.gateway.answer_approval(await next_approval(gw), Answer.DENY)
        rules = json.loads(gw.paths.config_file.read_text())["agents"]["agent-a"]["rules"]

    assert {"match": "fake/get[*]", "effect": "allow"} in [{"match": r["match"], "effect": r["effect"]} for r in rules]
    assert asked_again.tool == "get_secrets"


async def test_allow_for_this_session_lasts_as_long_as_the_session_and_no_other_request_can_claim_it():
    async with running_gateway({"fake": stdio_fake()}, policies={"agent-a": ASK_FOR_ADD}) as gw:
        await gw.wait_ready()
        token = gw.tokens["agent-a"]
        async with agent_client(gw.url, token) as legacy:
            async with anyio.create_task_group() as tg:
                tg.start_soon(legacy.call_tool, "fake__add", {"a": 1, "b": 1})
                request_id = await next_approval(gw)
                session = gw.gateway.pending_approvals()[0].session_id
                gw.gateway.answer_approval(request_id, Answer.ALLOW_SESSION)
            with anyio.fail_after(10):
                assert text_of(await legacy.call_tool("fake__add", {"a": 2, "b": 2})) == "4"

            # A 2026 request naming that live session's id is served without a session: it is asked.
            headers = {"Authorization": f"Bearer {token}", "Mcp-Session-Id": str(session)}
            async with (
                httpx2.AsyncClient(headers=headers, timeout=30) as http,
                Client(streamable_http_client(gw.url, http_client=http), mode="2026-07-28", cache=None) as modern,
                anyio.create_task_group() as tg,
            ):
                tg.start_soon(modern.call_tool, "fake__add", {"a": 3, "b": 3})
                asked = gw.gateway.answer_approval(await next_approval(gw), Answer.DENY)
        assert session is not None and asked.session_id is None

        # The legacy client closed its session: the grant went with it.
        with anyio.fail_after(10):
            while await ask_broker_as_in_session(gw, session) is Outcome.ALLOWED:
                await anyio.lowlevel.checkpoint()  # the session's end is handled just after the client's DELETE

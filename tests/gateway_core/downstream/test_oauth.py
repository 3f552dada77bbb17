"""Remote servers behind OAuth: *needs sign-in*, stored tokens, silent refresh, sign-out — against a real server."""

from __future__ import annotations

import logging
import re
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest

from gateway_core.config import ServerConfig
from gateway_core.downstream import DownstreamPool, ServerState, server
from gateway_core.downstream.oauth import SignIns
from gateway_core.downstream.sign_in import SignInError, sign_in, sign_out
from gateway_core.errors import ServerUnavailableError
from gateway_core.paths import Paths
from gateway_core.secrets import FileSecretStore
from tests.fakes.launch import serve_oauth
from tests.fakes.scripted_browser import follow
from tests.gateway_core.downstream.conftest import Changes, running

pytestmark = pytest.mark.anyio


def _sign_ins() -> SignIns:
    return SignIns(FileSecretStore(Paths.from_env().secrets_file))


async def test_a_server_that_answers_401_bearer_needs_a_sign_in_says_where_and_logs_it_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(server, "SIGN_IN_RECHECK_S", 0.05)
    caplog.set_level(logging.INFO, logger="gateway_core.downstream.server")
    with serve_oauth() as oauth:
        changes = Changes()
        pool = DownstreamPool(
            {"remote": ServerConfig(url=oauth.url, type="http")}, resolve=dict, on_change=changes, sign_ins=_sign_ins()
        )
        async with running(pool):
            remote = pool.servers["remote"]
            await changes.until(
                lambda: remote.status.restarts >= 3 and remote.status.state is ServerState.NEEDS_SIGN_IN
            )
            status = remote.status
            with anyio.fail_after(5), pytest.raises(ServerUnavailableError) as refused:
                await remote.session.call_tool("whoami", {})

    issuer = oauth.url.removesuffix("/mcp")
    assert status.state is ServerState.NEEDS_SIGN_IN
    assert status.reason == "sign in to remote first (toolgate login remote); its sign-in is at " + issuer[7:]
    assert status.sign_in_at == issuer
    assert "sign in to remote first (toolgate login remote)" in str(refused.value)
    logged = [r.getMessage() for r in caplog.records if "needs a sign-in" in r.getMessage()]
    assert len(logged) == 1
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_a_legacy_sse_server_that_answers_401_bearer_needs_a_sign_in_too() -> None:
    with serve_oauth() as oauth:
        changes = Changes()
        url = oauth.url.removesuffix("/mcp") + "/sse"
        pool = DownstreamPool(
            {"remote": ServerConfig(url=url, type="sse")}, resolve=dict, on_change=changes, sign_ins=_sign_ins()
        )
        async with running(pool):
            remote = pool.servers["remote"]
            await changes.until(lambda: remote.status.state is ServerState.NEEDS_SIGN_IN)
            status = remote.status

    assert status.sign_in_at == oauth.url.removesuffix("/mcp")
    assert status.reason is not None and status.reason.startswith("sign in to remote first (toolgate login remote)")


async def test_a_server_without_a_bearer_challenge_still_fails_as_before() -> None:
    with serve_oauth() as oauth:
        changes = Changes()
        url = oauth.url.removesuffix("/mcp") + "/nothing-here"
        pool = DownstreamPool(
            {"remote": ServerConfig(url=url, type="http")}, resolve=dict, on_change=changes, sign_ins=_sign_ins()
        )
        async with running(pool):
            remote = pool.servers["remote"]
            await changes.until(lambda: remote.status.state is ServerState.FAILED)


async def _stats(url: str) -> dict[str, Any]:
    async with httpx2.AsyncClient() as http:
        answer = await http.get(url.removesuffix("/mcp") + "/test/stats")
    result: dict[str, Any] = answer.json()
    return result


async def _expire_tokens(url: str) -> None:
    async with httpx2.AsyncClient() as http:
        (await http.post(url.removesuffix("/mcp") + "/test/expire")).raise_for_status()


async def test_signing_in_stores_tokens_and_client_in_the_secret_store_and_the_server_then_serves_its_tools():
    sign_ins = _sign_ins()
    with serve_oauth() as oauth:
        signed_in = await sign_in(sign_ins.of("remote", offer_tokens=False), oauth.url, open_url=follow, timeout_s=20)
        record, client = sign_ins.of("remote").record(), sign_ins.of("remote").client()
        stats = await _stats(oauth.url)
        changes = Changes()
        pool = DownstreamPool(
            {"remote": ServerConfig(url=oauth.url, type="http")}, resolve=dict, on_change=changes, sign_ins=sign_ins
        )
        async with running(pool):
            remote = pool.servers["remote"]
            await changes.until(lambda: remote.status.state is ServerState.READY)
            whoami = await remote.session.call_tool("whoami", {})

    assert signed_in.issuer == oauth.url.removesuffix("/mcp")
    assert record is not None and record.token.refresh_token and record.expires_at is not None
    assert record.authorization_server is not None and record.resource_metadata is not None
    assert client is not None and client.token_endpoint_auth_method == "none"
    assert (stats["registered"], stats["codes"], stats["resources"]) == (1, 1, [oauth.url])
    assert whoami.content == [types.TextContent(text=client.client_id or "")]


async def test_an_expired_access_token_is_refreshed_silently_on_the_next_call_and_the_new_tokens_are_stored() -> None:
    sign_ins = _sign_ins()
    with serve_oauth() as oauth:
        await sign_in(sign_ins.of("remote", offer_tokens=False), oauth.url, open_url=follow, timeout_s=20)
        before = sign_ins.of("remote").record()
        changes = Changes()
        pool = DownstreamPool(
            {"remote": ServerConfig(url=oauth.url, type="http")}, resolve=dict, on_change=changes, sign_ins=sign_ins
        )
        async with running(pool):
            remote = pool.servers["remote"]
            await changes.until(lambda: remote.status.state is ServerState.READY)
            await _expire_tokens(oauth.url)
            with anyio.fail_after(10):
                echoed = await remote.session.call_tool("echo", {"text": "after expiry"})
            state = remote.status.state
        after = sign_ins.of("remote").record()
        stats = await _stats(oauth.url)

    assert echoed.content == [types.TextContent(text="after expiry")]
    assert state is ServerState.READY and stats["refreshed"] == 1
    assert before is not None and after is not None
    assert after.token.access_token != before.token.access_token
    assert after.token.refresh_token != before.token.refresh_token  # rotated, and the new one kept
    assert after.authorization_server == before.authorization_server


async def test_signing_out_revokes_the_tokens_and_a_ready_server_needs_a_sign_in_again() -> None:
    sign_ins = _sign_ins()
    with serve_oauth() as oauth:
        await sign_in(sign_ins.of("remote", offer_tokens=False), oauth.url, open_url=follow, timeout_s=20)
        changes = Changes()
        pool = DownstreamPool(
            {"remote": ServerConfig(url=oauth.url, type="http")}, resolve=dict, on_change=changes, sign_ins=sign_ins
        )
        async with running(pool):
            remote = pool.servers["remote"]
            await changes.until(lambda: remote.status.state is ServerState.READY)
            assert await sign_out(sign_ins.of("remote"))
            remote.sign_in_changed()  # as `toolgate logout` tells a running gateway
            await changes.until(lambda: remote.status.state is ServerState.NEEDS_SIGN_IN)
        stats = await _stats(oauth.url)

    assert sign_ins.of("remote").record() is None
    assert sign_ins.of("remote").client() is not None  # kept for the next sign-in
    assert stats["revoked"] >= 1 and stats["live"] == 0


async def test_a_sign_in_whose_redirect_carries_another_state_is_refused_and_stores_no_tokens() -> None:
    async def forging_browser(url: str) -> bool:
        async with httpx2.AsyncClient() as http:
            redirect = (await http.get(url)).headers["location"]
            forged = re.sub(r"state=[^&]+", "state=forged", redirect)
            return (await http.get(forged)).status_code == 200

    sign_ins = _sign_ins()
    with serve_oauth() as oauth:
        with pytest.raises(SignInError, match="State parameter mismatch"):
            await sign_in(sign_ins.of("remote", offer_tokens=False), oauth.url, open_url=forging_browser, timeout_s=20)

    assert sign_ins.of("remote").record() is None


async def test_a_sign_in_nobody_completes_ends_at_its_timeout() -> None:
    async def nobody(url: str) -> bool:
        return False

    with serve_oauth() as oauth:
        with pytest.raises(SignInError, match="no sign-in within 0.5 s"):
            await sign_in(_sign_ins().of("remote", offer_tokens=False), oauth.url, open_url=nobody, timeout_s=0.5)


async def test_an_access_token_about_to_expire_is_refreshed_before_it_is_sent() -> None:
    sign_ins = _sign_ins()
    with serve_oauth("--access-ttl", "10") as oauth:  # within EXPIRY_MARGIN_S: already due for refresh
        await sign_in(sign_ins.of("remote", offer_tokens=False), oauth.url, open_url=follow, timeout_s=20)
        changes = Changes()
        pool = DownstreamPool(
            {"remote": ServerConfig(url=oauth.url, type="http")}, resolve=dict, on_change=changes, sign_ins=sign_ins
        )
        async with running(pool):
            remote = pool.servers["remote"]
            await changes.until(lambda: remote.status.state is ServerState.READY)
        stats = await _stats(oauth.url)

    assert stats["refreshed"] >= 1


async def test_a_refresh_the_server_refuses_deletes_the_tokens_and_the_server_needs_a_sign_in_without_looping() -> None:
    sign_ins = _sign_ins()
    with serve_oauth() as oauth:
        await sign_in(sign_ins.of("remote", offer_tokens=False), oauth.url, open_url=follow, timeout_s=20)
        record, client = sign_ins.of("remote").record(), sign_ins.of("remote").client()
        assert record is not None and client is not None and client.client_id is not None
        changes = Changes()
        pool = DownstreamPool(
            {"remote": ServerConfig(url=oauth.url, type="http")}, resolve=dict, on_change=changes, sign_ins=sign_ins
        )
        async with running(pool):
            remote = pool.servers["remote"]
            await changes.until(lambda: remote.status.state is ServerState.READY)
            async with httpx2.AsyncClient() as http:  # the grant ends at the server (revoked elsewhere)
                revoke = {"token": record.token.refresh_token or "", "client_id": client.client_id}
                (await http.post(oauth.url.removesuffix("/mcp") + "/revoke", data=revoke)).raise_for_status()
            with anyio.fail_after(10), pytest.raises(ServerUnavailableError):
                await remote.session.call_tool("whoami", {})
            await changes.until(lambda: remote.status.state is ServerState.NEEDS_SIGN_IN)
            restarts = remote.status.restarts
        stats = await _stats(oauth.url)

    assert sign_ins.of("remote").record() is None
    assert stats["refreshed"] == 0 and restarts <= 2


async def test_a_refused_consent_ends_the_sign_in_with_the_servers_reason_and_stores_no_tokens() -> None:
    sign_ins = _sign_ins()
    with serve_oauth("--refuse-consent") as oauth:
        with pytest.raises(SignInError, match="the sign-in was refused: the person did not approve"):
            await sign_in(sign_ins.of("remote", offer_tokens=False), oauth.url, open_url=follow, timeout_s=20)

    assert sign_ins.of("remote").record() is None


async def test_an_authorization_endpoint_that_is_not_https_nor_loopback_is_refused_before_any_browser_opens() -> None:
    opened: list[str] = []

    async def browser(url: str) -> bool:
        opened.append(url)
        return True

    with serve_oauth("--authorize-endpoint", "http://login.example.com/authorize") as oauth:
        with pytest.raises(SignInError, match="not HTTPS: http://login.example.com"):
            await sign_in(_sign_ins().of("remote", offer_tokens=False), oauth.url, open_url=browser, timeout_s=20)

    assert opened == []

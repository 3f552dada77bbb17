"""Remote servers behind OAuth: *needs sign-in*, stored tokens, silent refresh, sign-out — against a real server."""

from __future__ import annotations

import logging

import anyio
import pytest

from gateway_core.config import ServerConfig
from gateway_core.downstream import DownstreamPool, ServerState, server
from gateway_core.downstream.oauth import SignIns
from gateway_core.errors import ServerUnavailableError
from gateway_core.paths import Paths
from gateway_core.secrets import FileSecretStore
from tests.fakes.launch import serve_oauth
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

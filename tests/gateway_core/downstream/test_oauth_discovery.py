"""Every discovery variant of the MCP authorization spec, and metadata or redirects that lie, against the real fake.

The fake's ``--layout`` puts its metadata documents where each variant expects them and answers 404
everywhere else, so a sign-in only succeeds if Toolgate (the SDK's flow) looks in that place.
"""

from __future__ import annotations

import socket
from typing import Any

import httpx2
import pytest

from gateway_core.config import ServerConfig
from gateway_core.downstream import DownstreamPool, ServerState
from gateway_core.downstream.oauth import SignIns
from gateway_core.downstream.sign_in import SignInError, sign_in
from gateway_core.paths import Paths
from gateway_core.secrets import FileSecretStore
from tests.fakes.launch import FakeProcess, serve_oauth
from tests.fakes.oauth_server import TENANT
from tests.fakes.scripted_browser import follow
from tests.gateway_core.downstream.conftest import Changes, running

pytestmark = pytest.mark.anyio


def _sign_ins() -> SignIns:
    return SignIns(FileSecretStore(Paths.from_env().secrets_file))


def _base(oauth: FakeProcess) -> str:
    return oauth.url.removesuffix("/mcp")


async def _stats(oauth: FakeProcess) -> dict[str, Any]:
    async with httpx2.AsyncClient() as http:
        result: dict[str, Any] = (await http.get(_base(oauth) + "/test/stats")).json()
    return result


@pytest.mark.parametrize(
    ("layout", "issuer_path"),
    [
        ("header", ""),  # resource_metadata from WWW-Authenticate (nothing at the well-known URLs)
        ("path", ""),  # the path-based well-known URL
        ("root", ""),  # the root well-known URL
        ("tenant", f"/{TENANT}"),  # an issuer with a path: RFC 8414 path insertion
        ("oidc", f"/{TENANT}"),  # OpenID Connect discovery only
        ("legacy", ""),  # 2025-03-26: no protected resource metadata, the server's origin is the issuer
    ],
)
async def test_a_sign_in_finds_the_authorization_server_in_each_discovery_variant(
    layout: str, issuer_path: str
) -> None:
    sign_ins = _sign_ins()
    with serve_oauth("--layout", layout) as oauth:
        changes = Changes()
        config = {"remote": ServerConfig(url=oauth.url, type="http")}
        pool = DownstreamPool(config, resolve=dict, on_change=changes, sign_ins=sign_ins)
        async with running(pool):
            remote = pool.servers["remote"]
            await changes.until(lambda: remote.status.state is ServerState.NEEDS_SIGN_IN)
            named = remote.status.sign_in_at
            signed_in = await sign_in(
                sign_ins.of("remote", offer_tokens=False), oauth.url, open_url=follow, timeout_s=20
            )
            remote.sign_in_changed()
            await changes.until(lambda: remote.status.state is ServerState.READY)
        stats = await _stats(oauth)

    expected = _base(oauth) + issuer_path
    assert (signed_in.issuer or "").rstrip("/") == expected
    assert named == expected  # in the legacy variant no metadata names it: the server's origin is where
    assert (stats["registered"], stats["codes"]) == (1, 1)


async def test_authorization_server_metadata_naming_another_issuer_is_refused_before_any_browser_opens() -> None:
    opened: list[str] = []

    async def browser(url: str) -> bool:
        opened.append(url)
        return True

    with serve_oauth("--layout", "mismatch") as oauth:
        with pytest.raises(SignInError, match="issuer"):
            await sign_in(_sign_ins().of("remote", offer_tokens=False), oauth.url, open_url=browser, timeout_s=20)
        stats = await _stats(oauth)

    assert opened == [] and stats["registered"] == 0


async def test_a_discovery_redirect_to_another_host_is_not_followed_and_the_servers_own_origin_is_used() -> None:
    with socket.socket() as foreign:
        foreign.bind(("127.0.0.1", 0))
        foreign.listen()
        foreign.setblocking(False)
        elsewhere = f"http://localhost:{foreign.getsockname()[1]}"
        with serve_oauth("--layout", "path", "--redirect-discovery-to", elsewhere) as oauth:
            signed_in = await sign_in(
                _sign_ins().of("remote", offer_tokens=False), oauth.url, open_url=follow, timeout_s=20
            )
        with pytest.raises(BlockingIOError):
            foreign.accept()  # nobody came

    # The redirected metadata is treated as absent: the 2025-03-26 fallback, on the server's own origin.
    assert signed_in.issuer == _base(oauth)

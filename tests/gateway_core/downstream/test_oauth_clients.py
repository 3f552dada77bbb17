"""A remote entry's "oauth" block at work: a pre-registered client, scopes, a fixed redirect port, and
client_credentials (no browser) — against the real OAuth fake."""

from __future__ import annotations

import logging
import socket
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError

from gateway_core.config import OAuthSettings, ServerConfig
from gateway_core.downstream import DownstreamPool, DownstreamServer, ServerState
from gateway_core.downstream.oauth import SignIns, configured_client
from gateway_core.downstream.sign_in import SignInError, sign_in, sign_in_as_machine
from gateway_core.errors import ErrorCode
from gateway_core.paths import Paths
from gateway_core.secrets import FileSecretStore, resolve
from tests.fakes.client_document import client_document
from tests.fakes.launch import FakeProcess, serve_oauth
from tests.fakes.scripted_browser import follow
from tests.gateway_core.downstream.conftest import Changes, running

pytestmark = pytest.mark.anyio

SECRET = "pre-registered-client-secret-value"
SECRET_REF = "${secret:remote.client}"


@pytest.fixture
def store() -> FileSecretStore:
    store = FileSecretStore(Paths.from_env().secrets_file)
    store.set("remote.client", SECRET)
    return store


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _base(oauth: FakeProcess) -> str:
    return oauth.url.removesuffix("/mcp")


async def _stats(oauth: FakeProcess) -> dict[str, Any]:
    async with httpx2.AsyncClient() as http:
        result: dict[str, Any] = (await http.get(_base(oauth) + "/test/stats")).json()
    return result


async def _expire(oauth: FakeProcess) -> None:
    async with httpx2.AsyncClient() as http:
        (await http.post(_base(oauth) + "/test/expire")).raise_for_status()


def _pool(oauth: FakeProcess, store: FileSecretStore, settings: OAuthSettings, changes: Changes) -> DownstreamPool:
    config = ServerConfig(url=oauth.url, type="http", oauth=settings)
    return DownstreamPool(
        {"remote": config}, resolve=lambda values: resolve(values, store), on_change=changes, sign_ins=SignIns(store)
    )


class StateLog(Changes):
    """``Changes`` that also notes the state ``server`` had at each change."""

    def __init__(self) -> None:
        super().__init__()
        self.server: DownstreamServer | None = None
        self.states: list[ServerState] = []

    def __call__(self, name: str) -> None:
        if self.server is not None:
            self.states.append(self.server.status.state)
        super().__call__(name)


@pytest.fixture
def port() -> int:
    return _free_port()


async def test_a_pre_registered_client_signs_in_on_its_fixed_port_with_the_configured_scopes_and_is_never_registered(
    store: FileSecretStore, port: int
) -> None:
    settings = OAuthSettings(
        client_id="toolgate-desktop", client_secret=SECRET_REF, scopes=("read", "write"), redirect_port=port
    )
    client = configured_client(settings, lambda values: resolve(values, store))
    sign_ins = SignIns(store)
    spec = f"toolgate-desktop:{SECRET}:http://127.0.0.1:{port}/callback"
    with serve_oauth("--client", spec, "--no-registration") as oauth:
        signed_in = await sign_in(
            sign_ins.of("remote", offer_tokens=False),
            oauth.url,
            open_url=follow,
            timeout_s=20,
            settings=settings,
            client=client,
        )
        changes = Changes()
        async with running(_pool(oauth, store, settings, changes)) as pool:
            remote = pool.servers["remote"]
            await changes.until(lambda: remote.status.state is ServerState.READY)
            whoami = await remote.session.call_tool("whoami", {})
            await _expire(oauth)
            with anyio.fail_after(10):
                echoed = await remote.session.call_tool("echo", {"text": "refreshed"})
        stats = await _stats(oauth)

    assert signed_in.scope == "read write"
    assert (stats["registered"], stats["code_clients"]) == (0, ["toolgate-desktop"])
    assert stats["scopes"] == [["read", "write"]]
    assert whoami.content == [types.TextContent(text="toolgate-desktop")]
    assert echoed.content == [types.TextContent(text="refreshed")] and stats["refreshed"] == 1
    assert sign_ins.of("remote").client() is None  # the configured client is not copied into the store


async def test_a_fixed_redirect_port_in_use_is_refused_with_what_to_do(store: FileSecretStore) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with serve_oauth() as oauth, pytest.raises(SignInError) as refused:
            await sign_in(
                SignIns(store).of("remote", offer_tokens=False),
                oauth.url,
                open_url=follow,
                timeout_s=20,
                settings=OAuthSettings(redirect_port=port),
            )

    assert str(refused.value) == (
        f"port {port} (the entry's oauth.redirect_port) is in use on 127.0.0.1; close what listens there and try again"
    )


def _machine(oauth: FakeProcess, **changes: Any) -> OAuthSettings:
    fields: dict[str, Any] = {
        "grant": "client_credentials",
        "client_id": "robot",
        "client_secret": SECRET_REF,
        "issuer": _base(oauth),
        "scopes": ("read",),
    }
    return OAuthSettings(**(fields | changes))


async def test_a_server_with_client_credentials_gets_its_token_by_itself_and_a_new_one_when_it_expires(
    store: FileSecretStore,
) -> None:
    with serve_oauth("--client", f"robot:{SECRET}:http://127.0.0.1:1/callback", "--client-credentials") as oauth:
        changes = StateLog()
        async with running(_pool(oauth, store, _machine(oauth), changes)) as pool:
            remote = changes.server = pool.servers["remote"]
            await changes.until(lambda: remote.status.state is ServerState.READY)
            whoami = await remote.session.call_tool("whoami", {})
            await _expire(oauth)
            with anyio.fail_after(10):
                echoed = await remote.session.call_tool("echo", {"text": "again"})
        stats = await _stats(oauth)
        record = SignIns(store).of("remote").record()

    assert whoami.content == [types.TextContent(text="robot")]
    assert echoed.content == [types.TextContent(text="again")]
    # A new token after the expiry; a request of the server's start still in flight then (a listing) may
    # meet the expiry at the same moment and get one of its own: the SDK's flow does not share it.
    assert stats["machine_tokens"] in (2, 3) and (stats["codes"], stats["registered"]) == (0, 0)
    assert ServerState.NEEDS_SIGN_IN not in changes.states and ServerState.READY in changes.states
    assert record is not None and record.token.refresh_token is None and record.expires_at is not None


@pytest.mark.parametrize(
    ("flags", "settings", "reason"),
    [
        (
            ("--client-credentials",),
            {"client_id": "stranger"},
            "the authorization server refused the client credentials (HTTP 401: invalid_client)",
        ),
        (
            (),
            {},
            "the authorization server does not offer the client_credentials grant "
            "(it offers authorization_code, refresh_token); "
            'remove "grant" from the entry\'s "oauth" block to sign in in a browser',
        ),
        (
            ("--client-credentials",),
            {"issuer": "https://login.example.com"},
            "the client credentials were not sent: ",
        ),
    ],
    ids=["wrong-client", "grant-not-offered", "another-issuer"],
)
async def test_client_credentials_that_cannot_work_leave_the_server_failed_with_the_reason_and_no_secret(
    store: FileSecretStore,
    flags: tuple[str, ...],
    settings: dict[str, Any],
    reason: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with serve_oauth("--client", f"robot:{SECRET}:http://127.0.0.1:1/callback", *flags) as oauth:
        changes = Changes()
        async with running(_pool(oauth, store, _machine(oauth, **settings), changes)) as pool:
            remote = pool.servers["remote"]
            await changes.until(lambda: remote.status.state is ServerState.FAILED)
            status = remote.status
        stats = await _stats(oauth)

    assert status.reason is not None and status.reason.startswith(reason)
    assert SECRET not in status.reason
    assert stats["machine_tokens"] == 0
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # the reason is the status, said once
    assert SECRET not in caplog.text


async def test_toolgate_login_with_client_credentials_gets_a_token_without_a_browser(store: FileSecretStore) -> None:
    with serve_oauth("--client", f"robot:{SECRET}:http://127.0.0.1:1/callback", "--client-credentials") as oauth:
        signed_in = await sign_in_as_machine(
            SignIns(store).of("remote", offer_tokens=False), oauth.url, _machine(oauth), SECRET
        )
        stats = await _stats(oauth)

    assert (signed_in.issuer, signed_in.scope) == (_base(oauth), "read")
    assert stats["machine_tokens"] == 1
    assert SignIns(store).of("remote").record() is not None


async def test_a_403_insufficient_scope_tells_the_agent_to_sign_in_again_and_the_next_sign_in_asks_for_that_scope(
    store: FileSecretStore, port: int
) -> None:
    settings = OAuthSettings(client_id="desktop", client_secret=SECRET_REF, scopes=("read",), redirect_port=port)
    client = configured_client(settings, lambda values: resolve(values, store))
    sign_ins = SignIns(store)

    async def login(oauth: FakeProcess) -> None:
        storage = sign_ins.of("remote", offer_tokens=False)
        await sign_in(storage, oauth.url, open_url=follow, timeout_s=20, settings=settings, client=client)

    with serve_oauth("--client", f"desktop:{SECRET}:http://127.0.0.1:{port}/callback", "--no-registration") as oauth:
        await login(oauth)
        changes = Changes()
        async with running(_pool(oauth, store, settings, changes)) as pool:
            remote = pool.servers["remote"]
            await changes.until(lambda: remote.status.state is ServerState.READY)
            with anyio.fail_after(10), pytest.raises(MCPError) as refused:
                await remote.session.call_tool("admin_only", {})
            wanted = sign_ins.of("remote").record()
            state = remote.status.state
            await login(oauth)
            remote.sign_in_changed()  # as `toolgate login` tells a running gateway
            with anyio.fail_after(10):
                allowed = await remote.session.call_tool("admin_only", {})
        stats = await _stats(oauth)
        after = sign_ins.of("remote").record()

    assert refused.value.error.code == ErrorCode.SERVER_UNAVAILABLE
    assert refused.value.error.message == (
        "remote needs more access for this (scope: admin): sign in again with `toolgate login remote`"
    )
    assert state is ServerState.READY  # its other tools still work
    assert wanted is not None and wanted.wanted_scope == "admin"
    assert stats["scopes"] == [["read"], ["read", "admin"]]
    assert not allowed.is_error
    assert after is not None and after.wanted_scope is None and after.token.scope == "read admin"


async def test_a_client_secret_that_is_not_stored_leaves_the_server_failed_saying_which_secret() -> None:
    store = FileSecretStore(Paths.from_env().secrets_file)  # "remote.client" is not in it
    with serve_oauth("--client", f"robot:{SECRET}:http://127.0.0.1:1/callback", "--client-credentials") as oauth:
        changes = Changes()
        async with running(_pool(oauth, store, _machine(oauth), changes)) as pool:
            remote = pool.servers["remote"]
            await changes.until(lambda: remote.status.state is ServerState.FAILED)
            status = remote.status
        stats = await _stats(oauth)

    assert status.reason is not None and "remote.client" in status.reason
    assert stats["machine_tokens"] == 0


async def test_a_pre_registered_client_for_another_issuer_is_never_presented_to_this_server(
    store: FileSecretStore, port: int
) -> None:
    settings = OAuthSettings(
        client_id="desktop", client_secret=SECRET_REF, redirect_port=port, issuer="https://login.example.com"
    )
    client = configured_client(settings, lambda values: resolve(values, store))
    spec = f"desktop:{SECRET}:http://127.0.0.1:{port}/callback"
    with serve_oauth("--client", spec) as oauth:
        signed_in = await sign_in(
            SignIns(store).of("remote", offer_tokens=False),
            oauth.url,
            open_url=follow,
            timeout_s=20,
            settings=settings,
            client=client,
        )
        stats = await _stats(oauth)

    # The server's authorization server is not the configured issuer: a client is registered there instead.
    assert signed_in.issuer == _base(oauth)
    assert stats["registered"] == 1 and "desktop" not in stats["code_clients"]


def _document_for(port: int, **changes: Any) -> Any:
    def document(url: str) -> dict[str, Any]:
        fields = {
            "client_id": url,
            "client_name": "Toolgate at Example Corp",
            "redirect_uris": [f"http://127.0.0.1:{port}/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        }
        return fields | changes

    return document


async def test_a_client_metadata_document_is_the_client_id_where_the_server_supports_them_and_nothing_is_registered(
    store: FileSecretStore, port: int, tmp_path: Any
) -> None:
    sign_ins = SignIns(store)
    with client_document(tmp_path, _document_for(port)) as (document_url, ca):
        settings = OAuthSettings(client_metadata_url=document_url, redirect_port=port)
        with serve_oauth("--cimd-ca", str(ca)) as oauth:
            await sign_in(sign_ins.of("remote", offer_tokens=False), oauth.url, open_url=follow, settings=settings)
            changes = Changes()
            async with running(_pool(oauth, store, settings, changes)) as pool:
                remote = pool.servers["remote"]
                await changes.until(lambda: remote.status.state is ServerState.READY)
                whoami = await remote.session.call_tool("whoami", {})
                await _expire(oauth)
                with anyio.fail_after(10):
                    echoed = await remote.session.call_tool("echo", {"text": "refreshed"})
            stats = await _stats(oauth)
        with serve_oauth() as without:  # no support for documents: the client is registered as before
            await sign_in(sign_ins.of("other", offer_tokens=False), without.url, open_url=follow, settings=settings)
            registered = await _stats(without)

    assert whoami.content == [types.TextContent(text=document_url)]
    assert echoed.content == [types.TextContent(text="refreshed")] and stats["refreshed"] == 1
    assert stats["registered"] == 0 and stats["code_clients"] == [document_url]
    assert stats["documents_fetched"] >= 1 and stats["documents_refused"] == []
    remembered = sign_ins.of("remote").client()
    assert remembered is not None and remembered.client_id == document_url and remembered.client_secret is None
    assert registered["registered"] == 1 and registered["code_clients"] != [document_url]


async def test_a_client_metadata_document_that_does_not_name_its_own_url_is_refused_by_the_server(
    store: FileSecretStore, port: int, tmp_path: Any
) -> None:
    with client_document(tmp_path, _document_for(port, client_id="https://elsewhere.example/client.json")) as (
        document_url,
        ca,
    ):
        settings = OAuthSettings(client_metadata_url=document_url, redirect_port=port)
        with serve_oauth("--cimd-ca", str(ca)) as oauth:
            with pytest.raises(SignInError) as refused:
                await sign_in(
                    SignIns(store).of("remote", offer_tokens=False),
                    oauth.url,
                    open_url=follow,
                    timeout_s=5,
                    settings=settings,
                )
            stats = await _stats(oauth)

    # the authorization server shows the browser its error page; no code comes back
    assert str(refused.value).startswith("no sign-in within 5 s")
    assert stats["codes"] == 0 and stats["documents_refused"] == [f"{document_url}: its client_id is not its URL"]

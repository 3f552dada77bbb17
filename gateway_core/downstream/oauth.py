"""Remote servers that need a sign-in (MCP authorization, OAuth 2.1): what the gateway keeps and sends.

``SignIns`` keeps each server's tokens and registered client in the secret store (``oauth.NAME.tokens``,
``oauth.NAME.client``; never in config.json or a log). ``GatewayAuth`` is the ``httpx2.Auth`` on a remote
server's HTTP client: it sends the stored access token, refreshes it when it has expired or is refused
(one retry), and when the server still answers 401 with a ``Bearer`` challenge it records who signs in
(``Challenge``) instead of starting a browser flow: the gateway never opens a browser, ``toolgate login``
does (``gateway_core/cli/login.py``). One ``GatewayAuth`` lives as long as one connection.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import anyio.to_thread
import httpx2
from mcp.client.auth import OAuthClientProvider, OAuthFlowError
from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider
from mcp.client.auth.utils import (
    build_protected_resource_metadata_discovery_urls,
    create_oauth_metadata_request,
    extract_field_from_www_auth,
    extract_resource_metadata_from_www_auth,
    extract_scope_from_www_auth,
    handle_protected_resource_response,
    union_scopes,
)
from mcp.shared.auth import (
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthMetadata,
    OAuthToken,
    ProtectedResourceMetadata,
)
from mcp.shared.auth_utils import calculate_token_expiry
from pydantic import BaseModel, ConfigDict, ValidationError

from gateway_core.downstream.base import ConnectError, ResolveFn
from gateway_core.errors import ErrorCode

if TYPE_CHECKING:
    from gateway_core.config import OAuthSettings
    from gateway_core.secrets import SecretStore


class _ReportedElsewhere(logging.Filter):
    """Drops the SDK's "OAuth flow error" traceback: Toolgate says why in one sentence where it matters.

    The gateway states the reason as the server's status (logged once, not at every retry), and
    ``toolgate login`` and the GUI show it as the sign-in's error; the SDK would log a traceback at
    ERROR on every attempt, quoting the authorization server's answer.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg != "OAuth flow error"


logging.getLogger("mcp.client.auth.oauth2").addFilter(_ReportedElsewhere())

TOKENS_KEY = "oauth.{server}.tokens"
CLIENT_KEY = "oauth.{server}.client"
# Refresh this long before the access token's stated expiry, so a call in flight does not meet it.
EXPIRY_MARGIN_S = 30.0
CLIENT_NAME = "Toolgate"
# A scope shown in an agent's error; a longer one is left out.
MAX_SCOPE_CHARS = 200
# An OAuth error code is a short word (``invalid_client``); anything longer is not shown.
MAX_ERROR_CODE_CHARS = 64


@dataclass(frozen=True)
class Challenge:
    """A server refused the gateway with 401 ``WWW-Authenticate: Bearer``: a sign-in is needed.

    ``issuer`` is the authorization server its protected resource metadata names (None while unknown);
    ``resource_metadata`` is where the challenge said that metadata is.
    """

    issuer: str | None = None
    resource_metadata: str | None = None

    @property
    def where(self) -> str | None:
        """The authorization server's host, to show a person (``github.com``), or None."""
        return urlsplit(self.issuer).netloc or None if self.issuer else None


class SignInRequired(ConnectError):
    """The server needs a sign-in before it answers (its state becomes *needs sign-in*, not failed)."""

    def __init__(self, challenge: Challenge) -> None:
        super().__init__("the server needs a sign-in")
        self.challenge = challenge


class SignInRecord(BaseModel):
    """What is stored under ``oauth.NAME.tokens``: the tokens and where they came from.

    The SDK keeps the expiry and the discovered metadata in memory only; they are stored here so a
    gateway started later refreshes at the right time and at the right token endpoint.
    """

    model_config = ConfigDict(extra="forbid")

    token: OAuthToken
    expires_at: float | None = None
    authorization_server: OAuthMetadata | None = None
    resource_metadata: ProtectedResourceMetadata | None = None
    wanted_scope: str | None = None
    """Scope the server asked for on a 403 ``insufficient_scope`` (step-up): the next sign-in asks for it too."""


class SignInStore:
    """One server's sign-in in the secret store; the SDK's ``TokenStorage`` (store I/O runs in a thread).

    Args:
        store: the secret store.
        server: the server's name in config.json.
        offer_tokens: False: ``get_tokens`` offers none, so the SDK's flow signs in anew (``toolgate login``).
    """

    def __init__(
        self, store: SecretStore, server: str, *, offer_tokens: bool = True, refresh_lock: anyio.Lock | None = None
    ) -> None:
        self._store = store
        self._offer_tokens = offer_tokens
        self.server = server
        self.refresh_lock = refresh_lock or anyio.Lock()
        """Held while this server's tokens are refreshed: every user of the sign-in in this process shares it,
        so a rotated refresh token is used once (one instance refreshes, the others take what it stored)."""
        self._tokens_key = TOKENS_KEY.format(server=server)
        self._client_key = CLIENT_KEY.format(server=server)

    def record(self) -> SignInRecord | None:
        """The stored sign-in, or None (also when what is stored cannot be read: it is then useless)."""
        raw = self._store.get(self._tokens_key)
        if raw is None:
            return None
        try:
            return SignInRecord.model_validate_json(raw)
        except ValidationError:
            return None

    def fingerprint(self) -> str | None:
        """A digest of the stored tokens (None: none stored), to notice a sign-in or sign-out from outside."""
        raw = self._store.get(self._tokens_key)
        return None if raw is None else hashlib.sha256(raw.encode()).hexdigest()

    def save(self, record: SignInRecord) -> None:
        """Store ``record`` as this server's sign-in."""
        self._store.set(self._tokens_key, record.model_dump_json(exclude_none=True))

    def want_scope(self, scope: str) -> None:
        """Note that the server wants ``scope`` too (a step-up), for the next sign-in; nothing without tokens."""
        record = self.record()
        if record is not None:
            self.save(record.model_copy(update={"wanted_scope": union_scopes(record.wanted_scope, scope)}))

    def forget(self) -> bool:
        """Delete the tokens (the registered client is kept for the next sign-in); whether there were any."""
        return self._store.delete(self._tokens_key)

    def client(self) -> OAuthClientInformationFull | None:
        """The client registered with the server's authorization server, or None."""
        raw = self._store.get(self._client_key)
        if raw is None:
            return None
        try:
            return OAuthClientInformationFull.model_validate_json(raw)
        except ValidationError:
            return None

    def forget_client(self) -> bool:
        """Delete the registered client; whether there was one."""
        return self._store.delete(self._client_key)

    def _set_tokens(self, tokens: OAuthToken) -> None:
        old = self.record()
        expires_at = calculate_token_expiry(tokens.expires_in)
        record = (old or SignInRecord(token=tokens)).model_copy(update={"token": tokens, "expires_at": expires_at})
        self.save(record)

    def _set_client(self, client_info: OAuthClientInformationFull) -> None:
        self._store.set(self._client_key, client_info.model_dump_json(exclude_none=True))

    # --- the SDK's TokenStorage ----------------------------------------------------------------------

    async def get_tokens(self) -> OAuthToken | None:
        """The stored tokens (``TokenStorage``)."""
        record = await anyio.to_thread.run_sync(self.record) if self._offer_tokens else None
        return record.token if record is not None else None

    async def set_tokens(self, tokens: OAuthToken) -> None:
        """Store new tokens, keeping what is known of where they came from (``TokenStorage``)."""
        await anyio.to_thread.run_sync(self._set_tokens, tokens)

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        """The registered client (``TokenStorage``)."""
        return await anyio.to_thread.run_sync(self.client)

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        """Remember a registered client (``TokenStorage``)."""
        await anyio.to_thread.run_sync(self._set_client, client_info)


class SignIns:
    """Every server's sign-in, in one secret store.

    Args:
        store: the secret store.
    """

    def __init__(self, store: SecretStore) -> None:
        self._store = store
        self._refresh_locks: dict[str, anyio.Lock] = {}

    def of(self, server: str, *, offer_tokens: bool = True) -> SignInStore:
        """Server ``server``'s sign-in (see ``SignInStore`` for ``offer_tokens``).

        Every ``SignInStore`` of one server from here shares one refresh lock: the server's own session,
        its handshake-era twin and each agent's instance of a ``per_agent`` server use one sign-in.
        """
        lock = self._refresh_locks.setdefault(server, anyio.Lock())
        return SignInStore(self._store, server, offer_tokens=offer_tokens, refresh_lock=lock)


class GatewayAuth(OAuthClientProvider):
    """The gateway's side of a sign-in: stored tokens on every request, silent refresh, never a browser.

    Args:
        url: the server's URL.
        storage: the server's sign-in.
        on_challenge: called once the server refused the gateway for want of a sign-in, while connected
            (the connection is then ended and the server shows *needs sign-in*).
    """

    def __init__(
        self,
        url: str,
        storage: SignInStore,
        *,
        on_challenge: Callable[[], None] | None = None,
        client: OAuthClientInformationFull | None = None,
    ) -> None:
        super().__init__(url, OAuthClientMetadata(redirect_uris=None, client_name=CLIENT_NAME), storage)
        self._storage = storage
        self._client = client
        self.on_challenge = on_challenge
        self.challenge: Challenge | None = None

    @property
    def server(self) -> str:
        """The server's name in config.json."""
        return self._storage.server

    def reload(self) -> None:
        """Other tokens were stored (``toolgate login`` again): read the store before the next request."""
        self._initialized = False

    def signed_out(self) -> None:
        """The stored tokens were deleted (``toolgate logout``): stop using them, report a sign-in as needed."""
        self.context.clear_tokens()
        issuer = self.context.auth_server_url
        self._challenged(Challenge(issuer))

    async def _initialize(self) -> None:
        # The SDK's loads tokens and client only: it forgets when they expire and where to refresh them.
        record = await anyio.to_thread.run_sync(self._storage.record)
        context = self.context
        context.client_info = self._client or await self._storage.get_client_info()
        if record is not None:
            context.current_tokens = record.token
            context.token_expiry_time = None if record.expires_at is None else record.expires_at - EXPIRY_MARGIN_S
            context.oauth_metadata = record.authorization_server
            context.protected_resource_metadata = record.resource_metadata
            if record.resource_metadata is not None and record.resource_metadata.authorization_servers:
                context.auth_server_url = str(record.resource_metadata.authorization_servers[0])
        self._initialized = True

    async def _auth_flow(self, request: httpx2.Request) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        """Send with the stored token; refresh on expiry or a 401 (once); else record the challenge.

        Unlike the SDK's flow, a 401 never starts discovery, registration and a browser sign-in here.
        """
        async with self.context.lock:
            if not self._initialized:
                await self._initialize()
            refreshed = False
            if not self.context.is_token_valid() and self.context.can_refresh_token():
                refreshed = True
                async with self._storage.refresh_lock:
                    if not await self._adopt_stored(self._access_token()):
                        refresh_response = yield await self._refresh_token()
                        await self._after_refresh(refresh_response)
            sent = self._access_token() if self.context.is_token_valid() else None
            if sent is not None:
                self._add_auth_header(request)
            response = yield request
            if _insufficient_scope(response):
                await self._stepped_up(response)
                return
            if not _bearer_challenge(response):
                return
            if not refreshed and self.context.can_refresh_token():
                async with self._storage.refresh_lock:
                    # Another user of this sign-in may have refreshed already: its tokens, not a second refresh
                    # with the refresh token it rotated away.
                    renewed = await self._adopt_stored(sent)
                    if not renewed:
                        refresh_response = yield await self._refresh_token()
                        renewed = await self._after_refresh(refresh_response)
                if renewed:
                    self._add_auth_header(request)
                    response = yield request
                    if not _bearer_challenge(response):
                        return
            # The response to the request is the last one this flow is sent: discovery happens after it.
            self._challenged(Challenge(self.context.auth_server_url, extract_resource_metadata_from_www_auth(response)))

    def _access_token(self) -> str | None:
        tokens = self.context.current_tokens
        return None if tokens is None else tokens.access_token

    async def _adopt_stored(self, used: str | None) -> bool:
        """Take the stored tokens if they are newer than ``used`` (another instance refreshed); whether it did."""
        record = await anyio.to_thread.run_sync(self._storage.record)
        if record is None or record.token.access_token == used:
            return False
        if record.expires_at is not None and record.expires_at - EXPIRY_MARGIN_S <= time.time():
            return False
        self.context.current_tokens = record.token
        self.context.token_expiry_time = None if record.expires_at is None else record.expires_at - EXPIRY_MARGIN_S
        return True

    async def _stepped_up(self, response: httpx2.Response) -> None:
        """The server wants more scope for this request: remember it for ``toolgate login`` (no browser here)."""
        scope = extract_scope_from_www_auth(response)
        if scope:
            await anyio.to_thread.run_sync(self._storage.want_scope, scope)

    async def _after_refresh(self, response: httpx2.Response) -> bool:
        if await self._handle_refresh_response(response):
            return True
        if 400 <= response.status_code < 500:  # the grant is gone (revoked, expired): the tokens are useless
            await anyio.to_thread.run_sync(self._storage.forget)
        return False

    def _challenged(self, challenge: Challenge) -> None:
        first = self.challenge is None
        self.challenge = challenge
        if first and self.on_challenge is not None:
            self.on_challenge()


class MachineAuth(ClientCredentialsOAuthProvider):
    """A server signed in to without a person: the ``client_credentials`` grant (``"grant"`` in ``oauth``).

    The SDK's flow runs as is: on a 401 it discovers the authorization server, checks that its issuer is
    the configured one (the client's secret is only ever sent there) and asks for a token; tokens go to
    the secret store like a person's sign-in. A refusal is kept in ``failure`` (no secret in it).

    Args:
        url: the server's URL.
        storage: the server's sign-in.
        settings: the entry's ``oauth`` block (client_id, issuer and scopes are used).
        client_secret: the client's secret, resolved from the secret store.
    """

    def __init__(self, url: str, storage: SignInStore, settings: OAuthSettings, client_secret: str) -> None:
        assert settings.client_id is not None and settings.issuer is not None  # checked when the config loads
        super().__init__(
            url,
            storage,
            settings.client_id,
            client_secret,
            scope=" ".join(settings.scopes) or None,
            issuer=settings.issuer,
        )
        self._storage = storage
        self._scope = " ".join(settings.scopes) or None
        self.failure: str | None = None

    async def _initialize(self) -> None:
        await super()._initialize()
        record = await anyio.to_thread.run_sync(self._storage.record)
        if record is not None and record.expires_at is not None:
            self.context.token_expiry_time = record.expires_at - EXPIRY_MARGIN_S

    async def _perform_authorization(self) -> httpx2.Request:
        offered = self.context.oauth_metadata.grant_types_supported if self.context.oauth_metadata else None
        if offered is not None and "client_credentials" not in offered:
            self.failure = (
                "the authorization server does not offer the client_credentials grant "
                f"(it offers {', '.join(offered)}); "
                'remove "grant" from the entry\'s "oauth" block to sign in in a browser'
            )
            raise OAuthFlowError(self.failure)
        if self._scope is not None:  # the SDK chose a scope from the challenge; the configured one wins
            self.context.client_metadata.scope = self._scope
        try:
            return await super()._perform_authorization()
        except OAuthFlowError as exc:  # e.g. the metadata names another issuer than the configured one
            self.failure = f"the client credentials were not sent: {str(exc).splitlines()[0]}"
            raise

    async def _handle_token_response(self, response: httpx2.Response) -> None:
        if response.status_code != 200:
            await response.aread()
            said = f"HTTP {response.status_code}{_error_of(response)}"
            self.failure = f"the authorization server refused the client credentials ({said})"
        await super()._handle_token_response(response)


def _error_of(response: httpx2.Response) -> str:
    """``: error_code`` from an OAuth error answer (RFC 6749 §5.2), or nothing; only the code, which holds no secret."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return ""
    plain = isinstance(error, str) and error.isascii() and error.isprintable() and len(error) < MAX_ERROR_CODE_CHARS
    return f": {error}" if plain else ""


def configured_client(settings: OAuthSettings | None, resolve: ResolveFn) -> OAuthClientInformationFull | None:
    """The pre-registered client an entry's ``oauth`` block names (its secret resolved now), or None.

    Raises:
        MissingSecretError: ``client_secret`` names a secret that is not stored.
    """
    if settings is None or settings.client_id is None:
        return None
    secret = resolve({"s": settings.client_secret})["s"] if settings.client_secret is not None else None
    return OAuthClientInformationFull(
        client_id=settings.client_id,
        client_secret=secret,
        redirect_uris=None,
        token_endpoint_auth_method="client_secret_basic" if secret else "none",
        issuer=settings.issuer,
    )


async def discover_issuer(challenge: Challenge, server_url: str, http: httpx2.AsyncClient) -> Challenge:
    """``challenge`` with the authorization server that the protected resource metadata names (RFC 9728).

    Tries where the challenge pointed, then the well-known URLs. A server that publishes none (the
    2025-03-26 revision of the MCP authorization spec) has its sign-in at its own origin.
    """
    if challenge.issuer is not None:
        return challenge
    for url in build_protected_resource_metadata_discovery_urls(challenge.resource_metadata, server_url):
        try:
            response = await http.send(create_oauth_metadata_request(url))
        except httpx2.HTTPError:
            continue
        metadata = await handle_protected_resource_response(response)
        if metadata is not None and metadata.authorization_servers:
            return Challenge(str(metadata.authorization_servers[0]), challenge.resource_metadata)
    return Challenge(origin_of(server_url), challenge.resource_metadata)


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of ``url``: the authorization server of a server without resource metadata."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _insufficient_scope(response: httpx2.Response) -> bool:
    return response.status_code == 403 and extract_field_from_www_auth(response, "error") == "insufficient_scope"


class StepUpAnswers(httpx2.AsyncBaseTransport):
    """Turns a server's 403 ``insufficient_scope`` to a JSON-RPC request into a JSON-RPC error saying what to do.

    The SDK's client would answer the call with "Server returned an error response"; the agent (and the
    person reading its output) is told instead that the server wants more access and how to give it.
    The response keeps its status and ``WWW-Authenticate``, so ``GatewayAuth`` still sees the step-up.

    Args:
        inner: the transport that sends the requests.
        server: the server's name in config.json.
    """

    def __init__(self, inner: httpx2.AsyncBaseTransport, server: str) -> None:
        self._inner = inner
        self._server = server

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        """Send ``request``; a step-up refusal of a JSON-RPC request comes back as a JSON-RPC error."""
        response = await self._inner.handle_async_request(request)
        if not _insufficient_scope(response) or request.method != "POST":
            return response
        try:
            message = json.loads(request.content)
        except ValueError:
            return response
        if not isinstance(message, dict) or "id" not in message or "method" not in message:
            return response
        await response.aclose()
        scope = extract_scope_from_www_auth(response)
        wanted = f" (scope: {scope})" if scope and scope.isprintable() and len(scope) <= MAX_SCOPE_CHARS else ""
        error = {
            "code": int(ErrorCode.SERVER_UNAVAILABLE),
            "message": f"{self._server} needs more access for this{wanted}: sign in again with "
            f"`toolgate login {self._server}`",
        }
        body = json.dumps({"jsonrpc": "2.0", "id": message["id"], "error": error}).encode()
        headers = {"content-type": "application/json", "www-authenticate": response.headers["www-authenticate"]}
        return httpx2.Response(403, headers=headers, content=body, request=request)

    async def aclose(self) -> None:
        """Close the transport that sends the requests."""
        await self._inner.aclose()


def _bearer_challenge(response: httpx2.Response) -> bool:
    header = response.headers.get("www-authenticate", "")
    return response.status_code == 401 and header.lower().startswith("bearer")


def sign_in_reason(server: str, challenge: Challenge) -> str:
    """What a person (and an agent calling the server's tools) is told about a server that needs a sign-in."""
    where = f"; its sign-in is at {challenge.where}" if challenge.where else ""
    return f"sign in to {server} first (toolgate login {server}){where}"

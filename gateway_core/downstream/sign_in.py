"""Signing in to a remote server (``toolgate login``) and out of it (``toolgate logout``).

``sign_in`` runs the MCP authorization flow with the SDK's ``OAuthClientProvider``: protected resource
and authorization server discovery, dynamic client registration (the client is remembered), PKCE S256,
``state``, the ``resource`` parameter. The browser is sent to a loopback redirect on 127.0.0.1 that
listens only for the duration of the sign-in (``LoopbackRedirect``) and answers with a page saying it
is done. ``sign_out`` revokes the tokens where the server offers RFC 7009 revocation and deletes them.
"""

from __future__ import annotations

import contextlib
import html
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, urlsplit

import anyio
import anyio.abc
import anyio.to_thread
import httpx2
from mcp.client.auth import OAuthClientProvider, OAuthFlowError
from mcp.client.auth.utils import extract_scope_from_www_auth, union_scopes
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata
from pydantic import ValidationError

from gateway_core.downstream.oauth import (
    CLIENT_NAME,
    MachineAuth,
    SignInRecord,
    SignInStore,
    configured_client,
    origin_of,
)
from gateway_core.errors import ToolgateError
from gateway_core.secrets import resolve

if TYPE_CHECKING:
    from gateway_core.config import OAuthSettings, ServerConfig
    from gateway_core.secrets import SecretStore

# Long enough to find the window, read the consent page and approve; the person sees this bound.
SIGN_IN_TIMEOUT_S = 300.0
REDIRECT_PATH = "/callback"
# A browser's request is a few kilobytes; anything longer is not one.
MAX_REQUEST_BYTES = 64 * 1024
HTTP_TIMEOUT_S = 30.0
# What the sign-in asks the server with: a version at which the SDK always sends the `resource` parameter.
PROTOCOL_VERSION = "2025-11-25"
# An authorization server's error text is shown, cut: enough to say what went wrong.
MAX_REASON_CHARS = 300
_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}


class SignInError(ToolgateError):
    """A sign-in could not be completed (refused, timed out, or the server's metadata is not acceptable)."""


Opener = Callable[[str], Awaitable[bool]]
"""Shows the person an authorization URL (opens a browser); whether it could."""


@dataclass(frozen=True)
class SignedIn:
    """The outcome of a sign-in: where it happened and what was granted (no token values)."""

    issuer: str | None
    scope: str | None
    expires_in: int | None


class LoopbackRedirect:
    """Where the browser comes back to: one HTTP listener on 127.0.0.1, open for one sign-in.

    Every request to ``REDIRECT_PATH`` is answered with a small page; the first one carrying a
    ``code`` or an ``error`` is the outcome ``wait()`` returns.
    """

    def __init__(self, listener: anyio.abc.Listener[anyio.abc.SocketStream], server: str) -> None:
        self._listener = listener
        self._server = server
        self._outcome: AuthorizationCodeResult | None = None
        self._error: str | None = None
        self._done = anyio.Event()

    @property
    def url(self) -> str:
        """The redirect URI, e.g. ``http://127.0.0.1:53114/callback``."""
        port = self._listener.extra(anyio.abc.SocketAttribute.local_port)
        return f"http://127.0.0.1:{port}{REDIRECT_PATH}"

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, server: str, port: int = 0) -> AsyncIterator[LoopbackRedirect]:
        """Listen on ``127.0.0.1:port`` (0: any free port) until the block ends.

        Raises:
            OSError: ``port`` is taken.
        """
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=port)
        redirect = cls(listener, server)
        failure: Exception | None = None
        async with listener, anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, redirect._answer)
            try:
                yield redirect
            except Exception as exc:  # raised below, outside the task group (which would wrap it in a group)
                failure = exc
            finally:
                tg.cancel_scope.cancel()
        if failure is not None:
            raise failure

    async def wait(self) -> AuthorizationCodeResult:
        """The code (and ``state``) the browser brought back (the SDK's ``callback_handler``).

        Raises:
            SignInError: the authorization server refused (e.g. the person denied consent).
        """
        await self._done.wait()
        if self._outcome is None:
            raise SignInError(f"the sign-in was refused: {self._error}")
        return self._outcome

    async def _answer(self, stream: anyio.abc.SocketStream) -> None:
        async with stream:
            request = b""
            with anyio.move_on_after(HTTP_TIMEOUT_S):
                while b"\r\n\r\n" not in request and len(request) < MAX_REQUEST_BYTES:
                    try:
                        request += await stream.receive()
                    except (anyio.EndOfStream, anyio.BrokenResourceError):
                        return
            target = request.split(b"\r\n", 1)[0].split(b" ")
            parts = urlsplit(target[1].decode("latin-1")) if len(target) == 3 else None
            if parts is None or parts.path != REDIRECT_PATH:
                await _respond(stream, 404, "Not found.")
                return
            query = {key: values[0] for key, values in parse_qs(parts.query).items()}
            if not self._done.is_set() and ("code" in query or "error" in query):
                if "code" in query:
                    self._outcome = AuthorizationCodeResult(
                        code=query["code"], state=query.get("state"), iss=query.get("iss")
                    )
                else:
                    said = query.get("error_description") or query["error"]
                    self._error = "".join(ch for ch in said if ch.isprintable())[:MAX_REASON_CHARS]
                self._done.set()
            if self._outcome is not None:
                message = f"Toolgate is signed in to {self._server}. You can close this window."
            else:
                message = f"The sign-in to {self._server} did not complete. You can close this window."
            await _respond(stream, 200, message)


async def _respond(stream: anyio.abc.SocketStream, status: int, message: str) -> None:
    body = (
        "<!doctype html><meta charset=utf-8><title>Toolgate</title>"
        f"<p style='font:16px system-ui;margin:3em'>{html.escape(message)}</p>"
    ).encode()
    head = (
        f"HTTP/1.1 {status} {'OK' if status == 200 else 'Not Found'}\r\n"
        "Content-Type: text/html; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\nCache-Control: no-store\r\n\r\n"
    ).encode()
    with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
        await stream.send(head + body)


def _check_authorization_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS):
        return
    raise SignInError(f"the server's authorization endpoint is not HTTPS: {parts.scheme}://{parts.netloc}")


def _redirect_port(storage: SignInStore) -> int:
    """The port the remembered client was registered with (its redirect URI must match exactly), or 0."""
    client = storage.client()
    if client is None or not client.redirect_uris:
        return 0
    parts = urlsplit(str(client.redirect_uris[0]))
    return parts.port or 0 if parts.hostname == "127.0.0.1" and parts.path == REDIRECT_PATH else 0


class _PersonSignIn(OAuthClientProvider):
    """The SDK's flow, with a pre-registered client (no registration) and the configured scopes.

    The SDK picks the scope from the server's challenge or metadata; configured scopes replace that
    choice, joined by what the server's challenge names. After the gateway met a 403 ``insufficient_scope``
    (a step-up, SEP-2350), the scope granted before and the scope wanted are asked for too.
    """

    def __init__(
        self,
        *args: Any,
        client: OAuthClientInformationFull | None,
        scopes: tuple[str, ...],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._client = client
        self._scopes = scopes
        self._challenge: httpx2.Response | None = None
        self.step_up: str | None = None
        """What a step-up asks for besides (the scope granted before and the scope the server wanted)."""

    async def _initialize(self) -> None:
        await super()._initialize()
        if self._client is not None:
            self.context.client_info = self._client

    async def _auth_flow(self, request: httpx2.Request) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        flow = super()._auth_flow(request)
        sending = await anext(flow)
        while True:
            response = yield sending
            if response.status_code in (401, 403) and "www-authenticate" in response.headers:
                self._challenge = response
            try:
                sending = await flow.asend(response)
            except StopAsyncIteration:
                return

    async def _perform_authorization(self) -> httpx2.Request:
        if self._scopes:
            challenged = extract_scope_from_www_auth(self._challenge) if self._challenge is not None else None
            self.context.client_metadata.scope = union_scopes(" ".join(self._scopes), challenged)
        if self.step_up is not None:
            self.context.client_metadata.scope = union_scopes(self.context.client_metadata.scope, self.step_up)
        return await super()._perform_authorization()


async def sign_in(
    storage: SignInStore,
    url: str,
    *,
    open_url: Opener,
    timeout_s: float = SIGN_IN_TIMEOUT_S,
    settings: OAuthSettings | None = None,
    client: OAuthClientInformationFull | None = None,
) -> SignedIn:
    """Sign in to the server at ``url``; its tokens and registered client go to ``storage``.

    Args:
        storage: the server's sign-in in the secret store; give one that offers no tokens
            (``SignIns.of(name, offer_tokens=False)``) for a sign-in that starts anew.
        url: the server's URL (Streamable HTTP or SSE).
        open_url: shows the person the authorization URL.
        timeout_s: how long the person has to approve.
        settings: the entry's ``oauth`` block (scopes, redirect port).
        client: the pre-registered client it names (``configured_client``), used instead of registering one.

    Raises:
        SignInError: refused, timed out, or the server did not accept the new tokens.
    """
    fixed_port = settings.redirect_port if settings is not None else None
    port = fixed_port if fixed_port is not None else await anyio.to_thread.run_sync(_redirect_port, storage)
    async with contextlib.AsyncExitStack() as stack:
        try:
            redirect = await stack.enter_async_context(LoopbackRedirect.open(storage.server, port))
        except OSError as exc:
            if fixed_port is not None:
                raise SignInError(
                    f"port {fixed_port} (the entry's oauth.redirect_port) is in use on 127.0.0.1; "
                    "close what listens there and try again"
                ) from exc
            # The remembered client's port is taken: register a new client on another port.
            await anyio.to_thread.run_sync(storage.forget_client)
            redirect = await stack.enter_async_context(LoopbackRedirect.open(storage.server, 0))
        scopes = settings.scopes if settings is not None else ()
        document = settings.client_metadata_url if settings is not None else None
        return await _sign_in_with(storage, url, redirect, open_url, timeout_s, client, scopes, document)


async def _sign_in_with(
    storage: SignInStore,
    url: str,
    redirect: LoopbackRedirect,
    open_url: Opener,
    timeout_s: float,
    client: OAuthClientInformationFull | None,
    scopes: tuple[str, ...],
    client_metadata_url: str | None,
) -> SignedIn:
    async def show(authorization_url: str) -> None:
        _check_authorization_url(authorization_url)
        await open_url(authorization_url)

    metadata = OAuthClientMetadata(
        client_name=CLIENT_NAME,
        redirect_uris=[redirect.url],  # type: ignore[list-item]
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
        token_endpoint_auth_method="none",  # a native app keeps no secret (RFC 8252 §8.4)
    )
    if client is not None:
        client = client.model_copy(update={"redirect_uris": [redirect.url]})
    # A Client ID Metadata Document (configured) is the client id where the authorization server
    # supports such documents; the SDK registers a client (RFC 7591) where it does not.
    provider = _PersonSignIn(
        url,
        metadata,
        storage,
        redirect_handler=show,
        callback_handler=redirect.wait,
        client_metadata_url=client_metadata_url,
        client=client,
        scopes=scopes,
    )
    previous = await anyio.to_thread.run_sync(storage.record)
    if previous is not None and previous.wanted_scope is not None:
        provider.step_up = union_scopes(previous.token.scope, previous.wanted_scope)
    status = await _get_through(provider, url, timeout_s)
    context = provider.context
    if status in (401, 403) or context.current_tokens is None:
        raise SignInError(f"{url} still refuses Toolgate after the sign-in (HTTP {status})")
    record = await anyio.to_thread.run_sync(storage.record)
    if record is not None:
        record = record.model_copy(
            update={
                "authorization_server": context.oauth_metadata,
                "resource_metadata": context.protected_resource_metadata,
                "wanted_scope": None,
            }
        )
        await anyio.to_thread.run_sync(storage.save, record)
    tokens = context.current_tokens
    # No resource metadata named one (2025-03-26): the SDK signed in at the server's origin.
    return SignedIn(context.auth_server_url or origin_of(url), tokens.scope, tokens.expires_in)


async def sign_in_as_machine(storage: SignInStore, url: str, settings: OAuthSettings, client_secret: str) -> SignedIn:
    """Get the server's tokens with the entry's client credentials (no browser), into ``storage``.

    Raises:
        SignInError: the authorization server refused, is not the configured issuer, or is unreachable.
    """
    provider = MachineAuth(url, storage, settings, client_secret)
    status = await _get_through(provider, url, SIGN_IN_TIMEOUT_S)
    context = provider.context
    if status in (401, 403) or context.current_tokens is None:
        raise SignInError(f"{url} still refuses Toolgate with the new token (HTTP {status})")
    tokens = context.current_tokens
    return SignedIn(context.auth_server_url, tokens.scope, tokens.expires_in)


async def _get_through(provider: OAuthClientProvider, url: str, timeout_s: float) -> int:
    """GET ``url`` through ``provider``'s flow; the final status.

    Raises:
        SignInError: the flow failed (only its first line is shown, or what ``MachineAuth`` made of it).
    """
    headers = {"Accept": "text/event-stream", "MCP-Protocol-Version": PROTOCOL_VERSION}
    try:
        with anyio.fail_after(timeout_s):
            async with (
                httpx2.AsyncClient(auth=provider, timeout=HTTP_TIMEOUT_S) as http,
                http.stream("GET", url, headers=headers) as response,
            ):
                return response.status_code
    except TimeoutError as exc:
        raise SignInError(f"no sign-in within {timeout_s:g} s; run the command again when ready") from exc
    except httpx2.HTTPError as exc:
        raise SignInError(f"cannot reach {url}: {type(exc).__name__}") from exc
    except (OAuthFlowError, ValidationError) as exc:
        if isinstance(provider, MachineAuth) and provider.failure is not None:
            raise SignInError(provider.failure) from exc
        # Only the first line: pydantic's later lines quote the input, which may be a token response.
        raise SignInError(f"the sign-in failed: {str(exc).splitlines()[0][:MAX_REASON_CHARS]}") from exc


async def sign_out(storage: SignInStore, client: OAuthClientInformationFull | None = None) -> bool:
    """Revoke the server's tokens where it offers revocation (RFC 7009), then delete them; whether any were stored.

    A revocation that fails is not an error: the tokens are deleted all the same.

    Args:
        storage: the server's sign-in.
        client: the pre-registered client the entry names; else the one registered and remembered.
    """
    record = await anyio.to_thread.run_sync(storage.record)
    client = client or await anyio.to_thread.run_sync(storage.client)
    if record is not None and client is not None:
        await _revoke(record, client)
    return await anyio.to_thread.run_sync(storage.forget)


async def _revoke(record: SignInRecord, client: OAuthClientInformationFull) -> None:
    server = record.authorization_server
    if server is None or server.revocation_endpoint is None or client.client_id is None:
        return
    # The client authenticates as at the token endpoint: HTTP Basic, in the form, or by its id alone (public);
    # its id is in the form in every case (as servers built on the SDK require).
    credentials: dict[str, str] = {"client_id": client.client_id}
    basic: httpx2.BasicAuth | None = None
    if client.client_secret and client.token_endpoint_auth_method == "client_secret_basic":
        basic = httpx2.BasicAuth(quote(client.client_id, safe=""), quote(client.client_secret, safe=""))
    elif client.client_secret:
        credentials["client_secret"] = client.client_secret
    tokens = [(record.token.refresh_token, "refresh_token"), (record.token.access_token, "access_token")]
    async with httpx2.AsyncClient(timeout=HTTP_TIMEOUT_S, auth=basic) as http:
        for token, hint in tokens:
            if token is None:
                continue
            with contextlib.suppress(httpx2.HTTPError):
                await http.post(
                    str(server.revocation_endpoint), data={"token": token, "token_type_hint": hint, **credentials}
                )


@dataclass(frozen=True)
class SignInDetails:
    """What is known of a server's stored sign-in, to show a person (never a token value)."""

    issuer: str | None
    scope: str | None
    expires_at: float | None
    """Epoch seconds when the access token expires (it is refreshed silently), or None when not stated."""
    wanted_scope: str | None = None
    """Scope the server asked for beyond the grant (a step-up): signing in again asks for it."""


def sign_in_details(storage: SignInStore) -> SignInDetails | None:
    """The server's stored sign-in, for a person to read; None when it is not signed in."""
    record = storage.record()
    if record is None:
        return None
    issuer = str(record.authorization_server.issuer) if record.authorization_server is not None else None
    if issuer is None and record.resource_metadata is not None and record.resource_metadata.authorization_servers:
        issuer = str(record.resource_metadata.authorization_servers[0])
    return SignInDetails(issuer, record.token.scope, record.expires_at, record.wanted_scope)


async def sign_in_server(
    storage: SignInStore,
    server: ServerConfig,
    store: SecretStore,
    *,
    open_url: Opener,
    timeout_s: float = SIGN_IN_TIMEOUT_S,
) -> SignedIn:
    """Sign in to remote server ``server`` as its entry says: in the browser, or with client credentials.

    What ``toolgate login`` and the GUI's Sign in… both run.

    Raises:
        SignInError: refused, timed out, not a remote server, or the server did not accept the tokens.
        MissingSecretError: the entry's ``oauth.client_secret`` is not stored.
    """
    if server.url is None or server.transport == "stdio":
        raise SignInError(f"server {storage.server!r} is not a remote server: only http and sse servers sign in")
    settings = server.oauth
    if settings is not None and settings.grant == "client_credentials":
        assert settings.client_secret is not None  # checked when the config loads
        secret = await anyio.to_thread.run_sync(lambda: resolve({"s": settings.client_secret or ""}, store)["s"])
        return await sign_in_as_machine(storage, server.url, settings, secret)
    client = await anyio.to_thread.run_sync(lambda: configured_client(settings, lambda v: resolve(v, store)))
    return await sign_in(storage, server.url, open_url=open_url, timeout_s=timeout_s, settings=settings, client=client)


async def sign_out_server(storage: SignInStore, server: ServerConfig, store: SecretStore) -> bool:
    """Sign out of remote server ``server`` (``sign_out`` with the entry's own client); whether it was signed in."""
    client = await anyio.to_thread.run_sync(lambda: configured_client(server.oauth, lambda v: resolve(v, store)))
    return await sign_out(storage, client)

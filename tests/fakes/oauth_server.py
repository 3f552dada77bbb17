"""A real OAuth 2.1 authorization server and the MCP server it protects, built from the SDK's own pieces.

    python tests/fakes/oauth_server.py [--access-ttl SECONDS] [--refuse-consent] [--authorize-endpoint URL]
        [--client ID:SECRET:REDIRECT_URI] [--no-registration] [--client-credentials] [--layout LAYOUT]
        [--redirect-discovery-to URL] [--cimd-ca PEM_FILE]

Listens on 127.0.0.1 on a free port and prints ``READY <url>`` (the MCP endpoint, ``/mcp``) as its first
stdout line. The SDK's auth routes serve authorization server metadata (RFC 8414), protected resource
metadata (RFC 9728), dynamic client registration (RFC 7591), ``/authorize`` (PKCE S256 required),
``/token`` (authorization code and refresh, with rotation) and ``/revoke`` (RFC 7009). The MCP endpoint
answers 401 with ``WWW-Authenticate: Bearer … resource_metadata=…`` without a valid token.

Consent is automatic: ``/authorize`` redirects straight back to the client with a code, so a "browser"
is any HTTP client that follows the redirect (``--refuse-consent``: with ``error=access_denied``).
``--authorize-endpoint`` makes its metadata lie about where ``/authorize`` is.
``--client`` pre-registers a confidential client (``client_secret_basic``, scopes ``read write admin``) with
that redirect URI; ``--no-registration`` turns dynamic registration off (only pre-registered clients work);
``--client-credentials`` offers the ``client_credentials`` grant (in its metadata and at ``/token``).
``--layout`` moves the metadata documents (``_Discovery``), one per discovery variant of the MCP
authorization spec: ``header`` (protected resource metadata only where ``WWW-Authenticate`` says),
``path`` / ``root`` (only at the path-based / root well-known URL, the header naming none), ``tenant``
(an issuer with a path), ``oidc`` (OpenID Connect discovery only, with a tenant path), ``legacy``
(2025-03-26: no protected resource metadata at all), ``mismatch`` (authorization server metadata naming
another issuer). ``--cimd-ca`` supports Client ID Metadata Documents (``client_id_metadata_document_supported`` in its
metadata): an unknown ``https://`` client id is fetched, trusting only that CA, and is a client only when
the document's ``client_id`` is its URL and it names a public client (its redirect URIs are then checked
as a registered client's). ``--redirect-discovery-to`` answers the protected resource metadata with a 307 there.
Test-only routes: ``POST /test/expire`` ends every access token now (the next call must refresh);
``GET /test/stats`` counts registrations, codes, refreshes, revocations and the ``resource`` values
asked for. ``/sse`` is only a protected door (401 without a token; no legacy SSE server behind it),
to see that an ``sse`` entry needs a sign-in too.
Tools: ``whoami()`` (the client id the token was issued to), ``echo(text)``, and ``admin_only()``, which
needs the ``admin`` scope: without it the HTTP answer is 403 with ``error="insufficient_scope", scope="admin"``.
"""

from __future__ import annotations

import argparse
import base64
import json
import secrets
import socket
import ssl
import sys
import time
from typing import Any
from urllib.parse import parse_qs, unquote

import anyio
import httpx2
import mcp_types as types
import uvicorn
from mcp.server import ServerRequestContext
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.middleware.bearer_auth import RequireAuthMiddleware
from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    AuthorizeError,
    ProviderTokenVerifier,
    RefreshToken,
    TokenError,
    construct_redirect_uri,
)
from mcp.server.auth.routes import build_metadata, build_resource_metadata_url
from mcp.server.auth.settings import AuthSettings, ClientRegistrationOptions, RevocationOptions
from mcp.server.lowlevel import Server
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from pydantic import AnyHttpUrl, AnyUrl
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse
from starlette.routing import Route

DEFAULT_ACCESS_TTL_S = 3600
CODE_TTL_S = 300


class MemoryAuthorizationServer:
    """An ``OAuthAuthorizationServerProvider`` keeping clients, codes and tokens in dicts; consent is automatic."""

    def __init__(self, access_ttl_s: int, *, refuse_consent: bool = False, cimd_ca: str | None = None) -> None:
        self.access_ttl_s = access_ttl_s
        self.refuse_consent = refuse_consent
        self.cimd_ca = cimd_ca
        self.clients: dict[str, OAuthClientInformationFull] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        self.access: dict[str, AccessToken] = {}
        self.refresh: dict[str, RefreshToken] = {}
        self.stats: dict[str, Any] = {
            "registered": 0,
            "codes": 0,
            "refreshed": 0,
            "revoked": 0,
            "resources": [],
            "scopes": [],
            "code_clients": [],
            "machine_tokens": 0,
            "insufficient": 0,
            "documents_fetched": 0,
            "documents_refused": [],
        }

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        known = self.clients.get(client_id)
        if known is None and self.cimd_ca is not None and client_id.startswith("https://"):
            return await self._client_from_document(client_id)
        return known

    async def _client_from_document(self, url: str) -> OAuthClientInformationFull | None:
        """The client a Client ID Metadata Document describes: fetched over verified TLS, its ``client_id`` its URL."""
        self.stats["documents_fetched"] += 1
        try:
            async with httpx2.AsyncClient(verify=ssl.create_default_context(cafile=self.cimd_ca)) as http:
                response = await http.get(url)
            document = response.json() if response.status_code == 200 else None
        except (httpx2.HTTPError, ValueError) as exc:
            self.stats["documents_refused"].append(f"{url}: {type(exc).__name__}")
            return None
        if not isinstance(document, dict) or document.get("client_id") != url:
            self.stats["documents_refused"].append(f"{url}: its client_id is not its URL")
            return None
        if document.get("token_endpoint_auth_method", "none") != "none" or "client_secret" in document:
            self.stats["documents_refused"].append(f"{url}: a document names a public client only")
            return None
        try:
            return OAuthClientInformationFull.model_validate(document)
        except ValueError:
            self.stats["documents_refused"].append(f"{url}: not client metadata")
            return None

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        assert client_info.client_id is not None
        self.clients[client_info.client_id] = client_info
        self.stats["registered"] += 1

    async def authorize(self, client: OAuthClientInformationFull, params: AuthorizationParams) -> str:
        assert client.client_id is not None
        if self.refuse_consent:
            raise AuthorizeError("access_denied", "the person did not approve")
        code = secrets.token_urlsafe(32)
        self.codes[code] = AuthorizationCode(
            code=code,
            scopes=params.scopes or [],
            expires_at=time.time() + CODE_TTL_S,
            client_id=client.client_id,
            code_challenge=params.code_challenge,
            redirect_uri=params.redirect_uri,
            redirect_uri_provided_explicitly=params.redirect_uri_provided_explicitly,
            resource=params.resource,
        )
        self.stats["codes"] += 1
        self.stats["resources"].append(params.resource)
        self.stats["scopes"].append(params.scopes)
        self.stats["code_clients"].append(client.client_id)
        return construct_redirect_uri(str(params.redirect_uri), code=code, state=params.state)

    async def load_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: str
    ) -> AuthorizationCode | None:
        code = self.codes.get(authorization_code)
        return code if code is not None and code.client_id == client.client_id else None

    async def exchange_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: AuthorizationCode
    ) -> OAuthToken:
        del self.codes[authorization_code.code]
        return self._issue(authorization_code.client_id, authorization_code.scopes, authorization_code.resource)

    async def load_refresh_token(self, client: OAuthClientInformationFull, refresh_token: str) -> RefreshToken | None:
        token = self.refresh.get(refresh_token)
        return token if token is not None and token.client_id == client.client_id else None

    async def exchange_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: RefreshToken, scopes: list[str]
    ) -> OAuthToken:
        if refresh_token.token not in self.refresh:
            raise TokenError("invalid_grant", "refresh token was revoked")
        del self.refresh[refresh_token.token]  # rotation: each refresh token is good once
        self.stats["refreshed"] += 1
        return self._issue(refresh_token.client_id, scopes or refresh_token.scopes, refresh_token.resource)

    async def load_access_token(self, token: str) -> AccessToken | None:
        return self.access.get(token)

    async def revoke_token(self, token: AccessToken | RefreshToken) -> None:
        # Revoke the whole grant: every token of that client.
        self.stats["revoked"] += 1
        for table in (self.access, self.refresh):
            for value in [v for v, t in table.items() if t.client_id == token.client_id]:
                del table[value]

    def issue_to_machine(self, client_id: str, scopes: list[str], resource: str | None) -> OAuthToken:
        """Tokens for the ``client_credentials`` grant: an access token only (RFC 6749 §4.4.3)."""
        self.stats["machine_tokens"] += 1
        token = self._issue(client_id, scopes, resource)
        assert token.refresh_token is not None
        del self.refresh[token.refresh_token]
        return token.model_copy(update={"refresh_token": None})

    def expire_all(self) -> None:
        for value, token in self.access.items():
            self.access[value] = token.model_copy(update={"expires_at": int(time.time()) - 1})

    def _issue(self, client_id: str, scopes: list[str], resource: str | None) -> OAuthToken:
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        expires_at = int(time.time()) + self.access_ttl_s
        self.access[access] = AccessToken(
            token=access, client_id=client_id, scopes=scopes, expires_at=expires_at, resource=resource
        )
        self.refresh[refresh] = RefreshToken(token=refresh, client_id=client_id, scopes=scopes, resource=resource)
        return OAuthToken(
            access_token=access,
            expires_in=self.access_ttl_s,
            refresh_token=refresh,
            scope=" ".join(scopes) or None,
        )


def _tools_server() -> Server:
    tools = [
        types.Tool(name="whoami", input_schema={"type": "object"}),
        types.Tool(name="echo", input_schema={"type": "object", "properties": {"text": {"type": "string"}}}),
        types.Tool(name="admin_only", input_schema={"type": "object"}),
    ]

    async def list_tools(
        ctx: ServerRequestContext, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tools)

    async def call_tool(ctx: ServerRequestContext, params: types.CallToolRequestParams) -> types.CallToolResult:
        if params.name == "whoami":
            token = get_access_token()
            text = token.client_id if token is not None else "nobody"
        else:
            text = str((params.arguments or {}).get("text", ""))
        return types.CallToolResult(content=[types.TextContent(text=text)])

    return Server("oauth-protected", on_list_tools=list_tools, on_call_tool=call_tool)


class _PublicClientRevocation:
    """Lets a public client revoke with ``client_id`` alone (RFC 7009 §2.1).

    mcp 2.3.0's ``RevocationRequest`` declares ``client_secret: str | None`` without a default, so a
    form without the field is refused with 400; this adds an empty one before the SDK's handler reads it.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/revoke":
            await self.app(scope, receive, send)
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if b"client_secret=" not in body:
            body += b"&client_secret="
        headers = [(k, v) for k, v in scope["headers"] if k != b"content-length"]
        scope = {**scope, "headers": [*headers, (b"content-length", str(len(body)).encode())]}
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


class _AdminScope:
    """A ``tools/call`` of ``admin_only`` with a token lacking ``admin``: 403 ``insufficient_scope`` (RFC 6750 §3.1)."""

    def __init__(self, app: Any, provider: MemoryAuthorizationServer, metadata_url: str) -> None:
        self.app = app
        self.provider = provider
        self.metadata_url = metadata_url

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/mcp" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        body = await request.body()
        try:
            message = json.loads(body)
        except ValueError:
            message = None
        wanted = isinstance(message, dict) and message.get("method") == "tools/call"
        if wanted and (message.get("params") or {}).get("name") == "admin_only":
            token = self.provider.access.get(request.headers.get("authorization", "").removeprefix("Bearer "))
            if token is not None and "admin" not in token.scopes:
                self.provider.stats["insufficient"] += 1
                challenge = f'Bearer error="insufficient_scope", scope="admin", resource_metadata="{self.metadata_url}"'
                answer = PlainTextResponse("insufficient scope", 403, headers={"WWW-Authenticate": challenge})
                await answer(scope, receive, send)
                return
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


TENANT = "tenant-1"
LAYOUTS = ("sdk", "header", "path", "root", "tenant", "oidc", "legacy", "mismatch")


class _Discovery:
    """Serves the metadata documents where ``layout`` puts them; 404 at every other well-known URL."""

    def __init__(self, app: Any, layout: str, base: str, metadata: dict[str, Any], redirect_to: str | None) -> None:
        self.app = app
        self.layout = layout
        self.redirect_to = redirect_to
        issuer = {"tenant": f"{base}/{TENANT}", "oidc": f"{base}/{TENANT}", "mismatch": "https://login.example.com"}
        self.issuer = issuer.get(layout, base)
        named = f"{base}/{TENANT}" if layout in ("tenant", "oidc") else base
        self.resource = {"resource": f"{base}/mcp", "authorization_servers": [named]}
        self.metadata = {**metadata, "issuer": self.issuer}
        self.documents = self._documents()

    def _documents(self) -> dict[str, dict[str, Any]]:
        prm, asm = self.resource, self.metadata
        where_prm = {
            "header": "/custom/resource-metadata",
            "root": "/.well-known/oauth-protected-resource",
            "legacy": None,
        }.get(self.layout, "/.well-known/oauth-protected-resource/mcp")
        where_asm = {
            "tenant": [f"/.well-known/oauth-authorization-server/{TENANT}"],
            "oidc": [f"/.well-known/openid-configuration/{TENANT}", f"/{TENANT}/.well-known/openid-configuration"],
        }.get(self.layout, ["/.well-known/oauth-authorization-server"])
        documents = dict.fromkeys(where_asm, asm)
        if where_prm is not None:
            documents[where_prm] = prm
        return documents

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if self.redirect_to is not None and path.startswith("/.well-known/oauth-protected-resource"):
            await RedirectResponse(self.redirect_to + path, 307)(scope, receive, send)
            return
        if path in self.documents:
            await JSONResponse(self.documents[path])(scope, receive, send)
            return
        if path.startswith("/.well-known/") or path.endswith("/.well-known/openid-configuration"):
            await PlainTextResponse("not here", 404)(scope, receive, send)
            return
        await self.app(scope, receive, self._challenge_rewriter(send))

    def _challenge_rewriter(self, send: Any) -> Any:
        """The 401's ``WWW-Authenticate``: pointing at the header layout's document, or at none."""

        async def rewritten(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and message["status"] == 401:
                where = next(iter(p for p, d in self.documents.items() if d is self.resource), None)
                named = f', resource_metadata="{self.resource["resource"].rsplit("/", 1)[0]}{where}"'
                challenge = 'Bearer error="invalid_token"' + (named if self.layout == "header" else "")
                headers = [(k, v) for k, v in message["headers"] if k.lower() != b"www-authenticate"]
                message = {**message, "headers": [*headers, (b"www-authenticate", challenge.encode())]}
            await send(message)

        return rewritten


class _Metadata:
    """Serves the given authorization server metadata (one that lies, or offers ``client_credentials``)."""

    def __init__(self, app: Any, metadata: dict[str, Any]) -> None:
        self.app = app
        self.metadata = metadata

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/.well-known/oauth-authorization-server":
            await JSONResponse(self.metadata)(scope, receive, send)
            return
        await self.app(scope, receive, send)


class _ClientCredentialsGrant:
    """``POST /token`` with ``grant_type=client_credentials`` (the SDK's token handler has no such grant)."""

    def __init__(self, app: Any, provider: MemoryAuthorizationServer) -> None:
        self.app = app
        self.provider = provider

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/token" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        body = await request.body()
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        if form.get("grant_type") != "client_credentials":
            sent = False

            async def replay() -> dict[str, Any]:
                nonlocal sent
                if sent:
                    return await receive()
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}

            await self.app(scope, replay, send)
            return
        client_id, secret = form.get("client_id"), form.get("client_secret")
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
            client_id, secret = unquote(client_id), unquote(secret)
        client = self.provider.clients.get(client_id or "")
        if client is None or client.client_secret is None or client.client_secret != secret:
            answer = {"error": "invalid_client", "error_description": "unknown client or wrong secret"}
            await JSONResponse(answer, status_code=401)(scope, receive, send)
            return
        scopes = form.get("scope", "").split()
        token = self.provider.issue_to_machine(client.client_id or "", scopes, form.get("resource"))
        await JSONResponse(token.model_dump(mode="json", exclude_none=True))(scope, receive, send)


def build_app(
    base: str,
    provider: MemoryAuthorizationServer,
    *,
    authorize_endpoint: str | None = None,
    registration: bool = True,
    client_credentials: bool = False,
    layout: str = "sdk",
    redirect_discovery_to: str | None = None,
    client_documents: bool = False,
) -> Any:
    """The Starlette app: authorization server, protected resource metadata, the MCP endpoint, test routes."""

    async def expire(request: Request) -> JSONResponse:
        provider.expire_all()
        return JSONResponse({"expired": len(provider.access)})

    async def stats(request: Request) -> JSONResponse:
        return JSONResponse({**provider.stats, "clients": len(provider.clients), "live": len(provider.access)})

    metadata_url = build_resource_metadata_url(AnyHttpUrl(f"{base}/mcp"))
    auth = AuthSettings(
        issuer_url=base,  # type: ignore[arg-type]
        resource_server_url=f"{base}/mcp",  # type: ignore[arg-type]
        validate_token_resource=True,
        client_registration_options=ClientRegistrationOptions(enabled=registration),
        revocation_options=RevocationOptions(enabled=True),
    )
    app = _tools_server().streamable_http_app(
        auth=auth,
        auth_server_provider=provider,
        token_verifier=ProviderTokenVerifier(provider),
        custom_starlette_routes=[
            Route("/test/expire", expire, methods=["POST"]),
            Route("/test/stats", stats, methods=["GET"]),
            Route("/sse", RequireAuthMiddleware(PlainTextResponse("signed in"), [], metadata_url)),
        ],
    )
    app = _AdminScope(app, provider, str(metadata_url))
    options = (auth.client_registration_options, auth.revocation_options)
    metadata = build_metadata(auth.issuer_url, None, *options).model_dump(mode="json", exclude_none=True)
    if authorize_endpoint is not None:
        metadata["authorization_endpoint"] = authorize_endpoint
    if client_documents:
        metadata["client_id_metadata_document_supported"] = True
    if client_credentials:
        metadata["grant_types_supported"] = [*metadata["grant_types_supported"], "client_credentials"]
        app = _ClientCredentialsGrant(app, provider)
    if layout != "sdk" or redirect_discovery_to is not None:
        app = _Discovery(app, layout, base, metadata, redirect_discovery_to)
    elif authorize_endpoint is not None or client_credentials or client_documents:
        app = _Metadata(app, metadata)
    return _PublicClientRevocation(app)


def pre_registered(spec: str) -> OAuthClientInformationFull:
    """The client ``--client ID:SECRET:REDIRECT_URI`` names."""
    client_id, secret, redirect_uri = spec.split(":", 2)
    return OAuthClientInformationFull(
        client_id=client_id,
        client_secret=secret,
        redirect_uris=[AnyUrl(redirect_uri)],
        grant_types=["authorization_code", "refresh_token", "client_credentials"],
        token_endpoint_auth_method="client_secret_basic",
        scope="read write admin",
    )


async def _serve(args: argparse.Namespace) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    provider = MemoryAuthorizationServer(args.access_ttl, refuse_consent=args.refuse_consent, cimd_ca=args.cimd_ca)
    if args.client is not None:
        client = pre_registered(args.client)
        provider.clients[client.client_id or ""] = client
    app = build_app(
        base,
        provider,
        authorize_endpoint=args.authorize_endpoint,
        registration=not args.no_registration,
        client_credentials=args.client_credentials,
        layout=args.layout,
        redirect_discovery_to=args.redirect_discovery_to,
        client_documents=args.cimd_ca is not None,
    )
    sock.listen()  # before READY: a client may connect as soon as it reads the line
    sys.stdout.write(f"READY {base}/mcp\n")
    sys.stdout.flush()
    await uvicorn.Server(uvicorn.Config(app, log_level="warning")).serve([sock])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--access-ttl", type=int, default=DEFAULT_ACCESS_TTL_S, metavar="SECONDS")
    parser.add_argument("--refuse-consent", action="store_true")
    parser.add_argument("--authorize-endpoint", metavar="URL")
    parser.add_argument("--client", metavar="ID:SECRET:REDIRECT_URI")
    parser.add_argument("--no-registration", action="store_true")
    parser.add_argument("--client-credentials", action="store_true")
    parser.add_argument("--layout", choices=LAYOUTS, default="sdk")
    parser.add_argument("--redirect-discovery-to", metavar="URL")
    parser.add_argument("--cimd-ca", metavar="PEM_FILE")
    args = parser.parse_args()
    anyio.run(_serve, args)
    sys.exit(0)


if __name__ == "__main__":
    main()

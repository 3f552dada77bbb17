"""The configuration model: what config.json holds, one frozen pydantic model per block.

The model is the single source of truth for config.json's shape; unknown keys are errors.
``${secret:NAME}`` stays a reference here; it is resolved per server when that server starts
(see ``gateway_core.secrets``).
"""

from __future__ import annotations

import hashlib
import re
from enum import StrEnum
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from gateway_core.policy import Effect, Rule, check_match
from gateway_core.rate_limits import AgentLimits

DEFAULT_HOST = "127.0.0.1"
# Fixed so IDE entries written once keep working; unassigned by IANA and rarely used locally.
DEFAULT_PORT = 47800
DEFAULT_TIMEOUT_S = 60.0
# A value that is one secret reference and nothing else (``oauth.client_secret``).
SECRET_ONLY = re.compile(r"\$\{secret:[A-Za-z0-9_.-]+\}")
# How long an agent's own process of a "per_agent" server may sit unused before it is stopped.
DEFAULT_IDLE_TIMEOUT_S = 600.0
DEFAULT_APPROVAL_TIMEOUT_S = 120.0
# One agent's share of the gateway: far above what an IDE opens, far below what starves the others.
DEFAULT_MAX_SESSIONS_PER_AGENT = 100
DEFAULT_MAX_REQUESTS_PER_AGENT = 100
DEFAULT_SESSION_IDLE_TIMEOUT_S = 1800.0
DEFAULT_AUDIT_RETENTION_DAYS = 30.0
DEFAULT_AUDIT_MAX_SIZE_MB = 200.0


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GatewaySettings(_Model):
    """The ``gateway`` block: where the agent-facing endpoint listens and who may reach it."""

    host: str = DEFAULT_HOST
    port: int = Field(default=DEFAULT_PORT, ge=0, le=65535)
    allowed_origins: tuple[str, ...] = ()
    approval_timeout_s: float = Field(default=DEFAULT_APPROVAL_TIMEOUT_S, gt=0)
    max_sessions_per_agent: int = Field(default=DEFAULT_MAX_SESSIONS_PER_AGENT, ge=1)
    max_requests_per_agent: int = Field(default=DEFAULT_MAX_REQUESTS_PER_AGENT, ge=1)
    session_idle_timeout_s: float = Field(default=DEFAULT_SESSION_IDLE_TIMEOUT_S, gt=0)
    # None: no limit, as over stdio; only agents holding a token get their bodies read at all.
    max_request_body_mb: float | None = Field(default=None, gt=0)


class OAuthSettings(_Model):
    """A remote entry's ``oauth`` block: how Toolgate signs in to it; every field optional.

    Without one, the client is registered with the server (dynamic client registration), the scope is
    what the server asks for, and the redirect listens on any free port.
    """

    client_id: str | None = Field(default=None, min_length=1)
    """A client registered with the authorization server beforehand; used instead of registering one."""
    client_secret: str | None = None
    """That client's secret: a ``${secret:NAME}`` reference, never the value itself."""
    scopes: tuple[Annotated[str, Field(min_length=1, pattern=r"^[^\s]+$")], ...] = ()
    """The scopes to ask for, instead of what the server's challenge or metadata names."""
    redirect_port: int | None = Field(default=None, ge=1, le=65535)
    """The loopback redirect's port, for a client registered with ``http://127.0.0.1:PORT/callback``."""
    grant: Literal["authorization_code", "client_credentials"] = "authorization_code"
    """``client_credentials``: machine to machine, no browser (needs client_id, client_secret and issuer)."""
    issuer: str | None = Field(default=None, min_length=1)
    """The authorization server the client belongs to; its credentials are only ever sent there."""
    client_metadata_url: str | None = Field(default=None, min_length=1)
    """A Client ID Metadata Document hosted by the person or their organisation (HTTPS, a path): the
    client id offered to authorization servers that support such documents, instead of registering."""

    @model_validator(mode="after")
    def _consistent(self) -> OAuthSettings:
        if self.client_secret is not None and SECRET_ONLY.fullmatch(self.client_secret) is None:
            raise ValueError(
                '"client_secret" must be a ${secret:NAME} reference, not the secret itself: store it with '
                '`toolgate secrets set NAME` and write "${secret:NAME}"'
            )
        if self.client_secret is not None and self.client_id is None:
            raise ValueError('"client_secret" needs the "client_id" it belongs to')
        if self.issuer is not None and not self.issuer.startswith(("https://", "http://")):
            raise ValueError(f'"issuer" must be the authorization server\'s http(s) URL, found {self.issuer!r}')
        if self.client_metadata_url is not None:
            parts = urlsplit(self.client_metadata_url)
            if parts.scheme != "https" or not parts.netloc or parts.path in ("", "/"):
                raise ValueError(
                    '"client_metadata_url" must be the https:// URL of a Client ID Metadata Document, with a '
                    f"path, found {self.client_metadata_url!r}"
                )
            if self.client_id is not None:
                raise ValueError('"client_metadata_url" and "client_id" each name the client: keep one')
            if self.grant == "client_credentials":
                raise ValueError('"client_metadata_url" is for a sign-in in the browser; "client_credentials" has none')
        if self.grant == "client_credentials":
            missing = [key for key in ("client_id", "client_secret", "issuer") if getattr(self, key) is None]
            if missing:
                names = ", ".join(f'"{key}"' for key in missing)
                raise ValueError(f'"grant": "client_credentials" needs {names} (no person signs in to pick them)')
            if self.redirect_port is not None:
                raise ValueError('"redirect_port" is for a sign-in in the browser; "client_credentials" has none')
        return self


class ServerConfig(_Model):
    """One ``servers`` entry, in the ``mcpServers`` shape plus Toolgate's own keys.

    Exactly one of ``command`` (a stdio server) or ``url`` (a remote server) is set.
    """

    command: str | None = Field(default=None, min_length=1)
    args: tuple[str, ...] = ()
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    url: str | None = Field(default=None, min_length=1)
    type: Literal["stdio", "http", "sse"] | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    enabled: bool = True
    prefix: str | None = None
    timeout_s: float = Field(default=DEFAULT_TIMEOUT_S, gt=0)
    isolation: Literal["shared", "per_agent"] = "shared"
    idle_timeout_s: float = Field(default=DEFAULT_IDLE_TIMEOUT_S, gt=0)
    oauth: OAuthSettings | None = None

    @model_validator(mode="after")
    def _one_transport(self) -> ServerConfig:
        if (self.command is None) == (self.url is None):
            raise ValueError('needs exactly one of "command" (a stdio server) or "url" (a remote server)')
        if self.command is not None:
            if self.type not in (None, "stdio"):
                raise ValueError(f'"type": "{self.type}" needs "url", not "command"')
            if self.headers:
                raise ValueError('"headers" are for remote servers; a stdio server takes "env"')
            if self.oauth is not None:
                raise ValueError('"oauth" is for remote servers ("url"); a stdio server signs in by itself')
        else:
            if self.type == "stdio":
                raise ValueError('"type": "stdio" needs "command", not "url"')
            if self.args or self.env or self.cwd is not None:
                raise ValueError('"args", "env" and "cwd" are for stdio servers; a remote server takes "headers"')
            if not self.url or not self.url.startswith(("http://", "https://")):
                raise ValueError(f'"url" must start with http:// or https://, found {self.url!r}')
        return self

    @property
    def transport(self) -> Literal["stdio", "http", "sse"]:
        """How Toolgate talks to this server."""
        if self.command is not None:
            return "stdio"
        return "sse" if self.type == "sse" else "http"


def _checked_match(match: str) -> str:
    problem = check_match(match)
    if problem is not None:
        raise ValueError(problem)
    return match


class ToolsMode(StrEnum):
    """What an agent's ``tools/list`` holds."""

    ALL = "all"
    """Every tool the agent may use, with its whole definition."""
    ON_DEMAND = "on_demand"
    """Three gateway tools to find and call the others (``frontend/on_demand.py``), plus ``always_listed``."""


class AgentConfig(_Model):
    """One ``agents`` entry: its name, policy and tool listing. Its token is never here; it lives in the secret store.

    ``always_listed`` holds ``"server-glob/tool-glob"`` matches (as in rules) of the tools an
    ``on_demand`` agent still finds in its ``tools/list``; what its policy denies stays hidden.
    ``limits`` caps its tool calls per minute and in flight, overall and (``servers``) per server
    (``gateway_core.rate_limits``).
    """

    name: str = Field(min_length=1)
    default: Effect = Effect.ASK
    rules: tuple[Rule, ...] = ()
    tools: ToolsMode = ToolsMode.ALL
    always_listed: tuple[Annotated[str, AfterValidator(_checked_match)], ...] = ()
    limits: AgentLimits = AgentLimits()


class AuditSettings(_Model):
    """The ``audit`` block: whether calls are recorded, and how long and how much of the log is kept."""

    enabled: bool = True
    retention_days: float = Field(default=DEFAULT_AUDIT_RETENTION_DAYS, gt=0)
    max_size_mb: float = Field(default=DEFAULT_AUDIT_MAX_SIZE_MB, gt=0)


class Config(_Model):
    """The whole of config.json."""

    gateway: GatewaySettings = GatewaySettings()
    servers: dict[str, ServerConfig] = Field(default_factory=dict)
    agents: dict[str, AgentConfig] = Field(default_factory=dict)
    audit: AuditSettings = AuditSettings()

    def prefix_for(self, server: str) -> str:
        """The name prefix of ``server``'s tools and prompts: its ``prefix``, or ``"<server>__"``."""
        configured = self.servers[server].prefix
        return f"{server}__" if configured is None else configured

    def digest(self) -> str:
        """A fingerprint of this configuration, equal for equal configurations.

        The CLI compares it with the running gateway's to know when an edit it wrote has been applied.
        """
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:16]

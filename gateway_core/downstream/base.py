"""What the rest of the gateway sees of one configured MCP server (state, catalog), and what transports share."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol

import anyio
import mcp_types as types

if TYPE_CHECKING:
    # The SDK's own transports return this alias; it has no public home yet.
    from mcp.client._transport import TransportStreams


class ServerState(Enum):
    """Lifecycle of one downstream server (like httpx's ``ClientState``)."""

    STARTING = "starting"
    READY = "ready"
    NEEDS_SIGN_IN = "needs sign-in"
    FAILED = "failed"
    STOPPED = "stopped"


@dataclass(frozen=True)
class Catalog:
    """Everything a server offers, as last listed. Refreshed on list_changed notifications."""

    tools: tuple[types.Tool, ...] = ()
    resources: tuple[types.Resource, ...] = ()
    resource_templates: tuple[types.ResourceTemplate, ...] = ()
    prompts: tuple[types.Prompt, ...] = ()


@dataclass(frozen=True)
class ServerStatus:
    """A snapshot of one server's state, safe to hand to the GUI or print.

    ``reason`` says why the server failed or stopped, or how to sign in to it; ``stderr_tail`` holds its
    last stderr lines (stdio servers only). Neither ever contains resolved secret values.
    ``sign_in_at`` is the authorization server of a server that needs a sign-in, where it is known.
    ``failures`` is its recent failures, oldest first (the last ``MAX_FAILURES``): they stay after it
    is ready again, so a crash and its reason can still be read; ``restarts`` counts every start after
    the first (automatic after a failure, or asked for).
    """

    name: str
    state: ServerState
    transport: str
    reason: str | None = None
    stderr_tail: tuple[str, ...] = ()
    tools: int = 0
    resources: int = 0
    prompts: int = 0
    resource_templates: int = 0
    restarts: int = 0
    protocol_version: str | None = None
    server_info: dict[str, str] = field(default_factory=dict)
    sign_in_at: str | None = None
    failures: tuple[Failure, ...] = ()

    @property
    def crashes(self) -> int:
        """How many of the recorded failures came after the server had been ready."""
        return sum(failure.times for failure in self.failures if failure.after_ready)


# How many failures a server's status keeps (older ones are dropped).
MAX_FAILURES = 10


@dataclass(frozen=True)
class Failure:
    """One time a server failed: when (epoch seconds), why, and whether it had been ready (a crash).

    ``restart`` is the server's restart count when it failed (0: its first start); the reason never
    holds a secret value. Starts that fail again for the same reason are one entry: ``times`` of them,
    the last at ``last_at``.
    """

    at: float
    reason: str
    after_ready: bool
    restart: int
    times: int = 1
    last_at: float | None = None


ResolveFn = Callable[[Mapping[str, str]], dict[str, str]]
# What a server tells the gateway outside any call; the SDK leaves task status out of its notifications.
Notice = types.ServerNotification | types.TaskStatusNotification
"""Resolves ``${secret:NAME}`` references in env/header values; raises ``MissingSecretError``."""


class ConnectError(Exception):
    """A transport could not reach or start its server. The message is safe to show: it names no secret."""


class Lane(Protocol):
    """A connection's raw lane for the hot path's calls: a request sent from the calling task, its result as it came.

    Over stdio ``raw_lane.RawLane``, over Streamable HTTP ``http_lane.HttpLane``.
    """

    # Whether the lane sends the stamp's headers (a pipe has none: its calls' envelopes can be made once).
    sends_headers: bool

    async def request(
        self,
        method: str,
        params: dict[str, Any] | None,
        *,
        headers: dict[str, str] | None = None,
        deadline: float | None = None,
    ) -> dict[str, Any]:
        """Send a request with the stamp's ``headers``; its result as the dispatcher's ``send_raw_request`` gives it.

        Raises:
            mcp.shared.exceptions.MCPError: an error answer, or ``CONNECTION_CLOSED`` ("Connection closed").
            raw_lane.LaneTimeoutError: ``deadline`` (the loop's clock) passed first; the server was told to cancel.
        """


@dataclass
class Connection:
    """An open transport: the message streams, and how to learn that the server has gone.

    ``lost`` is set when the transport notices the server is gone (end of stream, process exit), even
    while no request is in flight; ``loss_reason()`` then says why, in words fit for a status.
    ``signed_out()`` is true when it was lost because the server wants a sign-in (``oauth.py``).
    ``raw`` is the connection's lane for the hot path's calls (stdio: ``raw_lane.py``, Streamable HTTP:
    ``http_lane.py``); other transports have none.
    """

    streams: TransportStreams
    lost: anyio.Event
    loss_reason: Callable[[], str]
    signed_out: Callable[[], bool] = lambda: False
    raw: Lane | None = None

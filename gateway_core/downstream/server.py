"""One configured MCP server behind the gateway, kept connected: the supervisor.

``DownstreamServer.run`` is the supervisor task. It opens the transport (``transports.py``) and the SDK
session (``session.py``; the SDK needs each session entered and left in its own task), lists the
catalog, and loops STARTING → READY → FAILED → (backoff) → STARTING until cancelled, then ends STOPPED
with the server's process tree gone. A remote server that wants a sign-in is NEEDS_SIGN_IN instead of
FAILED; it is tried again as soon as its stored tokens change (``toolgate login`` tells the running
gateway, ``sign_in_changed``; else they are looked at every ``SIGN_IN_POLL_S``), and a READY one
whose tokens are deleted (``toolgate logout``) goes back to it.
Agents' requests go through ``server.session``, which sends them over the live connection while the
server is READY.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import replace

import anyio
import anyio.to_thread
import httpx2
import mcp_types as types
from mcp.shared.exceptions import MCPError

from gateway_core.config import ServerConfig
from gateway_core.downstream.base import (
    MAX_FAILURES,
    Catalog,
    ConnectError,
    Connection,
    Failure,
    Notice,
    ResolveFn,
    ServerState,
    ServerStatus,
)
from gateway_core.downstream.by_capability import LISTING_WAIT_S, ListedNames, ListingsByCapability
from gateway_core.downstream.catalog import list_catalog
from gateway_core.downstream.era_twin import HandshakeTwin, with_only_in
from gateway_core.downstream.live import Backoff, LiveSession
from gateway_core.downstream.oauth import (
    GatewayAuth,
    MachineAuth,
    SignInRequired,
    SignIns,
    configured_client,
    sign_in_reason,
)
from gateway_core.downstream.offer import EVERYTHING
from gateway_core.downstream.session import (
    LOSS_REASON_WAIT_S,
    ClosedOnProbe,
    Refused,
    ServerSession,
    is_connection_closed,
    start_session,
)
from gateway_core.downstream.stderr import StderrBuffer
from gateway_core.downstream.stdio import NORMAL_STOP, StopTimes
from gateway_core.downstream.transports import Opening, open_transport
from gateway_core.errors import SecretError, ToolgateError
from gateway_core.launch.environment import LaunchEnvironment

logger = logging.getLogger(__name__)

# Interpreters and `npx -y` need seconds to start, however short a server's per-call timeout_s is.
START_TIMEOUT_FLOOR_S = 10.0
# How often the secret store is read for a sign-in or sign-out nobody told the gateway of (``toolgate
# login|logout`` tell it through the control channel: ``sign_in_changed``). A keychain read each time.
SIGN_IN_POLL_S = 30.0
# A server that needs a sign-in is asked again this often anyway (it may have stopped wanting one).
SIGN_IN_RECHECK_S = 300.0
_UNREADABLE = "unreadable"


def _leaf(exc: BaseException) -> BaseException:
    """The first real error inside (nested) exception groups, which SDK transports raise from task groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


class DownstreamServer:
    """One configured server, kept connected while ``run()`` runs.

    Args:
        name: the server's key in config.json.
        config: its configuration (``${secret:...}`` references unresolved).
        resolve: resolves secret references in env/header values at each (re)start.
        on_change: called with ``name`` whenever the status changes (cheap, on the loop); the catalog
            a server lists on start is part of becoming READY.
        on_catalog: called with ``name`` when a READY server's catalog changed (it said its lists
            changed, and listing them again gave something new).
        on_stderr: called with ``(name, line)`` for each stderr line of a stdio server.
        on_notice: called with ``(name, notification)`` for each resource update and log message.
        outside_call_roots: the roots to give when the server asks outside any call (an agent's own
            instance); without it such a question gets an empty list.
        offer: the client capabilities the server is told Toolgate has (an agent's own instance: the
            agent's); by default everything an agent might answer.
        stop_times: how long a stopping stdio server gets (short when the whole gateway stops).
        launch: what a stdio server's environment starts from (``PATH``); Toolgate's own when None.
        transport: opens the connection instead of the configured transport (tests: an in-memory server).
        sign_ins: where remote servers' sign-ins are kept; None: remote servers are sent no OAuth tokens.
        sign_in_as: the configured server whose sign-in this one uses (an agent's own instance: its
            server's, shared with it); ``name`` by default.
        handshake_only: start every session with the handshake only, never in 2026-07-28.
        era_twin: when reached in 2026-07-28, keep a handshake-era twin for handshake-era agents if the
            server offers that era something else (``era_twin.py``).
    """

    def __init__(
        self,
        name: str,
        config: ServerConfig,
        *,
        resolve: ResolveFn,
        on_change: Callable[[str], None],
        on_catalog: Callable[[str], None] | None = None,
        on_stderr: Callable[[str, str], None] | None = None,
        on_notice: Callable[[str, Notice], None] | None = None,
        outside_call_roots: Callable[[], Awaitable[types.ListRootsResult | None]] | None = None,
        offer: types.ClientCapabilities = EVERYTHING,
        stop_times: Callable[[], StopTimes] = lambda: NORMAL_STOP,
        launch: LaunchEnvironment | None = None,
        transport: Callable[[], AbstractAsyncContextManager[Connection]] | None = None,
        sign_ins: SignIns | None = None,
        sign_in_as: str | None = None,
        handshake_only: bool = False,
        era_twin: bool = False,
    ) -> None:
        self.name = name
        self._sign_in_name = sign_in_as or name
        self._always_handshake = handshake_only
        self._twin = HandshakeTwin(name, self._twin_changed) if era_twin else None
        self._outside_call_roots = outside_call_roots
        self._raw_on_stderr = on_stderr
        self._sign_ins = sign_ins
        self._auth: GatewayAuth | None = None
        self._tokens_at_open: str | None = None
        self._sign_in_at: str | None = None
        self._tokens_changed = anyio.Event()
        self._launch = launch
        self._stop_times = stop_times
        self._transport = transport
        self.config = config
        self.tried = anyio.Event()
        self._resolve = resolve
        self._on_change = on_change
        self._on_catalog = on_catalog
        self._stderr = StderrBuffer(None if on_stderr is None else (lambda line: on_stderr(name, line)))
        self._state = ServerState.STOPPED
        self._reason: str | None = None
        self._restarts = 0
        self._failures: deque[Failure] = deque(maxlen=MAX_FAILURES)
        self._catalog = Catalog()
        self._by_capability = ListingsByCapability(name)
        self._last_logged_failure: str | None = None
        self._on_notice = on_notice
        self._handshake_only = False
        self.session = ServerSession(
            name,
            timeout_s=lambda: self.config.timeout_s,
            not_ready=self.not_ready_message,
            outside_call_roots=outside_call_roots,
            closes_by_itself=lambda: self.config.transport == "stdio",
            offer=offer,
        )
        """How agents' requests reach this server (they fail at once with the reason while it is not ready)."""

    @property
    def _start_timeout_s(self) -> float:
        """How long spawning, the handshake and the first listing may take together."""
        return max(self.config.timeout_s, START_TIMEOUT_FLOOR_S)

    @property
    def status(self) -> ServerStatus:
        """A snapshot of the server's state, counts and last stderr lines."""
        live, catalog = self.session.live, self.catalog
        info = live.server_info if live is not None else None
        return ServerStatus(
            name=self.name,
            state=self._state,
            transport=self.config.transport,
            reason=self._reason,
            stderr_tail=self._stderr.tail(),
            tools=len(catalog.tools),
            resources=len(catalog.resources),
            resource_templates=len(catalog.resource_templates),
            prompts=len(catalog.prompts),
            restarts=self._restarts,
            protocol_version=live.protocol_version if live is not None else None,
            server_info={"name": info.name, "version": info.version} if info is not None else {},
            sign_in_at=self._sign_in_at if self._state is ServerState.NEEDS_SIGN_IN else None,
            failures=tuple(self._failures),
        )

    def carry_over(self, previous: DownstreamServer) -> None:
        """Continue the record of ``previous``, which this server replaces (a restart asked for, not yet run).

        Its failures, its stderr lines and its restart count (plus this start) stay readable.
        """
        self._failures.extend(previous._failures)
        self._stderr = previous._stderr
        self._restarts = previous._restarts + 1

    @property
    def catalog(self) -> Catalog:
        """What the server offers, as last listed; empty unless READY."""
        return self._catalog if self._state is ServerState.READY else Catalog()

    @property
    def instructions(self) -> str | None:
        """What the server told its clients about using it (``instructions``); None unless READY."""
        live = self.session.live
        return live.instructions if live is not None and self._state is ServerState.READY else None

    async def listed_to(
        self, capabilities: types.ClientCapabilities | None, *, modern: bool = True
    ) -> ListedNames | None:
        """The tools and prompts the server lists to a client with ``capabilities``; ``None``: its catalog's.

        A server reached in 2026-07-28 can be asked this per set of capabilities (``by_capability.py``);
        to a handshake-era client (not ``modern``) it lists what its handshake-era twin lists, where it
        has one (``era_twin.py``).
        """
        if self._state is not ServerState.READY:
            return None
        if not modern:
            await self.era_settled()
            if (twin := self.for_era(modern=False)) is not self:
                return ListedNames.of(twin.catalog)
        listed = await self._by_capability.listed_to(self.session.live, self._catalog, capabilities)
        if listed is None and self.for_era(modern=False) is not self:  # not what only the twin lists
            return ListedNames.of(self._catalog, definitions=False)
        return listed

    def for_era(self, *, modern: bool) -> DownstreamServer:
        """The server that serves an agent of this era: the handshake-era twin where one serves, else this."""
        twin = None if modern or self._twin is None else self._twin.serving
        return self if twin is None else twin

    def for_handshake_era_now(self) -> DownstreamServer | None:
        """``for_era(modern=False)`` when it is settled which session serves handshake-era agents; else None.

        None: ``era_settled`` must be awaited first (a twin is being started and compared).
        """
        twin = self._twin
        return self if twin is None else twin.serving_now(self)

    async def era_settled(self) -> None:
        """Until it is known which session serves handshake-era agents (``LISTING_WAIT_S`` at most)."""
        if self._twin is not None:
            await self._twin.settled(LISTING_WAIT_S)

    @property
    def era_generation(self) -> int:
        """Goes up each time what handshake-era agents are served by a twin may have changed."""
        return 0 if self._twin is None else self._twin.generation

    def _twin_changed(self) -> None:
        if self._on_catalog is not None:
            self._on_catalog(self.name)

    def _new_twin(self) -> DownstreamServer:
        """A handshake-only copy of this server, for handshake-era agents; its resource updates dropped."""
        on_notice = self._on_notice

        def notice(name: str, notification: Notice) -> None:
            if on_notice is not None and not isinstance(notification, types.ResourceUpdatedNotification):
                on_notice(name, notification)

        twin = self._twin
        assert twin is not None
        return DownstreamServer(
            self.name,
            self.config,
            resolve=self._resolve,
            on_change=lambda _: twin.twin_changed(),
            on_catalog=lambda _: twin.twin_changed(),
            on_stderr=self._raw_on_stderr,
            on_notice=notice,
            outside_call_roots=self._outside_call_roots,
            offer=self.session.offer,
            stop_times=self._stop_times,
            launch=self._launch,
            transport=self._transport,
            sign_ins=self._sign_ins,
            sign_in_as=self._sign_in_name,
            handshake_only=True,
        )

    @property
    def last_catalog(self) -> Catalog:
        """What the server listed last, whatever its state now (empty if it never listed)."""
        return self._catalog

    @property
    def routed_catalog(self) -> Catalog:
        """What agents of either era may reach: ``last_catalog``, plus what only a handshake-era twin lists."""
        twin = self.for_era(modern=False)
        return self._catalog if twin is self else with_only_in(self._catalog, twin.catalog)

    def not_ready_message(self) -> str:
        """Why a request cannot reach this server now, for the agent (no secrets: reasons never hold any)."""
        if self._state is ServerState.NEEDS_SIGN_IN:
            return f"server {self.name!r} needs a sign-in: {self._reason}"
        detail = f"{self._state.value}: {self._reason}" if self._reason else self._state.value
        if self._state is ServerState.STARTING:
            detail += "; try again in a moment"
        return f"server {self.name!r} is not ready: {detail}"

    def stderr_lines(self) -> tuple[str, ...]:
        """Every stderr line kept for this server (the last ``stderr.MAX_LINES``), oldest first."""
        return self._stderr.lines()

    def stderr_timed_lines(self) -> tuple[tuple[float, str], ...]:
        """``stderr_lines`` with when each arrived (epoch seconds)."""
        return self._stderr.timed_lines()

    def stderr_since(self, seen: int) -> tuple[tuple[str, ...], int]:
        """The stderr lines after the first ``seen`` this server ever wrote, and how many it wrote."""
        return self._stderr.since(seen)

    async def run(self) -> None:
        """Keep the server connected until cancelled; restart it with backoff when it fails or dies.

        Never raises for server problems: they become a FAILED status with a reason.
        """
        backoff = Backoff()
        try:
            while True:
                ready_at: list[float] = []
                try:
                    await self._serve_once(ready_at)
                except Exception as exc:  # the supervisor boundary: one server's failure stays here
                    leaf = _leaf(exc)
                    if isinstance(leaf, SignInRequired):
                        self._needs_sign_in(leaf)
                    else:
                        self._fail(self._describe_failure(exc))
                self.tried.set()
                up_for = anyio.current_time() - ready_at[0] if ready_at else 0.0
                if self._state is ServerState.NEEDS_SIGN_IN:
                    await self._wait_for_sign_in()
                    backoff = Backoff()
                else:
                    await anyio.sleep(backoff.next_delay(up_for))
                self._restarts += 1
        finally:
            live = self.session.live
            self.session.serve(None)
            if live is not None:
                live.fail("the gateway is stopping the server")
                live.closed.set()
            self.tried.set()
            self._set(ServerState.STOPPED, "the gateway stopped it")

    def _fail(self, reason: str, state: ServerState = ServerState.FAILED) -> None:
        live = self.session.live
        self.session.serve(None)
        self._set(state, reason)
        if live is not None:
            live.fail(reason)
            live.closed.set()

    def _needs_sign_in(self, exc: SignInRequired) -> None:
        self._sign_in_at = exc.challenge.issuer
        self._fail(sign_in_reason(self._sign_in_name, exc.challenge), ServerState.NEEDS_SIGN_IN)

    def sign_in_changed(self) -> None:
        """Its stored tokens may have changed (a sign-in or sign-out): look at them now, not at the next poll."""
        if self._auth is not None:
            self._auth.reload()  # the next request reads the store: new tokens are used at once
        self._tokens_changed.set()
        self._tokens_changed = anyio.Event()

    async def _until_next_look(self) -> None:
        changed = self._tokens_changed
        with anyio.move_on_after(SIGN_IN_POLL_S):
            await changed.wait()

    async def _wait_for_sign_in(self) -> None:
        """Until other tokens are stored (or a long while); at once if new ones came during the last attempt."""
        seen = await self._stored_tokens(unreadable=self._tokens_at_open)
        if seen is not None and seen != self._tokens_at_open:
            return
        with anyio.move_on_after(SIGN_IN_RECHECK_S):
            while True:  # a poll: the store has no change notification (another process writes it)
                if await self._stored_tokens(unreadable=seen) != seen:
                    return
                await self._until_next_look()

    async def _watch_sign_out(self, auth: GatewayAuth) -> None:
        """Stop using the tokens once they are deleted; use new ones once stored (a sign-in again, a step-up)."""
        seen = self._tokens_at_open
        while True:  # a poll, as in ``_wait_for_sign_in``; a store that cannot be read now is no sign-out
            stored = await self._stored_tokens(unreadable=_UNREADABLE)
            if stored is None:
                auth.signed_out()
                return
            if stored not in (seen, _UNREADABLE):
                auth.reload()
                seen = stored
            await self._until_next_look()

    async def _stored_tokens(self, *, unreadable: str | None = None) -> str | None:
        """A digest of this server's stored tokens (None: none); ``unreadable`` when the store fails now."""
        if self._sign_ins is None:
            return None
        try:
            return await anyio.to_thread.run_sync(self._sign_ins.of(self._sign_in_name).fingerprint)
        except SecretError:
            return unreadable

    def _set(self, state: ServerState, reason: str | None = None) -> None:
        self._log_transition(state, reason)
        if state is ServerState.FAILED:
            self._record_failure(reason or "unknown", after_ready=self._state is ServerState.READY)
        self._state, self._reason = state, reason
        self._on_change(self.name)

    def _record_failure(self, reason: str, *, after_ready: bool) -> None:
        """Keep the failure; a start failing again for the reason of the last one counts there (backoff retries)."""
        now = time.time()
        last = self._failures[-1] if self._failures else None
        if last is not None and not after_ready and not last.after_ready and last.reason == reason:
            self._failures[-1] = replace(last, times=last.times + 1, last_at=now, restart=self._restarts)
            return
        self._failures.append(Failure(now, reason, after_ready, self._restarts))

    def _log_transition(self, state: ServerState, reason: str | None) -> None:
        """Log what a person watching the log needs: ready, stopped, and each new reason for failing.

        Retries that fail for the reason already logged stay quiet, so a missing secret or a
        server that is down does not fill the log while backoff retries it.
        """
        if state is ServerState.FAILED:
            if reason != self._last_logged_failure:
                logger.warning("server %r failed: %s", self.name, reason)
            self._last_logged_failure = reason
            return
        if state is ServerState.NEEDS_SIGN_IN:
            if reason != self._last_logged_failure:
                logger.info("server %r needs a sign-in: %s", self.name, reason)
            self._last_logged_failure = reason
            return
        if state is ServerState.STARTING:
            return
        self._last_logged_failure = None
        if state is ServerState.READY:
            catalog = self._catalog
            logger.info(
                "server %r is ready: %d tools, %d resources, %d prompts",
                self.name,
                len(catalog.tools),
                len(catalog.resources),
                len(catalog.prompts),
            )
        else:
            logger.info("server %r is %s%s", self.name, state.value, f": {reason}" if reason else "")

    def _open(self) -> AbstractAsyncContextManager[Connection]:
        if self._transport is not None:
            return self._transport()
        auth = self._sign_in_auth(self._sign_ins) if self._sign_ins is not None and self._signs_in else None
        # A server signed in to with client credentials signs itself in: it never *needs sign-in*.
        self._auth = auth if isinstance(auth, GatewayAuth) else None
        opening = Opening(self._resolve, self._stderr, self._stop_times, auth=auth, launch=self._launch)
        return open_transport(self.config, opening)

    def _sign_in_auth(self, sign_ins: SignIns) -> GatewayAuth | MachineAuth:
        """What signs the gateway in to this remote server: stored tokens, or its client credentials.

        Raises:
            MissingSecretError: the entry's ``oauth.client_secret`` is not stored.
        """
        url, settings, storage = self.config.url or "", self.config.oauth, sign_ins.of(self._sign_in_name)
        if settings is not None and settings.grant == "client_credentials":
            assert settings.client_secret is not None  # checked when the config loads
            secret = self._resolve({"s": settings.client_secret})["s"]
            return MachineAuth(url, storage, settings, secret)
        return GatewayAuth(url, storage, client=configured_client(settings, self._resolve))

    @property
    def _signs_in(self) -> bool:
        """Whether a sign-in's tokens are sent: a remote server, unless its entry sends its own Authorization."""
        config = self.config
        if self._sign_ins is None or config.url is None or config.transport == "stdio":
            return False
        return not any(header.lower() == "authorization" for header in config.headers)

    async def _serve_once(self, ready_at: list[float]) -> None:
        """Connect, list, serve until the connection is lost; then leave the server FAILED with the reason.

        The session starts in the newest era the server speaks (``start_session``). A server that
        closes the connection when sent ``server/discover`` is started again at once with the
        handshake only; while that works, later restarts skip the probe.
        """
        self._set(ServerState.STARTING)
        self._tokens_at_open = await self._stored_tokens() if self._signs_in else None
        # Legacy SSE predates 2026-07-28.
        handshake_only = self._always_handshake or self._handshake_only or self.config.transport == "sse"
        try:
            await self._connect_and_serve(ready_at, handshake_only=handshake_only)
        except Exception as exc:  # transports wrap it in exception groups
            leaf = _leaf(exc)
            if isinstance(leaf, Refused):
                raise ConnectError(f"the server refused to start a session: {leaf}") from None
            if not isinstance(leaf, ClosedOnProbe):
                raise
            logger.info("server %r closed the connection when sent server/discover; starting it again", self.name)
            self._handshake_only = True
            try:
                await self._connect_and_serve(ready_at, handshake_only=True)
            except Exception:
                self._handshake_only = False  # not the probe's fault: probe again next time
                raise

    async def _connect_and_serve(self, ready_at: list[float], *, handshake_only: bool) -> None:
        async with self._open() as connection, self._start(connection, handshake_only=handshake_only) as live:
            self.session.serve(live)
            if live.modern and self._twin is not None and self._tokens_at_open is None:
                self._twin.expect()
            ready_at.append(anyio.current_time())
            self._set(ServerState.READY)
            self.tried.set()
            async with anyio.create_task_group() as tg:
                tg.start_soon(live.forward_loss)
                tg.start_soon(self._refresh_on_notice, live)
                if live.modern:
                    tg.start_soon(self._listen_for_changes, live)
                    if self._twin is not None and self._tokens_at_open is None:  # one sign-in, one token user
                        tg.start_soon(self._twin.run, self._new_twin(), lambda: self._catalog, self._start_timeout_s)
                if self.config.transport != "stdio":
                    tg.start_soon(live.probe)
                if self._auth is not None and self._tokens_at_open is not None:
                    tg.start_soon(self._watch_sign_out, self._auth)
                await live.lost.wait()
                # Said before the session's helpers (a twin's process among them) are given time to stop.
                challenge = self._auth.challenge if self._auth is not None and connection.signed_out() else None
                if challenge is None:
                    reason = live.reason or "the connection was closed"
                    logger.warning("server %r was lost: %s", self.name, reason)
                    self._fail(reason)
                tg.cancel_scope.cancel()
            if challenge is not None:
                raise SignInRequired(challenge)

    @contextlib.asynccontextmanager
    async def _start(self, connection: Connection, *, handshake_only: bool) -> AsyncIterator[LiveSession]:
        """Start a session on ``connection`` and list the catalog, within the start timeout."""
        async with self.session.connect(connection, on_notice=self._notice) as live:
            try:
                with anyio.fail_after(self._start_timeout_s):
                    await start_session(live, handshake_only=handshake_only)
                    self._catalog = await list_catalog(
                        self.name, live.session, live.listings, Catalog(), timeout_s=self.config.timeout_s
                    )
            except MCPError as exc:
                if not is_connection_closed(exc):
                    raise ConnectError(
                        f"the server answered with an error while starting: {exc.error.message}"
                    ) from exc
                with anyio.move_on_after(LOSS_REASON_WAIT_S):
                    await connection.lost.wait()
                why = connection.loss_reason()
                raise ConnectError(f"the server closed the connection while starting: {why}") from exc
            except TimeoutError as exc:
                raise ConnectError(f"the server did not finish starting within {self._start_timeout_s:g} s") from exc
            yield live

    async def _listen_for_changes(self, live: LiveSession) -> None:
        try:
            await live.listen_for_changes()
        except Exception as exc:  # without the stream the catalog only goes stale; the server still works
            logger.warning("server %r: listening for list changes failed: %s", self.name, exc)

    def _notice(self, notification: Notice) -> None:
        if self._on_notice is not None:
            self._on_notice(self.name, notification)

    async def _refresh_on_notice(self, live: LiveSession) -> None:
        while True:
            kinds = await live.next_refresh()
            catalog = await list_catalog(self.name, live.session, kinds, self._catalog, timeout_s=self.config.timeout_s)
            if self.session.live is live and catalog != self._catalog:
                self._catalog = catalog
                if self._on_catalog is not None:
                    self._on_catalog(self.name)

    def _describe_failure(self, exc: Exception) -> str:
        """A reason for a failed start, fit for a status: never a traceback, never a secret value."""
        leaf = _leaf(exc)
        if isinstance(leaf, ConnectError | ToolgateError):
            return str(leaf)
        if isinstance(leaf, httpx2.HTTPStatusError):
            return f"{self.config.url} answered HTTP {leaf.response.status_code}"
        if isinstance(leaf, httpx2.TransportError):
            return f"cannot reach {self.config.url}: {type(leaf).__name__}"
        if isinstance(leaf, MCPError):
            return f"the server answered with an error: {leaf.error.message}"
        logger.exception("server %r failed unexpectedly", self.name)
        return f"unexpected error: {type(leaf).__name__}"

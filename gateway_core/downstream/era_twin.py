"""The handshake-era twin of a server reached in 2026-07-28, for agents that speak the handshake era.

A server that speaks both eras may offer each something else: a tool or prompt it lists only to
2026-07-28 clients, a definition that says more in one era (2025-11-25 tasks' ``execution``), a
``tasks`` capability only handshake-era clients are offered, an answer that depends on the era of
the call. Directly, a handshake-era client sees the server's handshake era. Toolgate reaches each
server in the newest era it speaks (``session.start_session``), so beside such a server's session it
starts a second one with the handshake only: the twin. A handshake-era agent's listings and calls
then go to the twin, and it sees what it would see directly.

Most servers offer both eras the same. So the twin is compared once it is ready: when it lists
exactly what the 2026-07-28 session lists and offers no tasks, it is stopped at once and every agent
is served by the one session (the cost is one short-lived extra connection, or process for a stdio
server, each time the server starts). A twin that differs is kept as long as the server's session and
restarted by its own supervisor if it fails; while it is not ready, handshake-era agents are served by
the 2026-07-28 session, as they are when the twin cannot start at all (that is logged once). Until the
comparison is done (and a twin not kept has stopped), handshake-era agents' listings and calls wait for
it, for a few seconds at most.

A server that Toolgate signs in to (OAuth, ``oauth.py``) gets no twin: a second session would refresh
the one sign-in's rotating tokens behind the first one's back. The twin's resource updates are dropped
(the 2026-07-28 session delivers those); its log messages and task status notifications reach agents
like the server's own. Its state is not the server's status. What
only the twin lists is routed too (``DownstreamServer.routed_catalog``) and listed to handshake-era
agents only; resources are routed as the 2026-07-28 session lists them.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio

from gateway_core.downstream.base import Catalog, ServerState

if TYPE_CHECKING:
    from gateway_core.downstream.server import DownstreamServer

logger = logging.getLogger(__name__)


class HandshakeTwin:
    """Whether one server has a handshake-era twin serving handshake-era agents, and which.

    Args:
        name: the server's name, for the log.
        on_change: called whenever what handshake-era agents are served changes (the twin is kept,
            dropped, becomes ready or not, or lists something new).
    """

    def __init__(self, name: str, on_change: Callable[[], None]) -> None:
        self._name = name
        self._on_change = on_change
        self._kept: DownstreamServer | None = None
        self._settled = anyio.Event()
        self._settled.set()
        self.generation = 0
        """Goes up each time what handshake-era agents are served may have changed."""

    @property
    def serving(self) -> DownstreamServer | None:
        """The twin that serves handshake-era agents now; None: the 2026-07-28 session serves everyone."""
        kept = self._kept
        return kept if kept is not None and kept.status.state is ServerState.READY else None

    def expect(self) -> None:
        """A twin is about to be started and compared: ``settled`` waits for the verdict from now on."""
        if self._settled.is_set():
            self._settled = anyio.Event()

    def serving_now(self, server: DownstreamServer) -> DownstreamServer | None:
        """The server handshake-era agents are served by (``serving``, else ``server``); None while not settled."""
        if not self._settled.is_set():
            return None
        kept = self._kept
        return kept if kept is not None and kept.status.state is ServerState.READY else server

    @property
    def is_settled(self) -> bool:
        """Whether it is known now whether a twin serves handshake-era agents (``settled`` would return at once)."""
        return self._settled.is_set()

    async def settled(self, within_s: float) -> None:
        """Until it is known whether a twin serves handshake-era agents (at most ``within_s``)."""
        if self._settled.is_set():  # as almost always: no cancel scope to build for every request
            return
        with anyio.move_on_after(within_s):
            await self._settled.wait()

    def changed(self) -> None:
        """What handshake-era agents are served changed (a twin was kept or dropped)."""
        self.generation += 1
        self._on_change()

    def twin_changed(self) -> None:
        """The twin's state or catalog changed: that matters to handshake-era agents once it is kept."""
        if self._kept is not None:
            self.changed()

    async def run(self, twin: DownstreamServer, modern_catalog: Callable[[], Catalog], start_within_s: float) -> None:
        """Run ``twin`` beside the 2026-07-28 session until cancelled; keep it only if it differs from it."""
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(twin.run)
                with anyio.move_on_after(start_within_s):
                    await twin.tried.wait()
                status = twin.status
                if status.state is not ServerState.READY:
                    logger.warning(
                        "server %r: the handshake-era session for handshake-era agents did not start (%s); "
                        "they are served in 2026-07-28",
                        self._name,
                        status.reason or status.state.value,
                    )
                elif same_in_both_eras(twin, modern_catalog()):
                    logger.debug("server %r offers the same in both eras: one session serves every agent", self._name)
                else:
                    logger.info(
                        "server %r offers handshake-era clients something other than 2026-07-28 clients: "
                        "handshake-era agents are served by a session of their era",
                        self._name,
                    )
                    self._kept = twin
                    self.changed()
                    self._settled.set()
                    await anyio.sleep_forever()
                tg.cancel_scope.cancel()  # settled once the twin is gone (finally)
        finally:
            self._settled.set()
            if self._kept is not None:
                self._kept = None
                self.changed()


def same_in_both_eras(twin: DownstreamServer, modern: Catalog) -> bool:
    """Whether the READY ``twin`` lists exactly ``modern`` and offers nothing only its era has (tasks)."""
    live = twin.session.live
    return _wire(twin.catalog) == _wire(modern) and live is not None and not live.task_calls


def with_only_in(modern: Catalog, handshake: Catalog) -> Catalog:
    """``modern`` plus the tools and prompts only ``handshake`` lists (so that they can be routed)."""
    tools = {tool.name for tool in modern.tools}
    prompts = {prompt.name for prompt in modern.prompts}
    return dataclasses.replace(
        modern,
        tools=modern.tools + tuple(tool for tool in handshake.tools if tool.name not in tools),
        prompts=modern.prompts + tuple(prompt for prompt in handshake.prompts if prompt.name not in prompts),
    )


def _wire(catalog: Catalog) -> list[list[dict[str, Any]]]:
    """``catalog`` as it is sent (the SDK parses each era into its own classes, never equal to the other's)."""
    kinds = (catalog.tools, catalog.resources, catalog.resource_templates, catalog.prompts)
    return [[item.model_dump(mode="json", by_alias=True, exclude_none=True) for item in kind] for kind in kinds]

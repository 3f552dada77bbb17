"""Downstream MCP servers: one supervised client session per configured server.

Layout: ``base`` (states, catalog, status, the ``Connection`` every transport yields), ``transports``
(the table that opens one: ``stdio``, ``remote``; ``memory`` for tests), ``raw_lane`` (a stdio
connection's lane for the hot path's calls), ``stderr`` (captured stderr),
``catalog`` (listing), ``live`` (one connected session, restart backoff), ``session`` (requests to a
server and its questions back, across connections), ``offer`` (the client capabilities a server is
told), ``server`` (the supervisor, ``DownstreamServer``), ``pool`` (all of them), ``per_agent`` (each
agent's own process of a server).
"""

from gateway_core.downstream.base import Catalog, ResolveFn, ServerState, ServerStatus
from gateway_core.downstream.pool import DownstreamPool
from gateway_core.downstream.server import DownstreamServer

__all__ = ["Catalog", "DownstreamPool", "DownstreamServer", "ResolveFn", "ServerState", "ServerStatus"]

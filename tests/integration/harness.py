"""A real gateway on 127.0.0.1:0 with real downstream processes, and real MCP clients to talk to it.

async with running_gateway({"fake": stdio_fake()}) as gw:
    async with agent_client(gw.url, gw.tokens["agent-a"]) as client:
        await client.call_tool("fake__echo", {"text": "hi"})
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

import anyio
import httpx2
import mcp_types as types
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from gateway_core.agents import AgentDirectory
from gateway_core.config import load_config
from gateway_core.downstream.base import ServerState, ServerStatus
from gateway_core.downstream.oauth import SignIns
from gateway_core.events import StderrLine
from gateway_core.frontend.listen import bind
from gateway_core.gateway import Endpoint, Gateway
from gateway_core.launch.environment import LaunchEnvironment
from gateway_core.paths import Paths
from gateway_core.secrets import open_secret_store, resolve
from tests.fakes.launch import fake_command
from tests.fakes.third_party import time_server_command

Mode = Literal["legacy", "2026-07-28"]
BOTH_ERAS: tuple[Mode, ...] = ("legacy", "2026-07-28")
START_TIMEOUT_S = 30.0


def stdio_fake(*extra: str, **settings: Any) -> dict[str, Any]:
    """A config entry that runs the SDK-built fake server over stdio."""
    command, args = fake_command(*extra)
    return {"command": command, "args": args, **settings}


def time_server() -> dict[str, Any]:
    """A config entry for the real third-party `mcp-server-time` from PyPI."""
    command, args = time_server_command()
    return {"command": command, "args": args}


class StderrLog:
    """Every stderr line the gateway's stdio servers wrote, with a way to wait for one."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []
        self._added = anyio.Event()

    def add(self, server: str, line: str) -> None:
        self.lines.append((server, line))
        self._added.set()
        self._added = anyio.Event()

    async def wait_for(self, server: str, text: str) -> None:
        with anyio.fail_after(START_TIMEOUT_S):
            while not any(s == server and text in line for s, line in self.lines):
                await self._added.wait()


@dataclass
class RunningGateway:
    gateway: Gateway
    endpoint: Endpoint
    tokens: dict[str, str]
    paths: Paths
    stderr: StderrLog

    @property
    def url(self) -> str:
        return self.endpoint.url

    @property
    def base(self) -> str:
        return self.url.removesuffix("/mcp")

    async def wait_ready(self, *names: str) -> None:
        """Wait until the named servers (all, by default) are READY and routed."""
        wanted = set(names) or {s.name for s in self.gateway.statuses()}
        with anyio.fail_after(START_TIMEOUT_S):
            while not self._settled(wanted):
                await self.gateway.wait_routes_rebuilt()

    async def wait_state(self, name: str, state: ServerState) -> None:
        with anyio.fail_after(START_TIMEOUT_S):
            while self.status(name).state is not state:
                await self.gateway.wait_routes_rebuilt()

    def status(self, name: str) -> ServerStatus:
        return next(s for s in self.gateway.statuses() if s.name == name)

    def _settled(self, wanted: set[str]) -> bool:
        states = {s.name: s.state for s in self.gateway.statuses()}
        if any(states.get(name) is not ServerState.READY for name in wanted):
            return False
        routed = {route.server for route in self.gateway.routes.tools.values()}
        return all(name in routed or not self.gateway.catalog(name).tools for name in wanted)


def write_config(paths: Paths, servers: Mapping[str, Any], agents: Mapping[str, str], **gateway: Any) -> None:
    paths.config_file.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "gateway": {"port": 0, **gateway},
        "servers": dict(servers),
        "agents": {agent_id: {"name": name} for agent_id, name in agents.items()},
    }
    paths.config_file.write_text(json.dumps(document, indent=2))


@asynccontextmanager
async def running_gateway(
    servers: Mapping[str, Any],
    *,
    agents: tuple[str, ...] = ("agent-a",),
    policies: Mapping[str, Mapping[str, Any]] | None = None,
    launch: LaunchEnvironment | None = None,
    **gateway_settings: Any,
) -> AsyncIterator[RunningGateway]:
    """Run a gateway for ``servers`` with one token per agent.

    Agents allow everything unless ``policies`` gives them a ``default`` and ``rules``; stdio servers
    start from ``launch`` (this process's environment when None).
    """
    paths = Paths.from_env(os.environ)
    paths.ensure_dirs()
    write_config(paths, servers, {}, **gateway_settings)
    store = open_secret_store(paths)
    directory = AgentDirectory(paths.config_file, store)
    tokens = {agent: directory.add(agent, agent.title()) for agent in agents}
    raw = json.loads(paths.config_file.read_text())
    for agent in agents:
        raw["agents"][agent].update({"default": "allow", **(policies or {}).get(agent, {})})
    paths.config_file.write_text(json.dumps(raw, indent=2))
    config = load_config(paths.config_file)
    stderr = StderrLog()
    gateway = Gateway(
        config,
        resolve=lambda values: resolve(values, store),
        read_tokens=directory.read_tokens,
        paths=paths,
        config_path=paths.config_file,
        sign_ins=SignIns(store),
        launch=launch,
    )
    gateway.events.on(StderrLine, lambda event: stderr.add(event.server, event.line))
    sock = bind("127.0.0.1", 0)
    with sock:
        async with anyio.create_task_group() as tg:
            endpoint = await tg.start(gateway.run, sock)
            running = RunningGateway(gateway, endpoint, tokens, paths, stderr)
            try:
                yield running
            finally:
                gateway.stop()


def text_of(result: Any) -> str:
    """The text of a tool result's first content block."""
    content = result.content[0]
    assert isinstance(content, types.TextContent), content
    return content.text


@asynccontextmanager
async def agent_client(url: str, token: str | None, *, mode: Mode = "legacy", **options: Any) -> AsyncIterator[Client]:
    """An SDK client connected to ``url`` as the agent holding ``token``."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=60)) as http:
        async with Client(streamable_http_client(url, http_client=http), mode=mode, cache=None, **options) as client:
            yield client

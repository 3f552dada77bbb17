"""``toolgate serve``: the composition root of the headless gateway.

Reads and checks the config (refusing to start on any problem, saying which), takes the instance
lock and the port, then runs the gateway until SIGINT or SIGTERM and shuts it down in bounded time.

It listens first: the port answers ``/health`` (and holds every other request, see
``frontend/starting.py``) while the MCP SDK and the gateway are imported in a worker thread and built,
which takes most of a second on a quiet machine and several on a busy one. So this module imports
nothing of the SDK.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import anyio
import anyio.abc
import anyio.to_thread

from gateway_core.agents import AgentDirectory
from gateway_core.config import Config, ensure_config, load_config
from gateway_core.errors import ConfigError, InstanceError, SecretError
from gateway_core.frontend.listen import EmbeddedUvicorn, bind
from gateway_core.frontend.starting import StartingApp
from gateway_core.heap import freeze_start_up
from gateway_core.instance import InstanceLock
from gateway_core.launch.environment import resolve_launch_environment
from gateway_core.paths import Paths
from gateway_core.secrets import SecretStore, open_secret_store, resolve
from gateway_core.token_files import TokenFiles
from gateway_core.version import toolgate_version

if TYPE_CHECKING:
    from gateway_core.gateway import Endpoint, Gateway

logger = logging.getLogger("toolgate")


def serve(paths: Paths, config_path: Path | None, port: int | None) -> int:
    """Run the gateway headless until a signal stops it; returns the process exit code."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if config_path is None:
        config_path, created = ensure_config(paths)
        if created:
            _say(f"Created a default config with no servers at {config_path}; add servers there.")
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        _say(f"Toolgate did not start: {config_path} has {len(exc.problems)} problem(s):")
        for problem in exc.problems:
            _say(f"  {problem}")
        _say("Fix them (check with `toolgate config check`) and start again.")
        return 1
    try:
        store = open_secret_store(paths)
        with InstanceLock(paths):
            return _serve_locked(paths, config, config_path, store, port)
    except (InstanceError, SecretError) as exc:
        _say(f"Toolgate did not start: {exc}")
        return 1


def _serve_locked(paths: Paths, config: Config, config_path: Path, store: SecretStore, port: int | None) -> int:
    host = config.gateway.host
    sock = bind(host, config.gateway.port if port is None else port)
    if not _is_loopback(host):
        _say(f"WARNING: gateway.host is {host}: agents on other machines can reach this gateway (tokens still apply).")
    agents = AgentDirectory(config_path, store, token_files=TokenFiles.of(paths))
    if not agents.list():
        _say("No agents yet: create one with `toolgate agents add ID` and give its token to your MCP client.")

    def resolve_with_store(values: Mapping[str, str]) -> dict[str, str]:
        return resolve(values, store)

    paths.ensure_dirs()
    launch = resolve_launch_environment(gui=False)
    logger.info("stdio servers get the PATH of %s (%s)", launch.source.value, launch.why)

    def build_gateway() -> Gateway:
        from gateway_core.downstream.oauth import SignIns
        from gateway_core.gateway import Gateway

        return Gateway(
            config,
            resolve=resolve_with_store,
            read_tokens=agents.read_tokens,
            paths=paths,
            config_path=config_path,
            sign_ins=SignIns(store),
            launch=launch,
        )

    with sock:
        asyncio.run(_run(build_gateway, sock))
    _say("Toolgate stopped.")
    return 0


async def _run(build_gateway: Callable[[], Gateway], sock: socket.socket) -> None:
    """Listen on ``sock`` at once, then build the gateway and hand it the port; serve until a signal."""
    loop = asyncio.get_running_loop()
    gateway: Gateway | None = None
    building = anyio.CancelScope()

    def stop() -> None:
        if gateway is not None:
            gateway.stop()
        else:
            building.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop)
        except (NotImplementedError, RuntimeError):  # Windows: Ctrl+C arrives as KeyboardInterrupt
            signal.signal(sig, lambda *_: loop.call_soon_threadsafe(stop))
    host, port = sock.getsockname()[:2]
    starting = StartingApp(host, port, version=toolgate_version())
    http = EmbeddedUvicorn.agent_port(starting)
    async with anyio.create_task_group() as tg:
        tg.start_soon(http.serve_until_exit, sock)
        await http.listening.wait()
        with building:
            await anyio.to_thread.run_sync(_import_gateway, abandon_on_cancel=True)
            gateway = build_gateway()
        if gateway is None:  # stopped while starting
            starting.close()
            http.should_exit = True
            return
        freezing = anyio.CancelScope()  # waits for the servers' first start; ends with the gateway

        async def run_gateway(*, task_status: anyio.abc.TaskStatus[Endpoint]) -> None:
            assert gateway is not None
            try:
                await gateway.run(sock, listening=(http, starting), task_status=task_status)
            finally:
                freezing.cancel()

        endpoint = await tg.start(run_gateway)
        print(f"Toolgate is serving MCP at {endpoint.url}", flush=True)
        _say("Press Ctrl+C to stop.")
        with freezing:
            await gateway.wait_ready()
            freeze_start_up()


def _import_gateway() -> None:
    """Import the gateway and what it needs (the MCP SDK takes most of the time); run in a worker thread."""
    import gateway_core.downstream.oauth
    import gateway_core.gateway  # noqa: F401


def exit_at_once(code: int) -> NoReturn:
    """End the process of a gateway that has stopped, skipping the interpreter's teardown.

    By then every server is stopped, the audit log flushed and closed, the instance lock and the
    control file released; what is left is freeing thousands of modules' objects (about a second
    with the SDK loaded), which only delays the exit a supervisor or a person waits for.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)

"""``toolgate serve``: the composition root of the headless gateway.

Reads and checks the config (refusing to start on any problem, saying which), takes the instance
lock and the port, then runs the gateway until SIGINT or SIGTERM and shuts it down in bounded time.
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
from collections.abc import Mapping
from pathlib import Path
from typing import NoReturn

import anyio

from gateway_core.agents import AgentDirectory
from gateway_core.config import Config, ensure_config, load_config
from gateway_core.downstream.oauth import SignIns
from gateway_core.errors import ConfigError, InstanceError, SecretError
from gateway_core.frontend.listen import bind
from gateway_core.gateway import Gateway
from gateway_core.instance import InstanceLock
from gateway_core.launch.environment import resolve_launch_environment
from gateway_core.paths import Paths
from gateway_core.secrets import SecretStore, open_secret_store, resolve
from gateway_core.token_files import TokenFiles

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
    gateway = Gateway(
        config,
        resolve=resolve_with_store,
        read_tokens=agents.read_tokens,
        paths=paths,
        config_path=config_path,
        sign_ins=SignIns(store),
        launch=launch,
    )
    with sock:
        asyncio.run(_run(gateway, sock))
    _say("Toolgate stopped.")
    return 0


async def _run(gateway: Gateway, sock: socket.socket) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, gateway.stop)
        except (NotImplementedError, RuntimeError):  # Windows: Ctrl+C arrives as KeyboardInterrupt
            signal.signal(sig, lambda *_: loop.call_soon_threadsafe(gateway.stop))
    async with anyio.create_task_group() as tg:
        endpoint = await tg.start(gateway.run, sock)
        print(f"Toolgate is serving MCP at {endpoint.url}", flush=True)
        _say("Press Ctrl+C to stop.")


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

"""``toolgate login NAME`` / ``toolgate logout NAME``: sign in to a remote server that needs it, or out.

The tokens go to the secret store, never to config.json or the terminal. A running gateway is told
through its control channel and looks at the store at once (``downstream/server.py``; without
word, within ``SIGN_IN_POLL_S``), so neither command needs Toolgate to be running, or restarted.
The browser is opened with Python's ``webbrowser`` (``BROWSER`` is honoured); the URL is always
printed too, for a headless machine.
"""

from __future__ import annotations

import argparse
import logging
import webbrowser

import anyio
import anyio.to_thread

from gateway_core.cli.control_client import ControlClient
from gateway_core.cli.output import EXIT_OK, say
from gateway_core.config import ServerConfig, load_config
from gateway_core.control_file import ControlError, read_control_file
from gateway_core.downstream.oauth import SignIns
from gateway_core.downstream.sign_in import SIGN_IN_TIMEOUT_S, SignInError, sign_in_server, sign_out_server
from gateway_core.paths import Paths
from gateway_core.secrets import open_secret_store


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``login`` and ``logout`` to the ``toolgate`` command."""
    login = subparsers.add_parser("login", help="sign in to a remote server that needs it (OAuth, in the browser)")
    login.add_argument("name", metavar="NAME", help="the server's name in config.json")
    login.add_argument(
        "--timeout", type=float, default=SIGN_IN_TIMEOUT_S, metavar="S", help="how long to wait for the sign-in"
    )
    login.add_argument("--no-browser", action="store_true", help="only print the URL to open")
    login.set_defaults(run=_login)
    logout = subparsers.add_parser("logout", help="sign out of a remote server (revoke and delete its tokens)")
    logout.add_argument("name", metavar="NAME", help="the server's name in config.json")
    logout.set_defaults(run=_logout)


def _remote_server(paths: Paths, name: str) -> ServerConfig:
    config = load_config(paths.config_file)
    server = config.servers.get(name)
    if server is None:
        raise SignInError(f"there is no server {name!r} in {paths.config_file}")
    if server.url is None or server.transport == "stdio":
        raise SignInError(f"server {name!r} is not a remote server: only http and sse servers sign in")
    return server


def _login(args: argparse.Namespace, paths: Paths) -> int:
    name: str = args.name
    server = _remote_server(paths, name)
    assert server.url is not None
    store = open_secret_store(paths)
    # The SDK logs its flow's errors with tracebacks; the one sentence below says what went wrong.
    logging.getLogger("mcp.client.auth").addHandler(logging.NullHandler())
    logging.getLogger("mcp.client.auth").propagate = False

    async def show(url: str) -> bool:
        say(f"Sign in to {name} in your browser (waiting up to {args.timeout:g} s). If no browser opens, visit:")
        say(f"  {url}")
        if args.no_browser:
            return False
        return await anyio.to_thread.run_sync(webbrowser.open, url)

    storage = SignIns(store).of(name, offer_tokens=False)
    signed_in = anyio.run(lambda: sign_in_server(storage, server, store, open_url=show, timeout_s=args.timeout))
    where = f" at {signed_in.issuer}" if signed_in.issuer else ""
    granted = f"; scope: {signed_in.scope}" if signed_in.scope else ""
    say(f"Signed in to {name}{where}{granted}. The tokens are in {store.backend_name}.")
    say(_tell_running_gateway(paths, name, "connects to it now", "uses the tokens when it starts"))
    return EXIT_OK


def _logout(args: argparse.Namespace, paths: Paths) -> int:
    name: str = args.name
    server = _remote_server(paths, name)
    store = open_secret_store(paths)
    if not anyio.run(sign_out_server, SignIns(store).of(name), server, store):
        say(f"Toolgate was not signed in to {name}.")
        return EXIT_OK
    say(f"Signed out of {name}: its tokens are revoked where the server allows it, and deleted.")
    say(_tell_running_gateway(paths, name, "stops using them now", "starts without them"))
    return EXIT_OK


def _tell_running_gateway(paths: Paths, name: str, running: str, stopped: str) -> str:
    """Tell a running Toolgate that ``name``'s sign-in changed; what that means, for the person."""
    try:
        ControlClient(read_control_file(paths)).sign_in_changed(name)
    except ControlError:
        return f"Toolgate does not run here now (or could not be told): it {stopped}."
    return f"The running Toolgate {running}."

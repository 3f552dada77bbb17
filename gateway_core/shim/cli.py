"""The shim's command line: find the gateway and the token, then pump stdin lines until stdin closes.

stdout carries only the protocol; every diagnostic goes to stderr, one line each.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
from pathlib import Path

TOKEN_ENV = "TOOLGATE_TOKEN"
# As gateway_core.config.NAME_PATTERN; it also names the agent's token file, so nothing else may pass.
AGENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,47}")
EXIT_OK = 0
EXIT_REJECTED = 1
EXIT_USAGE = 2
# When stdin closes, answers still on their way get this long to reach the agent.
FINISH_TIMEOUT_S = 1.0


class _Terminated(Exception):
    """SIGTERM arrived: stop like stdin closed."""


def _log(line: str) -> None:
    try:
        sys.stderr.write(f"toolgate-shim: {line}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _version() -> str:
    """Toolgate's version, from the ``toolgate-X.Y.Z.dist-info`` folder an install or bundle carries.

    Looking for that folder on ``sys.path`` is much quicker than ``importlib.metadata`` (whose
    imports cost about 20 ms), which stays the fallback.
    """
    prefix, suffix = "toolgate-", ".dist-info"
    for folder in sys.path:
        try:
            names = os.listdir(folder or ".")
        except OSError:
            continue
        for name in names:
            if name.startswith(prefix) and name.endswith(suffix):
                return name[len(prefix) : -len(suffix)]
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("toolgate")
    except PackageNotFoundError:
        return "0+unknown"


class _VersionAction(argparse.Action):
    # Reading package metadata costs start-up time, so only when asked.
    def __call__(self, parser: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        sys.stdout.write(f"toolgate-shim {_version()}\n")
        parser.exit()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="toolgate-shim",
        description=(
            "Connect an agent that only speaks MCP over stdio to a running Toolgate. "
            f"The agent's token comes from --token-file, {TOKEN_ENV}, or the agent's token file that "
            "`toolgate connect --project` writes in Toolgate's state folder."
        ),
    )
    parser.add_argument("--agent", required=True, metavar="ID", help="the agent id given to `toolgate agents add`")
    parser.add_argument(
        "--url",
        metavar="URL",
        help="Toolgate's URL (default: the one your running Toolgate published; it must prove it is that Toolgate)",
    )
    parser.add_argument("--token-file", metavar="PATH", help=f"read the token from this file, not {TOKEN_ENV}")
    parser.add_argument("--version", action=_VersionAction, nargs=0, help="show the version and exit")
    return parser


def _token(args: argparse.Namespace, default_file: Path) -> str | None:
    """The agent's token: from --token-file, else TOOLGATE_TOKEN, else the agent's token file."""
    if args.token_file is not None:
        return _read_token(Path(args.token_file), missing_ok=False)
    from_env = os.environ.get(TOKEN_ENV, "").strip()
    return from_env or _read_token(default_file, missing_ok=True)


def _read_token(path: Path, *, missing_ok: bool) -> str | None:
    try:
        with open(path, encoding="utf-8") as file:
            return file.read().strip() or None
    except FileNotFoundError:
        if not missing_ok:
            _log(f"the token file {path} does not exist")
        return None
    except OSError as exc:
        _log(f"cannot read the token file {path}: {exc.strerror or exc}")
        return None


def main(argv: list[str] | None = None) -> int:
    """Run the shim until stdin closes or SIGTERM; 1 if Toolgate rejected the token, 2 on bad usage."""
    args = _parser().parse_args(argv)
    # Imported only now, so `--version` and usage errors do not pay for http.client and ssl.
    from . import locate
    from .bridge import Bridge, Output
    from .wire import GatewayAddress

    if not AGENT_ID.fullmatch(args.agent):
        _log(
            f"{args.agent!r} is not an agent id: use letters, digits, '_', '.' or '-' (starting with a letter or digit)"
        )
        return EXIT_USAGE
    environ = dict(os.environ)
    token = _token(args, locate.token_file(environ, args.agent))
    if token is None:
        _log(
            f"no token for agent {args.agent!r}: run `toolgate connect CLIENT --project DIR` for this project "
            f"(it writes {locate.token_file(environ, args.agent)}), or set {TOKEN_ENV} (or pass --token-file) "
            f"to the token `toolgate agents add {args.agent}` printed"
        )
        return EXIT_USAGE
    explicit: GatewayAddress | None = None
    if args.url is not None:
        try:
            explicit = GatewayAddress.parse(args.url)
        except ValueError as exc:
            _log(str(exc))
            return EXIT_USAGE

    def find() -> GatewayAddress:
        if explicit is not None:
            return explicit
        found = locate.published(environ)
        if found is None:
            return GatewayAddress.nowhere()
        try:
            return GatewayAddress.parse(found[0], identity_key=found[1])
        except ValueError:
            return GatewayAddress.nowhere()

    def start() -> bool:
        _log("Toolgate is not running; starting `toolgate serve`")
        return locate.start_toolgate(environ) is not None

    bridge = Bridge(
        find, token, args.agent, Output(sys.stdout.buffer), _log, start_gateway=None if explicit is not None else start
    )

    def on_sigterm(signum: int, frame: object) -> None:
        raise _Terminated

    signal.signal(signal.SIGTERM, on_sigterm)
    stdin = sys.stdin.buffer
    try:
        while line := stdin.readline():
            bridge.handle_line(line)
        bridge.finish(FINISH_TIMEOUT_S)
    except (_Terminated, KeyboardInterrupt):
        pass
    finally:
        bridge.close()
    return EXIT_REJECTED if bridge.rejected else EXIT_OK

"""Where the real third-party MCP servers used by the tests live, and how to start them."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import NoReturn

import pytest

# scripts/test installs them here with npm (it needs the npm registry, and a minute on a cold cache).
NPM_DIR = Path(__file__).resolve().parents[2] / ".cache/npm"
EVERYTHING_BIN = NPM_DIR / "node_modules/.bin/mcp-server-everything"
TS_SDK = NPM_DIR / "node_modules/@modelcontextprotocol/sdk/package.json"
TS_CLIENT = Path(__file__).with_name("ts_client.mjs")


def _missing(message: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def everything_server() -> Path:
    """The npm reference server (TypeScript SDK 1.x, handshake era only); in CI its absence fails the test."""
    if not EVERYTHING_BIN.exists():
        _missing(f"{EVERYTHING_BIN} is missing; scripts/test installs it with npm")
    return EVERYTHING_BIN


def typescript_client_command() -> list[str]:
    """``node ts_client.mjs NPM_DIR``, the TypeScript SDK client driver (TARGET and PLAN follow); CI fails without."""
    node = shutil.which("node")
    if node is None:
        _missing("node is needed to run the TypeScript SDK client")
    if not TS_SDK.exists():
        _missing(f"{TS_SDK.parent} is missing; scripts/test installs it with npm")
    return [str(node), str(TS_CLIENT), str(NPM_DIR)]


def time_server_command() -> tuple[str, list[str]]:
    """`mcp-server-time` from PyPI, installed with the test dependencies."""
    return sys.executable, ["-m", "mcp_server_time", "--local-timezone", "UTC"]

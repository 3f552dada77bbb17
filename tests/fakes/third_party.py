"""Where the real third-party MCP servers used by the tests live, and how to start them."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# scripts/test installs it here with npm (it needs the npm registry, and a minute on a cold cache).
EVERYTHING_BIN = Path(__file__).resolve().parents[2] / ".cache/npm/node_modules/.bin/mcp-server-everything"


def everything_server() -> Path:
    """The npm reference server (TypeScript SDK 1.x, handshake era only); in CI its absence fails the test."""
    if not EVERYTHING_BIN.exists():
        message = f"{EVERYTHING_BIN} is missing; scripts/test installs it with npm"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return EVERYTHING_BIN


def time_server_command() -> tuple[str, list[str]]:
    """`mcp-server-time` from PyPI, installed with the test dependencies."""
    return sys.executable, ["-m", "mcp_server_time", "--local-timezone", "UTC"]

"""``toolgate-shim``: the stdio bridge for IDEs that can only launch an MCP server as a subprocess.

Standard library only (IDEs start it often, so start-up time matters): it must not import pydantic,
the SDK, platformdirs or any ``gateway_core`` module outside this package.
"""

from __future__ import annotations

from .cli import main

__all__ = ["main"]

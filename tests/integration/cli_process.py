"""Run ``toolgate`` as a person would: a real process, its exit code, stdout and stderr."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import anyio

CLI_TIMEOUT_S = 60.0


async def toolgate(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    """Run ``toolgate ARGS`` (``stdin`` piped in, else none); its exit code, stdout and stderr."""
    with anyio.fail_after(CLI_TIMEOUT_S):
        done = await anyio.run_process(
            [sys.executable, "-m", "gateway_core.cli", *args],
            input=(stdin or "").encode(),
            env=dict(os.environ),
            check=False,
        )
    return done.returncode, done.stdout.decode(), done.stderr.decode()


async def json_lines(*args: str) -> list[dict[str, Any]]:
    """The objects of a ``--json`` listing (one per line); the command must succeed."""
    code, out, err = await toolgate(*args)
    assert code == 0, err
    return [json.loads(line) for line in out.splitlines()]

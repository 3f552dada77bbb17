"""The official MCP conformance suite passes through Toolgate wherever it passes directly.

``scripts/conformance`` runs ``@modelcontextprotocol/conformance`` (Node 22 and the suite are
installed under .cache on first use) against tests/fakes/conformance_server.py, a server that
implements every scenario, directly and through a real ``toolgate serve`` with ``prefix: ""``.
It exits 0 only if no scenario passes directly but fails through Toolgate.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUN_TIMEOUT_S = 300


def test_every_conformance_scenario_that_passes_directly_passes_through_toolgate():
    if shutil.which("npm") is None:
        message = "npm is needed to install the conformance suite"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    run = subprocess.run(
        [str(ROOT / "scripts/conformance"), "--server", "conformance"],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        cwd=ROOT,
    )

    assert run.returncode == 0, run.stdout + run.stderr
    assert "through Toolgate: 30 pass\n" in run.stdout, run.stdout

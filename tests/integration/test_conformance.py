"""The official MCP conformance suite passes through Toolgate wherever it passes directly, in both eras.

``scripts/conformance`` runs ``@modelcontextprotocol/conformance`` (Node 22 and the suite are
installed under .cache on first use) against tests/fakes/conformance_server.py, a server built on
the SDK that serves both protocol eras, directly and through a real ``toolgate serve`` with
``prefix: ""``: the suite's requirements for 2025-11-25 (the handshake era) and for 2026-07-28. It
exits 0 only if every check that fails through Toolgate but not directly is one listed in
scripts/conformance-expected.toml, and every listed one still fails. It runs with Toolgate's hot path
on and off (``TOOLGATE_HOT_PATH``): both must pass the same.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from gateway_core.gateway import HOT_PATH_ENV

ROOT = Path(__file__).resolve().parents[2]
# Both eras take about 3 minutes on two cores, more on a busy machine; the first run also installs Node 22
# and the suite.
RUN_TIMEOUT_S = 480
# On SIGTERM the script stops every process it started (each stop is bounded) before it exits.
STOP_TIMEOUT_S = 30


@pytest.mark.timeout(RUN_TIMEOUT_S + 2 * STOP_TIMEOUT_S + 60)
@pytest.mark.parametrize("hot_path", ["1", "0"], ids=["hot path", "long way"])
def test_every_conformance_check_that_passes_directly_passes_through_toolgate_in_both_eras_or_is_listed(hot_path: str):
    if shutil.which("npm") is None:
        message = "npm is needed to install the conformance suite"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    argv = [str(ROOT / "scripts/conformance"), "--server", "conformance"]
    env = {**os.environ, HOT_PATH_ENV: hot_path}
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env) as run:
        try:
            stdout, stderr = run.communicate(timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            run.terminate()  # first, not kill: the processes the script started would outlive it
            try:
                stdout, stderr = run.communicate(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                run.kill()
                stdout, stderr = run.communicate()
            pytest.fail(f"scripts/conformance ran for over {RUN_TIMEOUT_S} s:\n{stdout}{stderr}")

    assert run.returncode == 0, stdout + stderr
    # Only what passes directly is compared: the server must keep passing all of it.
    # (At least: whether a padded Mcp-Name passes directly depends on the uvicorn release, 0.55 trims it.)
    passed = {era: int(count) for era, count in re.findall(r"conformance (\S+): direct (\d+) pass", stdout)}
    assert passed.get("2025-11-25") == 33, stdout
    assert passed.get("2026-07-28", 0) >= 40, stdout

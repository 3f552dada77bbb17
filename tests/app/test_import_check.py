"""PySide6's check of each imported module, made without keeping the module's source (``app/import_check.py``).

Each test runs a fresh Python process: the check is process-wide, and which modules a process has
imported (and read) is what is measured.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

IMPORT_TWO_MODULES = """
import json, linecache, sys
import PySide6.QtCore
if {lighten}:
    from app.import_check import lighten
    assert lighten()
sys.path.insert(0, {folder!r})
import toolgate_plain_module, toolgate_qt_module
feature = sys.modules["shibokensupport.feature"].pyside_feature_dict
print(json.dumps({{
    "kept": sorted(name for name in linecache.cache if "toolgate_" in name),
    "plain": feature.get("toolgate_plain_module"),
    "qt": feature.get("toolgate_qt_module"),
}}))
"""

COMPARE_WITH_PYSIDES_OWN = """
import json, sys
import PySide6.QtCore
own = sys.modules["shibokensupport.feature"]._mod_uses_pyside
import app.session, app.window, gateway_core.gateway, gateway_core.serve
from app.import_check import uses_pyside
answers = {name: (own(module), uses_pyside(module)) for name, module in list(sys.modules.items())}
print(json.dumps({
    "differ": sorted(name for name, (theirs, ours) in answers.items() if theirs != ours),
    "uses": sorted(name for name, (theirs, _) in answers.items() if theirs),
    "modules": len(answers),
}))
"""


def run_python(code: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return result


@pytest.fixture
def two_modules(tmp_path: Path) -> Path:
    (tmp_path / "toolgate_plain_module.py").write_text("VALUE = 1\n")
    (tmp_path / "toolgate_qt_module.py").write_text("from PySide6.QtCore import QObject\n")
    return tmp_path


def test_modules_imported_after_the_lighter_check_keep_no_source_and_get_pysides_answer(two_modules: Path):
    got = run_python(IMPORT_TWO_MODULES.format(lighten=True, folder=str(two_modules)))
    assert got == {"kept": [], "plain": -1, "qt": 0}


def test_without_it_pyside_keeps_the_source_of_every_module_imported_after_it(two_modules: Path):
    """What the lighter check is for; should a PySide6 release stop doing this, the check can go."""
    got = run_python(IMPORT_TWO_MODULES.format(lighten=False, folder=str(two_modules)))
    assert got["kept"] == [str(two_modules / "toolgate_plain_module.py"), str(two_modules / "toolgate_qt_module.py")]
    assert (got["plain"], got["qt"]) == (-1, 0)


def test_the_lighter_check_answers_as_pysides_own_for_every_module_the_app_imports():
    got = run_python(COMPARE_WITH_PYSIDES_OWN)
    assert got["differ"] == []
    assert isinstance(got["modules"], int) and got["modules"] > 500
    assert isinstance(got["uses"], list)
    assert "app.window" in got["uses"] and "gateway_core.gateway" not in got["uses"]

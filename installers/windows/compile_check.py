"""Check that installers/windows/toolgate.nsi compiles: run makensis and check the installer it writes.

    python installers/windows/compile_check.py [--dist DIR] [--out FILE] [--version X.Y.Z]

Without ``--dist`` it compiles against a throwaway stand-in for the PyInstaller folder (dummy
``toolgate.exe`` and ``toolgate-shim.exe``, one file in ``_internal/``), so it runs on any OS with
NSIS, e.g. Linux CI after ``apt-get install nsis``. With ``--dist`` it compiles the real bundle
(e.g. ``dist/toolgate-0.1.0-windows-amd64``) and the installer is the real one.

Standard library only. Exits 0 when the installer was written, 1 otherwise, with the reason.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SCRIPT = HERE / "toolgate.nsi"
ICON = ROOT / "resources" / "icons" / "rendered" / "toolgate.ico"
# Where the Windows NSIS installer puts makensis when it is not on PATH.
WINDOWS_NSIS_DIRS = ("ProgramFiles(x86)", "ProgramFiles")


def main() -> int:
    """Compile the installer and check it; 0 when it was written."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dist", type=Path, help="a real PyInstaller folder (default: a dummy stand-in)")
    parser.add_argument("--out", type=Path, help="the installer to write (default: a temporary file)")
    parser.add_argument("--version", default=project_version(), help="the version (default: pyproject.toml's)")
    options = parser.parse_args()

    makensis = find_makensis()
    if makensis is None:
        return fail(
            "makensis not found: install NSIS (Debian/Ubuntu: apt-get install nsis; Windows: nsis.sourceforge.io)"
        )

    with tempfile.TemporaryDirectory(prefix="toolgate-nsis-") as temp:
        dist = options.dist.resolve() if options.dist else make_stand_in(Path(temp) / "dist")
        missing = [name for name in ("toolgate.exe", "toolgate-shim.exe") if not (dist / name).is_file()]
        if missing:
            return fail(f"{dist} is not a Windows PyInstaller folder: no {', '.join(missing)}")
        out = (options.out or Path(temp) / f"Toolgate-{options.version}-windows-setup.exe").resolve()
        out.parent.mkdir(parents=True, exist_ok=True)
        out.unlink(missing_ok=True)

        # "-D" rather than "/D": makensis on Linux and macOS takes only "-" options, Windows takes both.
        command = [
            makensis,
            "-V2",  # warnings and errors only
            "-WX",  # a warning fails the check too
            f"-DDIST_DIR={dist}",
            f"-DVERSION={options.version}",
            f"-DOUT_FILE={out}",
            f"-DICON={ICON}",
            str(SCRIPT),
        ]
        say(f"compiling {SCRIPT.relative_to(ROOT)} against {'stand-in ' if options.dist is None else ''}{dist} ...")
        started = time.monotonic()
        result = subprocess.run(command, capture_output=True, text=True)
        elapsed = time.monotonic() - started
        if result.returncode != 0:
            sys.stderr.write(result.stdout + result.stderr)
            return fail(f"makensis exited with {result.returncode}")
        if not out.is_file() or out.stat().st_size == 0:
            return fail(f"makensis succeeded but wrote no installer at {out}")
        with out.open("rb") as file:
            header = file.read(2)
        if header != b"MZ":
            return fail(f"{out} is not a Windows program (no MZ header)")
        where = str(out) if options.out else "a temporary file, now deleted; pass --out to keep it"
        say(f"ok: {out.stat().st_size / 1e6:.2f} MB installer in {elapsed:.1f} s ({where})")
    return 0


def project_version() -> str:
    """The version in pyproject.toml."""
    with (ROOT / "pyproject.toml").open("rb") as file:
        return str(tomllib.load(file)["project"]["version"])


def find_makensis() -> str | None:
    """Find makensis: on PATH, or (on Windows) where the NSIS installer puts it; None when absent."""
    found = shutil.which("makensis")
    if found or sys.platform != "win32":
        return found
    for variable in WINDOWS_NSIS_DIRS:
        candidate = Path(os.environ.get(variable, "")) / "NSIS" / "makensis.exe"
        if candidate.is_file():
            return str(candidate)
    return None


def make_stand_in(dist: Path) -> Path:
    """A folder shaped like the PyInstaller bundle; the programs are placeholders, never run."""
    (dist / "_internal").mkdir(parents=True)
    (dist / "toolgate.exe").write_bytes(b"MZ stand-in for the Toolgate app\n")
    (dist / "toolgate-shim.exe").write_bytes(b"MZ stand-in for toolgate-shim\n")
    (dist / "_internal" / "base_library.zip").write_bytes(b"stand-in for the bundled Python library\n")
    return dist


def say(message: str) -> None:
    """Report progress on stdout."""
    print(message, flush=True)  # noqa: T201 - a command-line check reports on stdout


def fail(message: str) -> int:
    """Say why the check failed on stderr; returns the exit code, 1."""
    sys.stderr.write(f"compile_check: {message}\n")
    return 1


if __name__ == "__main__":
    sys.exit(main())

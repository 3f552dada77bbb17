"""Build Toolgate for this OS: the PyInstaller bundle, then this OS's packages, into ``dist/``.

    python installers/build.py [--no-deb] [--no-appdir] [--keep-venv]

1. A clean virtual environment (``build/venv``; made again whenever pyproject.toml changes) gets
   Toolgate itself (not editable) and PyInstaller, and nothing else, so test-only packages never
   reach the bundle.
2. PyInstaller builds ``installers/toolgate.spec`` into ``dist/toolgate-VERSION-OS-ARCH/``: the
   ``toolgate`` app and ``toolgate-shim`` side by side (on macOS also ``dist/Toolgate.app``).
3. Linux: ``dist/toolgate_VERSION_ARCH.deb`` (installs under /opt/toolgate, with ``toolgate`` and
   ``toolgate-shim`` on PATH, a desktop entry and icons) and ``dist/Toolgate-VERSION-ARCH.AppDir``
   (and the ``.AppImage`` when ``appimagetool`` is on PATH).
   macOS and Windows: see installers/README.md for the .dmg and the NSIS installer.

Set ``TOOLGATE_BUILD_DEBUG=1`` for a debug bundle (console, import tracing, no stripping).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import time
import tomllib
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build"
DIST = ROOT / "dist"
PYINSTALLER = "pyinstaller==6.16.0"
# Debian packages the bundled Qt needs from the system (its xcb platform plugin, OpenGL, fonts);
# PyInstaller bundles Qt itself and every Python extension.
DEB_DEPENDS = [
    "libc6 (>= 2.31)",
    "libegl1",
    "libgl1",
    "libfontconfig1",
    "libfreetype6",
    "libdbus-1-3",
    "libxkbcommon0",
    "libxkbcommon-x11-0",
    "libxcb-cursor0",
    "libxcb-icccm4",
    "libxcb-image0",
    "libxcb-keysyms1",
    "libxcb-randr0",
    "libxcb-render-util0",
    "libxcb-shape0",
    "libxcb-xkb1",
    "libx11-xcb1",
]
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
DESKTOP_ENTRY = """[Desktop Entry]
Type=Application
Name=Toolgate
GenericName=MCP gateway
Comment=One local, secured endpoint in front of every MCP server, with per-agent policy
Exec={exec}
Icon=toolgate
Terminal=false
Categories=Development;Network;
StartupNotify=false
"""


def main() -> int:
    """Build the bundle and this OS's packages; report what was made."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-deb", action="store_true", help="Linux: skip the .deb")
    parser.add_argument("--no-appdir", action="store_true", help="Linux: skip the AppDir / AppImage")
    options = parser.parse_args()
    started = time.monotonic()
    version = project_version()
    python = clean_venv()
    bundle = build_bundle(python, version)
    made = [bundle]
    if sys.platform.startswith("linux"):
        if not options.no_deb:
            made.append(build_deb(bundle, version))
        if not options.no_appdir:
            made.extend(build_appdir(bundle, version))
    say(f"built in {time.monotonic() - started:.0f} s:")
    for path in made:
        say(f"  {path.relative_to(ROOT)}  ({size_mb(path):.1f} MB)")
    return 0


def say(message: str) -> None:
    """Report one line."""
    print(message, flush=True)  # noqa: T201 - a build script reports on stdout


def project_version() -> str:
    """The version in pyproject.toml (the one the built package reports)."""
    with (ROOT / "pyproject.toml").open("rb") as file:
        return str(tomllib.load(file)["project"]["version"])


def arch() -> str:
    """The machine in Debian's words (amd64, arm64) for file names and the .deb."""
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def clean_venv() -> Path:
    """``build/venv`` with Toolgate and PyInstaller only; rebuilt when pyproject.toml changes."""
    folder = BUILD / "venv"
    stamp = folder / ".pyproject-hash"
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + PYINSTALLER.encode()).hexdigest()
    python = folder / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
    if stamp.exists() and stamp.read_text() == wanted and python.exists():
        # Same dependencies: only Toolgate's own code may have changed.
        run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--force-reinstall", str(ROOT)])
        return python
    say("making a clean virtual environment in build/venv ...")
    shutil.rmtree(folder, ignore_errors=True)
    venv.EnvBuilder(with_pip=True, clear=True).create(folder)
    run([str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
    run([str(python), "-m", "pip", "install", "--quiet", str(ROOT), PYINSTALLER])
    stamp.write_text(wanted)
    return python


def build_bundle(python: Path, version: str) -> Path:
    """Run PyInstaller; the one-folder bundle ends up in ``dist/toolgate-VERSION-OS-ARCH``."""
    default_config = BUILD / "default-config.json"
    BUILD.mkdir(exist_ok=True)
    config = subprocess.run(
        [
            str(python),
            "-c",
            "import json; from gateway_core.config import default_config_data as d; print(json.dumps(d(), indent=2))",
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=BUILD,
    ).stdout
    default_config.write_text(config)
    env = {**os.environ, "TOOLGATE_VERSION": version, "TOOLGATE_DEFAULT_CONFIG": str(default_config)}
    say("running PyInstaller ...")
    run(
        [
            str(python),
            "-m",
            "PyInstaller",
            "--noconfirm",
            "--clean",
            "--log-level",
            "WARN",
            "--distpath",
            str(BUILD / "pyinstaller"),
            "--workpath",
            str(BUILD / "pyinstaller-work"),
            str(ROOT / "installers" / "toolgate.spec"),
        ],
        env=env,
        cwd=BUILD,  # not the source tree: its toolgate.egg-info must not stand in for the installed metadata
    )
    os_name = {"linux": "linux", "darwin": "macos", "win32": "windows"}.get(sys.platform, sys.platform)
    target = DIST / f"toolgate-{version}-{os_name}-{arch()}"
    DIST.mkdir(exist_ok=True)
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(BUILD / "pyinstaller" / "toolgate", target, symlinks=True)
    if sys.platform == "darwin":
        app = DIST / "Toolgate.app"
        shutil.rmtree(app, ignore_errors=True)
        shutil.copytree(BUILD / "pyinstaller" / "Toolgate.app", app, symlinks=True)
    return target


# Where each shell looks for packaged completions on Debian and Ubuntu (under /usr/share).
COMPLETIONS = {
    "bash": "bash-completion/completions/toolgate",
    "zsh": "zsh/vendor-completions/_toolgate",
    "fish": "fish/vendor_completions.d/toolgate.fish",
}


def build_deb(bundle: Path, version: str) -> Path:
    """``dist/toolgate_VERSION_ARCH.deb``: /opt/toolgate, commands in /usr/bin, desktop entry and icons."""
    stage = BUILD / "deb"
    shutil.rmtree(stage, ignore_errors=True)
    shutil.copytree(bundle, stage / "opt" / "toolgate", symlinks=True)
    usr_bin = stage / "usr" / "bin"
    usr_bin.mkdir(parents=True)
    for command in ("toolgate", "toolgate-shim"):
        (usr_bin / command).symlink_to(f"/opt/toolgate/{command}")
    share = stage / "usr" / "share"
    (share / "applications").mkdir(parents=True)
    (share / "applications" / "toolgate.desktop").write_text(DESKTOP_ENTRY.format(exec="/opt/toolgate/toolgate"))
    icons = ROOT / "resources" / "icons" / "rendered"
    for px in ICON_SIZES:
        folder = share / "icons" / "hicolor" / f"{px}x{px}" / "apps"
        folder.mkdir(parents=True)
        shutil.copy(icons / f"toolgate-{px}.png", folder / "toolgate.png")
    for shell, place in COMPLETIONS.items():
        # Generated by the frozen program itself: the scripts match the commands this package holds.
        script = subprocess.run(
            [str(bundle / "toolgate"), "completion", shell], check=True, capture_output=True, text=True
        ).stdout
        (share / place).parent.mkdir(parents=True, exist_ok=True)
        (share / place).write_text(script)
    control = stage / "DEBIAN"
    control.mkdir()
    installed_kb = sum(f.stat().st_size for f in stage.rglob("*") if f.is_file() and not f.is_symlink()) // 1024
    (control / "control").write_text(
        "\n".join(
            [
                "Package: toolgate",
                f"Version: {version}",
                f"Architecture: {arch()}",
                "Maintainer: Toolgate <toolgate@example.invalid>",
                f"Installed-Size: {installed_kb}",
                f"Depends: {', '.join(DEB_DEPENDS)}",
                "Section: devel",
                "Priority: optional",
                "Homepage: https://example.invalid/toolgate",
                "Description: desktop MCP gateway with per-agent policy",
                " Toolgate puts one local, secured MCP endpoint in front of every MCP server you use,",
                " decides per agent and per tool what may run, asks you when it should, and logs it.",
                " IDEs that launch stdio servers use /usr/bin/toolgate-shim.",
                "",
            ]
        )
    )
    deb = DIST / f"toolgate_{version}_{arch()}.deb"
    run(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(stage), str(deb)])
    return deb


def build_appdir(bundle: Path, version: str) -> list[Path]:
    """``dist/Toolgate-VERSION-ARCH.AppDir``, and the AppImage made from it when appimagetool is there."""
    machine = platform.machine()
    appdir = DIST / f"Toolgate-{version}-{machine}.AppDir"
    shutil.rmtree(appdir, ignore_errors=True)
    shutil.copytree(bundle, appdir / "usr" / "lib" / "toolgate", symlinks=True)
    (appdir / "toolgate.desktop").write_text(DESKTOP_ENTRY.format(exec="toolgate"))
    shutil.copy(ROOT / "resources" / "icons" / "rendered" / "toolgate-256.png", appdir / "toolgate.png")
    apprun = appdir / "AppRun"
    apprun.write_text(
        "#!/bin/sh\n# Runs the tray app, or the shim when called as toolgate-shim (a symlink to the AppImage).\n"
        'here="$(dirname "$(readlink -f "$0")")"\n'
        'case "${ARGV0:-$0}" in\n'
        '  *toolgate-shim) exec "$here/usr/lib/toolgate/toolgate-shim" "$@" ;;\n'
        '  *) exec "$here/usr/lib/toolgate/toolgate" "$@" ;;\n'
        "esac\n"
    )
    apprun.chmod(0o755)
    made = [appdir]
    tool = shutil.which("appimagetool")
    if tool:
        image = DIST / f"Toolgate-{version}-{machine}.AppImage"
        run([tool, str(appdir), str(image)], env={**os.environ, "ARCH": machine})
        made.append(image)
    else:
        say("appimagetool is not on PATH: the AppDir is built, the AppImage file is not")
    return made


def run(command: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
    """Run a build step; a failure ends the build with the step's name."""
    result = subprocess.run(command, env=env, cwd=cwd)
    if result.returncode != 0:
        raise SystemExit(f"build failed: {' '.join(command[:4])} ... exited with {result.returncode}")


def size_mb(path: Path) -> float:
    """A file's size, or a folder's total, in MB."""
    if path.is_file():
        return path.stat().st_size / 1e6
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink()) / 1e6


if __name__ == "__main__":
    sys.exit(main())

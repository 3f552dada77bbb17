#!/usr/bin/env bash
# Builds the Linux bundle and the .deb from this checkout, installs the .deb (apt resolves its
# dependencies), smoke-tests the installed files, then removes the package. Also compiles the Windows
# installer script when makensis is available. Needs root and apt, as CI has; scripts/test runs it.
set -euo pipefail
cd "$(dirname "$0")/.."

started=$(date +%s)
python3 installers/build.py
version=$(python3 -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
deb="dist/toolgate_${version}_$(dpkg --print-architecture).deb"

# The AppDir runs the app, and the shim when started under that name (as an AppImage symlink would).
appdir="dist/Toolgate-${version}-$(uname -m).AppDir"
ARGV0=toolgate-shim "$appdir/AppRun" --version | grep -q "^toolgate-shim $version$"
TOOLGATE_HOME="$(mktemp -d)" "$appdir/AppRun" config path >/dev/null
echo "ok  the AppDir runs the app and the shim"

DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "./$deb" >/dev/null
trap 'dpkg -r toolgate >/dev/null 2>&1 || true' EXIT
for path in /opt/toolgate/toolgate /opt/toolgate/toolgate-shim /usr/bin/toolgate /usr/bin/toolgate-shim; do
    [ -x "$path" ] || { echo "missing after install: $path" >&2; exit 1; }
done
for path in /usr/share/applications/toolgate.desktop /usr/share/icons/hicolor/256x256/apps/toolgate.png \
    /usr/share/bash-completion/completions/toolgate /usr/share/zsh/vendor-completions/_toolgate \
    /usr/share/fish/vendor_completions.d/toolgate.fish; do
    [ -f "$path" ] || { echo "missing after install: $path" >&2; exit 1; }
done
# The installed bash completion completes a command through the installed toolgate.
completed=$(bash -c 'source /usr/share/bash-completion/completions/toolgate
COMP_WORDS=(toolgate serv); COMP_CWORD=1; _shtab_toolgate; echo "${COMPREPLY[*]}"')
case " $completed " in *" servers "*) ;; *) echo "bash completion of 'toolgate serv' gave: $completed" >&2; exit 1;; esac
echo "ok  the .deb installs bash, zsh and fish completion"
.venv/bin/python installers/smoke_test.py --root /usr/bin
dpkg -r toolgate >/dev/null
[ ! -e /opt/toolgate/toolgate ] || { echo "dpkg -r left /opt/toolgate behind" >&2; exit 1; }
echo "ok  the .deb installed, passed the smoke test and was removed"

# The Windows installer script compiles here too (NSIS from Debian installs in seconds).
if ! command -v makensis >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nsis >/dev/null
fi
python3 installers/windows/compile_check.py
echo "packaging check passed in $(( $(date +%s) - started )) s"

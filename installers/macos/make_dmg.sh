#!/bin/bash
# Make the macOS disk image: dist/Toolgate-VERSION-macos.dmg, holding Toolgate.app and a link to
# /Applications, so installing is dragging the one onto the other.
#
#   installers/macos/make_dmg.sh [dist/Toolgate.app]
#
# Run on macOS after `python installers/build.py` and, for a release, after sign_and_notarize.sh
# (the .dmg carries the app exactly as it is, signature and stapled ticket included). VERSION comes
# from the app's Info.plist (CFBundleShortVersionString, set by the build); set VERSION to override.
# Optionally sign and notarize the .dmg itself afterwards: sign_and_notarize.sh dist/Toolgate-*.dmg
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
app="${1:-$root/dist/Toolgate.app}"
app="${app%/}"

die() {
    echo "make_dmg: $*" >&2
    exit 1
}

[[ "$(uname -s)" == Darwin ]] || die "this runs on macOS only (it needs hdiutil)"
[[ -f "$app/Contents/Info.plist" ]] || die "$app not found: run 'python installers/build.py' first"

version="${VERSION:-$(/usr/libexec/PlistBuddy -c 'Print :CFBundleShortVersionString' "$app/Contents/Info.plist")}"
[[ -n "$version" ]] || die "no version: set VERSION"
mkdir -p "$root/dist"
dmg="$root/dist/Toolgate-$version-macos.dmg"

# Say so (but go on) when the app would meet Gatekeeper unsigned: fine for testing, not for release.
if ! xcrun stapler validate -q "$app" >/dev/null 2>&1; then
    echo "make_dmg: note: $(basename "$app") has no stapled notarization ticket; run sign_and_notarize.sh first for a release"
fi

# The image's contents are staged in a temporary folder: the app and the /Applications link.
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
ditto "$app" "$stage/Toolgate.app" # ditto keeps symlinks, extended attributes and the signature intact
ln -s /Applications "$stage/Applications"

echo "making $dmg ..."
# UDZO: zlib-compressed and read-only, the usual format for distributing apps. -ov replaces an
# older image of the same name.
hdiutil create -volname Toolgate -srcfolder "$stage" -ov -format UDZO "$dmg"
echo "done: $dmg"

#!/bin/bash
# Sign Toolgate for distribution with a Developer ID, have Apple notarize it, and staple the ticket,
# so Gatekeeper opens it on other Macs without a warning (also offline).
#
#   installers/macos/sign_and_notarize.sh [dist/Toolgate.app]                # after build.py
#   installers/macos/sign_and_notarize.sh dist/Toolgate-X.Y.Z-macos.dmg       # optional, after make_dmg.sh
#
# For the .app (the default, dist/Toolgate.app) it signs every piece of code inside, from the inside
# out, with the hardened runtime and a secure timestamp (both required for notarization); the two
# executables in Contents/MacOS also get installers/macos/entitlements.plist. Then it zips the app,
# submits it with `xcrun notarytool submit --wait`, and staples the ticket onto the .app. For a .dmg
# it signs, notarizes and staples the disk image itself.
#
# Credentials, from the environment:
#   MACOS_SIGN_IDENTITY   the signing certificate in your keychain, e.g.
#                         "Developer ID Application: Jane Doe (ABCDE12345)"
#   and either
#   MACOS_NOTARY_PROFILE  a keychain profile made once with `xcrun notarytool store-credentials`
#   or all of
#   APPLE_ID, APPLE_TEAM_ID, APPLE_APP_PASSWORD   (an app-specific password from appleid.apple.com)
# When they are missing it says which to set, changes nothing and exits 0: an unsigned build still
# runs on the Mac that built it.
#
# Written for the bash 3.2 that ships with macOS (no mapfile, no empty arrays under `set -u`).
# Why not a single `codesign --deep`: it misses code outside the standard bundle locations and puts
# the entitlements on every library; Apple recommends signing each item, inside out, instead.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${1:-$root/dist/Toolgate.app}"
target="${target%/}"
entitlements="$here/entitlements.plist"

die() {
    echo "sign_and_notarize: $*" >&2
    exit 1
}

# --- Credentials: skip quietly (exit 0) when they are not set ---------------------------------------

missing=""
if [[ -z "${MACOS_SIGN_IDENTITY:-}" ]]; then
    missing="MACOS_SIGN_IDENTITY"
fi
if [[ -n "${MACOS_NOTARY_PROFILE:-}" ]]; then
    notary_auth=(--keychain-profile "$MACOS_NOTARY_PROFILE")
elif [[ -n "${APPLE_ID:-}" && -n "${APPLE_TEAM_ID:-}" && -n "${APPLE_APP_PASSWORD:-}" ]]; then
    notary_auth=(--apple-id "$APPLE_ID" --team-id "$APPLE_TEAM_ID" --password "$APPLE_APP_PASSWORD")
else
    missing="${missing:+$missing and }MACOS_NOTARY_PROFILE (or APPLE_ID, APPLE_TEAM_ID and APPLE_APP_PASSWORD)"
fi
if [[ -n "$missing" ]]; then
    echo "sign_and_notarize: not signing $(basename "$target"): set $missing to sign and notarize it"
    exit 0
fi

# --- Checks -----------------------------------------------------------------------------------------

[[ "$(uname -s)" == Darwin ]] || die "this runs on macOS only (it needs codesign and xcrun)"
command -v xcrun >/dev/null || die "xcrun not found: install Xcode or its command line tools (xcode-select --install)"
[[ -e "$target" ]] || die "$target not found: run 'python installers/build.py' first (and make_dmg.sh for a .dmg)"
[[ -f "$entitlements" ]] || die "$entitlements not found"

workdir="$(mktemp -d)"
trap 'rm -rf "$workdir"' EXIT

# codesign with what notarization requires: a secure timestamp and (for code) the hardened runtime.
sign_code() {
    codesign --force --timestamp --options runtime --sign "$MACOS_SIGN_IDENTITY" "$@"
}

is_macho() {
    file -b "$1" | grep -q 'Mach-O'
}

# Prints the paths read on stdin, deepest first (more slashes first), so inner code is signed
# before whatever contains it.
deepest_first() {
    awk -F/ '{ print NF "\t" $0 }' | sort -rn -k1,1 | cut -f2-
}

sign_app() {
    local app="$1" contents="$1/Contents" file bundle
    [[ -f "$contents/Info.plist" ]] || die "$app is not an app bundle (no Contents/Info.plist)"
    echo "signing $app as $MACOS_SIGN_IDENTITY ..."

    # 1. Every Mach-O file (libraries, Python extension modules, Qt) except the programs in
    #    Contents/MacOS. -type f skips the symlinks PyInstaller places between Frameworks and Resources.
    while IFS= read -r file; do
        if is_macho "$file"; then
            sign_code "$file"
        fi
    done < <(find "$contents" -type f ! -path "$contents/MacOS/*" | deepest_first)

    # 2. Nested bundles (Qt's .framework folders and the like), deepest first, so each one's seal
    #    covers its already-signed contents. A folder without an Info.plist is not a real bundle to
    #    codesign; its binaries were signed in step 1.
    while IFS= read -r bundle; do
        if [[ -f "$bundle/Resources/Info.plist" || -f "$bundle/Versions/Current/Resources/Info.plist" ||
            -f "$bundle/Contents/Info.plist" ]]; then
            sign_code "$bundle"
        fi
    done < <(find "$contents" -type d \( -name '*.framework' -o -name '*.bundle' -o -name '*.plugin' \
        -o -name '*.app' \) | deepest_first)

    # 3. The programs: toolgate (the app) and toolgate-shim (what IDEs launch), with the entitlements.
    for file in "$contents/MacOS/"*; do
        if [[ -f "$file" && ! -L "$file" ]] && is_macho "$file"; then
            sign_code --entitlements "$entitlements" "$file"
        fi
    done

    # 4. The app itself (this signs its main executable, toolgate, again, with the same entitlements).
    sign_code --entitlements "$entitlements" "$app"
    codesign --verify --deep --strict --verbose=2 "$app"
}

# Submits a .zip or .dmg and waits for Apple's verdict; prints Apple's log and fails unless accepted.
notarize() {
    local file="$1" result="$workdir/notary.json" id status
    echo "submitting $(basename "$file") for notarization (this usually takes a few minutes) ..."
    # notarytool's exit code does not say whether the submission was accepted, so read its status.
    if ! xcrun notarytool submit "$file" "${notary_auth[@]}" --wait --output-format json >"$result"; then
        cat "$result" >&2
        die "notarytool could not submit $(basename "$file") (check the credentials)"
    fi
    id="$(plutil -extract id raw -o - "$result")"
    status="$(plutil -extract status raw -o - "$result")"
    if [[ "$status" != Accepted ]]; then
        xcrun notarytool log "$id" "${notary_auth[@]}" >&2 || true
        die "notarization of $(basename "$file") ended as '$status' (submission $id); Apple's log is above"
    fi
    echo "notarized (submission $id)"
}

case "$target" in
    *.app)
        sign_app "$target"
        # notarytool takes a .zip, .dmg or .pkg, not a folder; ditto keeps the bundle's symlinks.
        zip="$workdir/$(basename "$target" .app).zip"
        ditto -c -k --keepParent "$target" "$zip"
        notarize "$zip"
        xcrun stapler staple "$target"
        spctl --assess --type execute --verbose=2 "$target"
        ;;
    *.dmg)
        echo "signing $target as $MACOS_SIGN_IDENTITY ..."
        codesign --force --timestamp --sign "$MACOS_SIGN_IDENTITY" "$target"
        notarize "$target"
        xcrun stapler staple "$target"
        spctl --assess --type open --context context:primary-signature --verbose=2 "$target"
        ;;
    *)
        die "expected a .app or a .dmg, got $target"
        ;;
esac
echo "done: $target is signed, notarized and stapled"

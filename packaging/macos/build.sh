#!/usr/bin/env bash
# Build the macOS app, dist/OSTAF.app (and the one-folder dist/ostaf/ it is made from), then
# prove it with --self-test. Build on the architecture you ship (Apple silicon: arm64).
#
#   packaging/macos/build.sh [--archive]    --archive also writes dist/OSTAF-VERSION-macos-ARCH.zip
#
# Runs with the Python in $PYTHON (default python3), which needs requirements.txt and
# packaging/requirements-build.txt installed. The app is not signed: see packaging/SIGNING.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
python=${PYTHON:-python3}

"$python" -m PyInstaller --noconfirm --distpath dist --workpath build/pyinstaller packaging/ostaf.spec

dist/OSTAF.app/Contents/MacOS/ostaf --self-test

if [ "${1:-}" = "--archive" ]; then
    version=$("$python" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
    # ditto keeps the bundle's symlinks and extended attributes, which a signed app needs.
    ditto -c -k --keepParent dist/OSTAF.app "dist/OSTAF-$version-macos-$(uname -m).zip"
    echo "dist/OSTAF-$version-macos-$(uname -m).zip"
fi

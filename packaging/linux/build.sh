#!/usr/bin/env bash
# Build the Linux bundle, dist/ostaf/ (one folder: run dist/ostaf/ostaf; its
# install-desktop-entry.sh adds it to the application menu), then prove it with --self-test.
#
#   packaging/linux/build.sh [--archive]    --archive also writes dist/ostaf-VERSION-linux-ARCH.tar.gz
#
# Runs with the Python in $PYTHON (default python3), which needs requirements.txt and
# packaging/requirements-build.txt installed.
set -euo pipefail
cd "$(dirname "$0")/../.."
python=${PYTHON:-python3}

"$python" -m PyInstaller --noconfirm --distpath dist --workpath build/pyinstaller packaging/ostaf.spec
cp packaging/linux/ostaf.desktop packaging/linux/install-desktop-entry.sh dist/ostaf/

# Without a display, as on a build server: the self-test must not need one.
env -u DISPLAY -u WAYLAND_DISPLAY dist/ostaf/ostaf --self-test

if [ "${1:-}" = "--archive" ]; then
    version=$("$python" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
    tar -C dist -czf "dist/ostaf-$version-linux-$(uname -m).tar.gz" ostaf
    echo "dist/ostaf-$version-linux-$(uname -m).tar.gz"
fi

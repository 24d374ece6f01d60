#!/usr/bin/env bash
# Put OSTAF in the desktop's application menu, for the current user (no root needed):
#
#   ./install-desktop-entry.sh                 in the unpacked bundle folder (next to `ostaf`)
#   packaging/linux/install-desktop-entry.sh   in a checkout, after `pip install .` or `pipx install .`
#   ... [EXECUTABLE]                           start this program instead of the one found
#   ... --uninstall                            remove the menu entry and the icons again
#
# Installs ostaf.desktop into $XDG_DATA_HOME/applications and the icons into the hicolor theme.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
data=${XDG_DATA_HOME:-$HOME/.local/share}
sizes="16 24 32 48 64 128 256 512"

refresh_caches() {
    # Menus pick up the change without a new login where these tools exist; both are optional.
    if command -v update-desktop-database >/dev/null; then
        update-desktop-database "$data/applications" || true
    fi
    if command -v gtk-update-icon-cache >/dev/null; then
        gtk-update-icon-cache -f -t "$data/icons/hicolor" >/dev/null 2>&1 || true
    fi
}

if [ "${1:-}" = "--uninstall" ]; then
    rm -f "$data/applications/ostaf.desktop" "$data/icons/hicolor/scalable/apps/ostaf.svg"
    for size in $sizes; do
        rm -f "$data/icons/hicolor/${size}x${size}/apps/ostaf.png"
    done
    refresh_caches
    echo "removed the OSTAF menu entry"
    exit 0
fi

# The program the menu starts: as given, the bundle's own, or the `ostaf` command on PATH.
if [ $# -ge 1 ]; then
    exe=$1
elif [ -x "$here/ostaf" ]; then
    exe=$here/ostaf
elif command -v ostaf >/dev/null; then
    exe=$(command -v ostaf)
else
    echo "install-desktop-entry: no ostaf program found; give its path as the argument" >&2
    exit 2
fi
exe=$(cd "$(dirname "$exe")" && pwd)/$(basename "$exe")
if [ ! -x "$exe" ]; then
    echo "install-desktop-entry: $exe is not an executable program" >&2
    exit 2
fi
# The Exec key has its own quoting and escaping rules; a path with these characters would
# need both, and is rare enough to refuse.
case $exe in
    *[\\\"\`\$%]*)
        echo "install-desktop-entry: move $exe to a path without \\ \" \` \$ or %" >&2
        exit 2
        ;;
esac

# The entry and the icons: next to this script in the bundle, or in the checkout.
if [ -f "$here/ostaf.desktop" ] && [ -d "$here/_internal/resources/icons" ]; then
    icons=$here/_internal/resources/icons
elif [ -d "$here/../../resources/icons" ]; then
    icons=$here/../../resources/icons
else
    echo "install-desktop-entry: cannot find the icons next to $here" >&2
    exit 2
fi

for size in $sizes; do
    install -D -m 644 "$icons/app-$size.png" "$data/icons/hicolor/${size}x${size}/apps/ostaf.png"
done
install -D -m 644 "$icons/app.svg" "$data/icons/hicolor/scalable/apps/ostaf.svg"

mkdir -p "$data/applications"
entry=$data/applications/ostaf.desktop
{
    echo "[Desktop Entry]"
    echo "Exec=\"$exe\""
    grep -v -e '^\[Desktop Entry\]' -e '^Exec=' "$here/ostaf.desktop"
} >"$entry.tmp"
mv "$entry.tmp" "$entry"
if command -v desktop-file-validate >/dev/null; then
    desktop-file-validate "$entry"
fi
refresh_caches
echo "installed $entry (starts $exe)"

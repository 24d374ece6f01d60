"""Name the system library that Qt's xcb platform plugin lacks, before Qt aborts with a message
that blames another one (on Debian a missing libxcb-icccm4 is reported as libxcb-cursor0).

Linux only: `ldd` on the plugin inside the installed PySide6 lists every shared library it
needs; those marked "not found" are mapped to their Debian/Ubuntu package names."""

from __future__ import annotations

import importlib.util
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

# soname -> Debian 12 / Ubuntu 22.04+ package (checked with `dpkg -S` on Debian 12).
DEBIAN_PACKAGES = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb.so.1": "libxcb1",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libX11.so.6": "libx11-6",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libGL.so.1": "libgl1",
    "libEGL.so.1": "libegl1",
    "libGLX.so.0": "libglx0",
    "libOpenGL.so.0": "libopengl0",
    "libGLdispatch.so.0": "libglvnd0",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libdbus-1.so.3": "libdbus-1-3",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libXau.so.6": "libxau6",
    "libXdmcp.so.6": "libxdmcp6",
    "libz.so.1": "zlib1g",
    "libpng16.so.16": "libpng16-16",
    "libexpat.so.1": "libexpat1",
}


def missing_from_ldd(output: str) -> list[str]:
    """The sonames `ldd` reports as "not found", in its order, without repeats."""
    missing: list[str] = []
    for line in output.splitlines():
        name, arrow, target = line.strip().partition("=>")
        if arrow and target.strip() == "not found" and name.strip() not in missing:
            missing.append(name.strip())
    return missing


def debian_packages(sonames: Sequence[str]) -> list[str]:
    """The packages that provide `sonames` (unknown names are left out)."""
    packages: list[str] = []
    for soname in sonames:
        package = DEBIAN_PACKAGES.get(soname)
        if package is not None and package not in packages:
            packages.append(package)
    return packages


def missing_message(sonames: Sequence[str]) -> str:
    """One paragraph: what is missing, and the apt command that installs it."""
    packages = debian_packages(sonames)
    text = (
        "OSTAF cannot open its window: Qt's xcb platform plugin needs "
        f"{', '.join(sonames)}, which {'is' if len(sonames) == 1 else 'are'} not installed."
    )
    if packages:
        text += f" On Debian or Ubuntu:  sudo apt-get install {' '.join(packages)}"
        unknown = [s for s in sonames if s not in DEBIAN_PACKAGES]
        if unknown:
            text += f"  (and the package that provides {', '.join(unknown)})"
        text += "."
    else:
        text += " Install the package of your distribution that provides it."
    return text + f" The command-line tool works without a window: {cli_command()}"


def cli_command() -> str:
    """How to start the command-line tool here: `ostaf-cli` where `pip install .` put that
    command on the path, else this Python with `-m ostaf` in the folder that holds the code
    (a checkout run as `python main.py` installs no command)."""
    if shutil.which("ostaf-cli"):
        return "ostaf-cli --help"
    root = Path(__file__).resolve().parent.parent
    return f"cd {shlex.quote(str(root))} && {shlex.quote(sys.executable)} -m ostaf --help"


def chosen_platform(qt_args: Sequence[str], environ: Mapping[str, str]) -> str:
    """The platform plugin Qt will load: `-platform X`, else QT_QPA_PLATFORM, else Qt's
    default (wayland in a Wayland session, xcb otherwise)."""
    args = list(qt_args)
    for i, arg in enumerate(args[:-1]):
        if arg in ("-platform", "--platform"):
            return args[i + 1].split(":")[0]
    if environ.get("QT_QPA_PLATFORM"):
        return environ["QT_QPA_PLATFORM"].split(":")[0].split(";")[0]
    if environ.get("XDG_SESSION_TYPE") == "wayland" and environ.get("WAYLAND_DISPLAY"):
        return "wayland"
    return "xcb"


def xcb_plugin() -> Path | None:
    """The xcb plugin inside the installed PySide6, if there is one."""
    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        plugin = Path(folder) / "Qt" / "plugins" / "platforms" / "libqxcb.so"
        if plugin.is_file():
            return plugin
    return None


def run_ldd(path: Path) -> str | None:
    """`ldd path`'s output, or None when ldd is unavailable or fails."""
    ldd = shutil.which("ldd")
    if ldd is None:
        return None
    try:
        done = subprocess.run(
            [ldd, str(path)], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout


def missing_platform_libraries(
    qt_args: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
    platform: str | None = None,
) -> str | None:
    """The message to show when the xcb plugin cannot load, or None (elsewhere, or all there)."""
    environ = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    if not platform.startswith("linux") or chosen_platform(qt_args, environ) != "xcb":
        return None
    plugin = xcb_plugin()
    output = run_ldd(plugin) if plugin is not None else None
    if output is None:
        return None
    missing = missing_from_ldd(output)
    return missing_message(missing) if missing else None

"""When Qt's xcb plugin lacks a system library, the app names it and its package (fake ldd
output: no library has to be removed from this machine)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ostaf_desktop import launcher, platform_libs
from ostaf_desktop.platform_libs import (
    chosen_platform,
    debian_packages,
    missing_from_ldd,
    missing_platform_libraries,
)

# What ldd printed on Debian 12 without libxcb-icccm4 and libxcb-keysyms1 (Qt blamed
# libxcb-cursor0, which was installed).
LDD_DEBIAN = """\
\tlinux-vdso.so.1 (0x00007ffd6a3f1000)
\tlibQt6XcbQpa.so.6 => /venv/PySide6/Qt/plugins/platforms/../../lib/libQt6XcbQpa.so.6 (0x7f0)
\tlibxkbcommon-x11.so.0 => /lib/x86_64-linux-gnu/libxkbcommon-x11.so.0 (0x00007f5)
\tlibxcb-cursor.so.0 => /lib/x86_64-linux-gnu/libxcb-cursor.so.0 (0x00007f6)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-keysyms.so.1 => not found
\tlibxcb-icccm.so.4 => not found
\tlibxcb.so.1 => /lib/x86_64-linux-gnu/libxcb.so.1 (0x00007f7)
\t/lib64/ld-linux-x86-64.so.2 (0x00007f8)
"""


def test_the_missing_libraries_and_their_packages_are_named() -> None:
    missing = missing_from_ldd(LDD_DEBIAN)
    assert missing == ["libxcb-icccm.so.4", "libxcb-keysyms.so.1"]
    assert debian_packages(missing) == ["libxcb-icccm4", "libxcb-keysyms1"]
    message = platform_libs.missing_message(missing)
    assert "libxcb-icccm.so.4, libxcb-keysyms.so.1" in message
    assert "sudo apt-get install libxcb-icccm4 libxcb-keysyms1" in message
    assert "libxcb-cursor" not in message


@pytest.mark.parametrize(
    ("soname", "package"),
    [
        ("libxcb-cursor.so.0", "libxcb-cursor0"),
        ("libxkbcommon-x11.so.0", "libxkbcommon-x11-0"),
        ("libxcb-shape.so.0", "libxcb-shape0"),
        ("libxcb-randr.so.0", "libxcb-randr0"),
        ("libxcb-render-util.so.0", "libxcb-render-util0"),
        ("libxcb-image.so.0", "libxcb-image0"),
        ("libEGL.so.1", "libegl1"),
        ("libfontconfig.so.1", "libfontconfig1"),
    ],
)
def test_package_names(soname: str, package: str) -> None:
    assert debian_packages([soname]) == [package]


def test_an_unknown_library_is_still_named() -> None:
    message = platform_libs.missing_message(["libxcb-icccm.so.4", "libfoo.so.9"])
    assert "libxcb-icccm4" in message and "libfoo.so.9" in message
    assert "the package that provides libfoo.so.9" in message
    alone = platform_libs.missing_message(["libfoo.so.9"])
    assert "libfoo.so.9" in alone and "apt-get" not in alone


def test_nothing_missing_means_no_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        platform_libs, "run_ldd", lambda path: LDD_DEBIAN.replace("not found", "/x")
    )
    assert missing_platform_libraries((), {"DISPLAY": ":0"}, "linux") is None


@pytest.mark.parametrize(
    ("args", "environ", "expected"),
    [
        ((), {"DISPLAY": ":0"}, "xcb"),
        ((), {"QT_QPA_PLATFORM": "offscreen"}, "offscreen"),
        (("-platform", "offscreen"), {"DISPLAY": ":0"}, "offscreen"),
        ((), {"XDG_SESSION_TYPE": "wayland", "WAYLAND_DISPLAY": "wayland-0"}, "wayland"),
        ((), {"QT_QPA_PLATFORM": "xcb:nodpi"}, "xcb"),
    ],
)
def test_the_platform_qt_will_load(
    args: tuple[str, ...], environ: dict[str, str], expected: str
) -> None:
    assert chosen_platform(args, environ) == expected


def test_only_the_xcb_platform_on_linux_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(platform_libs, "run_ldd", lambda path: LDD_DEBIAN)
    assert missing_platform_libraries((), {"DISPLAY": ":0"}, "darwin") is None
    assert missing_platform_libraries((), {"QT_QPA_PLATFORM": "offscreen"}, "linux") is None
    message = missing_platform_libraries((), {"DISPLAY": ":0"}, "linux")
    assert message is not None and "libxcb-keysyms1" in message


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the xcb plugin is Linux's")
def test_the_installed_plugin_is_found_and_complete_here() -> None:
    plugin = platform_libs.xcb_plugin()
    assert plugin is not None and plugin.name == "libqxcb.so"
    output = platform_libs.run_ldd(plugin)
    assert output is not None and "libxcb" in output


def test_the_launcher_stops_with_the_names_before_qt_aborts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setattr(platform_libs, "run_ldd", lambda path: LDD_DEBIAN)
    monkeypatch.setattr(platform_libs, "xcb_plugin", lambda: tmp_path / "libqxcb.so")
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("DISPLAY", ":0")
    opened: list[object] = []
    monkeypatch.setattr("ostaf_desktop.app.run_app", lambda *args: opened.append(args) or 0)

    assert launcher.main([]) == launcher.CANNOT_START
    assert opened == []
    assert "sudo apt-get install libxcb-icccm4 libxcb-keysyms1" in capsys.readouterr().err


def test_the_message_names_a_command_line_tool_that_runs_here(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A checkout run with `python main.py` has no `ostaf-cli`: the message gives this Python
    with `-m ostaf` in the code's folder, a command that works as printed."""
    monkeypatch.setenv("PATH", str(tmp_path))  # no ostaf-cli anywhere
    message = platform_libs.missing_message(["libxcb-icccm.so.4"])
    command = message.split("works without a window: ", 1)[1]
    assert "ostaf-cli" not in command and command.endswith(" -m ostaf --help")
    done = subprocess.run(
        ["/bin/sh", "-c", command], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0 and "usage" in done.stdout.lower()
    (tmp_path / "ostaf-cli").write_text("#!/bin/sh\n")
    (tmp_path / "ostaf-cli").chmod(0o755)  # installed as a command: it is named
    assert platform_libs.missing_message(["libfoo.so.9"]).endswith("window: ostaf-cli --help")

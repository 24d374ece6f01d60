"""Every platform's icon file exists at every size, and the Linux desktop entry is valid and
names the id the running app reports to the desktop."""

from __future__ import annotations

import configparser
import importlib.util
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest
from PIL import Image

from ostaf_desktop import APP_ID

ROOT = Path(__file__).resolve().parents[2]
ICONS = ROOT / "resources" / "icons"
ENTRY = ROOT / "packaging" / "linux" / "ostaf.desktop"


def _make_icons() -> types.ModuleType:
    """packaging/make_icons.py, whose size lists are the reference."""
    spec = importlib.util.spec_from_file_location(
        "make_icons", ROOT / "packaging" / "make_icons.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_png_size_exists_at_its_size() -> None:
    make_icons = _make_icons()
    assert (ICONS / "app.svg").is_file()
    for size in make_icons.PNG_SIZES:
        with Image.open(ICONS / make_icons.png_name(size)) as image:
            assert image.format == "PNG" and image.size == (size, size)
            assert image.mode == "RGBA"


def test_windows_and_macos_icons_hold_every_size() -> None:
    make_icons = _make_icons()
    with Image.open(ICONS / "app.ico") as ico:
        assert ico.format == "ICO"
        assert ico.info["sizes"] == {(s, s) for s in make_icons.ICO_SIZES}
    with Image.open(ICONS / "app.icns") as icns:
        assert icns.format == "ICNS" and icns.size == (1024, 1024)


def _read_entry() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string(ENTRY.read_text(encoding="utf-8"))
    assert parser.sections() == ["Desktop Entry"]
    return parser["Desktop Entry"]


def test_desktop_entry_names_the_app_id() -> None:
    entry = _read_entry()
    assert ENTRY.stem == APP_ID  # the Wayland app id is the desktop file's name
    assert entry["StartupWMClass"] == APP_ID  # the X11 window class (Qt's application name)
    assert entry["Icon"] == APP_ID and entry["Exec"] == APP_ID
    assert entry["Type"] == "Application" and entry["Terminal"] == "false"
    assert entry["Categories"] == "Graphics;2DGraphics;"
    assert entry["Name"] == "OSTAF" and entry["Comment"]


@pytest.mark.skipif(shutil.which("desktop-file-validate") is None, reason="desktop-file-utils")
def test_desktop_entry_validates() -> None:
    result = subprocess.run(
        ["desktop-file-validate", str(ENTRY)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


@pytest.mark.skipif(sys.platform != "linux", reason="the installer is a Linux shell script")
def test_install_script_puts_entry_and_icons_in_the_users_data_folder(tmp_path: Path) -> None:
    program = tmp_path / "a folder" / "ostaf"
    program.parent.mkdir()
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    data = tmp_path / "data"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_DATA_HOME": str(data)}
    script = ROOT / "packaging" / "linux" / "install-desktop-entry.sh"
    result = subprocess.run(
        [str(script), str(program)], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    installed = (data / "applications" / "ostaf.desktop").read_text()
    assert f'Exec="{program}"\n' in installed
    assert (data / "icons" / "hicolor" / "48x48" / "apps" / "ostaf.png").is_file()
    assert (data / "icons" / "hicolor" / "scalable" / "apps" / "ostaf.svg").is_file()
    removed = subprocess.run(
        [str(script), "--uninstall"], env=env, capture_output=True, text=True, timeout=60
    )
    assert removed.returncode == 0 and not (data / "applications" / "ostaf.desktop").exists()

"""The window must appear before torch loads: no ostaf_desktop module imports torch,
diffusers or transformers when imported, and `--screenshot` paints before torch is loaded."""

from __future__ import annotations

import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

from PySide6.QtGui import QImage

import ostaf_desktop

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "diffusers", "transformers", "accelerate")


def _desktop_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(ostaf_desktop.__path__, "ostaf_desktop."))


def test_desktop_modules_do_not_import_torch_at_module_level() -> None:
    modules = _desktop_modules()
    assert "ostaf_desktop.widgets.main_window" in modules and "ostaf_desktop.app" in modules
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}:\n"
        "    importlib.import_module(m)\n"
        f"print(sorted(h for h in {HEAVY!r} if h in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_screenshot_flag_paints_before_torch_and_exits(home: Path, tmp_path: Path) -> None:
    shot = tmp_path / "window.png"
    env = dict(os.environ, OSTAF_HOME=str(home), QT_QPA_PLATFORM="offscreen")
    result = subprocess.run(
        [sys.executable, "main.py", "--screenshot", str(shot)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    image = QImage(str(shot))
    assert (image.width(), image.height()) == (1440, 900)
    assert not (home / "desktop.json").exists()  # a screenshot leaves the saved layout alone
    log = (home / "logs" / "ostaf-desktop.log").read_text()
    assert re.search(r"window painted at epoch [0-9.]+, [0-9.]+ s .*\(torch loaded: False\)", log)
    # The process ends without the interpreter's slow teardown: the log is complete anyway,
    # and the run record is gone (a clean exit is not reported as a crash next time).
    assert log.rstrip().endswith("the window has closed; exit code 0")
    assert list((home / "runs").glob("*.running")) == []

"""The dependency direction is a rule: the core never imports Qt."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import ostaf

ROOT = Path(__file__).resolve().parents[2]


def _core_modules() -> list[str]:
    return sorted(
        m.name
        for m in pkgutil.walk_packages(ostaf.__path__, "ostaf.")
        if not m.name.endswith("__main__")
    )


def test_importing_every_core_module_never_imports_qt() -> None:
    code = (
        "import sys, importlib\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('PySide6', 'qasync', 'ostaf_desktop', 'shiboken6'):\n"
        "            raise ImportError('core imported ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        f"for m in {_core_modules()!r}:\n"
        "    importlib.import_module(m)\n"
        "print('ok', len(sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok")


def test_light_core_modules_do_not_load_torch() -> None:
    light = [
        "ostaf.requests",
        "ostaf.library.attribute_meta",
        "ostaf.settings",
        "ostaf.library.projects",
        "ostaf.images",
        "ostaf.interop.pngmeta",
        "ostaf.progress",
    ]
    code = f"import sys; [__import__(m) for m in {light!r}]; print('torch' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == "False", result.stderr

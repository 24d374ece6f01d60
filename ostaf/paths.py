"""Where the app keeps its files: platformdirs, or the folder named by OSTAF_HOME.

Nothing is created at import time; callers create what they write into.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP_NAME = "ostaf"
_PACKAGE = Path(__file__).resolve().parent


def find_resources(package: Path = _PACKAGE) -> Path:
    """The `resources/` folder in whichever of the three layouts the app runs from.

    - a PyInstaller bundle: the spec copies it to `resources/` in the bundle's data folder
      (`sys._MEIPASS`), the one place a frozen app can rely on;
    - an installed wheel: setuptools ships it as package data, `ostaf/resources/`;
    - a checkout (or an editable install): the folder next to the `ostaf` package.
    """
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle is not None:
        return Path(bundle) / "resources"
    installed = package / "resources"
    if installed.is_dir():
        return installed
    return package.parent / "resources"


RESOURCES = find_resources()


def _home() -> Path | None:
    value = os.environ.get("OSTAF_HOME")
    return Path(value).expanduser() if value else None


def data_dir() -> Path:
    """Root of settings and projects."""
    home = _home()
    if home is not None:
        return home
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def cache_dir() -> Path:
    """Rebuildable files, such as the demo model."""
    home = _home()
    if home is not None:
        return home / "cache"
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def log_dir() -> Path:
    """Log files with full tracebacks."""
    home = _home()
    if home is not None:
        return home / "logs"
    import platformdirs

    return Path(platformdirs.user_log_dir(APP_NAME, appauthor=False))


def projects_dir() -> Path:
    return data_dir() / "projects"


def settings_file() -> Path:
    return data_dir() / "settings.json"


def resource(*parts: str) -> Path:
    """A file shipped in resources/ (from a checkout, an installed wheel or a bundle)."""
    return RESOURCES.joinpath(*parts)

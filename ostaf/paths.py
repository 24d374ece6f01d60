"""Where the app keeps its files: platformdirs, or the folder named by OSTAF_HOME.

Nothing is created at import time; callers create what they write into.
"""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "ostaf"
RESOURCES = Path(__file__).resolve().parent.parent / "resources"


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
    """A file shipped in resources/ (works from a checkout and from a bundle)."""
    return RESOURCES.joinpath(*parts)

"""Where a project's results live while they are being made: a folder inside the project on
the same disk as the library, never listed. A finished tuning run is imported into the library
from there (`Project.import_attribute`); a cancelled or failed one leaves nothing behind."""

from __future__ import annotations

import uuid
from pathlib import Path

from ostaf.library.attribute_meta import SUFFIX
from ostaf.library.projects import Project

STAGING = ".staging"


def staging_path(project: Project, suffix: str = SUFFIX) -> Path:
    """A fresh path in the project's staging folder (created)."""
    folder = project.folder / STAGING
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{uuid.uuid4().hex}{suffix}"


def clear_staging(project: Project) -> int:
    """Remove what an interrupted run left in the staging folder; returns how many files."""
    folder = project.folder / STAGING
    if not folder.is_dir():
        return 0
    removed = 0
    for entry in folder.iterdir():
        if entry.is_file():
            entry.unlink(missing_ok=True)
            removed += 1
    return removed

"""Where a project's results live while they are being made: a folder inside the project on
the same disk as the library, never listed. A finished tuning run is imported into the library
from there (`Project.import_attribute`); a cancelled or failed one leaves nothing behind."""

from __future__ import annotations

import uuid
from pathlib import Path

from ostaf.errors import ProjectError
from ostaf.library.attribute_meta import SUFFIX
from ostaf.library.project_paths import entry_kind, library_folder, make_library_folder
from ostaf.library.projects import Project

STAGING = ".staging"


def staging_path(project: Project, suffix: str = SUFFIX) -> Path:
    """A fresh path in the project's staging folder (created; never a link)."""
    folder = make_library_folder(project.folder, STAGING)
    return folder / f"{uuid.uuid4().hex}{suffix}"


def clear_staging(project: Project) -> int:
    """Remove what an interrupted run left in the staging folder; returns how many files
    (real files only: a link there, or a linked folder, is never followed)."""
    try:
        folder = library_folder(project.folder, STAGING)
    except ProjectError:
        return 0
    if entry_kind(folder) != "folder":
        return 0
    removed = 0
    for entry in folder.iterdir():
        if entry_kind(entry) == "file":
            entry.unlink(missing_ok=True)
            removed += 1
    return removed

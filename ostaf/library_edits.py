"""Changes the desktop makes to a project's attribute library: adding a freshly tuned file,
renaming, notes, default λ, and moving a file to the project's trash.

Metadata edits rewrite the whole file atomically and copy the factors byte for byte, so the
attribute's content hash (and so its file name) never changes. No torch here.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path

from ostaf.atomic import atomic_write_bytes
from ostaf.attribute_meta import METADATA_KEY, SUFFIX, AttributeMeta, read_meta
from ostaf.errors import AttributeFileError, StorageError
from ostaf.library import TRASH, Project

STAGING = ".staging"
MAX_NAME = 120
MAX_NOTES = 10_000


def staging_path(project: Project, suffix: str = SUFFIX) -> Path:
    """A fresh path for a result still being made, on the same disk as the library (so adding
    it later is one rename) and outside the folders that are listed."""
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


def add_tuned_attribute(project: Project, staged: Path, content_hash: str) -> Path:
    """Move a finished attribute file into the project's library under its content-hash name."""
    project.acquire()
    read_meta(staged)  # only a complete, valid attribute file enters the library
    target = project.attribute_path(content_hash)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():  # the same attribute is already there: keep the older file
        staged.unlink(missing_ok=True)
        return target
    try:
        os.replace(staged, target)
    except OSError:
        # Another disk after all: copy atomically, then drop the staged file.
        atomic_write_bytes(target, staged.read_bytes())
        staged.unlink(missing_ok=True)
    return target


def update_attribute_meta(
    path: Path,
    *,
    name: str | None = None,
    notes: str | None = None,
    default_lambda: float | None = None,
    tags: list[str] | None = None,
) -> AttributeMeta:
    """Change an attribute's name, notes, default λ or tags; the file is rewritten atomically."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file, save

    path = Path(path)
    meta = read_meta(path)
    if name is not None:
        name = " ".join(name.split())
        if not name:
            raise AttributeFileError("an attribute name cannot be empty")
        if len(name) > MAX_NAME:
            raise AttributeFileError(f"that name is too long; keep it under {MAX_NAME} characters")
        meta.name = name
    if notes is not None:
        if len(notes) > MAX_NOTES:
            raise AttributeFileError(f"notes are too long; keep them under {MAX_NOTES} characters")
        meta.notes = notes
    if default_lambda is not None:
        meta.default_lambda = round(float(default_lambda), 4)
    if tags is not None:
        meta.tags = [t.strip() for t in tags if t.strip()]
    try:
        meta.validate()
    except ValueError as exc:
        raise AttributeFileError(f"{path}: {exc}") from exc
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise AttributeFileError(
            f"{path}: cannot read the tensors ({exc}); the file is damaged"
        ) from exc
    atomic_write_bytes(path, save(tensors, metadata={METADATA_KEY: meta.to_json()}))
    return meta


def trash_attribute(project: Project, path: Path) -> Path:
    """Move an attribute file to the project's trash folder (recoverable by hand)."""
    project.acquire()
    path = Path(path)
    if path.parent.resolve() != project.attributes_dir.resolve():
        raise AttributeFileError(f"{path} is not in the library of project '{project.name}'")
    trash = project.folder / TRASH / "attributes"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    try:
        trash.mkdir(parents=True, exist_ok=True)
        target = trash / f"{path.stem}-{stamp}{path.suffix}"
        shutil.move(str(path), str(target))
    except OSError as exc:
        raise StorageError(f"cannot move {path} to the trash: {exc.strerror or exc}") from exc
    return target

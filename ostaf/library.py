"""Projects on disk (DESIGN §4): project.json, the reference images, one file per attribute.

The attribute files are the truth: the list of a project's attributes is read from their
headers (fast, no torch), so the index can never disagree with the disk. Corrupt or foreign
files are reported by name and skipped, never overwritten. One app instance at a time holds a
project's write lock (an OS lock, released even when the process dies).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import time
import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from ostaf import paths
from ostaf.atomic import atomic_write_bytes, atomic_write_text, is_temporary
from ostaf.attribute_meta import SUFFIX, AttributeMeta, now_iso, read_meta
from ostaf.errors import AttributeFileError, ProjectError, ProjectLockedError

PROJECT_FILE = "project.json"
PROJECT_SCHEMA = 1
LOCK_FILE = ".lock"
TRASH = ".trash"


def slugify(name: str) -> str:
    """A folder name safe on every OS, from a project name."""
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    text = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()
    return text[:48] or "project"


@dataclass
class ReferenceRecord:
    sha256: str
    file: str  # name inside references/
    original_name: str
    added: str


@dataclass
class AttributeEntry:
    """One attribute file of a project, as read from its header."""

    path: Path
    meta: AttributeMeta

    @property
    def id(self) -> str:
        return self.path.stem


@dataclass
class Problem:
    """A file that could not be used, and why (shown to the user, never fatal)."""

    path: Path
    message: str


@dataclass
class ProjectInfo:
    name: str
    created: str = field(default_factory=now_iso)
    last_opened: str = field(default_factory=now_iso)
    references: list[ReferenceRecord] = field(default_factory=list)
    presets: dict[str, Any] = field(default_factory=dict)
    schema_version: int = PROJECT_SCHEMA


class Project:
    """An open project folder. Writes require the lock (`with project.locked():`)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.info = _read_info(folder)
        self._lock: FileLock | None = None

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def slug(self) -> str:
        return self.folder.name

    @property
    def attributes_dir(self) -> Path:
        return self.folder / "attributes"

    @property
    def references_dir(self) -> Path:
        return self.folder / "references"

    @property
    def exports_dir(self) -> Path:
        return self.folder / "exports"

    # -- locking -------------------------------------------------------------------------
    def acquire(self) -> None:
        """Take the write lock or raise ProjectLockedError naming who holds it."""
        if self._lock is not None:
            return
        lock = FileLock(str(self.folder / LOCK_FILE))
        try:
            lock.acquire(timeout=0)
        except Timeout as exc:
            holder = _lock_holder(self.folder)
            raise ProjectLockedError(
                f"project '{self.name}' is open in another OSTAF window or command{holder}; "
                "close it there first"
            ) from exc
        self._lock = lock
        (self.folder / f"{LOCK_FILE}.owner").write_text(
            json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": now_iso()})
        )

    def release(self) -> None:
        if self._lock is not None:
            (self.folder / f"{LOCK_FILE}.owner").unlink(missing_ok=True)
            self._lock.release()
            self._lock = None

    def _require_lock(self) -> None:
        if self._lock is None:
            self.acquire()

    # -- project.json ----------------------------------------------------------------------
    def save_info(self) -> None:
        self._require_lock()
        _write_info(self.folder, self.info)

    def rename(self, new_name: str) -> None:
        """Change the display name (the folder keeps its name, so paths stay valid)."""
        new_name = new_name.strip()
        if not new_name:
            raise ProjectError("a project name cannot be empty")
        self.info.name = new_name
        self.save_info()

    def touch(self) -> None:
        self.info.last_opened = now_iso()
        self.save_info()

    # -- references ------------------------------------------------------------------------
    def add_reference(self, image: Path) -> Path:
        """Copy a reference image in, under a content-hashed name (added once)."""
        import hashlib

        self._require_lock()
        data = Path(image).read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        target = self.references_dir / f"{digest[:16]}{Path(image).suffix.lower() or '.png'}"
        if not target.exists():
            atomic_write_bytes(target, data)
        if not any(r.sha256 == digest for r in self.info.references):
            self.info.references.append(
                ReferenceRecord(digest, target.name, Path(image).name, now_iso())
            )
            self.save_info()
        return target

    # -- attributes ------------------------------------------------------------------------
    def attribute_path(self, content_hash: str) -> Path:
        return self.attributes_dir / f"{content_hash[:16]}{SUFFIX}"

    def scan_attributes(self) -> tuple[list[AttributeEntry], list[Problem]]:
        """Every readable attribute (newest first) and every file that could not be read."""
        entries: list[AttributeEntry] = []
        problems: list[Problem] = []
        if not self.attributes_dir.is_dir():
            return entries, problems
        for path in sorted(self.attributes_dir.iterdir()):
            if path.suffix != SUFFIX or is_temporary(path) or not path.is_file():
                continue
            try:
                entries.append(AttributeEntry(path, read_meta(path)))
            except AttributeFileError as exc:
                problems.append(Problem(path, str(exc)))
        entries.sort(key=lambda e: (e.meta.created_at, e.path.name), reverse=True)
        return entries, problems

    def attributes(self) -> list[AttributeEntry]:
        return self.scan_attributes()[0]


class ProjectStore:
    """All projects under one root folder (by default the user data dir)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or paths.projects_dir()

    def list(self) -> tuple[list[Project], list[Problem]]:
        """Readable projects, most recently opened first, and unreadable folders."""
        projects: list[Project] = []
        problems: list[Problem] = []
        if not self.root.is_dir():
            return projects, problems
        for folder in sorted(self.root.iterdir()):
            if not folder.is_dir() or folder.name.startswith("."):
                continue
            try:
                projects.append(Project(folder))
            except ProjectError as exc:
                problems.append(Problem(folder, str(exc)))
        projects.sort(key=lambda p: p.info.last_opened, reverse=True)
        return projects, problems

    def create(self, name: str) -> Project:
        """A new project with a unique folder name derived from `name`."""
        name = name.strip()
        if not name:
            raise ProjectError("a project name cannot be empty")
        if len(name) > 120:
            raise ProjectError("that project name is too long; keep it under 120 characters")
        base = slugify(name)
        slug, n = base, 2
        while (self.root / slug).exists():
            slug, n = f"{base}-{n}", n + 1
        folder = self.root / slug
        try:
            for sub in ("attributes", "references", "exports"):
                (folder / sub).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ProjectError(f"cannot create {folder}: {exc.strerror}") from exc
        _write_info(folder, ProjectInfo(name=name))
        project = Project(folder)
        project.acquire()
        return project

    def find(self, name_or_slug: str) -> Project:
        """Open a project by display name or folder name."""
        projects, _ = self.list()
        for project in projects:
            if name_or_slug in (project.name, project.slug):
                return project
        raise ProjectError(
            f"no project named '{name_or_slug}'; see the project list (or create it first)"
        )

    def delete(self, project: Project) -> Path:
        """Move a project to the store's trash folder (recoverable by hand)."""
        project.acquire()
        trash = self.root / TRASH / f"{project.slug}-{time.strftime('%Y%m%d-%H%M%S')}"
        trash.parent.mkdir(parents=True, exist_ok=True)
        project.release()
        shutil.move(str(project.folder), str(trash))
        return trash


def _read_info(folder: Path) -> ProjectInfo:
    path = folder / PROJECT_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            raise ValueError("no project name")
        version = data.get("schema_version", PROJECT_SCHEMA)
        if not isinstance(version, int) or version > PROJECT_SCHEMA:
            raise ProjectError(f"{path} was written by a newer OSTAF; update the app")
        refs = [ReferenceRecord(**r) for r in data.get("references", [])]
        return ProjectInfo(
            name=data["name"],
            created=str(data.get("created", "")),
            last_opened=str(data.get("last_opened", "")),
            references=refs,
            presets=dict(data.get("presets", {})),
        )
    except FileNotFoundError as exc:
        raise ProjectError(f"{folder} has no {PROJECT_FILE}; it is not an OSTAF project") from exc
    except (ValueError, TypeError, OSError, RecursionError) as exc:
        raise ProjectError(f"{path} is damaged ({exc}); restore it from a backup") from exc


def _write_info(folder: Path, info: ProjectInfo) -> None:
    atomic_write_text(folder / PROJECT_FILE, json.dumps(asdict(info), indent=2) + "\n")


def _lock_holder(folder: Path) -> str:
    try:
        owner = json.loads((folder / f"{LOCK_FILE}.owner").read_text())
        return f" (process {owner['pid']} on {owner['host']} since {owner['since']})"
    except (OSError, ValueError, KeyError, TypeError):
        return ""

"""Projects on disk (DESIGN §4): project.json, the reference images, one file per attribute.

The attribute files are the truth: the list of a project's attributes is read from their
headers (fast, no torch), so the index can never disagree with the disk. Corrupt or foreign
files are reported by name and skipped, never overwritten. One app instance at a time holds a
project's write lock (an OS lock, released even when the process dies).

The attribute library: a file is named by the hash of its factors, so importing the same
attribute twice is detected by content; editing the name, tags, notes or default λ rewrites
only the metadata (atomically), so the name stays; deleting moves the file to
`attributes/.trash/`, from where it can be restored.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
import time
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock, Timeout

from ostaf import paths
from ostaf.errors import AttributeFileError, ProjectError, ProjectLockedError, StorageError
from ostaf.library.atomic import TEMP_SUFFIX, atomic_write_bytes, atomic_write_text, is_temporary
from ostaf.library.attribute_meta import SUFFIX, AttributeMeta, now_iso, read_meta

if TYPE_CHECKING:
    from PIL import Image

    from ostaf.library.attribute_file import Attribute

PROJECT_FILE = "project.json"
PROJECT_SCHEMA = 1
LOCK_FILE = ".lock"
TRASH = ".trash"
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin", ".pkl", ".pickle")
MAX_NAME = 120
MAX_TAG = 40
MAX_NOTES = 4000


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
class ImportOutcome:
    """An imported attribute; `duplicate` when the library already held the same factors
    (then nothing was written)."""

    entry: AttributeEntry
    duplicate: bool


@dataclass
class RestoreOutcome:
    """A restored attribute; `already_present` when an identical one was already live (the
    trashed copy then stays in the trash)."""

    entry: AttributeEntry
    already_present: bool


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
        self._sweep_temporaries()
        (self.folder / f"{LOCK_FILE}.owner").write_text(
            json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": now_iso()})
        )

    def _sweep_temporaries(self) -> None:
        """Remove half-written files left by a writer that died (only the lock holder may)."""
        for leftover in self.folder.rglob(f"*{TEMP_SUFFIX}"):
            leftover.unlink(missing_ok=True)

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

    @property
    def trash_dir(self) -> Path:
        return self.attributes_dir / TRASH

    def trashed_attributes(self) -> list[AttributeEntry]:
        """Attributes in the project's trash, most recently created first."""
        entries = []
        if self.trash_dir.is_dir():
            for path in sorted(self.trash_dir.glob(f"*{SUFFIX}")):
                try:
                    entries.append(AttributeEntry(path, read_meta(path)))
                except AttributeFileError:
                    continue  # a damaged trashed file is simply not offered for restore
        entries.sort(key=lambda e: (e.meta.created_at, e.path.name), reverse=True)
        return entries

    def find_attribute(self, ref: str, trash: bool = False) -> AttributeEntry:
        """An attribute by id, unique id prefix (4+ characters) or name (any case)."""
        entries = self.trashed_attributes() if trash else self.attributes()
        where = f"the trash of project '{self.name}'" if trash else f"project '{self.name}'"
        key = ref.strip().casefold()
        for entry in entries:
            if entry.id.casefold() == key:
                return entry
        matches = [e for e in entries if len(key) >= 4 and e.id.casefold().startswith(key)]
        matches = matches or [e for e in entries if e.meta.name.casefold() == key]
        if len(matches) == 1:
            return matches[0]
        if matches:
            ids = ", ".join(f"{e.id} ('{e.meta.name}')" for e in matches[:4])
            raise ProjectError(f"'{ref}' matches several attributes in {where}: {ids}; give an id")
        raise ProjectError(f"no attribute '{ref}' in {where}; list them with `library list`")

    def import_attributes(self, sources: Sequence[Path]) -> list[ImportOutcome]:
        """Copy attribute files in. Every file is validated first: one bad file and nothing
        is imported. Duplicates (same factors) are reported, not copied again."""
        from ostaf.library.attribute_file import save_attribute

        self._require_lock()
        validated = [(Path(source), validate_attribute_file(source)) for source in sources]
        outcomes = []
        for source, attribute in validated:
            target = self.attribute_path(attribute.content_hash())
            if target.exists():
                try:
                    outcomes.append(ImportOutcome(AttributeEntry(target, read_meta(target)), True))
                except AttributeFileError as exc:
                    raise ProjectError(
                        f"{target} has the same name as {source.name} but is damaged; move it "
                        "out of the library folder (it is never overwritten) and import again"
                    ) from exc
                continue
            save_attribute(target, attribute)
            outcomes.append(ImportOutcome(AttributeEntry(target, attribute.meta), False))
        return outcomes

    def import_attribute(self, source: Path) -> ImportOutcome:
        """Copy one attribute file in (see import_attributes)."""
        return self.import_attributes([source])[0]

    def export_attribute(self, ref: str, dest: Path, overwrite: bool = False) -> Path:
        """Copy an attribute file to `dest` (a folder, or a .safetensors file name)."""
        from ostaf.library.attribute_file import load_attribute

        entry = self.find_attribute(ref)
        load_attribute(entry.path)  # never hand on a damaged file
        dest = Path(dest)
        if dest.is_dir() or not dest.suffix:
            dest = dest / f"{slugify(entry.meta.name)}-{entry.id[:8]}{SUFFIX}"
        if dest.suffix != SUFFIX:
            raise ProjectError(f"export target {dest} must end in {SUFFIX}")
        data = entry.path.read_bytes()
        if dest.exists() and not overwrite:
            if dest.is_file() and dest.read_bytes() == data:
                return dest
            raise ProjectError(f"{dest} already exists; choose another name or folder")
        atomic_write_bytes(dest, data)
        return dest

    def update_attribute(
        self,
        ref: str,
        *,
        name: str | None = None,
        tags: Iterable[str] | None = None,
        notes: str | None = None,
        default_lambda: float | None = None,
    ) -> AttributeEntry:
        """Edit the metadata of an attribute in place; the factors (and so the id) stay."""
        from ostaf.library.attribute_file import load_attribute, save_attribute

        self._require_lock()
        entry = self.find_attribute(ref)
        attribute = load_attribute(entry.path)
        changes: dict[str, Any] = {}
        if name is not None:
            changes["name"] = _check_name(name)
        if tags is not None:
            changes["tags"] = normalize_tags(tags)
        if notes is not None:
            if len(notes) > MAX_NOTES:
                raise ProjectError(f"notes are longer than {MAX_NOTES} characters")
            changes["notes"] = notes.strip()
        if default_lambda is not None:
            changes["default_lambda"] = float(default_lambda)
        meta = replace(attribute.meta, **changes)
        try:
            meta.validate()
        except ValueError as exc:
            raise ProjectError(f"cannot change '{entry.meta.name}': {exc}") from exc
        attribute.meta = meta
        save_attribute(entry.path, attribute)
        return AttributeEntry(entry.path, meta)

    def delete_attribute(self, ref: str) -> Path:
        """Move an attribute to the project's trash (a newer deletion of the same attribute
        replaces the older trashed copy); returns its path in the trash."""
        self._require_lock()
        entry = self.find_attribute(ref)
        target = self.trash_dir / entry.path.name
        _move(entry.path, target)
        return target

    def restore_attribute(self, ref: str) -> RestoreOutcome:
        """Bring an attribute back from the trash."""
        self._require_lock()
        entry = self.find_attribute(ref, trash=True)
        live = self.attributes_dir / entry.path.name
        if live.exists():
            try:
                return RestoreOutcome(AttributeEntry(live, read_meta(live)), True)
            except AttributeFileError as exc:
                raise ProjectError(
                    f"{live} is damaged and in the way; move it out of the library folder "
                    "and restore again"
                ) from exc
        _move(entry.path, live)
        return RestoreOutcome(AttributeEntry(live, entry.meta), False)


def validate_attribute_file(source: Path | str) -> Attribute:
    """Read an attribute file completely, or raise AttributeFileError saying what it is
    instead (a pickle, a LoRA, a model, a damaged file)."""
    from safetensors import SafetensorError, safe_open

    from ostaf.library.attribute_file import load_attribute
    from ostaf.library.attribute_meta import METADATA_KEY

    source = Path(source)
    if not source.is_file():
        raise AttributeFileError(f"{source}: no such attribute file; check the path")
    if source.suffix.lower() in PICKLE_SUFFIXES:
        raise AttributeFileError(
            f"{source}: a pickle file can run code when opened and is never loaded; "
            "OSTAF attributes are .safetensors files"
        )
    if source.suffix.lower() != SUFFIX:
        raise AttributeFileError(f"{source}: not an attribute file (those end in {SUFFIX})")
    try:
        with safe_open(str(source), framework="numpy") as handle:
            header = handle.metadata() or {}
            keys = list(handle.keys())
    except (SafetensorError, OSError, ValueError) as exc:
        raise AttributeFileError(
            f"{source}: not a readable .safetensors file ({exc}); it may be truncated or corrupt"
        ) from exc
    if METADATA_KEY not in header and (
        "ss_network_module" in header or any("lora" in key for key in keys)
    ):
        raise AttributeFileError(
            f"{source}: this is a LoRA, not an OSTAF attribute; use it in the tool it was "
            "made for (A1111, ComfyUI, diffusers)"
        )
    return load_attribute(source)


def normalize_tags(tags: Iterable[str]) -> list[str]:
    """Tags stripped, lower-cased, without duplicates; refuse empty, long or comma'd ones."""
    result: list[str] = []
    for tag in tags:
        tag = " ".join(tag.split()).lower()
        if not tag:
            continue
        if len(tag) > MAX_TAG or "," in tag:
            raise ProjectError(f"tag {tag!r} must be under {MAX_TAG} characters, without commas")
        if tag not in result:
            result.append(tag)
    return result


def filter_attributes(
    entries: Iterable[AttributeEntry],
    text: str = "",
    tags: Iterable[str] = (),
    kind: str | None = None,
) -> list[AttributeEntry]:
    """Entries whose name, notes, tags or reference name contain `text` (any case), that
    carry every tag in `tags`, and (if given) are of `kind`."""
    needle = text.strip().casefold()
    wanted = set(normalize_tags(tags))
    found = []
    for entry in entries:
        meta = entry.meta
        if kind and str(meta.kind) != kind:
            continue
        if not wanted <= set(meta.tags):
            continue
        haystack = " ".join([meta.name, meta.notes, *meta.tags, meta.reference.file_name])
        if needle and needle not in haystack.casefold():
            continue
        found.append(entry)
    return found


def thumbnail_image(meta: AttributeMeta) -> Image.Image | None:
    """The reference thumbnail stored in the attribute (None if it has none)."""
    from ostaf.errors import InputImageError
    from ostaf.images import image_from_data_url

    if not meta.reference.thumbnail:
        return None
    try:
        return image_from_data_url(meta.reference.thumbnail)
    except InputImageError:
        return None


def thumbnail_png(meta: AttributeMeta) -> bytes | None:
    """The stored thumbnail as PNG bytes, checked to decode (None if it has none)."""
    if thumbnail_image(meta) is None:
        return None
    return base64.b64decode(meta.reference.thumbnail.split(",", 1)[1])


def _check_name(name: str) -> str:
    name = " ".join(name.split())
    if not name:
        raise ProjectError("an attribute name cannot be empty")
    if len(name) > MAX_NAME:
        raise ProjectError(f"that name is too long; keep it under {MAX_NAME} characters")
    return name


def _move(source: Path, target: Path) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)
    except OSError as exc:
        raise StorageError(f"cannot move {source} to {target}: {exc.strerror or exc}") from exc


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

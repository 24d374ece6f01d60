"""Projects on disk (DESIGN §4): project.json, the reference images, one file per attribute.

The attribute files are the truth: the list of a project's attributes is read from their
headers (fast, no torch), so the index can never disagree with the disk. Corrupt or foreign
files are reported by name and skipped, never overwritten. One app instance at a time holds a
project's write lock (an OS lock, released even when the process dies).

The attribute library: a file is named by the hash of its factors, so importing the same
attribute twice is detected by content; editing the name, tags, notes or default λ rewrites
only the metadata (atomically), so the name stays; deleting moves the file to
`attributes/.trash/`, from where it can be restored or deleted for good.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ostaf import paths
from ostaf.errors import (
    AttributeFileError,
    ProjectError,
    SettingsError,
    StorageError,
)
from ostaf.library.atomic import (
    atomic_write_bytes,
    check_writable,
    describe_os_error,
    is_temporary,
    storage_error,
)
from ostaf.library.attribute_meta import (
    SUFFIX,
    AttributeMeta,
    check_attribute_name,
    normalize_tags,
    now_iso,
    read_meta,
)
from ostaf.library.browsing import filter_attributes, thumbnail_image, thumbnail_png
from ostaf.library.project_file import (
    PROJECT_FILE,
    ProjectInfo,
    ReferenceRecord,
    read_info,
    write_info,
)
from ostaf.library.project_lock import Holder, ProjectLock
from ostaf.library.project_paths import (
    entry_kind,
    inside,
    is_reserved_name,
    library_folder,
    make_library_folder,
    skipped_link,
)
from ostaf.limits import MAX_NOTES
from ostaf.method.words import attribute_word, check_word, choose_word, tuned_on_demo

if TYPE_CHECKING:
    from ostaf.library.attribute_file import Attribute

# Re-exported: the app and the command line import these from here.
__all__ = [
    "PROJECT_FILE",
    "ProjectInfo",
    "ReferenceRecord",
    "filter_attributes",
    "normalize_tags",
    "thumbnail_image",
    "thumbnail_png",
]

TRASH = ".trash"
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin", ".pkl", ".pickle")
MAX_PROJECT_NAME = 120
NEW_FOLDER_PREFIX = ".new-"  # a project being created, renamed into place when complete
STALE_NEW_FOLDER_S = 3600.0
STORE_LOCK = ".create.lock"  # held while a project is created (a hidden file: never listed)
STORE_LOCK_WAIT_S = 30.0
# The names the library gives attribute files: the first 16 hex digits of the content hash.
ATTRIBUTE_FILE_NAME = re.compile(rf"[0-9a-f]{{16}}{re.escape(SUFFIX)}")


def slugify(name: str) -> str:
    """A folder name safe on every OS, from a project name."""
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    text = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()[:48] or "project"
    return f"_{text}" if is_reserved_name(text) else text  # CON, NUL … are devices on Windows


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


class Project:
    """An open project folder. Every write happens inside its lock (`with project.locked():`),
    and every read-modify-write reads what is on disk inside that lock (`edit_info`,
    `edit_attribute`), so two writers never lose each other's changes."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.info = read_info(folder)
        self._lock = ProjectLock(folder)
        self.holder: Holder = "app"  # "command": a short edit from the command line
        self.lock_wait_s = 0.0  # how long to wait for another command's edit to finish

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

    def output_folder(self) -> Path:
        """The exports folder, checked to be a real folder inside the project and created
        when missing (ProjectError when it is a link or the project is gone)."""
        return make_library_folder(self.folder, "exports")

    # -- locking -------------------------------------------------------------------------
    def acquire(self) -> None:
        """Take the write lock or raise ProjectLockedError naming who holds it; project.json
        is read again, as the last holder left it."""
        if self._lock.held:
            return
        self._lock.acquire(self.name, self.holder, self.lock_wait_s)
        try:
            self.info = read_info(self.folder)
        except ProjectError:
            self.release()
            raise

    def release(self) -> None:
        self._lock.release()

    @property
    def is_locked(self) -> bool:
        """True while this object holds the write lock."""
        return self._lock.held

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the write lock for the block; a holder keeps it afterwards, anyone else lets
        go of it at the end (a command holds it only while it writes)."""
        held = self._lock.held
        self.acquire()
        try:
            yield
        finally:
            if not held:
                self.release()

    # -- project.json ----------------------------------------------------------------------
    def edit_info(self, change: Callable[[ProjectInfo], None]) -> ProjectInfo:
        """Apply `change` to project.json as it is on disk, inside the lock, and save it."""
        with self.locked():
            info = read_info(self.folder)
            change(info)
            write_info(self.folder, info)
            self.info = info
            return info

    def rename(self, new_name: str) -> None:
        """Change the display name (the folder keeps its name, so paths stay valid)."""
        new_name = check_project_name(new_name)

        def apply(info: ProjectInfo) -> None:
            info.name = new_name

        self.edit_info(apply)

    def touch(self) -> None:
        """Record that the project was opened now."""
        stamp = now_iso()

        def apply(info: ProjectInfo) -> None:
            info.last_opened = stamp

        self.edit_info(apply)

    # -- references ------------------------------------------------------------------------
    def add_reference(self, image: Path) -> Path:
        """Copy a reference image in, under a content-hashed name (added once)."""
        import hashlib

        image = Path(image)
        try:
            data = image.read_bytes()
        except OSError as exc:
            raise ProjectError(f"cannot read {image}: {exc.strerror or exc}") from exc
        digest = hashlib.sha256(data).hexdigest()
        suffix = image.suffix.lower()
        suffix = suffix if re.fullmatch(r"\.[a-z0-9]{1,10}", suffix) else ".png"
        with self.locked():
            target = make_library_folder(self.folder, "references") / f"{digest[:16]}{suffix}"
            if entry_kind(target) != "file":  # a link of that name is replaced, not followed
                atomic_write_bytes(target, data)

            def apply(info: ProjectInfo) -> None:
                if not any(r.sha256 == digest for r in info.references):
                    record = ReferenceRecord(digest, target.name, image.name, now_iso())
                    info.references.append(record)

            self.edit_info(apply)
        return target

    def reference_path(self, record: ReferenceRecord) -> Path | None:
        """The file of a reference record, when it is a file inside references/ (a name that
        points anywhere else, or a link out of the folder, gives None)."""
        try:
            folder = library_folder(self.folder, "references")
        except ProjectError:
            return None
        path = inside(folder, record.file)
        return path if path is not None and path.is_file() else None

    # -- attributes ------------------------------------------------------------------------
    def attribute_path(self, content_hash: str) -> Path:
        return self.attributes_dir / f"{content_hash[:16]}{SUFFIX}"

    def locate_attribute(self, content_hash: str) -> tuple[Path | None, Path | None]:
        """The library's file of an attribute and its trashed copy, each only when it is a
        real file in a real folder of this project (a link is never followed)."""
        found: list[Path | None] = []
        for parts in (("attributes",), ("attributes", TRASH)):
            try:
                path = library_folder(self.folder, *parts) / f"{content_hash[:16]}{SUFFIX}"
            except ProjectError:
                found.append(None)
                continue
            found.append(path if entry_kind(path) == "file" else None)
        return found[0], found[1]

    def _scan(self, *parts: str) -> tuple[list[AttributeEntry], list[Problem]]:
        """The attribute files of one library folder (newest first) and those that could not
        be used; ProjectError when the folder itself is a link."""
        folder = library_folder(self.folder, *parts)
        entries: list[AttributeEntry] = []
        problems: list[Problem] = []
        if entry_kind(folder) != "folder":
            return entries, problems
        for path in sorted(folder.iterdir()):
            if path.suffix != SUFFIX or is_temporary(path):
                continue
            kind = entry_kind(path)
            if kind == "link":
                problems.append(Problem(path, skipped_link(path)))
                continue
            if kind != "file":
                continue
            try:
                entries.append(AttributeEntry(path, read_meta(path)))
            except AttributeFileError as exc:
                problems.append(Problem(path, str(exc)))
        entries.sort(key=lambda e: (e.meta.created_at, e.path.name), reverse=True)
        return entries, problems

    def scan_attributes(self) -> tuple[list[AttributeEntry], list[Problem]]:
        """Every readable attribute (newest first) and every file that could not be read,
        or a linked attributes/ folder as the one problem."""
        try:
            return self._scan("attributes")
        except ProjectError as exc:
            return [], [Problem(self.attributes_dir, str(exc))]

    def attributes(self) -> list[AttributeEntry]:
        return self.scan_attributes()[0]

    @property
    def trash_dir(self) -> Path:
        return self.attributes_dir / TRASH

    def scan_trash(self) -> tuple[list[AttributeEntry], list[Problem]]:
        """Attributes in the project's trash, most recently created first, and the files
        there that are not offered for restore (damaged ones, links)."""
        try:
            return self._scan("attributes", TRASH)
        except ProjectError as exc:
            return [], [Problem(self.trash_dir, str(exc))]

    def trashed_attributes(self) -> list[AttributeEntry]:
        """Attributes in the project's trash, most recently created first."""
        return self.scan_trash()[0]

    def find_attribute(self, ref: str, trash: bool = False) -> AttributeEntry:
        """An attribute by id, unique id prefix (4+ characters) or name (any case)."""
        parts = ("attributes", TRASH) if trash else ("attributes",)
        entries = self._scan(*parts)[0]  # a linked folder is refused, naming it
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

        validated = [(Path(source), validate_attribute_file(source)) for source in sources]
        outcomes = []
        with self.locked():
            folder = make_library_folder(self.folder, "attributes")
            targets = [folder / f"{a.content_hash()[:16]}{SUFFIX}" for _, a in validated]
            for target in targets:  # before anything is written
                _check_in_the_way(target)
            for (source, attribute), target in zip(validated, targets, strict=True):
                if entry_kind(target) == "file":
                    try:
                        entry = AttributeEntry(target, read_meta(target))
                    except AttributeFileError as exc:
                        raise ProjectError(
                            f"{target} has the same name as {source.name} but is damaged; move "
                            "it out of the library folder (it is never overwritten) and import "
                            "again"
                        ) from exc
                    outcomes.append(ImportOutcome(entry, True))
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
        try:
            into_folder = dest.is_dir() or not dest.suffix
        except OSError as exc:  # e.g. a name longer than the file system allows
            raise storage_error(dest, exc) from exc
        if into_folder:
            dest = dest / f"{slugify(entry.meta.name)}-{entry.id[:8]}{SUFFIX}"
        if dest.suffix != SUFFIX:
            raise ProjectError(f"export target {dest} must end in {SUFFIX}")
        check_writable(dest)
        data = entry.path.read_bytes()
        if dest.exists() and not overwrite:
            if dest.is_file() and dest.read_bytes() == data:
                return dest
            raise ProjectError(f"{dest} already exists; choose another name or folder")
        atomic_write_bytes(dest, data)
        return dest

    def edit_attribute(
        self, ref: str, change: Callable[[AttributeMeta], AttributeMeta]
    ) -> AttributeEntry:
        """Rewrite an attribute's metadata: inside the lock, find and read the file as it is
        on disk now, apply `change` to its metadata, check the result and save it atomically.
        The factors, and so the id, stay. Every edit of an attribute goes through here."""
        from ostaf.library.attribute_file import load_attribute, save_attribute

        with self.locked():
            entry = self.find_attribute(ref)
            attribute = load_attribute(entry.path)
            try:
                meta = change(attribute.meta)
                meta.validate()
            except (ValueError, SettingsError) as exc:
                raise ProjectError(f"cannot change '{entry.meta.name}': {exc}") from exc
            attribute.meta = meta
            save_attribute(entry.path, attribute)
            return AttributeEntry(entry.path, meta)

    def update_attribute(
        self,
        ref: str,
        *,
        name: str | None = None,
        tags: Iterable[str] | None = None,
        notes: str | None = None,
        default_lambda: float | None = None,
    ) -> AttributeEntry:
        """Set the name, tags, notes or default λ of an attribute (see edit_attribute)."""
        changes: dict[str, Any] = {}
        if name is not None:
            try:
                changes["name"] = check_attribute_name(name)
            except SettingsError as exc:
                raise ProjectError(str(exc)) from exc
        if tags is not None:
            changes["tags"] = normalize_tags(tags)
        if notes is not None:
            if len(notes) > MAX_NOTES:
                raise ProjectError(f"notes are longer than {MAX_NOTES} characters")
            changes["notes"] = notes.strip()
        if default_lambda is not None:
            changes["default_lambda"] = float(default_lambda)
        return self.edit_attribute(ref, lambda meta: replace(meta, **changes))

    def words(self, but: str = "") -> dict[str, str]:
        """The words of the project's attributes (lower case) and whose they are, leaving
        out the attribute `but` (an id)."""
        return {
            attribute_word(e.meta).lower(): e.meta.name for e in self.attributes() if e.id != but
        }

    def check_new_word(self, ref: str, word: str) -> str:
        """`word` as it would be stored for the attribute `ref`; ProjectError when it is no
        word or another attribute of the project has it."""
        entry = self.find_attribute(ref)
        try:
            word = check_word(word)
        except SettingsError as exc:
            raise ProjectError(str(exc)) from exc
        others = self.words(but=entry.id)
        owner = others.get(word)
        if owner is not None:
            suggestion = self.free_word(demo=tuned_on_demo(entry.meta))
            advice = (
                f"choose another, e.g. {suggestion}"
                if suggestion not in others
                else "every word OSTAF suggests is in use in this project: type one of your "
                "own (one word the model reads as one token), or move unused attributes "
                "to another project"
            )
            raise ProjectError(
                f"'{owner}' already uses the word '{word}' in this project; {advice}"
            )
        return word

    def free_word(self, demo: bool) -> str:
        """The word a new attribute of this project gets (ostaf.method.words)."""
        return choose_word(self.words(), demo)

    def change_word(self, ref: str, renamed: Attribute, was: str) -> AttributeEntry:
        """Write `renamed`, the attribute `ref` with another word (see
        ostaf.method.word_rebase), over its file, which keeps its name, so its id stays.
        Inside the lock the file must still hold the attribute it was made from (`was`: that
        one's content hash) and no other attribute may have the word."""
        from ostaf.library.attribute_file import load_attribute, save_attribute

        with self.locked():
            entry = self.find_attribute(ref)
            word = self.check_new_word(entry.id, attribute_word(renamed.meta))
            if load_attribute(entry.path).content_hash() != was:
                raise ProjectError(
                    f"'{entry.meta.name}' changed while its new word '{word}' was worked out; "
                    "give it the word again"
                )
            save_attribute(entry.path, renamed)
            return AttributeEntry(entry.path, renamed.meta)

    def change_tags(
        self, ref: str, add: Iterable[str] = (), remove: Iterable[str] = ()
    ) -> AttributeEntry:
        """Add and remove tags, starting from the tags the file holds when the lock is held."""
        added = normalize_tags(add)
        removed = set(normalize_tags(remove))

        def apply(meta: AttributeMeta) -> AttributeMeta:
            kept = [t for t in meta.tags if t not in removed]
            return replace(meta, tags=normalize_tags([*kept, *added]))

        return self.edit_attribute(ref, apply)

    def delete_attribute(self, ref: str) -> Path:
        """Move an attribute to the project's trash (a newer deletion of the same attribute
        replaces the older trashed copy); returns its path in the trash."""
        with self.locked():
            entry = self.find_attribute(ref)
            target = make_library_folder(self.folder, "attributes", TRASH) / entry.path.name
            _check_in_the_way(target)
            _move(entry.path, target)
            return target

    def restore_attribute(self, ref: str) -> RestoreOutcome:
        """Bring an attribute back from the trash."""
        with self.locked():
            entry = self.find_attribute(ref, trash=True)
            live = make_library_folder(self.folder, "attributes") / entry.path.name
            _check_in_the_way(live)
            if entry_kind(live) == "file":
                try:
                    return RestoreOutcome(AttributeEntry(live, read_meta(live)), True)
                except AttributeFileError as exc:
                    raise ProjectError(
                        f"{live} is damaged and in the way; move it out of the library folder "
                        "and restore again"
                    ) from exc
            _move(entry.path, live)
            return RestoreOutcome(AttributeEntry(live, entry.meta), False)

    def purge_attribute(self, ref: str) -> AttributeEntry:
        """Delete one attribute from the trash for good (the library's copy is not touched)."""
        with self.locked():
            entry = self.find_attribute(ref, trash=True)
            _remove(entry.path)
            return entry

    def empty_trash(self) -> list[Path]:
        """Delete the attribute files in the trash for good, damaged ones too: files the
        library named, or readable attributes; links and other files stay where they are."""
        with self.locked():
            folder = library_folder(self.folder, "attributes", TRASH)  # never a link
            if entry_kind(folder) != "folder":
                return []
            files = [path for path in sorted(folder.iterdir()) if _is_attribute_file(path)]
            for path in files:
                _remove(path)
            return files


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


def check_project_name(name: str) -> str:
    """A project name as it is stored: stripped, not empty, at most MAX_PROJECT_NAME long."""
    name = name.strip()
    if not name:
        raise ProjectError("a project name cannot be empty")
    if len(name) > MAX_PROJECT_NAME:
        raise ProjectError(
            f"that project name is too long; keep it to {MAX_PROJECT_NAME} characters at most"
        )
    return name


def _is_attribute_file(path: Path) -> bool:
    """True for a real file the library wrote: named as it names them, or a readable
    attribute (a file moved to the trash keeps the name it had)."""
    if path.suffix != SUFFIX or is_temporary(path) or entry_kind(path) != "file":
        return False
    if ATTRIBUTE_FILE_NAME.fullmatch(path.name):
        return True
    try:
        read_meta(path)
    except AttributeFileError:
        return False
    return True


def _check_in_the_way(target: Path) -> None:
    """Refuse to write over a link or a folder where an attribute file goes."""
    if entry_kind(target) not in ("missing", "file"):
        raise ProjectError(
            f"{target} is in the way (a symbolic link or a folder, never followed or "
            "replaced); move it out of the library folder and try again"
        )


def _move(source: Path, target: Path) -> None:
    try:
        os.replace(source, target)
    except OSError as exc:
        raise StorageError(f"cannot move {source} to {target}: {exc.strerror or exc}") from exc


def _remove(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot delete {path}: {exc.strerror or exc}") from exc


class ProjectStore:
    """All projects under one root folder (by default the user data dir)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or paths.projects_dir()

    @contextlib.contextmanager
    def _creating(self) -> Iterator[None]:
        """Hold the store's lock: projects are created one at a time, so that `find_or_create`
        looks for the name and creates it with no other creation in between."""
        from filelock import FileLock, Timeout

        lock = FileLock(str(self.root / STORE_LOCK))
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            lock.acquire(timeout=STORE_LOCK_WAIT_S)
        except Timeout as exc:  # before OSError: it is a TimeoutError
            raise ProjectError(
                f"another OSTAF process has been creating a project in {self.root} for "
                f"{STORE_LOCK_WAIT_S:g} s; try again when it is done"
            ) from exc
        except OSError as exc:
            raise ProjectError(
                f"cannot create a project in {self.root}: {describe_os_error(exc)}"
            ) from exc
        try:
            yield
        finally:
            lock.release()

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
        """A new project with a unique folder name derived from `name`, its lock held. It is
        built in a hidden folder and renamed into place complete, so a failure (a full disk)
        leaves nothing half-made behind and a retry gets the same folder name."""
        name = check_project_name(name)
        with self._creating():
            return self._create(name)

    def find_or_create(self, name: str) -> tuple[Project, bool]:
        """The project named `name` (by name or folder name), created (its lock held) when
        there is none; True when it was created. Atomic over processes: two at once make
        one project."""
        with self._creating():
            found = self._lookup(name)
            if found is not None:
                return found, False
            return self._create(check_project_name(name)), True

    def _create(self, name: str) -> Project:
        base = slugify(name)
        self._sweep_new_folders()
        building = self.root / f"{NEW_FOLDER_PREFIX}{uuid.uuid4().hex}"
        try:
            for sub in ("attributes", "references", "exports"):
                (building / sub).mkdir(parents=True)
            write_info(building, ProjectInfo(name=name))
            slug, n = base, 2
            while True:
                try:
                    _rename_new_folder(building, self.root / slug)
                    break
                except FileExistsError:
                    slug, n = f"{base}-{n}", n + 1
        except (OSError, StorageError, ProjectError) as exc:
            shutil.rmtree(building, ignore_errors=True)
            if isinstance(exc, OSError):
                raise ProjectError(
                    f"cannot create project '{name}' in {self.root}: {describe_os_error(exc)}"
                ) from exc
            raise
        project = Project(self.root / slug)
        project.acquire()
        return project

    def _sweep_new_folders(self) -> None:
        """Remove what a creation that was killed left behind (only folders older than an
        hour: a creation in another process may be going on now)."""
        if not self.root.is_dir():
            return
        now = time.time()
        for folder in self.root.glob(f"{NEW_FOLDER_PREFIX}*"):
            with contextlib.suppress(OSError):
                if folder.is_dir() and now - folder.stat().st_mtime > STALE_NEW_FOLDER_S:
                    shutil.rmtree(folder, ignore_errors=True)

    def find(self, name_or_slug: str) -> Project:
        """Open a project by display name or folder name (a damaged one is named as such)."""
        project = self._lookup(name_or_slug)
        if project is None:
            raise ProjectError(
                f"no project named '{name_or_slug}'; see the project list (or create it first)"
            )
        return project

    def _lookup(self, name_or_slug: str) -> Project | None:
        """The project of that name or folder name, None when there is none; ProjectError
        when the folder of that name is damaged."""
        projects, problems = self.list()
        for project in projects:
            if name_or_slug in (project.name, project.slug):
                return project
        for problem in problems:
            if problem.path.name == name_or_slug:
                raise ProjectError(problem.message)
        return None

    def delete(self, project: Project) -> Path:
        """Move a project to the store's trash folder (recoverable by hand). Where the OS
        lets a folder with an open file move (not Windows), it moves while its lock is held,
        so that no other writer starts in between."""
        project.acquire()
        trash = self.root / TRASH / f"{project.slug}-{time.strftime('%Y%m%d-%H%M%S')}"
        try:
            trash.parent.mkdir(parents=True, exist_ok=True)
            if os.name != "nt":
                os.rename(project.folder, trash)
            project.release()
            if os.name == "nt":
                shutil.move(str(project.folder), str(trash))
        except OSError as exc:
            project.release()
            raise ProjectError(
                f"cannot move project '{project.name}' to {trash}: {describe_os_error(exc)}"
            ) from exc
        return trash


def _rename_new_folder(source: Path, target: Path) -> None:
    """Move a complete new project folder into place; FileExistsError when the name is taken
    (os.rename would silently replace an empty folder on POSIX)."""
    if target.exists() or target.is_symlink():
        raise FileExistsError(target)
    try:
        os.rename(source, target)
    except OSError as exc:
        if target.exists():
            raise FileExistsError(target) from exc
        raise

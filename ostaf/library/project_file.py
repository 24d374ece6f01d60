"""project.json: what a project says about itself, checked against one schema when read, and
the rule for every path it holds: a plain file name that resolves inside its project folder
(an absolute path, `..`, a Windows drive or UNC share, or a link leading out is refused where
it is used, so that one bad entry never makes the whole project unreadable)."""

from __future__ import annotations

import json
import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Annotated

from pydantic import ConfigDict, Field, JsonValue, with_config
from typing_extensions import TypedDict

from ostaf.errors import ProjectError
from ostaf.file_reading import MiB, read_regular_text
from ostaf.library.atomic import atomic_write_text
from ostaf.library.attribute_meta import now_iso
from ostaf.records import RecordError, parse_record

PROJECT_FILE = "project.json"
PROJECT_SCHEMA = 1
MAX_PROJECT_FILE = 16 * MiB


def plain_file_name(name: str) -> str:
    """`name` when it is one file name on every OS (no folder part, drive, stream or `..`)."""
    if (
        not name
        or name in (".", "..")
        or len(name.encode("utf-8", "surrogatepass")) > 255
        or PurePosixPath(name).name != name
        or PureWindowsPath(name).name != name
        or any(ch in name for ch in ':\\/"*?<>|')
        or any(unicodedata.category(ch) == "Cc" for ch in name)
    ):
        raise ValueError(f"{name!r} is not a plain file name")
    return name


@dataclass
class ReferenceRecord:
    """A reference image kept in the project's references/ folder."""

    sha256: str
    file: str  # name inside references/; used only through `inside` (it may be tampered with)
    original_name: str
    added: str


@dataclass
class ProjectInfo:
    """The content of project.json; its annotations are the schema it is read with."""

    name: Annotated[str, Field(min_length=1)]
    created: str = field(default_factory=now_iso)
    last_opened: str = field(default_factory=now_iso)
    references: list[ReferenceRecord] = field(default_factory=list)
    presets: dict[str, JsonValue] = field(default_factory=dict)
    schema_version: int = PROJECT_SCHEMA


@with_config(ConfigDict(extra="ignore"))
class _Versioned(TypedDict, total=False):
    schema_version: int


def read_info(folder: Path) -> ProjectInfo:
    """Read and check `folder`/project.json; ProjectError naming the file when it is missing,
    damaged, or written by a newer version."""
    path = folder / PROJECT_FILE
    try:
        text = read_regular_text(path, MAX_PROJECT_FILE)
        version = parse_record(_Versioned, text).get("schema_version", PROJECT_SCHEMA)
        if version > PROJECT_SCHEMA:
            raise ProjectError(f"{path} was written by a newer OSTAF; update the app")
        return parse_record(ProjectInfo, text)
    except FileNotFoundError as exc:
        raise ProjectError(f"{folder} has no {PROJECT_FILE}; it is not an OSTAF project") from exc
    except (RecordError, OSError) as exc:
        raise ProjectError(f"{path} is damaged ({exc}); restore it from a backup") from exc


def write_info(folder: Path, info: ProjectInfo) -> None:
    """Write project.json atomically (checked first: what is written must read back)."""
    text = json.dumps(asdict(info), indent=2) + "\n"
    try:
        parse_record(ProjectInfo, text)
    except RecordError as exc:
        raise ProjectError(f"cannot save project '{info.name}': {exc}") from exc
    atomic_write_text(folder / PROJECT_FILE, text)


def inside(folder: Path, name: str) -> Path | None:
    """`folder`/`name` when `name` is a plain file name and the path, links followed, stays
    inside `folder`; else None."""
    try:
        plain_file_name(name)
        root = folder.resolve()
        path = (folder / name).resolve()
    except (ValueError, OSError, RuntimeError):
        return None
    return folder / name if path.parent == root else None

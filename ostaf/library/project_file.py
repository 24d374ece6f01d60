"""project.json: what a project says about itself, checked against one schema when read. Every
path it holds is used only through `project_paths.inside`: a plain file name that resolves
inside its project folder (an absolute path, `..`, a Windows drive or UNC share, or a link
leading out is refused where it is used, so that one bad entry never makes the whole project
unreadable)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated

from pydantic import ConfigDict, Field, JsonValue, with_config
from typing_extensions import TypedDict

from ostaf.errors import ProjectError
from ostaf.file_reading import MiB, read_regular_text
from ostaf.library.atomic import atomic_write_text
from ostaf.library.attribute_meta import now_iso
from ostaf.library.project_paths import entry_kind, inside, plain_file_name
from ostaf.records import RecordError, parse_record

__all__ = ["inside", "plain_file_name"]  # the path rule, kept importable from here

PROJECT_FILE = "project.json"
PROJECT_SCHEMA = 1
MAX_PROJECT_FILE = 16 * MiB


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
    if entry_kind(path) == "link":
        raise ProjectError(
            f"{path} is a symbolic link; the library never follows links out of a project: "
            "replace it with a copy of the file"
        )
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

"""The rule for every path the library touches: it stays inside its project.

A project may arrive as a zip or tar, and both keep symbolic links; a user may make links
too. So the library's own folders (`attributes/`, `attributes/.trash/`, `references/`,
`exports/`, the staging folder) must be real folders, never links, and the files it reads,
moves or deletes in them must be real files; names read from project.json must be plain
file names. A link is refused (a folder) or reported and skipped (a file), never followed.
The project folder itself may be a link: it is where the user keeps the project.
"""

from __future__ import annotations

import os
import stat
import unicodedata
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Literal

from ostaf.errors import ProjectError

# Device names Windows reserves in every folder, with or without an extension.
WINDOWS_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL"} | {f"{p}{i}" for p in ("COM", "LPT") for i in range(10)}
)

EntryKind = Literal["file", "folder", "link", "missing", "other"]


def is_reserved_name(name: str) -> bool:
    """True when Windows reserves `name` for a device (CON, NUL, COM1.txt, lpt9 …)."""
    return name.split(".")[0].rstrip(" ").upper() in WINDOWS_RESERVED


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


def entry_kind(path: Path) -> EntryKind:
    """What is at `path` itself, links not followed (a Windows junction counts as a link)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return "missing"
    except OSError:
        return "other"
    reparse_tag: int = getattr(info, "st_reparse_tag", 0)  # set on Windows only
    if stat.S_ISLNK(info.st_mode) or reparse_tag:
        return "link"
    if stat.S_ISDIR(info.st_mode):
        return "folder"
    return "file" if stat.S_ISREG(info.st_mode) else "other"


def library_folder(project: Path, *parts: str) -> Path:
    """`project`/parts, when each part that exists is a real folder (a missing one is made
    later, by a plain mkdir inside its checked parent); ProjectError naming the first part
    that is a link or not a folder."""
    path = project
    for part in parts:
        plain_file_name(part)
        path = path / part
        kind = entry_kind(path)
        if kind == "missing":
            continue
        if kind == "link":
            raise ProjectError(
                f"{path} is a symbolic link, which the library never follows out of a "
                "project; replace it with a real folder"
            )
        if kind != "folder":
            raise ProjectError(f"{path} is in the way of the project's folder; move it away")
    return path


def make_library_folder(project: Path, *parts: str) -> Path:
    """`library_folder`, created when missing; never creates the project folder itself, so
    a project deleted meanwhile is not brought back as an empty ghost."""
    path = library_folder(project, *parts)
    if not project.is_dir():
        raise ProjectError(
            f"the project folder {project} no longer exists (deleted or moved meanwhile)"
        )
    current = project
    for part in parts:
        current = current / part
        try:
            current.mkdir()
        except FileExistsError:
            library_folder(project, *parts)  # it appeared meanwhile: check it again
        except FileNotFoundError as exc:
            raise ProjectError(
                f"the project folder {project} no longer exists (deleted or moved meanwhile)"
            ) from exc
        except OSError as exc:
            raise ProjectError(f"cannot create {current}: {exc.strerror or exc}") from exc
    return path


def skipped_link(path: Path) -> str:
    """The message for a link found among the library's files (it is skipped, not used)."""
    return f"{path} is a symbolic link, which the library never follows"


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

"""Atomic file writes: a crash leaves either the old file or the new one, never a torn one.

A new file gets the mode any program's new file gets (0666 less the umask: others can read
what they are meant to share); a replaced file keeps its own mode.

A writer holds an OS lock on its temporary file from creation until it has replaced the
target, and the OS drops that lock when the writer's process ends, however it ends. So a
sweep of leftovers (`remove_abandoned`) tells a dead writer's file from a live one's by
trying the lock, with no clock, process id or host name to trust: a batch still writing
into a project is never robbed of its file by another process sweeping that project.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from filelock import lock_descriptor

from ostaf.errors import StorageError

TEMP_SUFFIX = ".ostaf-tmp"
# Where the file system has no locks, a sweep removes only temporaries older than this: no
# single write takes that long.
STALE_TEMPORARY_S = 3600.0


def describe_os_error(exc: OSError) -> str:
    """What an OS error means for a user, in a few words."""
    if exc.errno == errno.ENOSPC:
        return "the disk is full; free some space and try again"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "the folder is read-only or not yours"
    if exc.errno == errno.ENAMETOOLONG:
        return "the file name is too long; choose a shorter one"
    if exc.errno == errno.EISDIR or isinstance(exc, IsADirectoryError):
        return "a folder of that name is in the way"
    found = exc.args[0] if isinstance(exc, shutil.Error) and exc.args else None
    if isinstance(found, list) and found:  # a copy's errors: (source, target, why) per file
        more = f" (and {len(found) - 1} more files)" if len(found) > 1 else ""
        return f"{found[0][-1] if isinstance(found[0], tuple) else found[0]}{more}"
    return str(exc.strerror or exc)


def storage_error(path: Path, exc: OSError) -> StorageError:
    """A one-line StorageError for an OS error while writing `path`."""
    if exc.errno == errno.ENOSPC:
        return StorageError(f"disk full while writing {path}: free some space and try again")
    if exc.errno == errno.ENOENT:
        return StorageError(
            f"cannot write {path}: its folder {path.parent} no longer exists (moved or "
            "deleted meanwhile)"
        )
    return StorageError(f"cannot write {path}: {describe_os_error(exc)}")


def temporary_name(path: Path) -> str:
    """The name pattern of `path`'s temporary files (hidden, marked, unique)."""
    return f".{path.name}.{secrets.token_hex(4)}{TEMP_SUFFIX}"


def _claim(fd: int) -> bool:
    """Lock a new temporary for its writer's life; False when a sweep removed it in the
    moment between its creation and the lock (the writer then makes another)."""
    try:
        lock_descriptor(fd, blocking=True, poll_interval=0.01)
    except OSError:
        return True  # no locks on this file system: sweeps go by age there
    return os.fstat(fd).st_nlink > 0


def _create_temporary(path: Path) -> tuple[int, Path]:
    """A new temporary file beside `path`, locked (see `_claim`), created with mode 0666 (the
    kernel takes the umask off, as for any new file), or with the mode of the file it will
    replace."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = path.parent / temporary_name(path)
        try:
            fd = os.open(tmp, flags, 0o666)
        except FileExistsError:
            continue
        try:
            if not _claim(fd):
                os.close(fd)
                continue
            if hasattr(os, "fchmod"):
                with contextlib.suppress(FileNotFoundError):
                    os.fchmod(fd, stat.S_IMODE(os.stat(path).st_mode))
        except OSError:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        return fd, tmp
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(path.parent))


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(path: Path | str, make_folder: bool = True) -> Iterator[IO[bytes]]:
    """Open a temporary file beside `path`; on success it replaces `path` in one step. With
    `make_folder` False the folder must exist (a folder removed meanwhile is not made again)."""
    path = Path(path)
    try:
        if make_folder:
            path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = _create_temporary(path)
    except OSError as exc:
        raise storage_error(path, exc) from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
            if os.name != "nt":
                os.replace(tmp, path)  # while the file, and so its lock, is still open
        if os.name == "nt":
            # Windows renames no open file. While open it cannot be deleted either; only this
            # instant between closing and renaming is open to a sweep there.
            os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise storage_error(path, exc) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def check_writable(path: Path, *companions: Path) -> None:
    """Find out now, not after a long job, that `path` (and the files written beside it)
    can be written atomically: its folder can be made, no folder is in the way, and the
    temporary names fit the file system. StorageError naming the file otherwise."""
    targets = (path, *companions)
    target = path
    try:
        for target in targets:
            if target.exists() and not target.is_file():
                raise StorageError(
                    f"cannot write {target}: a folder (or something else that is not a file) "
                    "of that name is in the way; choose another name"
                )
        path.parent.mkdir(parents=True, exist_ok=True)
        for target in targets:
            fd, tmp = _create_temporary(target)
            os.close(fd)
            tmp.unlink()
    except OSError as exc:
        raise storage_error(target, exc) from exc


def atomic_write_bytes(path: Path | str, data: bytes, make_folder: bool = True) -> None:
    """Write `data` to `path` atomically (`make_folder`: see atomic_open)."""
    with atomic_open(path, make_folder) as handle:
        handle.write(data)


def atomic_write_text(path: Path | str, text: str) -> None:
    """Write UTF-8 `text` to `path` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def is_temporary(path: Path) -> bool:
    """True for the leftovers of an interrupted atomic write (never to be read as data)."""
    return path.name.endswith(TEMP_SUFFIX)


def remove_abandoned(path: Path) -> bool:
    """Delete the temporary file `path` if its writer is gone (its lock is free); a live
    writer's file, a link or anything not a regular file is left alone. True if deleted."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags | getattr(os, "O_BINARY", 0))
    except OSError:
        return False  # gone already, a link (O_NOFOLLOW), or not ours to open
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return False
        try:
            free = lock_descriptor(fd, blocking=False)
        except OSError:  # no locks on this file system: only what no live write can be
            free = time.time() - info.st_mtime > STALE_TEMPORARY_S
        if not free:
            return False
        if os.name != "nt":
            # Deleted while locked: a writer that created it a moment ago and locks it next
            # finds it unlinked and makes another.
            path.unlink(missing_ok=True)
            return True
    finally:
        os.close(fd)
    try:  # Windows deletes no open file: after closing; a writer holding it makes this fail
        path.unlink(missing_ok=True)
    except OSError:
        return False
    return True

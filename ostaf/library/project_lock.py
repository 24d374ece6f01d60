"""A project's write lock: one OS file lock per project folder (released even when the holder
dies), a small owner record saying who holds it, and the sweep of half-written temporary files
that only the lock holder may do.

The desktop app holds the lock for as long as a project is open; a command holds it for one
edit. A command that finds another command holding it waits a little (edits take a moment);
one that finds the app holding it is refused at once, naming the process.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from filelock import FileLock, Timeout

from ostaf.errors import ProjectLockedError, StorageError
from ostaf.file_reading import read_regular_text
from ostaf.library.atomic import TEMP_SUFFIX, atomic_write_text, remove_abandoned
from ostaf.library.attribute_meta import now_iso
from ostaf.records import RecordError, parse_record

LOCK_FILE = ".lock"
OWNER_FILE = ".lock.owner"
Holder = Literal["app", "command"]
POLL_S = 0.1


@dataclass
class LockOwner:
    """Who holds a project's lock (written beside the lock; informative only)."""

    pid: int
    host: str
    since: str
    holder: Holder = "app"


def lock_error(folder: Path, exc: OSError) -> StorageError:
    """A one-line error for an OS failure while taking or recording the lock."""
    if exc.errno == errno.ENOSPC:
        return StorageError(f"disk full: cannot lock the project in {folder}; free some space")
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return StorageError(
            f"cannot lock the project in {folder}: the folder is read-only or not yours"
        )
    return StorageError(f"cannot lock the project in {folder}: {exc.strerror or exc}")


class ProjectLock:
    """The write lock of one project folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock: FileLock | None = None

    @property
    def held(self) -> bool:
        return self._lock is not None

    def acquire(self, project_name: str, holder: Holder = "app", wait_s: float = 0.0) -> None:
        """Take the lock, or raise ProjectLockedError naming who holds it. With `wait_s`,
        wait that long for another command to finish (never for the app)."""
        if self._lock is not None:
            return
        lock = FileLock(str(self.folder / LOCK_FILE))
        deadline = time.monotonic() + wait_s
        while True:
            try:
                lock.acquire(timeout=0)
                break
            except Timeout as exc:
                owner = read_owner(self.folder)
                waiting = owner is None or owner.holder == "command"
                if not waiting or time.monotonic() >= deadline:
                    raise ProjectLockedError(
                        f"project '{project_name}' is open in another OSTAF window or "
                        f"command{describe_owner(owner)}; close it there first"
                    ) from exc
                time.sleep(POLL_S)
            except OSError as exc:
                raise lock_error(self.folder, exc) from exc
        self._lock = lock
        try:
            sweep_temporaries(self.folder)
            owner = LockOwner(os.getpid(), socket.gethostname(), now_iso(), holder)
            atomic_write_text(self.folder / OWNER_FILE, json.dumps(asdict(owner)))
        except (OSError, StorageError) as exc:
            self.release()
            if isinstance(exc, StorageError):
                raise
            raise lock_error(self.folder, exc) from exc

    def release(self) -> None:
        """Let go of the lock (nothing happens when it is not held)."""
        if self._lock is None:
            return
        # On a read-only or vanished folder the record stays; the OS lock is what matters.
        with contextlib.suppress(OSError):
            (self.folder / OWNER_FILE).unlink(missing_ok=True)
        self._lock.release()
        self._lock = None


def sweep_temporaries(folder: Path) -> int:
    """Remove the half-written files a writer that died left in `folder`; returns how many.
    Only temporary files whose writer is gone (atomic.remove_abandoned): a batch writing into
    exports/ without the lock keeps its file; folders, links and other files stay."""
    removed = 0
    for parent, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = [d for d in dirs if not d.endswith(TEMP_SUFFIX)]
        for name in files:
            if name.endswith(TEMP_SUFFIX) and remove_abandoned(Path(parent) / name):
                removed += 1
    return removed


def read_owner(folder: Path) -> LockOwner | None:
    """The owner record, or None when there is none or it is unreadable."""
    try:
        return parse_record(LockOwner, read_regular_text(folder / OWNER_FILE, 4096))
    except (OSError, RecordError):
        return None


def describe_owner(owner: LockOwner | None) -> str:
    if owner is None:
        return ""
    return f" (process {owner.pid} on {owner.host} since {owner.since})"

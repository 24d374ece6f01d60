"""One run at a time per output file: a tuning run holds its output (and so the resumable
state beside it) while it runs, and a second run into the same file fails at once, naming
it, instead of overwriting the first one's result and sharing its state.

The hold is an OS lock on a small hidden file beside the output, dropped by the OS when the
process ends however it ends; the file is removed when the run lets go. Within one process
the hold is re-entrant (the command line and the service it calls both hold it).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

from filelock import lock_descriptor

from ostaf.errors import StorageError
from ostaf.library.atomic import storage_error

LOCK_SUFFIX = ".ostaf-lock"
MAX_OWNER = 200

_held: dict[Path, tuple[int, int | None]] = {}  # path: (holds in this process, descriptor)
_guard = threading.Lock()


def lock_path(path: Path) -> Path:
    """The hidden file whose lock holds `path`."""
    return path.parent / f".{path.name}{LOCK_SUFFIX}"


@contextlib.contextmanager
def hold_output(path: Path) -> Iterator[None]:
    """Hold `path` for this process while the block runs; StorageError naming it when
    another process holds it."""
    key = Path(os.path.abspath(path))
    with _guard:
        count, fd = _held.get(key, (0, None))
        if count == 0:
            fd = _acquire(key)
        _held[key] = (count + 1, fd)
    try:
        yield
    finally:
        with _guard:
            count, fd = _held.pop(key)
            if count > 1:
                _held[key] = (count - 1, fd)
            else:
                _release(key, fd)


def _acquire(path: Path) -> int | None:
    """Lock the file beside `path` (None where the file system has no locks)."""
    target = lock_path(path)
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        try:
            fd = os.open(target, flags, 0o666)
        except OSError as exc:
            raise storage_error(path, exc) from exc
        try:
            locked = lock_descriptor(fd, blocking=False)
        except OSError:
            os.close(fd)
            return None  # no locks here: nothing to hold
        if not locked:
            owner = _owner(fd)
            os.close(fd)
            raise StorageError(
                f"{path} is being written by another run{owner}; wait for it to finish or "
                "choose another output file"
            )
        # The last holder removes the file when it lets go: hold the file at the name now.
        try:
            same = os.fstat(fd).st_ino == os.lstat(target).st_ino
        except FileNotFoundError:
            same = False
        if same:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()} {socket.gethostname()}".encode()[:MAX_OWNER])
            return fd
        os.close(fd)
    raise StorageError(f"cannot hold {path}: its lock file {target} keeps changing")


def _owner(fd: int) -> str:
    """' (process PID on HOST)' from the holder's lock file, or '' when unreadable."""
    try:
        text = os.pread(fd, MAX_OWNER, 0).decode("utf-8", "replace").split()
    except (OSError, AttributeError):  # Windows: no pread, and the locked byte is unreadable
        return ""
    if len(text) == 2 and text[0].isdigit():
        return f" (process {text[0]} on {text[1]})"
    return ""


def _release(path: Path, fd: int | None) -> None:
    if fd is None:
        return
    target = lock_path(path)
    if os.name != "nt":  # removed while still locked, so no one locks a file that is going
        with contextlib.suppress(OSError):
            target.unlink()
        os.close(fd)
        return
    os.close(fd)
    with contextlib.suppress(OSError):  # Windows: fails while another run has it open
        target.unlink()

"""Reading small files the user or another program may have tampered with: regular files only
(a FIFO with no writer would block forever, a device like /dev/zero never ends) and never more
than a stated number of bytes (no torch, no Qt)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

MiB = 1 << 20


class UnreadableFileError(OSError):
    """A file that is not a regular file, is too large, or cannot be read; the message says
    which (the caller adds the file's name and its own error type)."""


def read_regular_file(path: Path | str, limit: int) -> bytes:
    """The whole content of `path`, refused when it is not a regular file or holds more than
    `limit` bytes (read at most `limit` + 1 bytes, whatever the file claims)."""
    path = Path(path)
    # O_NONBLOCK (POSIX): opening a FIFO that has no writer returns at once instead of waiting.
    nonblocking = getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, os.O_RDONLY | nonblocking | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise UnreadableFileError(f"cannot be read ({exc.strerror or exc})") from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnreadableFileError("is not a regular file (a folder, a pipe or a device)")
        if nonblocking:
            os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(limit + 1)
    except UnreadableFileError:
        raise
    except OSError as exc:
        raise UnreadableFileError(f"cannot be read ({exc.strerror or exc})") from exc
    finally:
        os.close(fd)
    if len(data) > limit:
        raise UnreadableFileError(f"is larger than {_size(limit)}, more than such a file holds")
    return data


def read_regular_text(path: Path | str, limit: int, encoding: str = "utf-8") -> str:
    """`read_regular_file` decoded; undecodable bytes raise UnreadableFileError."""
    data = read_regular_file(path, limit)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise UnreadableFileError(f"is not {encoding} text ({exc.reason})") from exc


def _size(limit: int) -> str:
    return f"{limit / MiB:g} MB" if limit >= MiB else f"{limit:,} bytes"

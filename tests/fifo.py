"""A FIFO that nobody writes to, where a data file is expected: opening it for reading waits
for a writer forever. `finishes` runs a reader in a thread and says whether it returned, so a
reader that hangs fails its test instead of hanging the suite."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")


@contextlib.contextmanager
def fifo_at(path: Path) -> Iterator[Path]:
    """A FIFO at `path`; on leaving, a reader still blocked on it is let go (EOF)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    try:
        yield path
    finally:
        with contextlib.suppress(OSError):  # ENXIO: nobody is reading, nothing to let go
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))


def finishes(call: Callable[[], Any], seconds: float = 10.0) -> tuple[bool, list[Any]]:
    """Run `call` in a thread: (whether it returned within `seconds`, [its result])."""
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(call()), daemon=True)
    thread.start()
    thread.join(seconds)
    return not thread.is_alive(), result

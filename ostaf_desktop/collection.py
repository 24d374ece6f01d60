"""Python's cyclic garbage collector, run on the GUI thread only, at a safe point.

A collection normally runs in whichever thread allocates when a generation's threshold is
crossed. When the cycle it frees holds a Qt wrapper, the C++ object is deleted right there: on
the worker thread (in the middle of a U-Net pass or a tokenizer load), or while Qt is
delivering an event to that very object. Both killed the app and the test suite
("Garbage-collecting" at the top of the crashed thread). So, while installed, automatic
collection is off for the whole process; the GUI thread collects what is due from a timer,
that is from the top of its event loop, where no Qt object is half-way through an event; and a
`gc.collect()` that a library calls from another thread (accelerate and torch do, to free
device memory) is handed over to the GUI thread instead of running there.

This module does not import Qt: the app drives `collect_due` from a QTimer, the tests from a
fixture between tests.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

CHECK_INTERVAL_MS = 250  # how often the app's timer calls collect_due()


class MainThreadCollection:
    """Automatic collection off; collections run where `collect_due` is called (one thread)."""

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._original_collect: Callable[..., int] | None = None
        self._was_enabled = False
        self._wanted = threading.Event()  # another thread asked for a full collection
        self.collections = [0, 0, 0]  # per generation, run by collect_due
        self.handed_over = 0  # gc.collect() calls from other threads, deferred to ours

    @property
    def installed(self) -> bool:
        return self._thread is not None

    def install(self) -> None:
        """Switch automatic collection off and route `gc.collect()` to this thread."""
        if self._thread is not None:
            return
        self._thread = threading.current_thread()
        self._was_enabled = gc.isenabled()
        self._original_collect = gc.collect
        gc.disable()
        gc.collect = self._collect

    def uninstall(self) -> None:
        """Undo `install` (automatic collection back as it was)."""
        if self._thread is None:
            return
        gc.collect = self._original_collect  # type: ignore[assignment]
        if self._was_enabled:
            gc.enable()
        self._thread = None

    def collect_due(self) -> int:
        """Collect the oldest generation whose threshold is crossed, as the interpreter itself
        would have, or everything if another thread asked; returns the objects found. Call it
        only from the installing thread, outside any event handler."""
        if self._thread is None or threading.current_thread() is not self._thread:
            return 0
        if gc.isenabled():  # something switched it back on: off again, and say so once
            gc.disable()
            log.warning("automatic garbage collection was switched on again; switched it off")
        collect = self._original_collect
        assert collect is not None
        if self._wanted.is_set():
            self._wanted.clear()
            self.collections[2] += 1
            return collect()
        counts, thresholds = gc.get_count(), gc.get_threshold()
        generation = -1
        for gen in range(3):
            if thresholds[gen] and counts[gen] > thresholds[gen]:
                generation = gen
        if generation < 0:
            return 0
        self.collections[generation] += 1
        return collect(generation)

    def _collect(self, generation: int = 2) -> int:
        collect = self._original_collect
        assert collect is not None
        if threading.current_thread() is self._thread:
            return collect(generation)
        # Another thread: never collect there (see the module docstring); the owner thread
        # runs a full collection at its next check.
        self.handed_over += 1
        self._wanted.set()
        return 0


COLLECTION = MainThreadCollection()  # one per process: gc is process-wide

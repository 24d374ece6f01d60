"""Progress reports and cancellation, as plain data (no Qt)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ostaf.errors import Cancelled


@dataclass(frozen=True)
class Progress:
    """One report from a long operation. `preview` is a PIL image when one was made."""

    stage: str
    step: int
    total: int
    loss: float | None = None
    elapsed_s: float = 0.0
    eta_s: float | None = None
    preview: Any = None
    message: str = ""
    note: str = ""  # something the user should read (resuming, starting over): its own line

    @property
    def fraction(self) -> float:
        return self.step / self.total if self.total else 0.0


ProgressCallback = Callable[[Progress], None]


def ignore_progress(_: Progress) -> None:
    """A progress callback that discards reports."""


class CancelToken:
    """Thread-safe cancel flag, checked by long operations at every step."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._keep_progress = False

    def cancel(self, keep_progress: bool = False) -> None:
        """Ask the operation to stop. With `keep_progress` (the app is quitting, not the
        user stopping this run), a resumable run saves its state so it can go on later."""
        self._keep_progress = self._keep_progress or keep_progress
        self._event.set()

    @property
    def keeps_progress(self) -> bool:
        return self._keep_progress

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        """Raise `Cancelled` when cancellation was asked for."""
        if self._event.is_set():
            raise Cancelled()


class StepClock:
    """Elapsed time and ETA for a loop of known length (ETA from the mean step time)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.start = time.perf_counter()
        self.done_before = 0  # steps finished by an earlier, resumed run

    def report(self, stage: str, step: int, **extra: Any) -> Progress:
        elapsed = time.perf_counter() - self.start
        done_now = step - self.done_before
        eta = elapsed / done_now * (self.total - step) if done_now > 0 else None
        return Progress(
            stage=stage, step=step, total=self.total, elapsed_s=elapsed, eta_s=eta, **extra
        )

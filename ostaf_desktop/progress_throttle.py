"""Coalescing progress reports so the GUI gets a few updates a second, not one per step.

Losses of the skipped reports are kept (the loss curve sees every step); reports with a
preview image, a new stage or the last step always pass. No Qt here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ostaf.progress import Progress

DEFAULT_INTERVAL_S = 0.1


@dataclass
class ProgressUpdate:
    """The newest report plus the (step, loss) pairs since the previous update."""

    latest: Progress
    losses: list[tuple[int, float]] = field(default_factory=list)


class ProgressThrottle:
    """Turns a stream of Progress reports into at most one ProgressUpdate per interval."""

    def __init__(
        self, interval_s: float = DEFAULT_INTERVAL_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._interval = interval_s
        self._clock = clock
        self._last_sent = -float("inf")
        self._pending: Progress | None = None
        self._stage = ""
        self._losses: list[tuple[int, float]] = []

    def add(self, report: Progress) -> ProgressUpdate | None:
        """Take one report; returns an update when one is due."""
        if report.loss is not None:
            self._losses.append((report.step, report.loss))
        self._pending = report
        now = self._clock()
        urgent = (
            report.preview is not None
            or report.stage != self._stage
            or (report.total > 0 and report.step >= report.total)
        )
        if urgent or now - self._last_sent >= self._interval:
            self._last_sent = now
            self._stage = report.stage
            return self._take()
        return None

    def flush(self) -> ProgressUpdate | None:
        """The held-back report, if any."""
        return self._take() if self._pending is not None else None

    def _take(self) -> ProgressUpdate:
        assert self._pending is not None
        update = ProgressUpdate(self._pending, self._losses)
        self._pending, self._losses = None, []
        return update

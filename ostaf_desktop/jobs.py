"""The queue between the GUI and the worker thread: jobs are plain data with explicit states.

The GUI submits and cancels; the worker takes jobs one at a time. A job marked `supersedes`
(a λ preview) replaces a waiting job of its kind and stops a running one, so only the newest
request is ever worked on. No Qt here.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ostaf.progress import CancelToken
from ostaf_desktop.error_report import ErrorReport


class JobKind(StrEnum):
    LOAD_MODEL = "load model"
    TUNE = "tune"
    LEARN_ALL = "learn all three"
    PREVIEW = "preview"
    RENDER = "render"
    BATCH = "batch export"
    EXPORT_LORA = "LoRA export"
    WORD = "new word"


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobState.DONE, JobState.FAILED, JobState.CANCELLED)


_next_id = itertools.count(1)


@dataclass(eq=False)
class Job:
    """One request for the worker: `request` is a core request (ModelChoice, TuneJob,
    DecomposeJob, RenderJob, BatchJob), a LoraRequest or a WordRequest."""

    kind: JobKind
    request: Any
    supersedes: bool = False
    id: int = field(default_factory=lambda: next(_next_id))
    state: JobState = JobState.QUEUED
    cancel_token: CancelToken = field(default_factory=CancelToken)
    result: Any = None
    error: ErrorReport | None = None


class JobQueue:
    """Thread-safe FIFO of jobs with one running job at a time."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._waiting: deque[Job] = deque()
        self._running: Job | None = None
        self._closed = False

    def submit(self, job: Job) -> list[Job]:
        """Queue `job`; returns the waiting jobs it superseded (now CANCELLED, never run)."""
        dropped: list[Job] = []
        with self._condition:
            if self._closed:
                raise RuntimeError("the worker has shut down")
            if job.supersedes:
                dropped = [j for j in self._waiting if j.kind is job.kind]
                for old in dropped:
                    self._waiting.remove(old)
                    old.state = JobState.CANCELLED
                if self._running is not None and self._running.kind is job.kind:
                    self._running.cancel_token.cancel()
            self._waiting.append(job)
            self._condition.notify()
        return dropped

    def take(self, timeout: float | None = None) -> Job | None:
        """The next job, now RUNNING; None once the queue is closed (or on timeout)."""
        with self._condition:
            if not self._condition.wait_for(lambda: self._waiting or self._closed, timeout):
                return None
            if self._closed:
                return None
            job = self._waiting.popleft()
            job.state = JobState.RUNNING
            self._running = job
            return job

    def finish(
        self, job: Job, state: JobState, result: Any = None, error: ErrorReport | None = None
    ) -> None:
        """Record how the running job ended."""
        with self._condition:
            job.result, job.error, job.state = result, error, state
            if self._running is job:
                self._running = None
            self._condition.notify_all()

    def cancel(self, job: Job) -> bool:
        """Stop `job`: a waiting job is dropped at once (returns True), a running one is asked
        to stop at its next step."""
        with self._condition:
            if job in self._waiting:
                self._waiting.remove(job)
                job.state = JobState.CANCELLED
                return True
            if job is self._running:
                job.cancel_token.cancel()
            return False

    def close(self) -> list[Job]:
        """Refuse new jobs, drop the waiting ones (returned) and stop the running one."""
        with self._condition:
            self._closed = True
            dropped = list(self._waiting)
            self._waiting.clear()
            for job in dropped:
                job.state = JobState.CANCELLED
            if self._running is not None:  # quitting: a resumable run keeps its state
                self._running.cancel_token.cancel(keep_progress=True)
            self._condition.notify_all()
            return dropped

    @property
    def running(self) -> Job | None:
        with self._condition:
            return self._running

    @property
    def waiting(self) -> list[Job]:
        with self._condition:
            return list(self._waiting)

    @property
    def idle(self) -> bool:
        with self._condition:
            return self._running is None and not self._waiting

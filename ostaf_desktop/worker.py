"""The one long-lived worker thread and its GUI-side controller.

`ServiceWorker` owns the backend (and so the GPU) and runs jobs in order; the core's progress
callbacks become throttled Qt signals, queued to the GUI thread. `JobController` lives on the
GUI thread: it submits jobs, cancels them and calls each job's callbacks when its signals
arrive.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QObject, QThread, Signal, Slot

from ostaf.errors import Cancelled
from ostaf.progress import CancelToken, Progress
from ostaf_desktop.backend import Backend
from ostaf_desktop.error_report import ErrorReport
from ostaf_desktop.jobs import Job, JobKind, JobQueue, JobState
from ostaf_desktop.observable import Observable, ViewModel
from ostaf_desktop.progress_throttle import DEFAULT_INTERVAL_S, ProgressThrottle, ProgressUpdate

log = logging.getLogger(__name__)

BackendFactory = Callable[[], Backend]
ProgressHandler = Callable[[ProgressUpdate], None]
DoneHandler = Callable[[Job], None]


class ServiceWorker(QThread):
    """Runs the queue's jobs one after another on a backend created in this thread."""

    job_started = Signal(object)  # Job
    job_progressed = Signal(object, object)  # Job, ProgressUpdate
    job_finished = Signal(object)  # Job

    def __init__(
        self,
        queue: JobQueue,
        backend_factory: BackendFactory,
        throttle_s: float = DEFAULT_INTERVAL_S,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("ostaf-worker")
        self._queue = queue
        self._factory = backend_factory
        self._throttle_s = throttle_s

    def run(self) -> None:
        backend: Backend | None = None
        failure: ErrorReport | None = None
        try:
            backend = self._factory()
        except Exception as exc:
            log.exception("the backend could not start")
            failure = ErrorReport.from_exception(exc, "starting the engine")
        while (job := self._queue.take()) is not None:
            if backend is None:
                self._queue.finish(job, JobState.FAILED, error=failure)
                self.job_finished.emit(job)
                continue
            self._run(backend, job)

    def _run(self, backend: Backend, job: Job) -> None:
        self.job_started.emit(job)
        throttle = ProgressThrottle(self._throttle_s)

        def report(progress: Progress) -> None:
            update = throttle.add(progress)
            if update is not None:
                self.job_progressed.emit(job, update)

        result: object = None
        error: ErrorReport | None = None
        try:
            job.cancel_token.check()
            result = _dispatch(backend, job, report, job.cancel_token)
            state = JobState.DONE
        except Cancelled:
            state = JobState.CANCELLED
        except Exception as exc:
            log.exception("job %s (%s) failed", job.id, job.kind)
            state, error = JobState.FAILED, ErrorReport.from_exception(exc, str(job.kind))
        last = throttle.flush()
        if last is not None and state is JobState.DONE:
            self.job_progressed.emit(job, last)
        self._queue.finish(job, state, result, error)
        self.job_finished.emit(job)


def _dispatch(
    backend: Backend, job: Job, report: Callable[[Progress], None], cancel: CancelToken
) -> object:
    if job.kind is JobKind.LOAD_MODEL:
        return backend.load_model(job.request, report, cancel)
    if job.kind is JobKind.TUNE:
        return backend.tune(job.request, report, cancel)
    if job.kind is JobKind.LEARN_ALL:
        return backend.learn_all(job.request, report, cancel)
    if job.kind is JobKind.BATCH:
        return backend.batch(job.request, report, cancel)
    if job.kind is JobKind.EXPORT_LORA:
        return backend.export_lora(job.request, report, cancel)
    if job.kind is JobKind.WORD:
        return backend.rebase_word(job.request, report, cancel)
    return backend.render(job.request, report, cancel)


@dataclass
class _Handlers:
    on_progress: ProgressHandler | None
    on_done: DoneHandler | None


class JobController(ViewModel):
    """The GUI side of the worker: submit, cancel, and per-job callbacks on the GUI thread."""

    running_job = Observable[Job | None](None)
    waiting_count = Observable(0)

    job_changed = Signal(object)  # Job: any state change

    def __init__(self, backend_factory: BackendFactory, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._queue = JobQueue()
        self._handlers: dict[int, _Handlers] = {}
        self._closed = False
        self._worker = ServiceWorker(self._queue, backend_factory, parent=self)
        self._worker.job_started.connect(self._on_started)
        self._worker.job_progressed.connect(self._on_progress)
        self._worker.job_finished.connect(self._on_finished)

    def start(self) -> None:
        if not self._worker.isRunning():
            self._worker.start()

    @property
    def started(self) -> bool:
        return self._worker.isRunning()

    @property
    def idle(self) -> bool:
        return self._queue.idle and not self._handlers

    def submit(
        self,
        job: Job,
        on_progress: ProgressHandler | None = None,
        on_done: DoneHandler | None = None,
    ) -> Job:
        """Queue `job`; the callbacks run on the GUI thread."""
        if self._closed:  # a late request (a timer firing while the app quits)
            job.state = JobState.CANCELLED
            return job
        self._handlers[job.id] = _Handlers(on_progress, on_done)
        for dropped in self._queue.submit(job):
            self._finish(dropped)
        self.waiting_count = len(self._queue.waiting)
        self.job_changed.emit(job)
        return job

    def cancel(self, job: Job) -> None:
        """Drop a waiting job now, or ask a running one to stop at its next step."""
        if self._queue.cancel(job):
            self._finish(job)

    def shutdown(self, wait_ms: int = 30_000) -> None:
        """Cancel everything and stop the thread (waits for the running step to end)."""
        self._closed = True
        for job in self._queue.close():
            self._finish(job)
        if self._worker.isRunning() and not self._worker.wait(wait_ms):
            log.warning("the worker did not stop within %d ms", wait_ms)

    @Slot(object)
    def _on_started(self, job: Job) -> None:
        self.running_job = job
        self.waiting_count = len(self._queue.waiting)
        self.job_changed.emit(job)

    @Slot(object, object)
    def _on_progress(self, job: Job, update: ProgressUpdate) -> None:
        handlers = self._handlers.get(job.id)
        if handlers is not None and handlers.on_progress is not None:
            handlers.on_progress(update)

    @Slot(object)
    def _on_finished(self, job: Job) -> None:
        if self.running_job is job:
            self.running_job = None
        self._finish(job)

    def _finish(self, job: Job) -> None:
        handlers = self._handlers.pop(job.id, None)
        self.waiting_count = len(self._queue.waiting)
        self.job_changed.emit(job)
        if handlers is not None and handlers.on_done is not None:
            handlers.on_done(job)

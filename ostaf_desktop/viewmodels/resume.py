"""The offer to resume the open project's interrupted tuning run (after a crash, a kill, an
out-of-memory or a diverged loss), or to discard it.

A resumed run is the saved run: its image, mask, crop, kind, steps, seed, learning rates and
every other setting come from the checkpoint's sidecar, whatever the Learn panel shows. Two
things may change without making it another run, and the offer says so when they do: after an
out-of-memory memory saving is turned on, and after a diverged loss it continues at half the
learning rate it diverged at (the button says the rate).
"""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import QObject

from ostaf.models.demo_model import embedded_model, is_demo_source
from ostaf_desktop.interrupted_run import InterruptedRun, discard_interrupted, find_interrupted
from ostaf_desktop.jobs import Job, JobState
from ostaf_desktop.observable import Observable, ViewModel
from ostaf_desktop.viewmodels.projects import ProjectsViewModel
from ostaf_desktop.viewmodels.session import SessionViewModel
from ostaf_desktop.viewmodels.tuning import TuningViewModel

OUT_OF_MEMORY = "OutOfMemoryError"
DIVERGED = "TuningDivergedError"
DIVERGED_RATE_FACTOR = 0.5  # a diverged run continues at this share of its learning rate


class ResumeViewModel(ViewModel):
    """Holds the open project's interrupted run (if any) and the Resume/Discard actions."""

    run = Observable[InterruptedRun | None](None)
    visible = Observable(False)
    message = Observable("")
    can_resume = Observable(False)
    resume_text = Observable("Resume")  # the button: it names a lowered learning rate

    def __init__(
        self,
        session: SessionViewModel,
        projects: ProjectsViewModel,
        tuning: TuningViewModel,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._session = session
        self._projects = projects
        self._tuning = tuning
        self._failure = ""  # the error type that stopped the offered run, when seen here
        self._slug = ""
        projects.changed.connect(self._on_projects_changed)
        tuning.changed.connect(self._on_tuning_changed)
        tuning.run_ended.connect(self._on_run_ended)
        session.changed.connect(self._on_session_changed)

    # -- actions -------------------------------------------------------------------------
    def refresh(self) -> None:
        """Look for an interrupted run in the open project (none is offered while tuning)."""
        project = self._projects.current
        busy = self._tuning.running
        self.run = find_interrupted(project) if project is not None and not busy else None
        self._update()

    def resume(self) -> Job | None:
        """Continue the run from its last saved step on the worker."""
        run = self.run
        if run is None or not self.can_resume:
            return None
        memory_saving = run.memory_saving or self._failure == OUT_OF_MEMORY
        factor = DIVERGED_RATE_FACTOR if self._halves_rates(run) else 1.0
        job = self._tuning.resume(run, memory_saving, self._lowered_rate(run), factor)
        if job is not None:
            self._failure = ""
            self.run = None
            self._update()
        return job

    def discard(self) -> None:
        """Delete the run's saved state and mask."""
        project, run = self._projects.current, self.run
        if project is None or run is None or self._tuning.running:
            return
        discard_interrupted(project)
        self._failure = ""
        self.run = None
        self._update()
        self._session.notify(f"Discarded the interrupted run '{run.name}'")

    # -- events ----------------------------------------------------------------------------
    def _on_projects_changed(self, name: str, _value: object) -> None:
        if name == "current" and self._projects.current_slug != self._slug:
            self._slug = self._projects.current_slug
            self._failure = ""
            self.refresh()

    def _on_tuning_changed(self, name: str, value: object) -> None:
        if name == "running" and value:
            self.run = None
            self._update()

    def _on_session_changed(self, name: str, _value: object) -> None:
        if name == "settings":  # the base model chosen may now differ from the run's
            self._update()

    def _on_run_ended(self, job: Job) -> None:
        self.refresh()
        error = job.error if job.state is JobState.FAILED else None
        same = self.run is not None and self.run.checkpoint == job.request.checkpoint
        self._failure = error.error_type if error is not None and same else ""
        self._update()

    # -- what the bar says -----------------------------------------------------------------
    def _update(self) -> None:
        run = self.run
        self.visible = run is not None
        self.can_resume = run is not None and run.resumable and not self._tuning.running
        self.message = "" if run is None else self._describe(run)
        rate = self._lowered_rate(run) if run is not None else None
        self.resume_text = "Resume" if rate is None else f"Resume at {rate:g}"
        if run is not None and self._halves_rates(run):
            self.resume_text = "Resume at half the rates"

    def _lowered_rate(self, run: InterruptedRun | None) -> float | None:
        """The learning rate a diverged run continues at; None: the run's own."""
        if run is None or run.settings is None or self._failure != DIVERGED:
            return None
        return run.settings.learning_rate * DIVERGED_RATE_FACTOR

    def _halves_rates(self, run: InterruptedRun) -> bool:
        """A diverged learn-all run continues with every kind's rates halved."""
        return run.learn_all is not None and self._failure == DIVERGED

    def _describe(self, run: InterruptedRun) -> str:
        where = f"step {run.step} of {run.total}" if run.total else f"step {run.step}"
        head = f"An interrupted tuning run <b>'{html.escape(run.name)}'</b> ({where})"
        if not run.resumable:
            return f"{head} cannot be resumed: {html.escape(run.problem)}."
        parts = [f"{head} can be resumed with its own settings."]
        if run.learn_all is not None:
            parts[0] = (
                f"{head}, which learns shape, appearance and style together, can be resumed "
                "with its own settings."
            )
        if self._failure == OUT_OF_MEMORY and not run.memory_saving:
            parts.append(
                "It ran out of memory, so it continues with memory saving on "
                "(slower, needs less memory)."
            )
        if self._halves_rates(run):
            parts.append("Its loss diverged, so every kind continues at half its rates.")
        lowered = self._lowered_rate(run)
        if lowered is not None and run.settings is not None:
            parts.append(
                f"Its loss diverged at learning rate {run.settings.learning_rate:g}, so it "
                f"continues at half that, {lowered:g}."
            )
        if run.model is not None and run.model != self._session.model_choice():
            source = (
                embedded_model(run.model.source).name
                if is_demo_source(run.model.source)
                else Path(run.model.source).name
            )
            parts.append(f"It loads the base model it was started with, {html.escape(source)}.")
        return " ".join(parts)

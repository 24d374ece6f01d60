"""The root view-model: it creates the panels' view-models, wires them together and starts
the worker (which loads the base model)."""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject

from ostaf.library.projects import ProjectStore
from ostaf.settings import Settings
from ostaf_desktop.backend import ModelInfo
from ostaf_desktop.jobs import Job, JobKind, JobState
from ostaf_desktop.observable import ViewModel
from ostaf_desktop.ui_state import UiState
from ostaf_desktop.viewmodels.attribute_editor import AttributeEditorViewModel
from ostaf_desktop.viewmodels.attribute_transfer import AttributeTransferViewModel
from ostaf_desktop.viewmodels.batch import BatchViewModel
from ostaf_desktop.viewmodels.image_settings import ImageSettingsViewModel
from ostaf_desktop.viewmodels.library import LibraryViewModel
from ostaf_desktop.viewmodels.lora_export import LoraExportViewModel
from ostaf_desktop.viewmodels.projects import ProjectsViewModel
from ostaf_desktop.viewmodels.reference import ReferenceViewModel
from ostaf_desktop.viewmodels.rendering import RenderViewModel
from ostaf_desktop.viewmodels.results import ResultsViewModel
from ostaf_desktop.viewmodels.resume import ResumeViewModel
from ostaf_desktop.viewmodels.session import SessionViewModel
from ostaf_desktop.viewmodels.settings import DIALOG_FIELDS
from ostaf_desktop.viewmodels.tuning import TuningViewModel
from ostaf_desktop.viewmodels.words import WordsViewModel
from ostaf_desktop.worker import BackendFactory, JobController

log = logging.getLogger(__name__)


class MainViewModel(ViewModel):
    """Everything the main window shows, and the app-level actions."""

    def __init__(
        self,
        backend_factory: BackendFactory,
        ui_state: UiState | None = None,
        store: ProjectStore | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.session = SessionViewModel(ui_state, self)
        self.jobs = JobController(backend_factory, self)
        self.projects = ProjectsViewModel(self.session, store, self)
        self.library = LibraryViewModel(self.session, self.projects, self)
        self.words = WordsViewModel(self.session, self.jobs, self.projects, self.library, self)
        self.reference = ReferenceViewModel(self.session, self.projects, self)
        self.results = ResultsViewModel(self.session, self)
        self.tuning = TuningViewModel(
            self.session, self.jobs, self.projects, self.reference, self.library, self.words, self
        )
        self.resume = ResumeViewModel(self.session, self.projects, self.tuning, self)
        self.rendering = RenderViewModel(
            self.session, self.jobs, self.projects, self.library, self.words, self.results, self
        )
        self.editor = AttributeEditorViewModel(self.library, self)
        self.transfer = AttributeTransferViewModel(self.session, self.projects, self.library, self)
        self.lora = LoraExportViewModel(self.session, self.jobs, self.projects, self.library, self)
        self.batch = BatchViewModel(
            self.session,
            self.jobs,
            self.projects,
            self.library,
            self.rendering,
            self.results,
            self,
        )
        self.image_settings = ImageSettingsViewModel(
            self.session, self.projects, self.library, self.rendering, self
        )
        self.projects.changed.connect(self._on_projects_changed)
        self._load_job: Job | None = None
        self._started = False
        self._slug = ""

    def start(self) -> None:
        """Start the worker, load the base model and reopen the last project."""
        if self._started:
            return
        self._started = True
        self.jobs.start()
        self.load_model()
        self.projects.open_initial()

    @property
    def idle(self) -> bool:
        """Nothing is loading, queued, running or about to be requested."""
        return (
            self._started
            and self._load_job is None
            and self.jobs.idle
            and not self.rendering.preview_scheduled
        )

    def load_model(self) -> Job:
        """(Re)load the base model chosen in Settings on the worker thread."""
        choice = self.session.model_choice()
        if self._load_job is not None:
            self.jobs.cancel(self._load_job)
        self.session.model_loading_started(choice.source)
        job = Job(JobKind.LOAD_MODEL, choice)
        self._load_job = job

        def done(finished: Job) -> None:
            if finished is not self._load_job:
                return
            self._load_job = None
            if finished.state is JobState.DONE:
                info: ModelInfo = finished.result
                self.session.model_loaded(info)
            elif finished.state is JobState.FAILED:
                self.session.model_load_failed(finished.error)

        def progress(update: object) -> None:
            message = getattr(getattr(update, "latest", None), "message", "")
            if message and self.session.model_loading:
                self.session.model_status = message

        return self.jobs.submit(job, on_progress=progress, on_done=done)

    def apply_settings(self, new: Settings) -> None:
        """Save new settings; reload the model when its choice changed."""
        old = self.session.model_choice()
        changes = {name: getattr(new, name) for name in DIALOG_FIELDS}
        if self.session.update_settings(**changes) and (
            self.session.model_choice() != old or self.session.model_failed
        ):
            self.load_model()
        self.rendering.request_preview()

    def shutdown(self, save_state: bool = True) -> None:
        """Save per-project state, stop the worker and release the project lock."""
        project = self.projects.current
        if project is not None and save_state:
            self.projects.closing.emit(project)
        if save_state:
            self.session.save_ui_state()
        self.rendering.stop()
        self.jobs.shutdown()
        if project is not None:
            project.release()

    def _on_projects_changed(self, name: str, value: object) -> None:
        slug = self.projects.current_slug
        if name == "current" and slug != self._slug:
            self._slug = slug
            order = self.session.ui.project(slug).results if slug else []
            self.results.load_folder(self.rendering.output_dir(), order=order)
            self.rendering.restore_prompt()

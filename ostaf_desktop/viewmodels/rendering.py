"""Rendering with the ticked attributes: the prompt and sampling choices, the debounced λ
preview (a newer request supersedes an older one) and full renders into the results strip."""

from __future__ import annotations

import logging
import random
from pathlib import Path

from PySide6.QtCore import QObject, QTimer
from PySide6.QtGui import QImage

from ostaf.errors import OstafError
from ostaf.interop.pngmeta import SAMPLER_LABELS
from ostaf.method.previews import outside_world, preview_prompt
from ostaf.models.families import Family, sd1
from ostaf.requests import (
    SAMPLERS,
    AppliedAttribute,
    RenderJob,
    RenderSettings,
    parse_size,
)
from ostaf_desktop.backend import RenderedImage
from ostaf_desktop.jobs import Job, JobKind, JobState
from ostaf_desktop.observable import Observable, ViewModel
from ostaf_desktop.progress_throttle import ProgressUpdate
from ostaf_desktop.qt_images import qimage_from_pil
from ostaf_desktop.viewmodels.library import DEFAULT_PROMPT, LibraryViewModel
from ostaf_desktop.viewmodels.projects import ProjectsViewModel
from ostaf_desktop.viewmodels.results import ResultsViewModel
from ostaf_desktop.viewmodels.session import SessionViewModel
from ostaf_desktop.viewmodels.words import WordsViewModel
from ostaf_desktop.worker import JobController

log = logging.getLogger(__name__)
NATIVE = "native"
PREVIEW_DEBOUNCE_MS = 300
REMEMBER_DELAY_MS = 1500
DEMO_DEFAULT_PROMPT = "an orange striped star, flat style, on a white background"
PREVIEW_STEPS = 10
# What the quick preview is rendered with besides the attributes and their λ (it always runs
# PREVIEW_STEPS steps at the native size): a change of any of these asks for a new one.
PREVIEW_INPUTS = ("prompt", "negative_prompt", "seed", "guidance", "sampler", "schedule")
MAX_SEED = 2**31 - 1
SAMPLER_CHOICES = tuple((SAMPLER_LABELS[s], s) for s in SAMPLERS)
# Named as A1111/Forge's "Schedule type"; "model" only comes back with older images.
SCHEDULE_CHOICES = (("Karras", "karras"), ("Simple", "simple"), ("Model's own", "model"))


def size_choices(
    resolution: int | None, offered: tuple[tuple[str, int, int], ...] = ()
) -> tuple[tuple[str, str], ...]:
    """The combo box choices for a model of `resolution` px: the sizes its family offers
    (SD 1.x's when not given), the native one first as NATIVE, the others as 'WxH'. Until
    the model is known (None), only "Native": its size is not known yet."""
    if resolution is None:
        return (("Native", NATIVE),)
    offered = offered or sd1.FAMILY.offered_sizes(resolution)
    return tuple(
        (label, NATIVE if width == height == resolution else f"{width}x{height}")
        for label, width, height in offered
    )


class RenderViewModel(ViewModel):
    """Prompt, seed, size, sampler, steps; the quick λ preview and the full render."""

    prompt = Observable("")
    negative_prompt = Observable("")
    seed = Observable(1)
    size = Observable(NATIVE)
    sampler = Observable(RenderSettings.sampler)
    schedule = Observable(RenderSettings.schedule)
    steps = Observable(25)
    # the loaded model's own until the user changes it (the family default until one loads)
    guidance = Observable(Family.render_guidance)
    count = Observable(2)
    size_options = Observable(size_choices(None))

    preview_image = Observable[QImage | None](None)
    preview_caption = Observable("Tick an attribute in the library to preview it")
    preview_pending = Observable(False)
    # What the last preview or render warned about the applied attributes (e.g. one tuned on
    # another version of the model), one per line: too long for the status bar.
    warnings = Observable("")
    rendering = Observable(False)
    render_step = Observable(0)
    render_total = Observable(0)
    can_render = Observable(False)
    render_hint = Observable("")

    def __init__(
        self,
        session: SessionViewModel,
        jobs: JobController,
        projects: ProjectsViewModel,
        library: LibraryViewModel,
        words: WordsViewModel,
        results: ResultsViewModel,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._session = session
        self._jobs = jobs
        self._projects = projects
        self._library = library
        self._words = words
        self._results = results
        self._render_job: Job | None = None
        self._preview_job: Job | None = None
        self.previews_submitted = 0
        # The guidance the loaded model starts with: a model change moves the guidance to
        # the new model's own unless the user set another value.
        self._model_guidance = float(self.guidance)
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(PREVIEW_DEBOUNCE_MS)
        self._debounce.timeout.connect(self._submit_preview)
        # The prompt and the results strip are saved a moment after they change, not only on
        # a clean quit: a killed app keeps them too.
        self._remember = QTimer(self)
        self._remember.setSingleShot(True)
        self._remember.setInterval(REMEMBER_DELAY_MS)
        self._remember.timeout.connect(self.remember)
        results.changed.connect(lambda name, _: name == "items" and self._remember.start())
        library.changed.connect(self._on_library_changed)
        words.changed.connect(self._on_words_changed)
        session.changed.connect(self._on_session_changed)
        projects.changed.connect(lambda *_: self._update_can_render())
        projects.closing.connect(self._save_state)
        self.changed.connect(self._on_own_change)
        self._update_can_render()

    @property
    def preview_scheduled(self) -> bool:
        return self._debounce.isActive()

    # -- actions -------------------------------------------------------------------------
    def stop(self) -> None:
        """Drop a preview that is waiting for its debounce (the app is closing); shutting down
        saves the state itself (or, for a screenshot, must not)."""
        self._debounce.stop()
        self._remember.stop()
        self.preview_pending = False

    def insert_word(self, word: str, position: int) -> int:
        """Write an attribute's `word` into the prompt at `position` (a character index),
        with a space on each side where a word touches it; returns the position after it."""
        text = self.prompt if self.prompt.strip() else ""
        position = max(0, min(position, len(text)))
        before, after = text[:position], text[position:]
        lead = " " if before and not before[-1].isspace() else ""
        trail = " " if after and not after[0].isspace() and after[0] not in ",.;:!?" else ""
        self.prompt = f"{before}{lead}{word}{trail}{after}"
        return len(before) + len(lead) + len(word)

    def roll_seed(self) -> None:
        self.seed = random.randint(0, MAX_SEED)

    def request_preview(self) -> None:
        """Ask for a quick preview; requests within the debounce interval collapse into one.
        Ticked attributes that share a word are not previewed: the panel says why."""
        if not self._library.applied or self._words.clash:
            self._debounce.stop()
            self.preview_image = None
            self.preview_pending = False
            self.preview_caption = (
                "Not previewed: two ticked attributes share a word"
                if self._library.applied
                else "Tick an attribute in the library to preview it"
            )
            self.warnings = ""
            return
        self.preview_pending = True
        self._debounce.start()

    def render(self) -> Job | None:
        """Render `count` images at full quality into the output folder."""
        self._update_can_render()
        out_dir = self.output_dir()
        if not self.can_render or out_dir is None:
            return None
        try:
            settings = self._settings(
                steps=int(self.steps), seeds=[self.seed + i for i in range(int(self.count))]
            )
        except OstafError as exc:
            self._session.report(exc)
            return None
        self.rendering = True
        self.render_total, self.render_step = settings.steps * len(settings.seeds), 0
        self._render_job = self._jobs.submit(
            Job(JobKind.RENDER, RenderJob(settings, out_dir, self._session.model_choice())),
            on_progress=self._on_render_progress,
            on_done=self._on_render_done,
        )
        self._update_can_render()
        return self._render_job

    def cancel_render(self) -> None:
        if self._render_job is not None:
            self._jobs.cancel(self._render_job)

    def output_dir(self) -> Path | None:
        """Settings' output folder, else the open project's exports folder."""
        if self._session.settings.output_dir:
            return Path(self._session.settings.output_dir).expanduser()
        project = self._projects.current
        return project.exports_dir if project is not None else None

    # -- building requests ------------------------------------------------------------------
    def effective_prompt(self) -> str:
        """The prompt, or the first ticked attribute's tuning prompt when it is empty (on the
        demo model, its kind's probe when the demo model cannot draw that prompt)."""
        if self.prompt.strip():
            return self.prompt.strip()
        demo = self._session.uses_demo_model
        for applied in self._library.applied:
            row = self._library.row(applied.id)
            if row is None:
                continue
            if demo and outside_world(row.tuning_prompt, row.token):
                return preview_prompt(row.kind, row.token, demo_world=True)
            return row.tuning_prompt
        return DEMO_DEFAULT_PROMPT if demo else DEFAULT_PROMPT

    def _settings(self, steps: int, seeds: list[int], native: bool = False) -> RenderSettings:
        width = height = None
        if self.size != NATIVE and not native:
            width, height = parse_size(self.size)
        settings = RenderSettings(
            prompt=self.effective_prompt(),
            negative_prompt=self.negative_prompt.strip(),
            seeds=seeds,
            steps=steps,
            guidance=float(self.guidance),
            width=width,
            height=height,
            sampler=self.sampler,
            schedule=self.schedule,
            attributes=[AppliedAttribute(a.path, a.intensity) for a in self._library.applied],
        )
        settings.validate()
        return settings

    # -- preview -----------------------------------------------------------------------------
    def _submit_preview(self) -> None:
        if not self._library.applied:
            self.preview_pending = False
            return
        try:
            settings = self._settings(steps=PREVIEW_STEPS, seeds=[int(self.seed)], native=True)
        except OstafError as exc:
            self.preview_pending = False
            self._session.report(exc)
            return
        caption = " + ".join(f"{a.name} λ {a.intensity:.2f}" for a in self._library.applied)
        self.previews_submitted += 1
        job = Job(
            JobKind.PREVIEW,
            RenderJob(settings, None, self._session.model_choice()),
            supersedes=True,
        )
        self._preview_job = job
        self._jobs.submit(job, on_done=lambda done: self._on_preview_done(done, caption))

    def _on_preview_done(self, job: Job, caption: str) -> None:
        if job is not self._preview_job:
            return  # superseded by a newer request
        self._preview_job = None
        self.preview_pending = self._debounce.isActive()
        if job.state is JobState.DONE and job.result:
            item: RenderedImage = job.result[0]
            self.preview_image = qimage_from_pil(item.image)
            self._show_warnings(job.result)
            self.preview_caption = f"{caption} · {PREVIEW_STEPS} steps · seed {item.seed}"
        elif job.state is JobState.FAILED and job.error is not None:
            self.preview_caption = "Preview failed"
            self._session.report(job.error)

    # -- full render ---------------------------------------------------------------------------
    def _on_render_progress(self, update: ProgressUpdate) -> None:
        if update.latest.stage == "rendering":
            self.render_total, self.render_step = update.latest.total, update.latest.step

    def _on_render_done(self, job: Job) -> None:
        self._render_job = None
        self.rendering = False
        if job.state is JobState.DONE:
            images: list[RenderedImage] = job.result
            self._results.add(images)
            where = images[0].path.parent if images and images[0].path else ""
            warned = " (see the warning in the Render panel)" if self._show_warnings(images) else ""
            self._session.notify(f"Rendered {len(images)} into {where}{warned}")
        elif job.state is JobState.FAILED and job.error is not None:
            self._session.report(job.error)
        self._update_can_render()

    def _show_warnings(self, images: list[RenderedImage]) -> bool:
        """Show what the images were warned about (each once); True when there was any."""
        found = dict.fromkeys(w for item in images for w in item.warnings)
        self.warnings = "\n".join(f"⚠ {warning}" for warning in found)
        return bool(found)

    # -- reacting to other view-models ------------------------------------------------------------
    def _on_library_changed(self, name: str, value: object) -> None:
        if name == "applied":
            self.request_preview()
            self._update_can_render()

    def _on_words_changed(self, name: str, value: object) -> None:
        if name == "clash":
            self.request_preview()
            self._update_can_render()

    def _on_session_changed(self, name: str, value: object) -> None:
        if name == "model":
            info = self._session.model
            if info is None:
                if self.size == NATIVE:  # no size until the model (re)loads; another choice stays
                    self.size_options = size_choices(None)
            else:
                self.size_options = size_choices(info.resolution, info.sizes)
                if self.size not in {v for _, v in self.size_options}:
                    self.size = NATIVE
                if float(self.guidance) == self._model_guidance:
                    self.guidance = info.guidance
                self._model_guidance = info.guidance
        if name in ("model", "settings"):
            self._update_can_render()

    def _on_own_change(self, name: str, value: object) -> None:
        if name == "rendering":
            self._update_can_render()
        if name == "prompt":
            self._remember.start()
        if name in PREVIEW_INPUTS and self._library.applied:
            self.request_preview()

    def _save_state(self, project: object) -> None:
        slug = getattr(project, "slug", "")
        if slug:
            state = self._session.ui.project(slug)
            state.prompt = self.prompt
            state.results = self._results.file_names()

    def remember(self) -> None:
        """Save the open project's prompt and results order to the UI state file now."""
        self._remember.stop()
        if self._projects.current is not None:
            self._save_state(self._projects.current)
            self._session.save_ui_state()

    def restore_prompt(self) -> None:
        """The prompt last used in the open project."""
        project = self._projects.current
        if project is not None:
            self.prompt = self._session.ui.project(project.slug).prompt

    def _update_can_render(self) -> None:
        if self.rendering:
            hint, ok = "Rendering…", False
        elif self._words.clash:
            hint, ok = "Give one of the ticked attributes a word of its own first", False
        elif self.output_dir() is None:
            hint, ok = "Open a project (or choose an output folder in Settings)", False
        else:
            count = (
                ""
                if not self._library.applied
                else f" with {len(self._library.applied)} attribute(s)"
            )
            hint, ok = f"Render {self.count} image(s){count}", True
        self.can_render, self.render_hint = ok, hint

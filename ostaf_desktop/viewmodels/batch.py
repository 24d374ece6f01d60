"""Batch export of variations: the grid's choices, a live plan (file names and count, checked
by the core before anything runs) and the job on the worker with progress, cancel and resume
(a re-run skips the files that are already complete)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject

from ostaf.errors import OstafError, SettingsError
from ostaf.limits import MAX_IMAGES
from ostaf.models.families import Family
from ostaf.render.batch_plan import (
    AttributeChoice,
    BatchJob,
    BatchPlan,
    BatchRequest,
    combinations_of,
    parse_intensities,
    plan_batch,
    read_prompts,
)
from ostaf.render.naming import DEFAULT_TEMPLATE
from ostaf.requests import RenderSettings, parse_seeds, parse_size
from ostaf_desktop.backend import BatchResult
from ostaf_desktop.jobs import Job, JobKind, JobState
from ostaf_desktop.observable import Observable, ViewModel
from ostaf_desktop.progress_throttle import ProgressUpdate
from ostaf_desktop.viewmodels.library import LibraryViewModel
from ostaf_desktop.viewmodels.projects import ProjectsViewModel
from ostaf_desktop.viewmodels.rendering import NATIVE, RenderViewModel, size_choices
from ostaf_desktop.viewmodels.results import ResultsViewModel
from ostaf_desktop.viewmodels.session import SessionViewModel
from ostaf_desktop.viewmodels.tuning import format_duration
from ostaf_desktop.worker import JobController

COMBINE_CHOICES = (
    ("Together: all ticked ones at once", "together"),
    ("Each separately", "each"),
    ("Every combination (all subsets)", "subsets"),
)
PREVIEW_NAMES = 5
MAX_SEED_COUNT = MAX_IMAGES
_INPUTS = frozenset(
    [
        "prompts_text",
        "seeds_mode",
        "seeds_text",
        "seed_count",
        "intensities_text",
        "combine",
        "chosen",
        "negative_prompt",
        "sampler",
        "schedule",
        "steps",
        "guidance",
        "size",
        "out_dir",
        "template",
        "contact_sheet",
        "overwrite",
    ]
)


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


class BatchViewModel(ViewModel):
    """The batch dialog's state: what to render, the plan it gives, and the running job."""

    prompts_text = Observable("")
    seeds_mode = Observable("list")  # "list" (seeds_text) or "count" (0 … seed_count-1)
    seeds_text = Observable("0")
    seed_count = Observable(4)
    intensities_text = Observable("")  # empty: each attribute's default λ
    combine = Observable("together")
    chosen = Observable[tuple[str, ...]](())  # ids of the ticked library attributes
    negative_prompt = Observable("")
    sampler = Observable(RenderSettings.sampler)
    schedule = Observable(RenderSettings.schedule)
    steps = Observable(25)
    guidance = Observable(Family.render_guidance)
    size = Observable(NATIVE)
    size_options = Observable(size_choices(None))
    out_dir = Observable("")
    template = Observable(DEFAULT_TEMPLATE)
    contact_sheet = Observable(True)
    overwrite = Observable(False)

    preview_names = Observable[tuple[str, ...]](())
    plan_text = Observable("")
    plan_error = Observable("")
    can_start = Observable(False)

    running = Observable(False)
    cancelling = Observable(False)
    step = Observable(0)
    total_steps = Observable(0)
    status_text = Observable("")
    time_text = Observable("")
    finished_folder = Observable[Path | None](None)
    sheet = Observable[Path | None](None)

    def __init__(
        self,
        session: SessionViewModel,
        jobs: JobController,
        projects: ProjectsViewModel,
        library: LibraryViewModel,
        rendering: RenderViewModel,
        results: ResultsViewModel,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._session = session
        self._jobs = jobs
        self._projects = projects
        self._library = library
        self._rendering = rendering
        self._results = results
        self._job: Job | None = None
        self._plan: BatchPlan | None = None
        self._prepared_for = ""  # the project whose defaults the fields hold
        self._images_done = 0
        self._elapsed_s = 0.0
        self.changed.connect(self._on_own_change)
        library.changed.connect(self._on_library_changed)
        projects.changed.connect(self._on_projects_changed)

    # -- filling the form ----------------------------------------------------------------
    def prepare(self) -> None:
        """Take the Render panel's settings as defaults (prompts, attributes and folder only
        the first time for a project, so a second opening keeps the batch as it was)."""
        if self.running:
            return
        r = self._rendering
        self.size_options = r.size_options
        self.negative_prompt, self.sampler = r.negative_prompt, r.sampler
        self.schedule = r.schedule
        self.steps, self.guidance, self.size = int(r.steps), float(r.guidance), r.size
        slug = self._projects.current_slug
        if slug != self._prepared_for:
            self._prepared_for = slug
            self.prompts_text = r.effective_prompt()
            self.seeds_text = str(r.seed)
            self.chosen = tuple(a.id for a in self._library.applied)
            folder = r.output_dir()
            self.out_dir = str(folder) if folder is not None else ""
        self._replan()

    def set_chosen(self, attribute_id: str, on: bool) -> None:
        present = attribute_id in self.chosen
        if on and not present:
            self.chosen = (*self.chosen, attribute_id)
        elif not on and present:
            self.chosen = tuple(i for i in self.chosen if i != attribute_id)

    def load_prompts(self, path: Path) -> bool:
        """Replace the prompts with those of a text file (one per line)."""
        try:
            self.prompts_text = "\n".join(read_prompts(Path(path)))
        except OstafError as exc:
            self._session.report(exc)
            return False
        return True

    # -- the plan --------------------------------------------------------------------------
    def request(self) -> BatchRequest:
        """The batch the form describes; SettingsError names the first impossible value."""
        prompts = [line.strip() for line in self.prompts_text.splitlines() if line.strip()]
        if self.seeds_mode == "count":
            if not 1 <= int(self.seed_count) <= MAX_SEED_COUNT:
                raise SettingsError(f"the seed count must be in 1..{MAX_SEED_COUNT}")
            seeds = list(range(int(self.seed_count)))
        else:
            seeds = parse_seeds(self.seeds_text)
        text = self.intensities_text.strip()
        intensities = list(parse_intensities(text)) if text else []
        if not self.out_dir.strip():
            raise SettingsError("choose an output folder")
        out = Path(self.out_dir.strip()).expanduser()
        if out.exists() and not out.is_dir():
            raise SettingsError(f"{out} is a file, not a folder; choose a folder")
        width, height = (None, None) if self.size == NATIVE else parse_size(self.size)
        choices = []
        for attribute_id in self.chosen:
            entry = self._library.entry(attribute_id)
            if entry is not None:
                choices.append(AttributeChoice(entry.path))
        project = self._projects.current
        return BatchRequest(
            prompts=prompts,
            seeds=seeds,
            out_dir=out,
            combinations=combinations_of(choices, self.combine),
            intensities=intensities,
            negative_prompt=self.negative_prompt.strip(),
            steps=int(self.steps),
            guidance=float(self.guidance),
            width=width,
            height=height,
            sampler=self.sampler,
            schedule=self.schedule,
            template=self.template,
            project=project.slug if project is not None else "",
            contact_sheet=bool(self.contact_sheet),
            overwrite=bool(self.overwrite),
        )

    def _replan(self) -> None:
        try:
            request = self.request()
            metas = {}
            for attribute_id in self.chosen:
                entry = self._library.entry(attribute_id)
                if entry is not None:
                    metas[entry.path] = entry.meta
            plan = plan_batch(request, metas)
        except OstafError as exc:
            self._plan = None
            self.preview_names, self.plan_text, self.plan_error = (), "", str(exc)
            self._update_can_start()
            return
        self._plan = plan
        names = [c.file_name for c in plan.cells]
        more = len(names) - PREVIEW_NAMES
        shown = names[:PREVIEW_NAMES] + ([f"… and {more} more"] if more > 0 else [])
        self.preview_names, self.plan_error = tuple(shown), ""
        self.plan_text = self._describe(plan)
        self._update_can_start()

    def _describe(self, plan: BatchPlan) -> str:
        request = plan.request
        settings = len(plan.cells) // (len(request.prompts) * len(request.seeds))
        variants = (
            "no attribute (the base model)"
            if not self.chosen
            else plural(settings, "attribute setting")
        )
        sheet = " + a contact sheet" if plan.sheet_name else ""
        return (
            f"{plural(len(plan.cells), 'image')}{sheet}: {plural(len(request.prompts), 'prompt')}"
            f" × {variants} × {plural(len(request.seeds), 'seed')}"
        )

    def _update_can_start(self) -> None:
        self.can_start = self._plan is not None and not self.running

    # -- running ---------------------------------------------------------------------------
    def start(self) -> Job | None:
        """Run the batch on the worker; files already complete are skipped (resume)."""
        self._replan()
        if self._plan is None or self.running:
            return None
        job = BatchJob(self._plan.request, self._session.model_choice())
        self.running, self.cancelling = True, False
        self.step, self.total_steps = 0, 0
        self.finished_folder, self.sheet, self.time_text = None, None, ""
        self.status_text = "Waiting for the model…" if self._session.model is None else "Starting…"
        self._images_done, self._elapsed_s = 0, 0.0
        self._job = self._jobs.submit(
            Job(JobKind.BATCH, job), on_progress=self._on_progress, on_done=self._on_done
        )
        self._update_can_start()
        return self._job

    def cancel(self) -> None:
        """Stop after the image being rendered; finished images stay (Start again resumes)."""
        if self._job is not None and not self._job.state.finished:
            self.cancelling = True
            self.status_text = "Stopping…"
            self._jobs.cancel(self._job)

    def _on_progress(self, update: ProgressUpdate) -> None:
        report = update.latest
        if report.stage == "loading":
            self.status_text = report.message or "Loading the model…"
            return
        if report.stage != "batch" or self._job is None:
            return
        per_image = max(1, self._job.request.request.steps)
        self.total_steps, self.step = report.total, report.step
        to_render = max(1, report.total // per_image)
        self._images_done = report.step // per_image
        total = len(self._plan.cells) if self._plan is not None else to_render
        skipped = total - to_render
        already = f" · {skipped} already complete" if skipped > 0 else ""
        if not self.cancelling:
            current = min(self._images_done + 1, to_render)
            self.status_text = f"Rendering image {current} of {to_render}{already}"
        self._elapsed_s = report.elapsed_s
        eta = f" · about {format_duration(report.eta_s)} left" if report.eta_s is not None else ""
        self.time_text = f"{format_duration(report.elapsed_s)} elapsed{eta}"

    def _on_done(self, job: Job) -> None:
        self._job = None
        self.running, self.cancelling = False, False
        self.time_text = f"{format_duration(self._elapsed_s)} elapsed" if self._elapsed_s else ""
        request: BatchRequest = job.request.request
        if job.state is JobState.DONE:
            result: BatchResult = job.result
            self.finished_folder, self.sheet = request.out_dir, result.sheet
            self.step = self.total_steps = max(1, self.total_steps)
            self.status_text = (
                f"Done: {len(result.written)} rendered, {len(result.skipped)} already complete "
                f"(batch of {result.total})"
            )
            for warning in result.warnings:
                self._session.notify(f"Warning: {warning}")
            if request.out_dir == self._rendering.output_dir():
                self._results.load_folder(request.out_dir)
        elif job.state is JobState.CANCELLED:
            self.finished_folder = request.out_dir if self._images_done else None
            self.status_text = (
                f"Cancelled after {plural(self._images_done, 'new image')}; finished images are "
                "kept, and Start resumes"
            )
        else:
            self.status_text = "Stopped: " + (job.error.message if job.error else "failed")
            self.finished_folder = request.out_dir if request.out_dir.is_dir() else None
            if job.error is not None:
                self._session.report(job.error)
        self._update_can_start()

    # -- reacting --------------------------------------------------------------------------
    def _on_own_change(self, name: str, value: object) -> None:
        if name in _INPUTS:
            self._replan()

    def _on_projects_changed(self, name: str, value: object) -> None:
        # an open dialog follows the project; a running batch keeps its own folder
        if name == "current" and self._prepared_for and not self.running:
            self._prepared_for = ""
            self.prepare()

    def _on_library_changed(self, name: str, value: object) -> None:
        if name == "rows":
            ids = {r.id for r in self._library.rows}
            kept = tuple(i for i in self.chosen if i in ids)
            if kept != self.chosen:
                self.chosen = kept
            elif not self.running:
                self._replan()  # names or default λ may have changed

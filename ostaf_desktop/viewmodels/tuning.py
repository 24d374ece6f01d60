"""Tuning an attribute from the reference: the choices, the run's progress and its result."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage

from ostaf.decompose_request import (
    ALL_KINDS,
    JOINT_TEMPLATE,
    DecomposeJob,
    DecomposeSettings,
)
from ostaf.errors import OstafError
from ostaf.library.attribute_meta import clip_name
from ostaf.library.projects import Project
from ostaf.library.staging import staging_path
from ostaf.method.previews import joint_preview_prompt, preview_prompt
from ostaf.method.regions import DEFAULT_TOKEN, AttributeKind, suggested_caption
from ostaf.method.tuning_checkpoint import discard, read_sidecar
from ostaf.models.demo_model import is_demo_source
from ostaf.requests import (
    DEFAULT_PRESET,
    KIND_TUNING,
    PRESETS,
    TuneJob,
    TuningSettings,
    preset_steps,
)
from ostaf_desktop.backend import LearnedAll, ModelInfo, TunedAttribute
from ostaf_desktop.interrupted_run import (
    CHECKPOINT_INTERVAL_S,
    InterruptedRun,
    checkpoint_path,
    discard_interrupted,
    forget_kept_files,
    keep_reference,
    mask_path,
)
from ostaf_desktop.jobs import Job, JobKind, JobState
from ostaf_desktop.observable import Observable, ViewModel
from ostaf_desktop.progress_throttle import ProgressUpdate
from ostaf_desktop.qt_images import qimage_from_data_url, qimage_from_pil
from ostaf_desktop.run_history import load_run, save_run
from ostaf_desktop.viewmodels.library import LibraryViewModel
from ostaf_desktop.viewmodels.projects import ProjectsViewModel
from ostaf_desktop.viewmodels.reference import ReferenceViewModel
from ostaf_desktop.viewmodels.session import SessionViewModel
from ostaf_desktop.viewmodels.words import WordsViewModel
from ostaf_desktop.worker import JobController

log = logging.getLogger(__name__)
CUSTOM = "custom"
PREVIEW_STEPS = 8
# The fourth choice beside the three kinds: learn shape, appearance and style in one run.
ALL_THREE = "all"


NATIVE_SIZE = "native"


def tuning_size_choices(info: ModelInfo | None) -> tuple[tuple[str, str], ...]:
    """The resolutions offered under Advanced: the model's native one first (the default),
    then the others it accepts (multiples of 8 latent pixels, half to twice native)."""
    if info is None:
        return (("Native", NATIVE_SIZE),)
    others = [(f"{s} px", str(s)) for s in info.tuning_sizes if s != info.resolution]
    return ((f"Native ({info.resolution} px)", NATIVE_SIZE), *others)


def preview_interval(steps: int) -> int:
    """Tuning previews come about eight times per run, at least ten steps apart."""
    return max(10, steps // 8)


def format_duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class TuningViewModel(ViewModel):
    """What to learn (kind, class word, description, preset, advanced values) and the
    running job. Choosing a kind sets its learning rate and step count (`KIND_TUNING`) and,
    unless the user edited it, its suggested description. `kind` ALL_THREE learns the three
    kinds in one run, each with its own rates and word; the description then holds {shape},
    {appearance} and {style}."""

    kind = Observable(str(AttributeKind.APPEARANCE))
    class_word = Observable("")
    # The reference described with {token} where the attribute's words would be.
    caption = Observable(suggested_caption(AttributeKind.APPEARANCE))
    # Edited for this picture: it no longer follows the kind (a new picture or a resume
    # resets it; `restore_caption` puts the suggestion back).
    caption_edited = Observable(False)
    words_available = Observable(False)  # the demo model: its world's words describe a picture
    words_open = Observable(False)  # the word picker is shown
    name = Observable("")
    word = Observable("")  # what the new attribute will be written as in prompts
    # With ALL_THREE: (kind, word) of each of the three new attributes.
    words_of_all = Observable[tuple[tuple[str, str], ...]](())
    own_rates = Observable(True)  # the rates below are the kind's (not with ALL_THREE)
    preset = Observable(DEFAULT_PRESET)
    steps = Observable(preset_steps(AttributeKind.APPEARANCE, DEFAULT_PRESET))
    seed = Observable(0)
    learning_rate = Observable(KIND_TUNING[AttributeKind.APPEARANCE].learning_rate)
    prior = Observable(KIND_TUNING[AttributeKind.APPEARANCE].prior)  # prior preservation
    # The placeholder word's learning rate (0: the word keeps its meaning).
    embedding_rate = Observable(KIND_TUNING[AttributeKind.APPEARANCE].embedding_rate)
    rank = Observable(TuningSettings.rank)
    resolution = Observable(NATIVE_SIZE)  # NATIVE_SIZE or a number of px, as text
    resolution_options = Observable(tuning_size_choices(None))
    advanced_open = Observable(False)

    running = Observable(False)
    cancelling = Observable(False)
    step = Observable(0)
    total = Observable(0)
    time_text = Observable("")
    stage_text = Observable("")
    losses = Observable[tuple[float, ...]](())
    previews = Observable[tuple[tuple[int, QImage], ...]](())
    preview_prompt = Observable("")  # what the previews render
    can_tune = Observable(False)
    tune_hint = Observable("")
    summary = Observable("")

    attribute_added = Signal(str)  # the new attribute's id
    run_ended = Signal(object)  # the finished Job, after its files were dealt with

    def __init__(
        self,
        session: SessionViewModel,
        jobs: JobController,
        projects: ProjectsViewModel,
        reference: ReferenceViewModel,
        library: LibraryViewModel,
        words: WordsViewModel,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._session = session
        self._jobs = jobs
        self._projects = projects
        self._reference = reference
        self._library = library
        self._words = words
        self._job: Job | None = None
        self._project: Project | None = None
        self._pil_previews: list[tuple[int, Any]] = []
        self._elapsed_s = 0.0
        self._suggestion = str(self.caption)  # what the description follows until edited
        self._world_words: dict[str, str] | None = None  # picked on the demo model
        # The reference's own words of each kind (the demo world's reading), for ALL_THREE.
        self._described: dict[AttributeKind, str] = {}
        self.changed.connect(self._on_own_change)
        for vm in (reference, projects):
            vm.changed.connect(lambda *_: self._update_can_tune())
        reference.changed.connect(self._on_reference_changed)
        library.changed.connect(self._on_library_changed)
        session.changed.connect(self._on_session_changed)
        words.changed.connect(self._on_words_changed)
        self.word = words.next_word
        self._update_words_of_all()
        self._update_can_tune()

    # -- actions -------------------------------------------------------------------------
    def tune(self) -> Job | None:
        """Start tuning on the worker; the attribute is saved to the library when it succeeds."""
        self._update_can_tune()
        project, image = self._projects.current, self._reference.path
        if not self.can_tune or project is None or image is None:
            return None
        if self.kind == ALL_THREE:
            return self._learn_all(project, image)
        kind = AttributeKind(self.kind)
        discard_interrupted(project)  # a new run replaces the project's interrupted one
        try:
            staged = staging_path(project)
            kept = keep_reference(project, image)  # a resumed run reads only project files
            mask = self._reference.write_mask(mask_path(project))
            settings = TuningSettings(
                kind=kind,
                steps=int(self.steps),
                learning_rate=float(self.learning_rate),
                prior=float(self.prior),
                embedding_rate=float(self.embedding_rate),
                strength=KIND_TUNING[kind].strength,
                rank=int(self.rank),
                seed=int(self.seed),
                class_word=self.class_word.strip(),
                token=self.word or DEFAULT_TOKEN,  # one no attribute of the project has
                caption=" ".join(self.caption.split()),
                **self._run_options(mask),
            )
            name = " ".join(self.name.split()) or clip_name(f"{kind.value.title()} of {image.stem}")
            request = TuneJob(
                kept,
                settings,
                staged,
                name,
                self._session.model_choice(),
                checkpoint=checkpoint_path(project),
                checkpoint_interval_s=CHECKPOINT_INTERVAL_S,
            )
            request.validate()
        except OstafError as exc:
            forget_kept_files(project)
            self._session.report(exc)
            return None
        return self._start(project, request)

    def _run_options(self, mask: Path | None) -> dict[str, Any]:
        """The settings a run takes from the panel and the session whatever its kind."""
        return {
            "crop": self._reference.crop,
            "mask": mask,
            "preview_every": preview_interval(int(self.steps)),
            "preview_steps": PREVIEW_STEPS,
            "memory_saving": self._session.settings.memory_saving,
            "size": 0 if self.resolution == NATIVE_SIZE else int(self.resolution),
        }

    def _learn_all(self, project: Project, image: Path) -> Job | None:
        """Start learning shape, appearance and style in one run (three attributes)."""
        discard_interrupted(project)  # a new run replaces the project's interrupted one
        try:
            kept = keep_reference(project, image)  # a resumed run reads only project files
            mask = self._reference.write_mask(mask_path(project))
            words = {AttributeKind(kind): word for kind, word in self.words_of_all}
            settings = DecomposeSettings.create(
                words,
                " ".join(self.caption.split()),
                self._described,
                steps=int(self.steps),
                rank=int(self.rank),
                seed=int(self.seed),
                class_word=self.class_word.strip(),
                **self._run_options(mask),
            )
            name = " ".join(self.name.split())
            names = {
                kind: clip_name(
                    f"{name} ({kind})" if name else f"{kind.value.title()} of {image.stem}"
                )
                for kind in ALL_KINDS
            }
            request = DecomposeJob(
                kept,
                settings,
                {kind: staging_path(project) for kind in ALL_KINDS},
                names,
                self._session.model_choice(),
                checkpoint=checkpoint_path(project),
                checkpoint_interval_s=CHECKPOINT_INTERVAL_S,
            )
            request.validate()
        except OstafError as exc:
            forget_kept_files(project)
            self._session.report(exc)
            return None
        return self._start(project, request)

    def resume(
        self,
        run: InterruptedRun,
        memory_saving: bool,
        learning_rate: float | None = None,
        rate_factor: float = 1.0,
    ) -> Job | None:
        """Continue the open project's interrupted run from its checkpoint with every setting
        of the run, whatever the panel shows; only memory saving and, when given (after a
        diverged loss), the learning rate (a learn-all run: every rate × `rate_factor`) may
        differ."""
        project = self._projects.current
        if self.running or project is None or not run.resumable:
            return None
        try:
            request: TuneJob | DecomposeJob
            if run.learn_all is not None:
                outs = {kind: staging_path(project) for kind in ALL_KINDS}
                request = run.learn_all_job(outs, memory_saving, rate_factor)
            else:
                request = run.job(staging_path(project), memory_saving, learning_rate)
        except OstafError as exc:
            self._session.report(exc)
            return None
        self._show_request(request)
        return self._start(project, request, run.step, run.losses)

    def _show_request(self, request: TuneJob | DecomposeJob) -> None:
        """Show a resumed run's reference, crop and mask, then its choices (kind, name,
        description and every value), so that the panel shows the run being continued."""
        if isinstance(request, DecomposeJob):
            self._show_learn_all(request)
            return
        settings = request.settings
        reference = self._reference
        if reference.path == request.image or reference.open_image(request.image):
            reference.set_crop(settings.crop)
            if settings.mask is None or not reference.load_mask(settings.mask):
                reference.clear_mask()
        self.kind, self.class_word, self.name, self.word = (
            str(settings.kind),
            settings.class_word,
            request.name,
            settings.token,
        )
        if settings.caption:  # runs from before the description keep the kind's suggestion
            self._set_suggestion(settings.caption)  # the run's own, not an edit of it
        self.preset = CUSTOM  # the run's own steps, whatever the presets are now
        self.steps, self.seed, self.rank = settings.steps, settings.seed, settings.rank
        self.learning_rate = settings.learning_rate
        self.prior = settings.prior
        self.embedding_rate = settings.embedding_rate
        size = NATIVE_SIZE if settings.size == 0 else str(settings.size)
        if size not in {value for _, value in self.resolution_options}:
            self.resolution_options = (*self.resolution_options, (f"{size} px", size))
        self.resolution = size

    def _show_learn_all(self, request: DecomposeJob) -> None:
        """`_show_request` for a learn-all run: its reference, words, description, values."""
        settings = request.settings
        first = settings.members[ALL_KINDS[0]]
        reference = self._reference
        if reference.path == request.image or reference.open_image(request.image):
            reference.set_crop(first.crop)
            if first.mask is None or not reference.load_mask(first.mask):
                reference.clear_mask()
        self.kind, self.class_word, self.name = ALL_THREE, first.class_word, ""
        self.words_of_all = tuple((str(kind), word) for kind, word in settings.words.items())
        self._set_suggestion(settings.caption)  # the run's own, not an edit of it
        self.preset = CUSTOM
        self.steps, self.seed, self.rank = first.steps, first.seed, first.rank
        size = NATIVE_SIZE if first.size == 0 else str(first.size)
        if size not in {value for _, value in self.resolution_options}:
            self.resolution_options = (*self.resolution_options, (f"{size} px", size))
        self.resolution = size

    def _start(
        self,
        project: Project,
        request: TuneJob | DecomposeJob,
        done: int = 0,
        losses: tuple[float, ...] = (),
    ) -> Job:
        self._project = project
        self._projects.busy_slug = project.slug
        self.running, self.cancelling = True, False
        self.total, self.step = request.settings.steps, done
        self.losses, self.previews, self._pil_previews = losses, (), []
        demo = is_demo_source(request.model.source)  # as the core decides it
        if isinstance(request, DecomposeJob):
            self.preview_prompt = joint_preview_prompt(request.settings.words, demo)
        else:
            self.preview_prompt = preview_prompt(
                request.settings.kind, request.settings.token, demo
            )
        self.time_text, self.summary, self._elapsed_s = "", "", 0.0
        if self._session.model is None:
            self.stage_text = "Waiting for the model…"
        else:
            self.stage_text = f"Resuming from step {done}…" if done else "Starting…"
        kind = JobKind.LEARN_ALL if isinstance(request, DecomposeJob) else JobKind.TUNE
        self._job = self._jobs.submit(
            Job(kind, request), on_progress=self._on_progress, on_done=self._on_done
        )
        self._update_can_tune()
        return self._job

    def cancel(self) -> None:
        """Stop the run at its next step; nothing is saved."""
        if self._job is not None and not self._job.state.finished:
            self.cancelling = True
            self.stage_text = "Stopping…"
            self._jobs.cancel(self._job)

    def show_run(self, attribute_id: str) -> None:
        """Show the curve and previews of the run that made an attribute (when known)."""
        if self.running:
            return
        row = self._library.row(attribute_id)
        record = load_run(attribute_id) if attribute_id else None
        self.losses = tuple(record.losses) if record else ()
        self.previews = (
            tuple(
                (step, qimage_from_data_url(url))
                for step, url in zip(record.preview_steps, record.previews, strict=False)
            )
            if record
            else ()
        )
        self.preview_prompt = record.preview_prompt if record else ""
        self.total = row.steps if row else 0
        self.step = self.total
        self.time_text = ""
        if row is None:
            self.summary = ""
        else:
            loss = f", final loss {row.final_loss:.4f}" if row.final_loss is not None else ""
            took = f" in {format_duration(record.seconds)}" if record else ""
            self.summary = f"'{row.name}': {row.steps} steps{took}{loss}"
        self.stage_text = ""

    # -- worker callbacks ------------------------------------------------------------------
    def _on_progress(self, update: ProgressUpdate) -> None:
        report = update.latest
        if report.stage == "loading":
            self.stage_text = report.message or "Loading model…"
            return
        if report.stage == "preparing":
            self.stage_text = "Encoding the reference…"
            return
        if report.stage != "tuning":
            return
        self.total, self.step = report.total, report.step
        if update.losses:  # a resumed run starts after the saved losses (or over, at step 1)
            kept = self.losses[: update.losses[0][0] - 1]
            self.losses = (*kept, *(loss for _, loss in update.losses))
        if report.preview is not None:
            self._pil_previews.append((report.step, report.preview))
            self.previews = (*self.previews, (report.step, qimage_from_pil(report.preview)))
        self._elapsed_s = report.elapsed_s
        eta = f" · about {format_duration(report.eta_s)} left" if report.eta_s is not None else ""
        self.time_text = f"{format_duration(report.elapsed_s)} elapsed{eta}"
        if not self.cancelling:
            self.stage_text = f"Step {report.step} of {report.total}"

    def _on_done(self, job: Job) -> None:
        project, self._project = self._project, None
        self._job = None
        self._projects.busy_slug = ""
        self.running, self.cancelling = False, False
        self.word = self._words.next_word  # a resumed run showed its own
        self._update_words_of_all()
        self.time_text = f"{format_duration(self._elapsed_s)} elapsed" if self._elapsed_s else ""
        request: TuneJob | DecomposeJob = job.request
        outs = list(request.outs.values()) if isinstance(request, DecomposeJob) else [request.out]
        saved = read_sidecar(request.checkpoint) if request.checkpoint is not None else None
        # Only a failure, or quitting the app mid-run, leaves a run to resume.
        resumable = job.state is JobState.FAILED or job.cancel_token.keeps_progress
        if (saved is None or not resumable) and request.checkpoint is not None:
            discard(request.checkpoint)
        if job.state is JobState.DONE and project is not None:
            if isinstance(request, DecomposeJob):
                self._finish_all(project, request, job.result)
            else:
                self._finish(project, request, job.result)
        elif job.state is JobState.CANCELLED:
            for out in outs:
                out.unlink(missing_ok=True)
            self.stage_text = "Cancelled: nothing was saved"
        else:
            for out in outs:
                out.unlink(missing_ok=True)
            self.stage_text = (
                f"Stopped: it can resume from step {saved.get('step')}"
                if saved is not None
                else "Tuning failed: see the message above"
            )
            if job.error is not None:
                self._session.report(job.error)
        if (saved is None or not resumable) and project is not None:
            try:  # after _finish, which adds the kept reference to the project
                forget_kept_files(project)
            except OstafError as exc:
                self._session.report(exc)
        self._update_can_tune()
        self.run_ended.emit(job)

    def _finish(self, project: Project, request: TuneJob, result: TunedAttribute) -> None:
        reopened = project is not self._projects.current
        try:
            outcome = project.import_attribute(result.path)
            project.add_reference(request.image)
        except OstafError as exc:
            self._session.report(exc)
            return
        finally:
            result.path.unlink(missing_ok=True)
            if reopened:
                project.release()
        path = outcome.entry.path
        save_run(path.stem, result.losses, self._pil_previews, result.seconds, self.preview_prompt)
        self._pil_previews = []
        self._projects.refresh()
        if not reopened:
            self._library.refresh()
            self._library.selected_id = path.stem  # shows this run's curve and previews
            self._library.apply_only(path.stem)
            if outcome.duplicate:
                self._say_equal(request.name, outcome.entry.meta.name)
            else:
                self._session.notify(f"Saved '{request.name}' to the library")
        took = format_duration(result.seconds)
        self.stage_text = (
            f"Equal to '{outcome.entry.meta.name}' in the library: nothing new saved"
            if outcome.duplicate
            else f"Saved to the library in {took}"
        )
        self.name = ""  # the next run names its own attribute
        for note in result.notes:
            self._session.notify(f"Note: {note}")
        if not reopened:
            self.attribute_added.emit(path.stem)

    def _finish_all(self, project: Project, request: DecomposeJob, result: LearnedAll) -> None:
        """Import the three attributes of a learn-all run, select them (ticked together) and
        say what each carries and its word."""
        reopened = project is not self._projects.current
        try:
            outcomes = project.import_attributes([result.paths[kind] for kind in ALL_KINDS])
            project.add_reference(request.image)
        except OstafError as exc:
            self._session.report(exc)
            return
        finally:
            for path in result.paths.values():
                path.unlink(missing_ok=True)
            if reopened:
                project.release()
        ids = [outcome.entry.path.stem for outcome in outcomes]
        for attribute_id in ids:
            save_run(
                attribute_id, result.losses, self._pil_previews, result.seconds, self.preview_prompt
            )
        self._pil_previews = []
        self._projects.refresh()
        words = request.settings.words
        carried = "; ".join(f"{kind} '{words[kind]}' ({kind.summary})" for kind in ALL_KINDS)
        took = format_duration(result.seconds)
        equal = [o.entry.meta.name for o in outcomes if o.duplicate]
        if not reopened:
            self._library.refresh()
            self._library.selected_id = ids[0]  # shows this run's curve and previews
            self._library.apply_only(ids[0])
            for attribute_id in ids[1:]:
                self._library.set_applied(attribute_id, True)
            self._session.notify(f"Saved three attributes to the library: {carried}")
        self.stage_text = f"Saved shape, appearance and style in {took}: {carried}"
        if equal:
            self.stage_text += f" ({', '.join(equal)} already in the library: not saved again)"
        self.name = ""
        for note in result.notes:
            self._session.notify(f"Note: {note}")
        if not reopened:
            for attribute_id in ids:
                self.attribute_added.emit(attribute_id)

    def _say_equal(self, name: str, existing: str) -> None:
        """A run that learnt exactly an attribute the library holds (it keeps identical
        content once): say which one, and that it keeps its own name."""
        text = (
            f"This run learnt exactly the attribute '{existing}' that the library already "
            f"holds, so nothing new was saved; '{existing}' is selected and applied."
        )
        if name != existing:
            text += (
                f" It keeps its name: rename it in the library to call it '{name}', or tune "
                "with another seed to get a second attribute."
            )
        self._session.inform(
            "Already in the library",
            text,
            status=f"Equal to '{existing}' in the library: nothing new saved",
        )

    # -- the description -------------------------------------------------------------------
    def restore_caption(self) -> None:
        """Put the suggested description back (the user's edit of it goes)."""
        self._suggest(force=True)

    def describe_with_words(self, words: dict[str, str]) -> None:
        """On the demo model: describe this picture with the world's words (shape, colour,
        pattern, style, background); the description then follows the kind with them."""
        self._world_words = dict(words)
        self._suggest(force=True)

    def _set_suggestion(self, text: str) -> None:
        self._suggestion = text
        self.caption = text
        self.caption_edited = False

    def _suggest(self, force: bool = False) -> None:
        """Refresh the suggested description, unless the user edited it for this picture
        (`force`: whatever they wrote). On the demo model: the world's words picked for this
        picture, else what the world's oracle reads in it (its exact description); elsewhere,
        or when neither is known, the kind's template, which the user completes."""
        if self.caption_edited and not force:
            return
        if self.kind == ALL_THREE:
            self._set_suggestion(self._joint_suggestion())
            return
        kind = AttributeKind(self.kind)
        model, path = self._session.model, self._reference.path
        described = ""
        if model is not None and model.is_demo:
            if self._world_words is not None:
                from ostaf.world.description import describe_words

                described = describe_words(self._world_words, kind)
            elif path is not None:
                described = _world_description(path, self._reference.crop, model.resolution, kind)
                # A picture the oracle cannot read: the template means nothing to the demo
                # model, so the world's words are offered to describe it with.
                self.words_open = self.words_open or not described
        self._set_suggestion(described or suggested_caption(kind, self.class_word))

    def _joint_suggestion(self) -> str:
        """The description for learning all three, with {shape}, {appearance} and {style}: on
        the demo model from the world's words picked for this picture or read in it (and each
        kind's own words with it); elsewhere the template, which the user completes."""
        self._described = {}
        model, path = self._session.model, self._reference.path
        if model is None or not model.is_demo:
            return JOINT_TEMPLATE
        from ostaf.world.description import describe_all

        words = self._world_words
        if words is None and path is not None:
            words = _world_words(path, self._reference.crop, model.resolution)
            self.words_open = self.words_open or words is None
        if words is None:
            return JOINT_TEMPLATE
        caption, self._described = describe_all(words)
        return caption

    # -- derived state ---------------------------------------------------------------------
    def _preset_steps(self, preset: str) -> int:
        """The steps of `preset` for the kind chosen (all three: the most any kind takes)."""
        if self.kind == ALL_THREE:
            return max(preset_steps(kind, preset) for kind in ALL_KINDS)
        return preset_steps(AttributeKind(self.kind), preset)

    def _on_own_change(self, name: str, value: object) -> None:
        if name == "kind" and value != ALL_THREE:
            kind = AttributeKind(self.kind)
            self.learning_rate = KIND_TUNING[kind].learning_rate
            self.prior = KIND_TUNING[kind].prior
            self.embedding_rate = KIND_TUNING[kind].embedding_rate
        if name == "kind":
            self.own_rates = value != ALL_THREE
            if self.preset in PRESETS:
                self.steps = self._preset_steps(self.preset)
            self._update_words_of_all()
        if name in ("kind", "class_word"):
            self._suggest()
        if name == "caption":
            self.caption_edited = value != self._suggestion
        if name == "preset" and value in PRESETS:
            self.steps = self._preset_steps(str(value))
        elif (
            name == "steps" and self.preset in PRESETS and self._preset_steps(self.preset) != value
        ):
            self.preset = CUSTOM
        if name in ("preset", "steps", "kind"):
            self._update_can_tune()  # the hint under Tune names the quality and its steps

    def _on_reference_changed(self, name: str, value: object) -> None:
        if name == "image":  # a new picture: its own description, whatever the last one was
            self._world_words = None
            self._suggest(force=True)
        elif name == "crop":
            self._suggest()

    def _on_session_changed(self, name: str, value: object) -> None:
        if name == "model":
            model = self._session.model
            self.words_available = model is not None and model.is_demo
        if name == "model" and value is not None:
            self._suggest()
            self.resolution_options = tuning_size_choices(self._session.model)
            if self.resolution not in {v for _, v in self.resolution_options}:
                self.resolution = NATIVE_SIZE

    def _on_library_changed(self, name: str, value: object) -> None:
        if name == "selected_id" and not self.running:
            self.show_run(str(value))

    def _on_words_changed(self, name: str, value: object) -> None:
        if name == "next_word" and not self.running:  # a running one keeps its own
            self.word = str(value)
            self._update_words_of_all()

    def _update_words_of_all(self) -> None:
        """The three words a learn-all run would give its attributes (none while running: a
        running one keeps its own)."""
        if self.running:
            return
        if self.kind != ALL_THREE:
            self.words_of_all = ()
            return
        words = self._words.free_words(len(ALL_KINDS))
        self.words_of_all = tuple(
            (str(kind), word) for kind, word in zip(ALL_KINDS, words, strict=True)
        )

    def _update_can_tune(self) -> None:
        if self.running:
            hint, ok = "Tuning… press Cancel (Esc) to stop", False
        elif self._projects.current is None:
            hint, ok = "Open or create a project first", False
        elif self._reference.image is None:
            hint, ok = "Open or drop a reference image first", False
        else:
            preset = PRESETS.get(self.preset)
            what = f"{preset.name} · {preset.summary}" if preset else "Custom"
            hint, ok = f"{what} ({self.steps} steps)", True
            if self.kind == ALL_THREE:
                hint = f"Three attributes in one run · {what} ({self.steps} steps)"
        self.can_tune, self.tune_hint = ok, hint


def _world_words(
    path: Path, crop: tuple[int, int, int, int] | None, size: int
) -> dict[str, str] | None:
    """The demo world's words for the reference as the demo model sees it (`size` pixels);
    None when it is no picture of that world, or cannot be read."""
    from ostaf.images import load_reference
    from ostaf.world.description import read_words

    try:
        image = load_reference(path, size, crop).image
    except OstafError:
        return None
    return read_words(image)


def _world_description(
    path: Path, crop: tuple[int, int, int, int] | None, size: int, kind: AttributeKind
) -> str:
    """The demo world's description of the reference as the demo model sees it (`size`
    pixels); "" when it is no picture of that world, or cannot be read."""
    from ostaf.images import load_reference
    from ostaf.world.description import describe_reference

    try:
        image = load_reference(path, size, crop).image
    except OstafError:
        return ""
    return describe_reference(image, kind)

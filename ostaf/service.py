"""The one facade over the core that the GUI worker and the CLI both call.

It keeps the base model warm between jobs, caches attribute files, and writes results only
when a job has finished (a cancelled or failed job leaves nothing behind).
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from ostaf.decompose_request import DecomposeJob
from ostaf.errors import Cancelled, SettingsError
from ostaf.images import load_reference
from ostaf.interop.pngmeta import write_png
from ostaf.library.atomic import check_writable
from ostaf.library.attribute_file import (
    Attribute,
    check_compatible,
    load_attribute,
    save_attribute,
)
from ostaf.library.output_lock import hold_output
from ostaf.method.decompose import DecomposeResult, learn_all
from ostaf.method.placeholder import word_token_ids
from ostaf.method.regions import AttributeKind
from ostaf.method.tuning import TuningResult, tune
from ostaf.method.tuning_checkpoint import Checkpointing, discard, sidecar, sweep_leftovers
from ostaf.method.word_rebase import rebase_word
from ostaf.method.words import check_distinct_words
from ostaf.models.base_model import BaseModel, load_base_model
from ostaf.models.model_check import model_sizes
from ostaf.progress import CancelToken, Progress, ProgressCallback, ignore_progress
from ostaf.render.batch import BatchOutcome, Shard, run_batch
from ostaf.render.batch_plan import BatchJob, plan_batch
from ostaf.render.rendering import RenderedImage, render
from ostaf.requests import ModelChoice, RenderJob, TuneJob


@dataclass
class TuneOutcome:
    path: Path
    result: TuningResult
    notes: list[str]


@dataclass
class LearnAllOutcome:
    """The three files written, by kind, and how the run went."""

    paths: dict[AttributeKind, Path]
    result: DecomposeResult
    notes: list[str]


@dataclass
class RenderOutcome:
    images: list[RenderedImage]
    paths: list[Path]


class OstafService:
    """Runs load/tune/render jobs in order on one device; not thread-safe by design
    (the GUI's single worker thread owns it)."""

    def __init__(self) -> None:
        self._model: BaseModel | None = None
        self._model_choice: ModelChoice | None = None
        self._attributes: dict[Path, tuple[tuple[int, int], Attribute]] = {}

    @property
    def loaded_model(self) -> BaseModel | None:
        return self._model

    def model(
        self,
        choice: ModelChoice,
        progress: ProgressCallback = ignore_progress,
        cancel: CancelToken | None = None,
    ) -> BaseModel:
        """The base model for `choice`, loading it only when the choice changed."""
        if self._model is None or self._model_choice != choice:
            self.unload()
            self._model = load_base_model(
                choice.source, choice.device, choice.precision, progress, cancel
            )
            self._model_choice = choice
        return self._model

    def unload(self) -> None:
        self._model = None
        self._model_choice = None
        from ostaf.models.devices import empty_cache

        empty_cache()

    def attribute(self, path: Path) -> Attribute:
        """Load an attribute file, reusing the cached copy while the file is unchanged."""
        path = Path(path).resolve()
        try:
            stat = path.stat()
        except OSError:
            return load_attribute(path)  # raises the project's error naming the file
        key = (stat.st_mtime_ns, stat.st_size)
        cached = self._attributes.get(path)
        if cached is None or cached[0] != key:
            cached = (key, load_attribute(path))
            self._attributes[path] = cached
        return cached[1]

    def tune(
        self,
        job: TuneJob,
        progress: ProgressCallback = ignore_progress,
        cancel: CancelToken | None = None,
    ) -> TuneOutcome:
        """Tune and save; the file appears only when tuning finished."""
        cancel = cancel or CancelToken()
        job.validate()
        if job.out.suffix != ".safetensors":
            raise SettingsError(f"output {job.out} must end in .safetensors")
        # Beside the output: the resumable state and its sidecar. An unwritable name is found
        # before the model loads, and what a killed run left half-written is swept.
        companions = [job.checkpoint, sidecar(job.checkpoint)] if job.checkpoint else []
        check_writable(job.out, *companions)
        with hold_output(job.out):  # a second run into the same file fails here, at once
            return self._tune(job, progress, cancel)

    def _tune(self, job: TuneJob, progress: ProgressCallback, cancel: CancelToken) -> TuneOutcome:
        companions = [job.checkpoint, sidecar(job.checkpoint)] if job.checkpoint else []
        sweep_leftovers(job.out, *companions)
        if job.settings.size and self._model_choice != job.model:
            # A size the model cannot take is refused from its configs, before a load of GBs.
            model_sizes(job.model.source).tuning_size(job.settings.size)
        model = self.model(job.model, progress, cancel)
        # Shifts are kept per token id: a word of several tokens shares them with other words.
        family = model.family
        word_token_ids(model.pipe, family.text_encoders, family.tokenizers, job.settings.token)
        size = model.tuning_size(job.settings.size)  # checked against the model first
        reference = load_reference(
            job.image, size, crop=job.settings.crop, mask_path=job.settings.mask
        )
        for note in reference.notes:
            progress(Progress("preparing", 0, job.settings.steps, message=note, note=note))
        cancel.check()
        checkpointing = None
        if job.checkpoint is not None:
            record = {
                "image": str(job.image),
                "out": str(job.out),
                "name": job.name,
                "settings": job.settings.to_record(),
                "model": asdict(job.model),
            }
            checkpointing = Checkpointing(job.checkpoint, job.checkpoint_interval_s, record)
        try:
            result = tune(model, reference, job.settings, job.name, progress, cancel, checkpointing)
            cancel.check()
        except Cancelled:
            # The user chose to stop: nothing stays behind. The app quitting keeps the state,
            # so that the next start offers to resume.
            if job.checkpoint is not None and not cancel.keeps_progress:
                discard(job.checkpoint)
            raise
        path = save_attribute(job.out, result.attribute)
        if job.checkpoint is not None:
            discard(job.checkpoint)
        return TuneOutcome(path, result, [*reference.notes, *result.notes])

    def learn_all(
        self,
        job: DecomposeJob,
        progress: ProgressCallback = ignore_progress,
        cancel: CancelToken | None = None,
    ) -> LearnAllOutcome:
        """Learn shape, appearance and style from one reference and save the three files; they
        appear only when the run finished (all three, or none)."""
        cancel = cancel or CancelToken()
        job.validate()
        outs = list(job.outs.values())
        companions = [job.checkpoint, sidecar(job.checkpoint)] if job.checkpoint else []
        for out in outs:
            check_writable(out, *companions)
        with contextlib.ExitStack() as holds:
            for out in outs:  # a second run into one of the files fails here, at once
                holds.enter_context(hold_output(out))
            return self._learn_all(job, progress, cancel)

    def _learn_all(
        self, job: DecomposeJob, progress: ProgressCallback, cancel: CancelToken
    ) -> LearnAllOutcome:
        companions = [job.checkpoint, sidecar(job.checkpoint)] if job.checkpoint else []
        sweep_leftovers(*job.outs.values(), *companions)
        settings = job.settings
        first = next(iter(settings.members.values()))
        if first.size and self._model_choice != job.model:
            model_sizes(job.model.source).tuning_size(first.size)
        model = self.model(job.model, progress, cancel)
        family = model.family
        for member in settings.members.values():  # each word one token, before any work
            word_token_ids(model.pipe, family.text_encoders, family.tokenizers, member.token)
        size = model.tuning_size(first.size)
        reference = load_reference(job.image, size, crop=first.crop, mask_path=first.mask)
        for note in reference.notes:
            progress(Progress("preparing", 0, settings.steps, message=note, note=note))
        cancel.check()
        checkpointing = None
        if job.checkpoint is not None and settings.one_pass:
            record = {
                "name": f"All three of {job.image.stem}",
                "image": str(job.image),
                "outs": {str(kind): str(path) for kind, path in job.outs.items()},
                "names": {str(kind): name for kind, name in job.names.items()},
                "learn_all": settings.to_record(),
                "model": asdict(job.model),
            }
            checkpointing = Checkpointing(job.checkpoint, job.checkpoint_interval_s, record)
        try:
            result = learn_all(
                model, reference, settings, job.names, progress, cancel, checkpointing
            )
            cancel.check()
        except Cancelled:
            if job.checkpoint is not None and not cancel.keeps_progress:
                discard(job.checkpoint)
            raise
        written: list[Path] = []
        try:
            for kind, attribute in result.attributes.items():
                written.append(save_attribute(job.outs[kind], attribute))
        except BaseException:
            for path in written:  # all three or none
                path.unlink(missing_ok=True)
            raise
        if job.checkpoint is not None:
            discard(job.checkpoint)
        paths = dict(zip(result.attributes, written, strict=True))
        return LearnAllOutcome(paths, result, [*reference.notes, *result.notes])

    def render(
        self,
        job: RenderJob,
        progress: ProgressCallback = ignore_progress,
        cancel: CancelToken | None = None,
    ) -> RenderOutcome:
        """Render every seed; with `out_dir`, write PNGs once all images are done."""
        cancel = cancel or CancelToken()
        job.settings.validate()
        applied = [(self.attribute(a.path), a.intensity) for a in job.settings.attributes]
        check_distinct_words([(a.meta, lam) for a, lam in applied])  # before a model loads
        model = self.model(job.model, progress, cancel)
        images = render(model, job.settings, applied, progress, cancel)
        paths: list[Path] = []
        if job.out_dir is not None:
            index = next_image_index(job.out_dir)
            for offset, item in enumerate(images):
                target = job.out_dir / f"{index + offset:05d}-{item.seed}.png"
                paths.append(write_png(target, item.image, item.parameters, item.record))
        return RenderOutcome(images, paths)

    def rebase_word(
        self,
        path: Path,
        word: str,
        choice: ModelChoice,
        progress: ProgressCallback = ignore_progress,
        cancel: CancelToken | None = None,
    ) -> Attribute:
        """The attribute file at `path` named by `word` instead of its own word, re-based on
        the model of `choice` (ostaf.method.word_rebase); nothing is written."""
        attribute = self.attribute(path)
        model = self.model(choice, progress, cancel)
        check_compatible(attribute, model)  # refuses another architecture; the rest may differ
        return rebase_word(attribute, model, word)

    def batch(
        self,
        job: BatchJob,
        progress: ProgressCallback = ignore_progress,
        cancel: CancelToken | None = None,
        shard: Shard | None = None,
    ) -> BatchOutcome:
        """Render a batch grid (this process's share when sharded); names are checked before
        the model loads, so a bad template fails fast."""
        cancel = cancel or CancelToken()
        paths = {c.path for combination in job.request.combinations for c in combination}
        attributes = {path: self.attribute(path) for path in paths}
        plan = plan_batch(job.request, {path: a.meta for path, a in attributes.items()})
        model = self.model(job.model, progress, cancel)
        return run_batch(model, plan, attributes, shard, progress, cancel)


def next_image_index(folder: Path) -> int:
    """The next free number for `00000-<seed>.png` names, as A1111 numbers its outputs."""
    highest = -1
    if folder.is_dir():
        for entry in folder.iterdir():
            match = re.match(r"(\d{5,})-", entry.name)
            if match:
                highest = max(highest, int(match.group(1)))
    return highest + 1

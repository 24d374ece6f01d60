"""The worker's view of the core: the service facade behind a small protocol, so widget
tests can run against a scriptable fake. Results are plain data; images are PIL images.

Nothing here imports torch at module level: `CoreBackend` imports the core's heavy modules
when it is created, which happens in the worker thread.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ostaf.decompose_request import DecomposeJob
from ostaf.method.regions import AttributeKind
from ostaf.models.families import Family
from ostaf.progress import CancelToken, ProgressCallback
from ostaf.render.batch_plan import BatchJob
from ostaf.requests import ModelChoice, RenderJob, TuneJob


@dataclass(frozen=True)
class ModelInfo:
    """The loaded base model, as the GUI shows it."""

    name: str
    resolution: int
    placement: str  # e.g. "cpu float32"
    available_devices: tuple[str, ...]
    is_demo: bool
    family: str = "Stable Diffusion 1.x"  # the family's label (+ an unusual prediction)
    sizes: tuple[tuple[str, int, int], ...] = ()  # render sizes offered (label, w, h)
    tuning_sizes: tuple[int, ...] = ()  # square tuning resolutions it accepts
    guidance: float = Family.render_guidance  # the CFG it starts with (BaseModel.guidance)


@dataclass
class TunedAttribute:
    """A finished tuning run: the written file and how it went."""

    path: Path  # where the service wrote it (the project's staging folder)
    losses: list[float]
    seconds: float
    notes: list[str] = field(default_factory=list)


@dataclass
class LearnedAll:
    """A finished "Learn all three" run: the three written files, by kind, and how it went
    (one loss curve: the one loop's, or the three runs' one after the other)."""

    paths: dict[AttributeKind, Path]
    losses: list[float]
    seconds: float
    notes: list[str] = field(default_factory=list)


@dataclass
class RenderedImage:
    image: Any  # PIL.Image.Image
    seed: int
    parameters: str
    path: Path | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class BatchResult:
    """A finished batch export: files written now, files found complete from an earlier run."""

    written: list[Path]
    skipped: list[Path]
    total: int  # cells in the whole batch
    sheet: Path | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class LoraRequest:
    """Write one attribute file as a LoRA for other tools, λ baked in (None: its default)."""

    attribute: Path
    out: Path
    format: str = "kohya"
    intensity: float | None = None
    overwrite: bool = False


@dataclass(frozen=True)
class LoraWritten:
    """A written LoRA file and what went into it."""

    path: Path
    format: str
    intensity: float
    target: str  # which models it applies to, e.g. "Stable Diffusion XL models"
    layers: int
    advice: str = ""  # how to use it in other tools: its word and the embedding beside it


@dataclass(frozen=True)
class WordRequest:
    """Give the attribute file another word, re-based on the model of `model`."""

    attribute: Path
    word: str
    model: ModelChoice


@dataclass
class WordChange:
    """The attribute with its new word (not written yet: the project writes it over its file
    on the GUI thread, as it imports a tuned one) and the content hash of the file it was
    made from."""

    attribute: Any  # ostaf.library.attribute_file.Attribute
    was: str


class Backend(Protocol):
    """What the worker thread asks of the core; every call may raise the core's errors."""

    def load_model(
        self, choice: ModelChoice, progress: ProgressCallback, cancel: CancelToken
    ) -> ModelInfo: ...

    def tune(
        self, job: TuneJob, progress: ProgressCallback, cancel: CancelToken
    ) -> TunedAttribute: ...

    def learn_all(
        self, job: DecomposeJob, progress: ProgressCallback, cancel: CancelToken
    ) -> LearnedAll: ...

    def render(
        self, job: RenderJob, progress: ProgressCallback, cancel: CancelToken
    ) -> list[RenderedImage]: ...

    def batch(
        self, job: BatchJob, progress: ProgressCallback, cancel: CancelToken
    ) -> BatchResult: ...

    def export_lora(
        self, request: LoraRequest, progress: ProgressCallback, cancel: CancelToken
    ) -> LoraWritten: ...

    def rebase_word(
        self, request: WordRequest, progress: ProgressCallback, cancel: CancelToken
    ) -> WordChange: ...


def write_lora(
    request: LoraRequest, attribute: Any = None, cancel: CancelToken | None = None
) -> LoraWritten:
    """Write the LoRA file of `request` (imports torch: call it on the worker thread);
    `attribute` is the already loaded attribute, if the caller has it."""
    from ostaf.interop.lora_export import export_lora
    from ostaf.interop.lora_formats import word_advice
    from ostaf.library.attribute_file import load_attribute
    from ostaf.method.words import attribute_word

    if attribute is None:
        attribute = load_attribute(request.attribute)
    done = export_lora(
        attribute,
        request.out,
        request.format,  # type: ignore[arg-type]  # checked by export_lora
        request.intensity,
        overwrite=request.overwrite,
        cancel=cancel,
    )
    advice = word_advice(attribute_word(attribute.meta), done.word)
    layers = len(attribute.factors)
    return LoraWritten(done.path, done.format, done.intensity, done.target, layers, advice)


def compute_threads() -> int:
    """CPU threads for torch: all cores but one, which stays free for the GUI thread."""
    return max(1, (os.cpu_count() or 2) - 1)


class CoreBackend:
    """The real backend: one OstafService, created (with torch) in the worker thread."""

    def __init__(self, threads: int | None = None) -> None:
        import torch

        from ostaf.models.devices import available_devices
        from ostaf.service import OstafService

        # torch's default (one thread per core) competes with the GUI thread for the CPU; on
        # a busy 2-core machine that made each demo step ten times slower.
        torch.set_num_threads(threads or compute_threads())
        self._service = OstafService()
        self._devices = tuple(available_devices())

    def load_model(
        self, choice: ModelChoice, progress: ProgressCallback, cancel: CancelToken
    ) -> ModelInfo:
        from ostaf.models.demo_model import is_demo_source

        model = self._service.model(choice, progress, cancel)
        return ModelInfo(
            name=model.name,
            resolution=model.resolution,
            placement=model.placement.label,
            available_devices=self._devices,
            is_demo=is_demo_source(choice.source),
            family=model.kind_label,  # with the prediction when it is not ε
            sizes=model.family.offered_sizes(model.resolution),
            tuning_sizes=model.tuning_sizes(),
            guidance=model.guidance,
        )

    def tune(self, job: TuneJob, progress: ProgressCallback, cancel: CancelToken) -> TunedAttribute:
        outcome = self._service.tune(job, progress, cancel)
        return TunedAttribute(
            path=outcome.path,
            losses=list(outcome.result.losses),
            seconds=outcome.result.seconds,
            notes=list(outcome.notes),
        )

    def learn_all(
        self, job: DecomposeJob, progress: ProgressCallback, cancel: CancelToken
    ) -> LearnedAll:
        outcome = self._service.learn_all(job, progress, cancel)
        results = outcome.result.results
        if job.settings.one_pass:
            losses = list(next(iter(results.values())).losses)
        else:
            losses = [loss for result in results.values() for loss in result.losses]
        return LearnedAll(outcome.paths, losses, outcome.result.seconds, list(outcome.notes))

    def render(
        self, job: RenderJob, progress: ProgressCallback, cancel: CancelToken
    ) -> list[RenderedImage]:
        outcome = self._service.render(job, progress, cancel)
        paths: list[Path | None] = list(outcome.paths) or [None] * len(outcome.images)
        return [
            RenderedImage(item.image, item.seed, item.parameters, path, list(item.warnings))
            for item, path in zip(outcome.images, paths, strict=True)
        ]

    def batch(self, job: BatchJob, progress: ProgressCallback, cancel: CancelToken) -> BatchResult:
        outcome = self._service.batch(job, progress, cancel)
        return BatchResult(
            written=list(outcome.written),
            skipped=list(outcome.skipped),
            total=outcome.total,
            sheet=outcome.sheet,
            warnings=list(outcome.warnings),
        )

    def export_lora(
        self, request: LoraRequest, progress: ProgressCallback, cancel: CancelToken
    ) -> LoraWritten:
        cancel.check()
        return write_lora(request, self._service.attribute(request.attribute), cancel)

    def rebase_word(
        self, request: WordRequest, progress: ProgressCallback, cancel: CancelToken
    ) -> WordChange:
        was = self._service.attribute(request.attribute).content_hash()
        renamed = self._service.rebase_word(
            request.attribute, request.word, request.model, progress, cancel
        )
        return WordChange(renamed, was)

"""Rendering with attributes applied, through the model family's plain diffusers pipeline
(StableDiffusionPipeline, StableDiffusionXLPipeline).

Attributes are merged into the U-Net's target weights (W + Σ λᵢ·ΔWᵢ) before sampling, so a
plain pipeline given the same weights, scheduler and `torch.Generator(device).manual_seed(seed)`
reproduces every image (to the last bits only where both run the same kernels). Changing λ
re-merges only the target layers; the model is never reloaded.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from PIL import Image

from ostaf import __version__
from ostaf.interop.a1111_schedules import nearest_a1111_schedule
from ostaf.interop.pngmeta import SAMPLER_LABELS, SCHEDULE_LABELS, a1111_parameters
from ostaf.library.attribute_file import Attribute, check_compatible
from ostaf.library.projects import ATTRIBUTE_FILE_NAME
from ostaf.method.words import attribute_word, check_distinct_words
from ostaf.models.base_model import BaseModel
from ostaf.models.devices import generator_for, out_of_memory_as_error, use_job_threads
from ostaf.progress import CancelToken, Progress, ProgressCallback, StepClock, ignore_progress
from ostaf.requests import RenderSettings, effective_schedule

OOM_ADVICE = (
    "render smaller images or fewer at once, or choose fp16 precision (Settings, or --precision)"
)
# Pipelines built per base model and sampler. Weak keys: a model that is let go takes its
# pipelines with it (they share its components and never refer back to it).
_PIPELINES: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()


@dataclass
class RenderedImage:
    """One rendered image with the metadata that recreates it."""

    image: Image.Image
    seed: int
    parameters: str  # A1111 `parameters` text
    record: dict[str, Any]  # the project's own JSON record
    warnings: list[str]


def make_scheduler(sampler: str, config: Any, schedule: str = "model") -> SchedulerMixin:
    """The diffusers scheduler for a sampler and schedule, from the model's scheduler config
    ("simple" also needs `schedule_timesteps` passed to the pipeline)."""
    schedule = effective_schedule(sampler, schedule)
    # Karras as k-diffusion (A1111, ComfyUI) builds it: from the model's whole sigma range.
    # DPM++ 2M takes that range whatever its spacing; Euler takes it from its timesteps, which
    # reach both ends only with "linspace".
    karras = {"use_karras_sigmas": True} if schedule == "karras" else {}
    if sampler == "ddim":
        return DDIMScheduler.from_config(config)
    if sampler == "euler":
        spacing = {"timestep_spacing": "linspace"} if karras else {}
        return EulerDiscreteScheduler.from_config(config, **karras, **spacing)
    if sampler == "dpmpp2m":
        return DPMSolverMultistepScheduler.from_config(
            config, algorithm_type="dpmsolver++", solver_order=2, **karras
        )
    raise ValueError(f"unknown sampler {sampler}")


def schedule_timesteps(sampler: str, schedule: str, steps: int, config: Any) -> list[int] | None:
    """The timesteps of A1111's "Simple" schedule (every (T/steps)-th of the T training steps,
    from the last, rounded down), or None when the scheduler places them itself."""
    if effective_schedule(sampler, schedule) != "simple":
        return None
    total = int(config.num_train_timesteps)
    stride = total / steps
    return [total - 1 - int(x * stride) for x in range(steps)]


def pipeline_with_scheduler(pipe: Any, scheduler: SchedulerMixin) -> Any:
    """A pipeline of the same class sharing `pipe`'s components and settings (such as SDXL's
    force_zeros_for_empty_prompt), with `scheduler` instead of its own."""
    components = dict(pipe.components)
    components["scheduler"] = scheduler
    options = {k: v for k, v in pipe.config.items() if k not in components and k[0] != "_"}
    built = type(pipe)(**components, **options)
    built.set_progress_bar_config(disable=True)
    return built


def pipeline_for(model: BaseModel, sampler: str, schedule: str = "model") -> Any:
    """A pipeline sharing the model's components, with its own scheduler (no copies), built
    once per model, sampler and schedule: building one costs ~7 ms, ~1 % of a small render."""
    built = _PIPELINES.setdefault(model.pipe, {})
    key = f"{sampler}/{effective_schedule(sampler, schedule)}"
    if key not in built:
        # Every call's set_timesteps resets the scheduler's state.
        scheduler = make_scheduler(sampler, model.pipe.scheduler.config, schedule)
        built[key] = pipeline_with_scheduler(model.pipe, scheduler)
    return built[key]


@torch.no_grad()
def decode_latents(model: BaseModel, latents: torch.Tensor) -> list[Image.Image]:
    """Decode latents with the fp32 VAE, exactly as the diffusers pipeline does."""
    pipe = model.pipe
    vae = pipe.vae
    images = vae.decode(latents.to(vae.dtype) / vae.config.scaling_factor, return_dict=False)[0]
    return pipe.image_processor.postprocess(
        images, output_type="pil", do_denormalize=[True] * len(images)
    )


def apply_attributes(model: BaseModel, applied: Sequence[tuple[Attribute, float]]) -> list[str]:
    """Merge the attributes at their intensities into the model; returns compatibility
    warnings. Two applied (λ ≠ 0) with one word are refused before anything is merged: a
    prompt could not say which goes where, and their learned words would add up."""
    check_distinct_words([(attribute.meta, lam) for attribute, lam in applied])
    warnings: list[str] = []
    for attribute, _ in applied:
        warnings += check_compatible(attribute, model)
    shifts = [(a.shifts, lam) for a, lam in applied if a.shifts]
    model.merger.apply([(a.factors, lam) for a, lam in applied], shifts)
    return warnings


def render(
    model: BaseModel,
    settings: RenderSettings,
    applied: Sequence[tuple[Attribute, float]] = (),
    progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
) -> list[RenderedImage]:
    """Render one image per seed with `applied` attributes merged at their intensities."""
    cancel = cancel or CancelToken()
    use_job_threads(model.placement.device)
    settings.validate(multiple_of=8)
    if settings.guidance is None:
        settings = replace(settings, guidance=model.guidance)
    width = settings.width or model.resolution
    height = settings.height or model.resolution
    warnings = apply_attributes(model, applied)
    pipe = pipeline_for(model, settings.sampler, settings.schedule)
    timesteps = schedule_timesteps(
        settings.sampler, settings.schedule, settings.steps, pipe.scheduler.config
    )
    total = settings.steps * len(settings.seeds)
    clock = StepClock(total)
    done = 0

    def on_step(_pipe: Any, step: int, _t: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        cancel.check()
        progress(clock.report("rendering", done + step + 1))
        return kwargs

    results = []
    for seed in settings.seeds:
        cancel.check()
        with out_of_memory_as_error("rendering", OOM_ADVICE):
            latents = pipe(
                settings.prompt,
                negative_prompt=settings.negative_prompt or None,
                height=height,
                width=width,
                num_inference_steps=settings.steps,
                timesteps=timesteps,
                guidance_scale=settings.guidance,
                generator=generator_for(model.placement.device, seed),
                output_type="latent",
                callback_on_step_end=on_step,
            ).images
            image = decode_latents(model, latents)[0]
        done += settings.steps
        if not np.asarray(image).any():
            warnings.append(f"seed {seed} gave a black image: the precision may be too low")
        parameters, record = _metadata(model, settings, applied, seed, width, height, pipe)
        results.append(RenderedImage(image, seed, parameters, record, list(warnings)))
    progress(Progress("rendering", total, total, elapsed_s=clock.report("done", total).elapsed_s))
    return results


def a1111_schedule_label(sampler: str, schedule: str, scheduler: Any) -> str | None:
    """The "Schedule type" A1111/Forge re-render with: the chosen schedule's name, or for the
    model's own config the A1111 schedule nearest to the sigmas `scheduler` (after sampling)
    used; None for DDIM, which has no schedule in A1111 either."""
    if sampler == "ddim":
        return None
    effective = effective_schedule(sampler, schedule)
    if effective in SCHEDULE_LABELS:
        return SCHEDULE_LABELS[effective]
    return nearest_a1111_schedule(scheduler.sigmas.tolist(), scheduler.alphas_cumprod.tolist())


def _metadata(
    model: BaseModel,
    settings: RenderSettings,
    applied: Sequence[tuple[Attribute, float]],
    seed: int,
    width: int,
    height: int,
    pipe: Any,
) -> tuple[str, dict[str, Any]]:
    schedule = a1111_schedule_label(settings.sampler, settings.schedule, pipe.scheduler)
    pairs: list[tuple[str, object]] = [
        ("Steps", settings.steps),
        ("Sampler", SAMPLER_LABELS[settings.sampler]),
        *([("Schedule type", schedule)] if schedule else []),
        ("CFG scale", settings.guidance),
        ("Seed", seed),
        ("Size", f"{width}x{height}"),
        # A1111 looks the model up by its file's SHA-256 (and loads another one when it does
        # not know the hash), so a diffusers folder, which has no such file, writes none.
        *([("Model hash", model.file_sha256[:10])] if model.file_sha256 else []),
        ("Model", model.name),
        # A1111's own setting for zero-SNR models, so that it samples them the same way.
        *([("Noise Schedule", "Zero Terminal SNR")] if model.prediction.zero_terminal_snr else []),
    ]
    for index, (attribute, lam) in enumerate(applied, start=1):
        suffix = "" if len(applied) == 1 else f" {index}"
        pairs.append((f"OSTAF attribute{suffix}", attribute.meta.name))
        pairs.append((f"OSTAF word{suffix}", attribute_word(attribute.meta)))
        pairs.append((f"OSTAF lambda{suffix}", f"{lam:g}"))
    pairs.append(("Version", f"OSTAF {__version__}"))
    record = {
        "format_version": 1,
        "prompt": settings.prompt,
        "negative_prompt": settings.negative_prompt,
        "seed": seed,
        "steps": settings.steps,
        "guidance": settings.guidance,
        "sampler": settings.sampler,
        "schedule": settings.effective_schedule,
        "width": width,
        "height": height,
        "model": {
            "name": model.name,
            "source": model.source,
            "fingerprint": model.fingerprint,  # our U-Net fingerprint, what attributes check
            "sha256": model.file_sha256,
        },
        "attributes": [_attribute_record(a, lam) for a, lam in applied],
    }
    return a1111_parameters(settings.prompt, settings.negative_prompt, pairs), record


def _attribute_record(attribute: Attribute, lam: float) -> dict[str, Any]:
    """How a PNG's record names an applied attribute: by content, its library file (a word
    given later changes the content, not the file) and its word."""
    record: dict[str, Any] = {
        "name": attribute.meta.name,
        "kind": str(attribute.meta.kind),
        "intensity": lam,
        "content_hash": attribute.content_hash(),
        "word": attribute_word(attribute.meta),
    }
    if attribute.source is not None and ATTRIBUTE_FILE_NAME.fullmatch(attribute.source.name):
        record["file"] = attribute.source.stem
    return record

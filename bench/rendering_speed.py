"""Rendering speed: the project's render path with none, one and two attributes merged at λ,
against a plain diffusers StableDiffusionPipeline with no attribute (same components,
scheduler, steps, size, guidance and batch of one), in alternating rounds."""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from diffusers import StableDiffusionPipeline

from bench.architectures import build_model, precision_name
from bench.plans import Case, Plan
from bench.report import Report, Row
from bench.timing import Step, Variant, synchronize, time_variants
from bench.tuning_speed import device_label
from ostaf.images import load_reference
from ostaf.library.attribute_file import Attribute
from ostaf.method.regions import AttributeKind
from ostaf.method.tuning import tune
from ostaf.models.base_model import BaseModel
from ostaf.models.devices import generator_for
from ostaf.render.rendering import apply_attributes, decode_latents, make_scheduler, render
from ostaf.requests import RenderSettings, TuningSettings
from ostaf.world.demo_reference import demo_reference

PROMPT = "a photo of a sks vase on a table"
SAMPLER = "dpmpp2m"
GUIDANCE = 7.5
SEED = 1
# The window's quick λ preview: PREVIEW_STEPS steps at the native size, started
# PREVIEW_DEBOUNCE_MS after the slider stops (ostaf_desktop/viewmodels/rendering.py; a desktop
# test keeps these equal).
PREVIEW_STEPS = 10
PREVIEW_DEBOUNCE_MS = 300


def render_rows(plan: Plan, report: Report) -> None:
    for case in plan.render_cases:
        with report.guard(f"{case.arch}@{case.resolution}"):
            model = build_model(case.arch, plan.placement)
            look, shape = attributes_for(model)
            _compare(plan, case, model, look, shape, report)
            _lambda_change(plan, case, model, look, report)
            _preview_latency(plan, case, model, look, report)


def attributes_for(model: BaseModel) -> tuple[Attribute, Attribute]:
    """An appearance and a shape attribute for `model` (a few steps: timing needs no quality)."""
    with tempfile.TemporaryDirectory() as folder:
        path = demo_reference(Path(folder) / "reference.png")
        reference = load_reference(path, model.resolution)
    found = []
    for kind in (AttributeKind.APPEARANCE, AttributeKind.SHAPE):
        settings = TuningSettings(kind=kind, steps=3, learning_rate=1e-2)
        found.append(tune(model, reference, settings, name=f"bench {kind}").attribute)
    return found[0], found[1]


def _compare(
    plan: Plan, case: Case, model: BaseModel, look: Attribute, shape: Attribute, report: Report
) -> None:
    size = case.resolution
    settings = RenderSettings(
        prompt=PROMPT,
        seeds=[SEED],
        steps=plan.render_steps,
        guidance=GUIDANCE,
        width=size,
        height=size,
        sampler=SAMPLER,
    )
    components = dict(model.pipe.components)
    components["scheduler"] = make_scheduler(
        SAMPLER, model.pipe.scheduler.config, settings.schedule
    )
    plain = StableDiffusionPipeline(**components)
    plain.set_progress_bar_config(disable=True)
    device = model.placement.device

    def plain_image() -> object:
        # diffusers' pipeline does not cast bf16/fp16 latents for an fp32 VAE: when the
        # dtypes differ it returns latents and the same VAE decodes them, as render() does.
        cast = model.unet.dtype != model.pipe.vae.dtype
        output = plain(
            PROMPT,
            num_inference_steps=plan.render_steps,
            guidance_scale=GUIDANCE,
            height=size,
            width=size,
            generator=generator_for(device, SEED),
            output_type="latent" if cast else "pil",
        ).images
        return decode_latents(model, output) if cast else output

    @contextmanager
    def plain_pipeline() -> Iterator[Step]:
        model.merger.restore()  # the plain pipeline runs the base weights
        yield plain_image

    @contextmanager
    def ours(applied: list[tuple[Attribute, float]]) -> Iterator[Step]:
        yield lambda: render(model, settings, applied)

    variants: dict[str, Variant] = {
        "plain": plain_pipeline,
        "one": lambda: ours([(look, 0.8)]),
        "two": lambda: ours([(look, 0.8), (shape, 1.2)]),
    }
    if plan.mode != "quick":  # the project's path with nothing applied: only where time allows
        variants["none"] = lambda: ours([])
    s = case.scale
    timings = time_variants(variants, device, s.rounds, s.warmup, s.calls, cpu_memory=False)
    labels = {
        "none": "render(), no attribute",
        "one": "render(), 1 attribute (appearance λ=0.8)",
        "two": "render(), 2 attributes (appearance λ=0.8 + shape λ=1.2)",
    }
    plain_rate = 1 / timings.median("plain")
    for key, label in labels.items():
        if key not in variants:
            continue
        rate = 1 / timings.median(key)
        report.add(
            Row(
                section="rendering",
                name=label,
                command=plan.command,
                device=device_label(plan),
                precision=precision_name(model.placement.dtype),
                model=case.arch,
                resolution=size,
                steps=plan.render_steps,
                value=rate,
                unit="images/s",
                baseline="plain diffusers StableDiffusionPipeline, no attribute",
                baseline_value=plain_rate,
                ratio=timings.ratio("plain", key),  # per round: plain s / ours s
                peak_memory_gib=timings.peak_gib(key),
                baseline_peak_memory_gib=timings.peak_gib("plain"),
                notes=(
                    f"{SAMPLER}, guidance {GUIDANCE}, batch 1, one render() call per image "
                    f"(attributes re-merged every call); {s.rounds} rounds × {s.calls} images"
                ),
                extra={
                    "rounds_s": timings.seconds[key],
                    "plain_rounds_s": timings.seconds["plain"],
                },
            )
        )


def _lambda_change(
    plan: Plan, case: Case, model: BaseModel, look: Attribute, report: Report
) -> None:
    """Time a λ change (re-merge) and check it reloads nothing."""
    device = model.placement.device
    unet = model.unet
    apply_attributes(model, [(look, 0.8)])
    storages = {name: p.data_ptr() for name, p in unet.named_parameters()}
    times = []
    for lam in (1.3, 0.5, 1.1, 0.9, 1.6):
        synchronize(device)
        start = time.perf_counter()
        apply_attributes(model, [(look, lam)])
        synchronize(device)
        times.append(time.perf_counter() - start)
    same_objects = model.unet is unet and all(
        p.data_ptr() == storages[name] for name, p in unet.named_parameters()
    )
    model.merger.restore()
    report.add(
        Row(
            section="rendering",
            name="λ change (re-merge of one attribute, no reload)",
            command=plan.command,
            device=device_label(plan),
            precision=precision_name(model.placement.dtype),
            model=case.arch,
            resolution=case.resolution,
            steps=len(times),
            value=statistics.median(times) * 1000,
            unit="ms",
            notes=(
                f"{len(look.factors)} target layers re-merged; same U-Net object and every "
                f"parameter kept its storage: {same_objects}"
            ),
            extra={"no_reload": same_objects},
        )
    )


def _preview_latency(
    plan: Plan, case: Case, model: BaseModel, look: Attribute, report: Report
) -> None:
    """From a λ change to the quick preview's image: the re-merge and a PREVIEW_STEPS-step
    render at the native size, as the window's preview job runs them (model loaded)."""
    device = model.placement.device
    settings = RenderSettings(prompt=PROMPT, seeds=[SEED], steps=PREVIEW_STEPS)
    render(model, settings, [(look, 0.8)])  # the pipeline warm, as after the first preview
    times = []
    for lam in (1.3, 0.5, 1.1, 0.9, 1.6):
        synchronize(device)
        start = time.perf_counter()
        render(model, settings, [(look, lam)])
        synchronize(device)
        times.append(time.perf_counter() - start)
    model.merger.restore()
    report.add(
        Row(
            section="rendering",
            name="λ preview after a slider move (re-merge + quick render, model loaded)",
            command=plan.command,
            device=device_label(plan),
            precision=precision_name(model.placement.dtype),
            model=case.arch,
            resolution=model.resolution,
            steps=PREVIEW_STEPS,
            value=statistics.median(times) * 1000,
            unit="ms",
            notes=(
                f"median of {len(times)}: render() of {PREVIEW_STEPS} steps "
                f"({settings.sampler}, guidance {settings.guidance}) at "
                f"{model.resolution} px with one attribute re-merged at a new λ; the window "
                f"starts it {PREVIEW_DEBOUNCE_MS} ms after the slider stops"
            ),
            extra={"times_s": times, "debounce_ms": PREVIEW_DEBOUNCE_MS},
        )
    )

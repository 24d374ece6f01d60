"""Before/after of the rendering path's optimisations."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from bench.ablations import DECODER, Ablations
from bench.architectures import precision_name
from bench.timing import Step, time_variants
from ostaf.method.hypernetwork import Hypernetwork, HypernetworkConfig
from ostaf.method.offsets import offset_layers, set_terms, target_layers
from ostaf.render.rendering import _PIPELINES, decode_latents, pipeline_for


def merge_reuse(ctx: Ablations) -> None:
    """Rendering again with the same attributes merges nothing; 'before' re-merges."""
    paths = DECODER.select(n for n, _ in ctx.unet.named_modules())
    hyper = Hypernetwork(target_layers(ctx.unet, paths), HypernetworkConfig())
    with torch.no_grad():
        factors = {p: (a.detach().clone(), b.detach().clone()) for p, (a, b) in hyper().items()}
    merger = ctx.model.merger

    @contextmanager
    def reuse() -> Iterator[Step]:
        yield lambda: merger.apply([(factors, 0.8)])

    @contextmanager
    def remerge() -> Iterator[Step]:
        def step() -> None:
            merger.restore()
            merger.apply([(factors, 0.8)])

        yield step

    s = ctx.case.scale
    try:
        timings = time_variants(
            {"re-used": reuse, "re-merged": remerge}, ctx.placement.device, s.rounds, 1, 20
        )
    finally:
        merger.restore()
    ctx.row(
        "unchanged attributes are not merged again between renders",
        timings,
        "re-used",
        "re-merged",
        unit="s/render call",
        notes=f"{len(factors)} target layers; per render() call, before sampling",
    )


def pipeline_reuse(ctx: Ablations) -> None:
    """The render pipeline (and its scheduler) built once per model and sampler vs per call."""
    model = ctx.model

    @contextmanager
    def reused() -> Iterator[Step]:
        yield lambda: pipeline_for(model, "dpmpp2m")

    @contextmanager
    def rebuilt() -> Iterator[Step]:
        def step() -> object:
            _PIPELINES.pop(model.pipe, None)
            return pipeline_for(model, "dpmpp2m")

        yield step

    s = ctx.case.scale
    timings = time_variants(
        {"re-used": reused, "built per call": rebuilt}, ctx.placement.device, s.rounds, 1, 20
    )
    ctx.row(
        "render pipeline built once per model and sampler",
        timings,
        "re-used",
        "built per call",
        unit="s/render call",
    )


def merged_rendering(ctx: Ablations) -> None:
    """Attributes merged into the weights vs applied by wrappers at every layer call."""
    model = ctx.model
    paths = DECODER.select(n for n, _ in ctx.unet.named_modules())
    hyper = Hypernetwork(target_layers(ctx.unet, paths), HypernetworkConfig())
    for head in hyper.up_heads.values():
        assert isinstance(head, torch.nn.Linear)
        torch.nn.init.normal_(head.weight, std=0.01)
    with torch.no_grad():
        factors = {p: (a.detach().clone(), b.detach().clone()) for p, (a, b) in hyper().items()}
    pipe = pipeline_for(model, "dpmpp2m")
    steps = ctx.plan.render_steps

    def image() -> object:
        latents = pipe(
            "a sks vase",
            num_inference_steps=steps,
            generator=torch.Generator("cpu").manual_seed(0),
            output_type="latent",
        ).images
        return decode_latents(model, latents)

    @contextmanager
    def merged() -> Iterator[Step]:
        model.merger.apply([(factors, 1.0)])
        try:
            yield image
        finally:
            model.merger.restore()

    @contextmanager
    def wrapped() -> Iterator[Step]:
        with offset_layers(ctx.unet, paths) as wrappers:
            set_terms(wrappers, [(factors, 1.0)], ctx.placement.dtype)
            yield image

    s = ctx.case.scale
    timings = time_variants(
        {"merged": merged, "wrapped": wrapped}, ctx.placement.device, s.rounds, 1, 1
    )
    ctx.row(
        "attributes merged into the weights for rendering",
        timings,
        "merged",
        "wrapped",
        unit="images/s",
        inverse=True,
        notes=f"{steps} dpmpp2m steps, batch 1; 'before' adds A(Bx) in every target layer",
    )


def warm_service(ctx: Ablations) -> None:
    """The service keeps the model loaded between jobs; 'before' loads it for every job."""
    if ctx.case.arch != "demo":
        ctx.not_measured(
            "pipeline kept warm between jobs",
            "measured on the demo model only (random SD weights have no load path)",
        )
        return
    from ostaf.requests import ModelChoice, RenderJob, RenderSettings
    from ostaf.service import OstafService

    choice = ModelChoice("demo", ctx.placement.device.type, precision_name(ctx.placement.dtype))
    job = RenderJob(RenderSettings(prompt="a sks vase", steps=ctx.plan.render_steps), None, choice)
    warm = OstafService()
    warm.render(job)

    @contextmanager
    def warm_job() -> Iterator[Step]:
        yield lambda: warm.render(job)

    @contextmanager
    def cold_job() -> Iterator[Step]:
        yield lambda: OstafService().render(job)

    s = ctx.case.scale
    timings = time_variants(
        {"warm": warm_job, "cold": cold_job}, ctx.placement.device, s.rounds, 0, 1
    )
    ctx.row("pipeline kept warm between jobs (render job)", timings, "warm", "cold", unit="s/job")

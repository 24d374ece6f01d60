"""The shared context of the before/after measurements ("ablations"): one model, one
decoder-region tuning step to vary, and how a row is reported."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from bench.architectures import build_model, precision_name
from bench.plans import Plan
from bench.report import Report, Row
from bench.timing import Step, Timings, Variant, time_variants
from bench.tuning_speed import device_label
from bench.tuning_steps import ostaf_step, random_batch
from ostaf.method.regions import REGION_BY_KIND, AttributeKind

DECODER = REGION_BY_KIND[AttributeKind.APPEARANCE]
ENCODER = REGION_BY_KIND[AttributeKind.SHAPE]


class Ablations:
    """Runs each before/after pair on one model and adds a row per pair."""

    def __init__(self, plan: Plan, report: Report) -> None:
        self.plan = plan
        self.report = report
        self.case = plan.optimisation_case
        self.placement = plan.placement
        self.model = build_model(self.case.arch, self.placement)
        self.unet = self.model.unet
        self.scheduler_config = dict(self.model.pipe.scheduler.config)
        self.latent = self.case.resolution // int(self.model.pipe.vae_scale_factor)
        self.batch = random_batch(self.unet, self.placement, self.latent, views=2)

    def ostaf(self, **options: Any) -> AbstractContextManager[Step]:
        """The project's decoder-region tuning step on this model."""
        return ostaf_step(
            self.unet, self.placement, self.scheduler_config, self.batch, DECODER, **options
        )

    def step(self, **options: Any) -> Variant:
        """That step as a variant for `time`."""
        return lambda: self.ostaf(**options)

    def row(
        self,
        name: str,
        timings: Timings,
        after: str,
        before: str,
        unit: str = "s/step",
        notes: str = "",
        inverse: bool = False,
    ) -> None:
        """Report `after` against `before` (a rate such as images/s when `inverse`)."""
        value, base = timings.median(after), timings.median(before)
        ratio = timings.ratio(after, before)
        if inverse:  # a rate: images/s
            value, base, ratio = 1 / value, 1 / base, timings.ratio(before, after)
        self.report.add(
            Row(
                section="optimisation",
                name=name,
                command=self.plan.command,
                device=device_label(self.plan),
                precision=precision_name(self.placement.dtype),
                model=self.case.arch,
                resolution=self.case.resolution,
                steps=self.case.scale.calls,
                value=value,
                unit=unit,
                baseline=before,
                baseline_value=base,
                ratio=ratio,
                peak_memory_gib=timings.peak_gib(after),
                baseline_peak_memory_gib=timings.peak_gib(before),
                notes=notes,
                extra={
                    "rounds_s": timings.seconds[after],
                    "before_rounds_s": timings.seconds[before],
                },
            )
        )

    def not_measured(self, name: str, why: str) -> None:
        """A row that says why there is no figure (e.g. not yet measured on a GPU)."""
        self.report.add(
            Row(
                section="optimisation",
                name=name,
                command=self.plan.command,
                device=device_label(self.plan),
                precision=precision_name(self.placement.dtype),
                model=self.case.arch,
                resolution=self.case.resolution,
                steps=0,
                value=float("nan"),
                unit="",
                notes=why,
            )
        )

    def time(self, variants: dict[str, Variant], memory: bool = False) -> Timings:
        """Alternating rounds of `variants` at this model's scale."""
        s = self.case.scale
        return time_variants(
            variants, self.placement.device, s.rounds, s.warmup, s.calls, memory and s.cpu_memory
        )

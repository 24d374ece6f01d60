"""What each optimisation gains: the project's way ("after") against the way it avoids
("before"), timed in alternating rounds in the same process. Rows whose 'before' only
exists on a GPU say so instead of showing a figure."""

from __future__ import annotations

from bench import device_ablations, rendering_ablations, tuning_ablations
from bench.ablations import Ablations
from bench.plans import Plan
from bench.report import Report

MEASURED = (
    tuning_ablations.cached_inputs,
    tuning_ablations.batched_timesteps,
    tuning_ablations.sdpa,
    tuning_ablations.backward_scope,
    tuning_ablations.checkpointing,
    tuning_ablations.hypernetwork_share,
    tuning_ablations.fused_adamw,
    tuning_ablations.fused_offsets,
    tuning_ablations.batched_heads,
    rendering_ablations.merged_rendering,
    rendering_ablations.merge_reuse,
    rendering_ablations.pipeline_reuse,
    rendering_ablations.warm_service,
    device_ablations.cpu_threads,
    device_ablations.precision,
)


def optimisation_rows(plan: Plan, report: Report) -> None:
    ablations = Ablations(plan, report)
    for measure in MEASURED:
        with report.guard(measure.__name__):
            measure(ablations)


def compile_rows(plan: Plan, report: Report) -> None:
    """torch.compile and CUDA graphs, a section of its own: compiling takes minutes."""
    device_ablations.compiled(Ablations(plan, report))

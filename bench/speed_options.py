"""Each speed option of the tuning loop (ostaf/method/speed.py) against the plain loop
(`SpeedOptions.plain()`), measured alone and all together, in real `tune()` runs of the same
model in the same process, in alternating rounds.

A variant's time per step is taken from `tune()` itself: from the start of the first step
after its warm-up to the moment `tune()` returns, over the steps in between, so that what a
loop does between steps (reading the loss back, checking it) is counted. Runs with previews
compare inline previews with background ones.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from bench.architectures import build_model, precision_name
from bench.instrument import watched_run
from bench.plans import Case, Plan
from bench.report import Report, Row
from bench.timing import Step, synchronize, time_variants
from bench.tuning_speed import device_label
from ostaf.images import Reference, load_reference
from ostaf.method.regions import AttributeKind
from ostaf.method.speed import SpeedOptions, lean_attention, sdpa_attention
from ostaf.method.tuning import tune
from ostaf.models.base_model import BaseModel
from ostaf.requests import TuningSettings
from ostaf.world.demo_reference import demo_reference

PLAIN = SpeedOptions.plain()
PREVIEW_EVERY = 10  # previews in the preview variants: often, so their cost shows
COMPILE_NEEDS_S = 240.0  # leave torch.compile out when less time than this is left


@dataclass(frozen=True)
class Variant:
    """One way of running the loop: its speed options and whether it previews."""

    name: str
    speed: SpeedOptions
    previews: bool = False
    note: str = ""


def variants(device: torch.device) -> list[Variant]:
    """The plain loop, each option alone, the defaults, and the opt-in ones that can run."""

    def alone(**changes: object) -> SpeedOptions:
        return replace(PLAIN, **changes)  # type: ignore[arg-type]

    found = [
        Variant("plain loop (every option off)", PLAIN),
        Variant("defaults", SpeedOptions()),
        Variant("fused AdamW alone", alone(fused_optimizer=True)),
        Variant("loss read back every 0.25 s alone", alone(sync_interval_s=0.25)),
        Variant("lean attention calls alone", alone(lean_attention=True)),
        Variant("channels-last U-Net alone", alone(channels_last=True)),
        Variant(
            "previews inline (plain loop)", PLAIN, previews=True, note=f"every {PREVIEW_EVERY}"
        ),
        Variant(
            "previews in the background (plain loop)",
            alone(background_previews=True),
            previews=True,
            note=f"every {PREVIEW_EVERY}",
        ),
    ]
    if device.type == "cuda":
        found += [
            Variant("CUDA graphs alone", alone(cuda_graphs=True)),
            Variant("defaults + CUDA graphs", SpeedOptions(cuda_graphs=True)),
        ]
    return found


def speed_rows(plan: Plan, report: Report) -> None:
    """Time every variant on the plan's speed case and report each against the plain loop."""
    case = plan.speed_case
    if case is None:
        return
    model = build_model(case.arch, plan.placement)
    with tempfile.TemporaryDirectory() as folder:
        reference = load_reference(demo_reference(Path(folder) / "ref.png"), model.resolution)
    chosen = variants(plan.placement.device)
    first_runs: dict[str, float] = {}
    if _compile_fits(plan, report, case):
        chosen.append(
            Variant("torch.compile of the U-Net (inductor)", SpeedOptions(compile_unet=True))
        )
    runner = _Runner(model, reference, case)
    for variant in chosen:  # warm-up (and, for compile, compiling) before the rounds
        start = time.perf_counter()
        runner.run(variant, steps=2)
        first_runs[variant.name] = time.perf_counter() - start
    seconds: dict[str, list[float]] = {v.name: [] for v in chosen}
    for index in range(case.scale.rounds):
        shift = index % len(chosen)
        for variant in chosen[shift:] + chosen[:shift]:
            seconds[variant.name].append(runner.run(variant))
    base = seconds[chosen[0].name]
    inline = seconds.get("previews inline (plain loop)")
    for variant in chosen:
        mine = seconds[variant.name]
        against, label = (
            (inline, "previews inline")
            if variant.name.startswith("previews in the background") and inline
            else (base, "plain loop")
        )
        ratio = statistics.median(a / b for a, b in zip(mine, against, strict=True))
        note = variant.note
        if variant.speed.compile_unet:
            note = f"first 2-step run incl. compiling: {first_runs[variant.name]:.1f} s"
        said = sorted(runner.notes.get(variant.name, ()))
        if said:
            note = f"{note}; the loop's notes: {' | '.join(said)}".lstrip("; ")
        report.add(
            Row(
                section="speed",
                name=variant.name,
                command=plan.command,
                device=device_label(plan),
                precision=precision_name(plan.placement.dtype),
                model=case.arch,
                resolution=case.resolution,
                steps=case.scale.calls,
                value=statistics.median(mine),
                unit="s/step",
                baseline=label,
                baseline_value=statistics.median(against),
                ratio=ratio,
                notes=(
                    f"tune(), {case.scale.calls} steps after {case.scale.warmup} warm-up "
                    f"steps, {case.scale.rounds} alternating rounds; {note}".rstrip("; ")
                ),
                extra={"rounds_s": mine, "baseline_rounds_s": against},
            )
        )
    _sdpa_row(plan, case, model, report)
    _lean_forward_row(plan, case, model, report)


class _Runner:
    """Runs `tune()` of one case and returns its seconds per step after the warm-up."""

    def __init__(self, model: BaseModel, reference: Reference, case: Case) -> None:
        self.model, self.reference, self.case = model, reference, case
        self.notes: dict[str, set[str]] = {}

    def run(self, variant: Variant, steps: int = 0) -> float:
        warm, calls = self.case.scale.warmup, self.case.scale.calls
        total = steps or warm + calls
        settings = TuningSettings.for_kind(
            AttributeKind(self.case.kinds[0]),
            steps=total,
            preview_every=PREVIEW_EVERY if variant.previews else 0,
        )
        device = self.model.placement.device
        first = min(warm, total - 1) + 1
        with watched_run(device, _synchronise_at(first, device)) as clock:
            result = tune(self.model, self.reference, settings, speed=variant.speed)
            synchronize(device)
            end = time.perf_counter()
        # What the loop said about itself (a compile or capture that fell back, its time).
        known = self.notes.setdefault(variant.name, set())
        known.update(n for n in result.notes if not known or "failed" in n)
        return clock.per_step(first, end)


def _synchronise_at(step: int, device: torch.device) -> Callable[[int], nullcontext[None]]:
    """An `around` for watched_run: a device sync as step `step` starts (the start of the
    timed steps is then the device's as well as the host's)."""

    def around(index: int) -> nullcontext[None]:
        if index == step:
            synchronize(device)
        return nullcontext()

    return around


def _compile_fits(plan: Plan, report: Report, case: Case) -> bool:
    """Whether torch.compile is measured: on a GPU, with enough time left."""
    device = plan.placement.device
    why = ""
    if device.type != "cuda":
        why = (
            "not measured on a CPU: compiling the demo U-Net with inductor took 296 s on "
            "this 2-core machine (tests check the compiled loop with aot_eager)"
        )
    elif plan.seconds_left() < COMPILE_NEEDS_S:
        why = f"left out: {plan.seconds_left():.0f} s left of the time limit"
    if why:
        report.add(_note_row(plan, case, "torch.compile of the U-Net (inductor)", why))
    return not why


def _sdpa_row(plan: Plan, case: Case, model: BaseModel, report: Report) -> None:
    """Which attention the loop runs: how many layers diffusers left on its classic
    processor (the sdpa option switches those to PyTorch's SDPA for the run)."""
    with sdpa_attention(model.unet) as changed:
        total = len(model.unet.attn_processors)
    kinds = sorted({type(p).__name__ for p in model.unet.attn_processors.values()})
    report.add(
        _note_row(
            plan,
            case,
            "SDPA attention in use",
            f"{total - changed} of {total} attention layers already on PyTorch SDPA "
            f"({', '.join(kinds)}); the sdpa option changed {changed}",
        )
    )


def _note_row(plan: Plan, case: Case, name: str, why: str) -> Row:
    return Row(
        section="speed",
        name=name,
        command=plan.command,
        device=device_label(plan),
        precision=precision_name(plan.placement.dtype),
        model=case.arch,
        resolution=case.resolution,
        steps=0,
        value=float("nan"),
        unit="",
        notes=why,
    )


def _lean_forward_row(plan: Plan, case: Case, model: BaseModel, report: Report) -> None:
    """The U-Net's forward alone (one sample, no gradients) with the lean attention calls
    against diffusers' own path: the per-call cost the option removes, without the rest of
    a step around it."""
    unet, device = model.unet, model.placement.device
    latent = model.resolution // model.vae_scale_factor
    config: Any = unet.config
    dtype = model.placement.dtype
    sample = torch.randn(1, config.in_channels, latent, latent, device=device, dtype=dtype)
    text = torch.randn(1, 77, config.cross_attention_dim, device=device, dtype=dtype)
    added = {
        k: torch.zeros(1, w, device=device, dtype=dtype)
        for k, w in model.family.added_inputs(config).items()
    }
    timestep = torch.tensor([500], device=device)

    def forward() -> object:
        return unet(sample, timestep, encoder_hidden_states=text, added_cond_kwargs=added)

    @contextmanager
    def lean() -> Iterator[Step]:
        with lean_attention(unet):
            yield forward

    @contextmanager
    def diffusers_path() -> Iterator[Step]:
        yield forward

    s = case.scale
    with torch.no_grad():
        timings = time_variants(
            {"lean": lean, "diffusers": diffusers_path}, device, 3 * s.rounds, 2, 10
        )
    attention = sum(1 for m in unet.modules() if type(m).__name__ == "Attention")
    report.add(
        Row(
            section="speed",
            name="U-Net forward alone: lean attention calls vs diffusers' path",
            command=plan.command,
            device=device_label(plan),
            precision=precision_name(dtype),
            model=case.arch,
            resolution=case.resolution,
            steps=10,
            value=timings.median("lean"),
            unit="s/forward",
            baseline="diffusers' Attention.forward (signature check per call)",
            baseline_value=timings.median("diffusers"),
            ratio=timings.ratio("lean", "diffusers"),
            notes=f"one sample, no gradients, {attention} attention layers; "
            f"{3 * s.rounds} alternating rounds of 10 forwards",
            extra={"rounds_s": timings.seconds["lean"]},
        )
    )

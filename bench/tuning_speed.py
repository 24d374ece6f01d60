"""Tuning speed: per step (OSTAF vs LoRA baselines A and B, same process, alternating
rounds) and per run (the default preset end to end)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from contextlib import AbstractContextManager, nullcontext
from functools import partial
from pathlib import Path
from typing import Any

import torch

from bench.architectures import added_inputs, build_model, build_unet, precision_name
from bench.instrument import watched_run
from bench.plans import Case, Plan
from bench.report import Report, Row
from bench.timing import Timings, Variant, device_peak, synchronize, time_calls, time_variants
from bench.tuning_steps import (
    LORA_TARGET_MODULES,
    hypernetwork_step,
    lora_step,
    ostaf_step,
    random_batch,
    region_paths,
)
from ostaf.errors import Cancelled
from ostaf.images import Reference, load_reference
from ostaf.method.regions import REGION_BY_KIND, AttributeKind, tuning_prompt
from ostaf.method.tuning import TuningResult, _prepare, tune
from ostaf.models.base_model import BaseModel
from ostaf.progress import CancelToken
from ostaf.requests import DEFAULT_PRESET, PRESETS, TuningSettings
from ostaf.world.demo_reference import demo_reference

REGION_LABEL = {
    AttributeKind.APPEARANCE: "decoder (appearance/style)",
    AttributeKind.SHAPE: "encoder (shape)",
}
DEFAULT_STEPS = PRESETS[DEFAULT_PRESET].steps


def device_label(plan: Plan) -> str:
    device = plan.placement.device
    if device.type == "cuda":
        return f"cuda {torch.cuda.get_device_name(device)}"
    if device.type == "cpu":
        return f"cpu, {plan.threads} thread(s) of {os.cpu_count()}"
    return device.type


def step_rows(plan: Plan, report: Report) -> None:
    """OSTAF vs A and B per step, for each case and both regions."""
    for case in plan.step_cases:
        with report.guard(f"{case.arch}@{case.resolution}"):
            _step_case(plan, case, report)


def _step_case(plan: Plan, case: Case, report: Report) -> None:
    placement = plan.placement
    if case.arch == "demo":
        model = build_model(case.arch, placement)
        unet, scheduler_config, scale_factor = (
            model.unet,
            dict(model.pipe.scheduler.config),
            int(model.pipe.vae_scale_factor),
        )
    else:
        unet = build_unet(case.arch, placement)
        scheduler_config, scale_factor = _scheduler_config(case.arch), 8
    latent = case.resolution // scale_factor
    # Both regions and the baselines in one rotation: whole-U-Net LoRA (A) is timed once.
    batch = random_batch(
        unet, placement, latent, views=2, added_inputs=added_inputs(case.arch, unet)
    )
    common = (unet, placement, scheduler_config, batch)
    n = case.timesteps
    variants: dict[str, Variant] = {
        "A": partial(lora_step, *common, LORA_TARGET_MODULES, timesteps=n)
    }
    targets: dict[AttributeKind, int] = {}
    for kind in REGION_LABEL:
        region = REGION_BY_KIND[kind]
        paths = region_paths(unet, region)
        targets[kind] = len(paths)
        variants[f"OSTAF {kind}"] = partial(ostaf_step, *common, region, timesteps=n)
        variants[f"hypernetwork {kind}"] = partial(hypernetwork_step, unet, placement, region)
        variants[f"B {kind}"] = partial(lora_step, *common, paths, timesteps=n)
        if placement.dtype != torch.float32:
            variants[f"B' {kind}"] = partial(
                lora_step, *common, paths, timesteps=n, lora_dtype=placement.dtype
            )
    s = case.scale
    timings = time_variants(variants, placement.device, s.rounds, s.warmup, s.calls, s.cpu_memory)
    for kind in REGION_LABEL:
        baselines = {
            f"B {kind}": "B: peft LoRA, same region",
            "A": "A: peft LoRA, whole U-Net (diffusers DreamBooth-LoRA)",
            f"B' {kind}": "B': peft LoRA, same region, U-Net precision",
        }
        for key, label in baselines.items():
            if key in variants:
                report.add(_step_row(plan, case, kind, timings, key, label, targets[kind]))
        report.add(_fixed_cost_row(plan, case, kind, timings))


def _fixed_cost_row(plan: Plan, case: Case, kind: AttributeKind, timings: Timings) -> Row:
    """The hypernetwork's own cost as a share of a same-region LoRA step at this size."""
    mine, base = f"hypernetwork {kind}", f"B {kind}"
    return Row(
        section="tuning step",
        name=f"hypernetwork's fixed cost (forward, backward, clip, AdamW), {REGION_LABEL[kind]}",
        command=plan.command,
        device=device_label(plan),
        precision=precision_name(plan.placement.dtype),
        model=case.arch,
        resolution=case.resolution,
        steps=case.scale.calls,
        value=timings.median(mine),
        unit="s/step",
        baseline=f"B: peft LoRA step, same region, {case.timesteps} timestep(s)",
        baseline_value=timings.median(base),
        ratio=timings.ratio(mine, base),
        notes="independent of resolution and timesteps: its share falls as the U-Net's work grows",
    )


def _step_row(
    plan: Plan,
    case: Case,
    kind: AttributeKind,
    timings: Timings,
    baseline: str,
    label: str,
    targets: int,
) -> Row:
    ours = f"OSTAF {kind}"
    value = timings.median(ours)
    return Row(
        section="tuning step",
        name=f"OSTAF {REGION_LABEL[kind]}, {targets} target layers",
        command=plan.command,
        device=device_label(plan),
        precision=precision_name(plan.placement.dtype),
        model=case.arch,
        resolution=case.resolution,
        steps=case.scale.calls,
        value=value,
        unit="s/step",
        baseline=label,
        baseline_value=timings.median(baseline),
        ratio=timings.ratio(ours, baseline),
        peak_memory_gib=timings.peak_gib(ours),
        baseline_peak_memory_gib=timings.peak_gib(baseline),
        notes=(
            f"{case.timesteps} timestep(s) per step, {STEP_NOTE}; {case.scale.rounds} "
            f"alternating rounds of {case.scale.warmup} warm-up + {case.scale.calls} timed steps"
        ),
        extra={
            "steps_per_s": 1 / value,
            "baseline_steps_per_s": 1 / timings.median(baseline),
            "rounds_s": timings.seconds[ours],
            "baseline_rounds_s": timings.seconds[baseline],
        },
    )


STEP_NOTE = "rank 4, AdamW, grad clip 1, latents and text embedding computed once"


def _scheduler_config(arch: str) -> dict:
    from diffusers import DDIMScheduler

    from bench.architectures import config_dir

    return dict(DDIMScheduler.load_config(config_dir(arch) / "scheduler"))


def run_rows(plan: Plan, report: Report) -> None:
    """The default preset's whole tuning run, model already loaded (in-process)."""
    for case in plan.run_cases:
        with report.guard(f"{case.arch}@{case.resolution}"):
            _run_case(plan, case, report)


def _run_case(plan: Plan, case: Case, report: Report) -> None:
    model = build_model(case.arch, plan.placement)
    with tempfile.TemporaryDirectory() as folder:
        reference = load_reference(demo_reference(Path(folder) / "reference.png"), model.resolution)
    steps = TuningSettings(kind=AttributeKind.APPEARANCE).steps
    baseline = _baseline_run(model, reference, steps) if plan.run_baseline else None
    for kind in case.kinds:
        with report.guard(f"{case.arch}@{case.resolution} {kind}"):
            _default_run(plan, case, model, reference, AttributeKind(kind), baseline, report)


def _default_run(
    plan: Plan,
    case: Case,
    model: BaseModel,
    reference: Reference,
    kind: AttributeKind,
    baseline: tuple[float, float | None] | None,
    report: Report,
) -> None:
    """One default run, model loaded: its time (stopped at the case's limit and then
    extrapolated from the steps done), peak memory and start-up to the first step."""
    settings = TuningSettings.for_kind(kind)
    device = plan.placement.device
    cancel = CancelToken()
    limit = case.limit_s or float("inf")

    def around(step: int) -> AbstractContextManager[object]:
        if step == 2:
            synchronize(device)  # the first step's end, for the start-up figure
        # Past the limit the run stops before the next step; two steps after the first one
        # give the rate to extrapolate with.
        if step >= 3 and time.perf_counter() - clock.called > limit:
            cancel.cancel()
        return nullcontext()

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    synchronize(device)
    stopped = False
    with watched_run(device, around) as clock:
        try:
            result: TuningResult | None = tune(model, reference, settings, cancel=cancel)
        except Cancelled:
            result, stopped = None, True
        synchronize(device)
        end = time.perf_counter()
    starts = clock.step_starts
    seconds = end - clock.called
    done = len(starts) - 1 if stopped else settings.steps
    note = "tune() end to end incl. encoding the reference"
    if stopped:  # steps after the first at the rate of those done
        rate = (starts[-1] - starts[1]) / (len(starts) - 2)
        seconds = starts[1] - clock.called + rate * (settings.steps - 1)
        note = (
            f"EXTRAPOLATED: stopped after {done} of {settings.steps} steps at the "
            f"{limit:.0f} s limit; start-up and first step measured, then "
            f"{rate * 1000:.1f} ms per step"
        )
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    plan_note = result.memory.describe() if result and result.memory else "no preflight"
    final = f"; final loss {result.losses[-1]:.4f}" if result else ""
    common: dict[str, Any] = {
        "command": plan.command,
        "device": device_label(plan),
        "precision": precision_name(plan.placement.dtype),
        "model": case.arch,
        "resolution": case.resolution,
    }
    report.add(
        Row(
            section="tuning run",
            name=f"default run ({DEFAULT_PRESET}, {settings.steps} steps), "
            f"{REGION_LABEL[kind]}, model loaded",
            **common,
            steps=settings.steps,
            value=seconds,
            unit="s",
            baseline=(
                f"A: peft LoRA on the whole U-Net, {settings.steps} steps, same batch"
                if baseline
                else ""
            ),
            baseline_value=baseline[0] if baseline else None,
            ratio=seconds / baseline[0] if baseline else None,
            peak_memory_gib=peak,
            baseline_peak_memory_gib=baseline[1] if baseline else None,
            notes=f"{note}; preflight: {plan_note}{final}",
            extra={"steps_per_s": settings.steps / seconds, "steps_done": done},
        )
    )
    report.add(
        Row(
            section="tuning run",
            name=f"start-up: Tune to the first step, {REGION_LABEL[kind]}, model loaded",
            **common,
            steps=1,
            value=clock.to_first_step(),
            unit="s",
            notes=(
                "tune() called → first step starts (encoding the reference, memory preflight "
                f"{clock.one_off_s.get('memory preflight', 0.0):.2f} s: traced once per "
                f"model, size and region in a process; hypernetwork); the first step itself "
                f"{starts[1] - starts[0]:.2f} s"
            ),
            extra={"first_step_s": starts[1] - starts[0], "one_off_s": clock.one_off_s},
        )
    )


def _baseline_run(model: BaseModel, reference: Reference, steps: int) -> tuple[float, float | None]:
    """Seconds and peak GiB of a whole-U-Net LoRA loop of the default length, latents cached."""
    placement = model.placement
    prompt = tuning_prompt(AttributeKind.APPEARANCE, "sks")
    with torch.no_grad():
        batch = _prepare(model, reference, prompt, True)
    config = dict(model.pipe.scheduler.config)
    with lora_step(model.unet, placement, config, batch, LORA_TARGET_MODULES) as step:
        if placement.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(placement.device)
        seconds = time_calls(step, steps, placement.device)
        peak = device_peak(placement.device)
    return seconds * steps, None if peak is None else peak / 2**30


def cli_rows(plan: Plan, report: Report) -> None:
    """`python -m ostaf tune … --model demo` with the default preset: wall time from a cold
    start (interpreter, imports, model load) and the process's peak RSS."""
    device = plan.placement.device.type
    with tempfile.TemporaryDirectory() as folder:
        image = demo_reference(Path(folder) / "reference.png")
        out = Path(folder) / "attribute.safetensors"
        status = Path(folder) / "status.txt"
        command = [
            sys.executable,
            "-c",
            PEAK_RSS_WRAPPER,
            str(status),
            "tune",
            str(image),
            "--attribute",
            "appearance",
            "--out",
            str(out),
            "--model",
            "demo",
            "--device",
            device,
        ]
        log = Path(folder) / "stderr.txt"
        with log.open("w") as stderr:  # a file, not a pipe: progress lines never block it
            start = time.perf_counter()
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
            _, exit_status, usage = os.wait4(process.pid, 0)
            seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(exit_status)
        if process.returncode != 0:
            tail = log.read_text(errors="replace").strip()[-400:]
            raise RuntimeError(f"{' '.join(command)} failed: {tail}")
        peak_rss = _vm_hwm(status) or usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    shown = "python -m ostaf tune reference.png --attribute appearance --out a.safetensors "
    report.add(
        Row(
            section="tuning run",
            name=f"CLI default run ({DEFAULT_PRESET}, {DEFAULT_STEPS} steps), cold start",
            command=shown + f"--model demo --device {device}",
            device=device_label(plan),
            precision="fp32" if device == "cpu" else "auto",
            model="demo",
            resolution=64,
            steps=DEFAULT_STEPS,
            value=seconds,
            unit="s",
            peak_memory_gib=peak_rss / 2**30,
            notes="wall time incl. interpreter start, imports and model load; peak memory is "
            "the process's peak RSS; run by " + plan.command,
            extra={"peak_rss_bytes": peak_rss},
        )
    )


# Runs `python -m ostaf ARGS…` and, at exit, saves /proc/self/status: its VmHWM is the peak
# RSS since exec. The child's ru_maxrss would also count the pages of this (large) benchmark
# process it was forked from.
PEAK_RSS_WRAPPER = """
import atexit, os, runpy, sys
status = sys.argv[1]
def save():
    if os.path.exists("/proc/self/status"):
        with open("/proc/self/status") as src, open(status, "w") as dst:
            dst.write(src.read())
atexit.register(save)
sys.argv = ["python -m ostaf", *sys.argv[2:]]
runpy.run_module("ostaf", run_name="__main__", alter_sys=True)
"""


def _vm_hwm(status: Path) -> int | None:
    """Peak RSS in bytes from a saved /proc/<pid>/status, None where there is none."""
    if not status.is_file():
        return None
    for line in status.read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return None

"""How close the memory preflight's prediction is to the measured peak of a real step.

Compared: the predicted step memory (gradients, saved activations, workspace) and what the
step allocates above the weights and optimiser state, measured with
torch.cuda.max_memory_allocated on a GPU and with torch's profiler on the CPU. The resident
part of the prediction is the exact byte count of the weights, so it is not compared."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bench.architectures import added_inputs, build_model, build_unet, precision_name
from bench.plans import Case, Plan
from bench.report import Report, Row
from bench.timing import cpu_peak, device_peak, reset_peak, synchronize
from bench.tuning_speed import REGION_LABEL, _scheduler_config, device_label
from bench.tuning_steps import ostaf_step, random_batch
from ostaf.method.memory import GIB, MemoryEstimate, activation_profile, estimate_tuning_memory
from ostaf.method.memory import resident_bytes_of as resident
from ostaf.method.regions import REGION_BY_KIND


@dataclass(frozen=True)
class Setting:
    per_pass: int
    checkpointing: bool


SETTINGS = (Setting(4, False), Setting(1, False), Setting(4, True))


def preflight_rows(plan: Plan, report: Report) -> None:
    for case in plan.preflight_cases:
        with report.guard(f"{case.arch}@{case.resolution}"):
            _case(plan, case, report)


def _case(plan: Plan, case: Case, report: Report) -> None:
    placement = plan.placement
    if case.arch == "demo":
        model = build_model(case.arch, placement)
        unet, scheduler = model.unet, dict(model.pipe.scheduler.config)
        latent = case.resolution // int(model.pipe.vae_scale_factor)
    else:
        unet, scheduler = build_unet(case.arch, placement), _scheduler_config(case.arch)
        latent = case.resolution // 8
    small = case.arch == "demo"
    settings = SETTINGS if small or placement.device.type != "cpu" else SETTINGS[:1]
    n = case.timesteps
    extra = added_inputs(case.arch, unet)
    for kind, label in REGION_LABEL.items():
        region = REGION_BY_KIND[kind]
        profile = activation_profile(unet.config, latent, placement.dtype, region, 4, extra)
        for setting in settings:
            per_pass = min(setting.per_pass, n)
            batch = random_batch(unet, placement, latent, views=2, added_inputs=extra)
            with ostaf_step(
                unet,
                placement,
                scheduler,
                batch,
                region,
                timesteps=n,
                per_pass=per_pass,
                checkpointing=setting.checkpointing,
            ) as step:
                for _ in range(max(1, case.scale.warmup)):
                    step()
                estimate = estimate_tuning_memory(
                    profile,
                    per_pass,
                    setting.checkpointing,
                    resident([unet], placement.device),
                )
                measured, predicted, what = _measure(step, estimate, placement.device)
            report.add(
                Row(
                    section="preflight",
                    name=f"predicted vs measured {what}, {label}, "
                    f"{per_pass} of {n} timesteps per pass"
                    + (", checkpointing" if setting.checkpointing else ""),
                    command=plan.command,
                    device=device_label(plan),
                    precision=precision_name(placement.dtype),
                    model=case.arch,
                    resolution=case.resolution,
                    steps=1,
                    value=predicted / GIB,
                    unit="GiB",
                    baseline="measured",
                    baseline_value=measured / GIB,
                    ratio=predicted / measured if measured else None,
                    notes=_breakdown(estimate),
                    extra={
                        "implied_workspace_factor": _implied_factor(
                            measured, estimate, profile.largest_tensor * per_pass
                        )
                    },
                )
            )


def _measure(step: object, estimate: MemoryEstimate, device: torch.device) -> tuple[int, int, str]:
    """(measured, predicted, what) for one step."""
    assert callable(step)
    if device.type == "cuda":
        synchronize(device)
        before = torch.cuda.memory_allocated(device)  # weights, optimiser state: all resident
        reset_peak(device)
        step()
        synchronize(device)
        peak = (device_peak(device) or 0) - before
        return peak, estimate.step, "step allocation above weights (max_memory_allocated)"
    return cpu_peak(step), estimate.step, "step allocation above weights (profiler)"


def _implied_factor(measured: int, estimate: MemoryEstimate, largest: int) -> float:
    """The workspace factor that would have made this prediction exact."""
    known = estimate.gradients + estimate.activations
    return (measured - known) / largest if largest else float("nan")


def _breakdown(estimate: MemoryEstimate) -> str:
    parts = {
        "resident": estimate.resident,
        "optimiser": estimate.optimiser,
        "gradients": estimate.gradients,
        "activations": estimate.activations,
        "workspace": estimate.workspace,
    }
    return "predicted: " + ", ".join(f"{k} {v / GIB:.3f} GiB" for k, v in parts.items())

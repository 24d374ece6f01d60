"""Where a default tuning run's time goes (`python -m bench --profile`, also part of
`--full`): one real `tune()` run per case, model loaded, default speed options.

- One-off phases (synchronised wall time): from Tune to the first step, of which preparing
  the reference (VAE encode and text encoding) and the memory preflight; the first step
  (kernel selection and warm-up); one preview; saving the attribute file.
- Per step, over a window of steps under torch's profiler (CPU activity, and CUDA activity
  on a GPU): wall time; for each part of the step (U-Net forward, the offsets' own work,
  backward, hypernetwork, optimiser, loss read-back, …) its CPU time and the time of the GPU
  kernels it launched; GPU busy time (the union of kernel intervals) and the time between
  kernels. The profiler's ranges add a little CPU time of their own: the parts' shares are
  the figures to read, the step time is `--only speed`'s.
- Model FLOPs of one step, counted with FlopCounterMode (bench/flops.py), the achieved
  TFLOP/s and, on a card with a known peak (bench/peaks.py), model FLOPs utilisation.
"""

from __future__ import annotations

import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

from bench.architectures import added_inputs, build_model, precision_name
from bench.flops import FlopCount, counting_flops, unet_forward_flops
from bench.instrument import PREFIX, PhaseRanges, watched_run
from bench.peaks import peak_tflops
from bench.plans import Case, Plan
from bench.report import Report, Row
from bench.timing import synchronize
from bench.tuning_speed import device_label
from ostaf.images import load_reference
from ostaf.library.attribute_file import save_attribute
from ostaf.method.regions import AttributeKind
from ostaf.method.speed import SpeedOptions
from ostaf.method.tuning import tune
from ostaf.requests import TuningSettings
from ostaf.world.demo_reference import demo_reference

BACKWARD = "backward (autograd)"
OPTIMIZER = "optimiser (AdamW, zero_grad)"
OTHER = "other (Python and small ops between the parts)"


@dataclass
class Part:
    """One part of the step: CPU time (its own ops) and the GPU kernels it launched."""

    cpu_us: float = 0.0
    device_us: float = 0.0


def profile_rows(plan: Plan, report: Report) -> None:
    """A profiled default run of each profile case."""
    for case in plan.profile_cases:
        with report.guard(f"profile {case.arch}@{case.resolution}"):
            _profile_case(plan, case, report)


def _profile_case(plan: Plan, case: Case, report: Report) -> None:
    placement = plan.placement
    device = placement.device
    model = build_model(case.arch, placement)
    with tempfile.TemporaryDirectory() as folder:
        reference = load_reference(demo_reference(Path(folder) / "ref.png"), model.resolution)
    # Steps: warm-up, then unprofiled steps timed as a whole, then the profiled window,
    # then one step whose FLOPs are counted, then the last step (with one preview).
    warm, window = case.scale.warmup, case.scale.calls
    timed_from = warm // 2 + 1
    count_at = warm + window + 1
    steps = count_at + 1
    kind = case.kinds[0]
    settings = TuningSettings.for_kind(AttributeKind(kind), steps=steps, preview_every=steps)
    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    profiler = profile(activities=activities)
    ranges = PhaseRanges(model.unet)
    edges: dict[int, float] = {}
    flops: list[FlopCount] = []

    def around(step: int) -> AbstractContextManager[object]:
        if step in (timed_from, warm + 1, warm + window + 1):
            synchronize(device)
            edges[step] = time.perf_counter()
        if step == warm + 1:
            ranges.start()
            profiler.start()
        elif step == warm + window + 1:
            profiler.stop()
            ranges.stop()
        return _count_into(flops) if step == count_at else nullcontext()

    # Previews inline, so that one preview's cost is timed on its own (outside the window).
    speed = SpeedOptions(background_previews=False)
    with watched_run(device, around) as clock:
        result = tune(model, reference, settings, speed=speed)
        synchronize(device)
        finished = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        save_attribute(Path(folder) / "attribute.safetensors", result.attribute)
        saving = time.perf_counter() - start
    plain_us = (edges[warm + 1] - edges[timed_from]) * 1e6 / (warm + 1 - timed_from)
    wall_us = (edges[warm + window + 1] - edges[warm + 1]) * 1e6 / window
    parts = _parts(profiler.events())
    busy_us = _busy_us(profiler.events()) / window
    forward = unet_forward_flops(
        model.unet,
        model.resolution // model.vae_scale_factor,
        placement.dtype,
        device,
        added_inputs(case.arch, model.unet),
    )
    rows = _Rows(plan, case, kind, report)
    rows.one_offs(clock.one_off_s, clock.to_first_step(), clock.step_starts, saving)
    rows.add(
        "step time (unprofiled)",
        plain_us / 1000,
        "ms/step",
        f"steps {timed_from}–{warm} of the run, synchronised at both ends",
    )
    rows.parts(parts, window, wall_us, busy_us if device.type == "cuda" else None)
    rows.flops(flops[0], forward, plain_us, settings.timesteps_per_step)
    rows.add(
        "whole run as profiled (incl. one preview and the profiler's own cost)",
        finished - clock.called,
        "s",
        f"{steps} steps",
    )


@contextmanager
def _count_into(found: list[FlopCount]) -> Iterator[None]:
    """Count the FLOPs of what runs inside (one tuning step) into `found`."""
    with counting_flops() as counted:
        yield
    found.extend(counted)


def _parts(events: Any) -> dict[str, Part]:
    """CPU and GPU time per part of the step, from the profiler's event tree: an event
    belongs to the nearest enclosing range of bench/instrument.py, to the backward when run
    by autograd's engine, to the optimiser, else to "other"."""
    parts: dict[str, Part] = defaultdict(Part)

    def walk(event: Any, label: str) -> None:
        name = event.name
        if name.startswith(PREFIX):
            label = name[len(PREFIX) :]
        elif name.startswith("autograd::engine::evaluate_function"):
            label = BACKWARD
        elif name.startswith("Optimizer."):
            label = OPTIMIZER
        part = parts[label]
        part.cpu_us += event.self_cpu_time_total
        part.device_us += sum(kernel.duration for kernel in event.kernels)
        for child in event.cpu_children:
            walk(child, label)

    for event in events:
        if event.device_type == DeviceType.CPU and event.cpu_parent is None:
            walk(event, OTHER)
    return dict(parts)


def _busy_us(events: Any) -> float:
    """Microseconds in which at least one kernel or copy ran on the GPU."""
    spans = sorted(
        (e.time_range.start, e.time_range.end)
        for e in events
        if e.device_type == DeviceType.CUDA and not e.is_user_annotation
    )
    busy, end = 0.0, float("-inf")
    for start, stop in spans:
        if stop <= end:
            continue
        busy += stop - max(start, end)
        end = stop
    return busy


class _Rows:
    """The profile section's rows for one case."""

    def __init__(self, plan: Plan, case: Case, kind: str, report: Report) -> None:
        self.plan, self.case, self.kind, self.report = plan, case, kind, report
        self.device = plan.placement.device

    def add(
        self,
        name: str,
        value: float,
        unit: str,
        notes: str = "",
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.report.add(
            Row(
                section="profile",
                name=f"{self.kind}: {name}",
                command=self.plan.command,
                device=device_label(self.plan),
                precision=precision_name(self.plan.placement.dtype),
                model=self.case.arch,
                resolution=self.case.resolution,
                steps=self.case.scale.calls,
                value=value,
                unit=unit,
                notes=notes,
                extra=extra or {},
            )
        )

    def one_offs(
        self, one_off: dict[str, float], to_first: float, starts: list[float], saving: float
    ) -> None:
        self.add(
            "start-up: Tune to the first step (model loaded)",
            to_first,
            "s",
            "tune() called → first step starts; synchronised",
            {"parts_s": one_off},
        )
        for label, seconds in one_off.items():
            self.add(label, seconds, "s", "synchronised wall time")
        if len(starts) >= 3:
            first = starts[1] - starts[0]
            usual = (starts[-1] - starts[1]) / (len(starts) - 2)
            self.add(
                "first step (incl. kernel selection and warm-up)",
                first,
                "s",
                f"a later step: {usual * 1000:.1f} ms (not synchronised per step)",
            )
        self.add("saving the attribute file", saving, "s", "save_attribute, atomic write")

    def parts(
        self, parts: dict[str, Part], window: int, wall_us: float, busy_us: float | None
    ) -> None:
        gpu = busy_us is not None
        self.add(
            "step wall time (profiled window)",
            wall_us / 1000,
            "ms/step",
            f"{window} steps, synchronised at both ends; the profiler's ranges included",
        )
        if gpu:
            assert busy_us is not None
            self.add(
                "GPU busy (union of kernel and copy intervals)",
                busy_us / 1000,
                "ms/step",
                f"{busy_us / wall_us:.1%} of the step",
            )
            self.add(
                "GPU idle between kernels (launch and Python overhead, syncs)",
                (wall_us - busy_us) / 1000,
                "ms/step",
                f"{1 - busy_us / wall_us:.1%} of the step",
            )
        for label, part in sorted(parts.items(), key=lambda p: -(p[1].device_us or p[1].cpu_us)):
            cpu_ms = part.cpu_us / window / 1000
            gpu_ms = part.device_us / window / 1000
            shown = gpu_ms if gpu else cpu_ms
            self.add(
                f"part: {label}",
                shown,
                "ms/step",
                (
                    f"GPU kernels {gpu_ms:.2f} ms ({part.device_us / window / wall_us:.1%} of "
                    f"the step); CPU {cpu_ms:.2f} ms"
                    if gpu
                    else f"CPU {cpu_ms:.2f} ms ({part.cpu_us / window / wall_us:.1%} of the step)"
                ),
                {"cpu_ms": cpu_ms, "gpu_ms": gpu_ms},
            )

    def flops(self, counted: FlopCount, forward: int, wall_us: float, timesteps: int) -> None:
        self.add(
            "model FLOPs per step (counted)",
            counted.total / 1e12,
            "TFLOP",
            f"FlopCounterMode on one whole step ({timesteps} timesteps, forward and backward, "
            f"hypernetwork); one U-Net forward of one sample: {forward / 1e12:.4f} TFLOP "
            f"(the step = {counted.total / forward:.2f} of them)",
            {"forward_per_sample_flops": forward, "step_flops": counted.total},
        )
        achieved = counted.total / (wall_us / 1e6) / 1e12
        name = torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else ""
        peak = peak_tflops(name, self.plan.placement.dtype) if name else None
        if peak is None:
            why = (
                "no GPU: no fraction of a peak"
                if not name
                else f"{name}: no known peak for {precision_name(self.plan.placement.dtype)}"
            )
            self.add("achieved model TFLOP/s", achieved, "TFLOP/s", why)
            return
        self.add(
            "model FLOPs utilisation (MFU)",
            100 * achieved / peak,
            "%",
            f"{achieved:.1f} TFLOP/s of {name}'s {peak:.0f} TFLOP/s dense "
            f"{precision_name(self.plan.placement.dtype)} peak; profiled step time",
            {"achieved_tflops": achieved, "peak_tflops": peak},
        )

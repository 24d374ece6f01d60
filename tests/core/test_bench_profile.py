"""The benchmark's profile, speed and run parts (issue 28) on the demo model: FLOPs counted
the same on the CPU as on the meta device, the parts of a step found, peaks looked up only
for known cards, runs past their limit extrapolated, the dry run's models keep the real
layouts."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

import ostaf.models.offline  # noqa: F401  (before diffusers)
from bench.__main__ import make_plan, parse_args
from bench.architectures import build_unet, meta_unet
from bench.flops import count_flops, unet_forward_flops
from bench.peaks import peak_tflops
from bench.plans import Case, Plan, Scale, full_plan
from bench.profile import _busy_us, profile_rows
from bench.report import Report, Row
from bench.speed_options import speed_rows
from bench.tuning_speed import run_rows
from bench.tuning_steps import region_paths
from ostaf.method.regions import REGION_BY_KIND, AttributeKind
from ostaf.models.base_model import BaseModel
from ostaf.models.devices import Placement

CPU = Placement(torch.device("cpu"), torch.float32)


def _plan(**changes: object) -> Plan:
    plan = full_plan("test", CPU, 1)
    for name, value in changes.items():
        setattr(plan, name, value)
    return plan


def _report() -> Report:
    return Report("test", "cpu", "test")


def test_cpu_attention_is_counted_as_on_other_devices() -> None:
    def attention(device: str) -> int:
        q = torch.randn(2, 4, 64, 32, device=device, requires_grad=True)
        return count_flops(lambda: F.scaled_dot_product_attention(q, q, q).sum().backward()).total

    on_cpu, on_meta = attention("cpu"), attention("meta")
    forward = 2 * (2 * 2 * 4 * 64 * 64 * 32)  # QKᵀ and AV
    # torch's formula for fused kernels: the backward recomputes the scores (2.5 forwards).
    assert on_cpu == on_meta == forward + 5 * forward // 2


def test_a_unet_forward_counts_the_same_on_cpu_and_meta(model: BaseModel) -> None:
    on_cpu = unet_forward_flops(model.unet, 8, torch.float32, torch.device("cpu"))
    with torch.device("meta"):
        twin = type(model.unet).from_config(model.unet.config)
    assert on_cpu == unet_forward_flops(twin, 8, torch.float32, torch.device("meta")) > 0


@pytest.mark.parametrize(
    ("name", "dtype", "peak"),
    [
        ("NVIDIA H100 80GB HBM3", torch.bfloat16, 989.0),
        ("NVIDIA H100 PCIe", torch.float16, 756.0),
        ("NVIDIA H100 NVL", torch.bfloat16, None),
        ("NVIDIA H200", torch.bfloat16, 989.0),
        ("NVIDIA A100-SXM4-80GB", torch.bfloat16, 312.0),
        ("NVIDIA GeForce RTX 4090", torch.bfloat16, None),
        ("NVIDIA H200", torch.float32, None),
    ],
)
def test_peaks_only_for_known_cards(name: str, dtype: torch.dtype, peak: float | None) -> None:
    assert peak_tflops(name, dtype) == peak


def test_gpu_busy_time_is_the_union_of_kernels_without_annotations() -> None:
    from torch.autograd import DeviceType

    def event(start: float, end: float, annotation: bool = False) -> SimpleNamespace:
        return SimpleNamespace(
            device_type=DeviceType.CUDA,
            time_range=SimpleNamespace(start=start, end=end),
            is_user_annotation=annotation,
        )

    cpu = SimpleNamespace(device_type=DeviceType.CPU)
    events = [event(0, 10), event(5, 12), event(20, 25), event(0, 100, True), cpu]
    assert _busy_us(events) == 17


def _rows(report: Report, section: str) -> dict[str, Row]:
    return {row.name: row for row in report.rows if row.section == section}


def test_profile_finds_the_parts_of_a_step_and_counts_its_flops() -> None:
    case = Case("demo", 64, Scale(1, warmup=2, calls=2), kinds=("appearance",))
    report = _report()
    profile_rows(_plan(profile_cases=[case]), report)
    assert not report.errors
    rows = _rows(report, "profile")
    parts = {n.removeprefix("appearance: part: "): r for n, r in rows.items() if ": part: " in n}
    for part in (
        "U-Net forward",
        "backward (autograd)",
        "offsets: low-rank terms (forward)",
        "hypernetwork forward",
        "optimiser (AdamW, zero_grad)",
        "gradient clipping",
        "loss read-back (host-device sync)",
    ):
        assert parts[part].value > 0, part
    window = rows["appearance: step wall time (profiled window)"].value
    assert sum(r.value for r in parts.values()) == pytest.approx(window, rel=0.25)
    flops = rows["appearance: model FLOPs per step (counted)"]
    # Four samples forward plus a backward: more than four forwards of one sample.
    assert flops.value * 1e12 > 4 * flops.extra["forward_per_sample_flops"]
    assert "no GPU" in rows["appearance: achieved model TFLOP/s"].notes
    for one_off in ("start-up: Tune to the first step (model loaded)", "memory preflight"):
        assert rows[f"appearance: {one_off}"].value > 0


def test_a_run_past_its_limit_is_extrapolated() -> None:
    case = Case("demo", 64, Scale(1, 0, 1), kinds=("appearance",), limit_s=1.0)
    report = _report()
    run_rows(_plan(run_cases=[case], run_baseline=False), report)
    assert not report.errors
    run, start_up = (row for row in report.rows if row.section == "tuning run")
    done = run.extra["steps_done"]
    assert 2 <= done < run.steps == 300
    assert run.notes.startswith(f"EXTRAPOLATED: stopped after {done} of 300 steps")
    assert run.value > 1.0
    assert start_up.value > 0 and start_up.extra["first_step_s"] > 0


def test_speed_variants_are_timed_against_the_plain_loop() -> None:
    report = _report()
    plan = _plan(speed_case=Case("demo", 64, Scale(rounds=1, warmup=1, calls=2)))
    speed_rows(plan, report)
    assert not report.errors
    rows = _rows(report, "speed")
    assert rows["plain loop (every option off)"].ratio == 1.0
    for name in ("defaults", "fused AdamW alone", "lean attention calls alone"):
        assert rows[name].value > 0 and math.isfinite(rows[name].ratio or math.nan)
    assert rows["previews in the background (plain loop)"].baseline == "previews inline"
    assert "already on PyTorch SDPA" in rows["SDPA attention in use"].notes
    assert "not measured on a CPU" in rows["torch.compile of the U-Net (inductor)"].notes
    lean = rows["U-Net forward alone: lean attention calls vs diffusers' path"]
    assert lean.value > 0 and lean.baseline_value and lean.ratio


@pytest.mark.parametrize(("arch", "real"), [("sd15-tiny", "sd15"), ("sdxl-tiny", "sdxl")])
def test_dry_run_models_keep_the_real_layout(arch: str, real: str) -> None:
    small, full = build_unet(arch, CPU), meta_unet(real)
    for kind in (AttributeKind.APPEARANCE, AttributeKind.SHAPE):
        region = REGION_BY_KIND[kind]
        assert region_paths(small, region) == region_paths(full, region)
    assert sum(p.numel() for p in small.parameters()) < 10_000_000


def test_plans_for_the_gpu_run_and_its_rehearsal() -> None:
    full = make_plan(parse_args(["--full", "--profile", "--dry-run"]), [])
    assert full.sections == {"profile", "tuning-run", "rendering", "speed"}
    assert full.dry_run and full.placement.device.type == "cpu"
    assert {c.arch for c in full.profile_cases} == {"sd15-tiny", "sdxl-tiny"}
    assert {c.resolution for c in full.run_cases} == {64}
    gpu = full_plan("x", CPU, 1)
    runs = [(c.arch, c.resolution) for c in gpu.run_cases]
    assert runs == [("sd15", 512), ("sdxl", 1024), ("demo", 64)]
    assert gpu.time_limit_s == 450 and not gpu.run_baseline
    if not torch.cuda.is_available():
        alone = make_plan(parse_args(["--profile"]), [])
        assert alone.sections == {"profile"} and alone.dry_run

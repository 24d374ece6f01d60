"""Before/after of device choices: CPU threads, GPU precision, torch.compile / CUDA graphs."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from math import nan
from typing import Any

import torch

from bench.ablations import DECODER, Ablations
from bench.architectures import build_unet, precision_name
from bench.timing import Step, Variant, time_calls, time_variants
from bench.tuning_steps import ostaf_step, random_batch
from ostaf.models.devices import Placement, cpu_job_threads


def cpu_threads(ctx: Ablations) -> None:
    """CPU jobs use one core less than the machine has (see ostaf.models.devices.job_threads)."""
    if ctx.placement.device.type != "cpu":
        return
    chosen = cpu_job_threads()
    every = torch.get_num_threads() if chosen != torch.get_num_threads() else chosen + 1
    every = max(every, len(_affinity()))

    def with_threads(count: int) -> Variant:
        @contextmanager
        def variant() -> Iterator[Step]:
            before = torch.get_num_threads()
            torch.set_num_threads(count)
            try:
                with ctx.ostaf() as step:
                    yield step
            finally:
                torch.set_num_threads(before)

        return variant

    # One round: an over-subscribed step takes seconds on a busy machine.
    timings = time_variants(
        {f"{chosen} thread(s)": with_threads(chosen), f"{every} threads": with_threads(every)},
        ctx.placement.device,
        1,
        1,
        ctx.case.scale.calls,
    )
    ctx.row(
        "CPU job threads: one core left free",
        timings,
        f"{chosen} thread(s)",
        f"{every} threads",
        notes="torch's default is one thread per core; the machine was shared while measured",
    )


def precision(ctx: Ablations) -> None:
    """bf16/fp16 U-Net with an fp32 hypernetwork vs an fp32 U-Net."""
    device = ctx.placement.device
    if device.type != "cuda":
        ctx.not_measured(
            "fp16/bf16 U-Net with fp32 hypernetwork vs fp32", "not yet measured on a GPU"
        )
        return
    variants: dict[str, Variant] = {}
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        placement = Placement(device, dtype)
        unet = build_unet(ctx.case.arch, placement) if dtype != ctx.placement.dtype else ctx.unet
        batch = random_batch(unet, placement, ctx.latent, views=2)
        variants[precision_name(dtype)] = partial(
            ostaf_step, unet, placement, ctx.scheduler_config, batch, DECODER
        )
    timings = ctx.time(variants, memory=True)
    for low in ("bf16", "fp16"):
        ctx.row(f"{low} U-Net, fp32 hypernetwork", timings, low, "fp32")


def compiled(ctx: Ablations) -> None:
    """torch.compile of the U-Net (default and CUDA-graph modes): kept only if it wins."""
    device = ctx.placement.device
    if device.type != "cuda":
        ctx.not_measured(
            "torch.compile / CUDA graphs",
            "not yet measured on a GPU (on this CPU the compile alone outlasts a demo run)",
        )
        return
    original = ctx.unet.forward
    for mode in ("default", "reduce-overhead"):
        # One compiled function per mode, made once: alternating modes on one function
        # would make dynamo recompile (or silently fall back to eager) every round.
        torch._dynamo.reset()
        compiled = torch.compile(original, mode=mode)
        first: list[float] = []

        @contextmanager
        def with_compiled(
            compiled: Callable[..., Any] = compiled, first: list[float] = first
        ) -> Iterator[Step]:
            ctx.unet.forward = compiled
            try:
                with ctx.ostaf() as step:
                    if not first:
                        first.append(time_calls(step, 1, device))
                    yield step
            finally:
                ctx.unet.forward = original

        timings = ctx.time({"eager": ctx.step(), mode: with_compiled})
        ctx.row(
            f"torch.compile mode={mode}",
            timings,
            mode,
            "eager",
            notes=f"first step incl. compilation: {first[0] if first else nan:.1f} s",
        )
    torch._dynamo.reset()


def _affinity() -> set[int]:
    try:
        return os.sched_getaffinity(0)
    except AttributeError:
        return set(range(os.cpu_count() or 1))

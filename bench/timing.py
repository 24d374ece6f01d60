"""Timing and peak memory that mean the same on a CPU and a GPU.

Every timed block starts and ends with a device synchronise, so queued GPU work is counted.
Variants are timed in alternating rounds (A B C, B C A, …) so that drift in a shared
machine's load hits them alike; ratios are the median of per-round ratios.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

import torch

Step = Callable[[], object]
# A variant is set up by entering a context that yields the callable to time.
Variant = Callable[[], AbstractContextManager[Step]]


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def time_calls(step: Step, calls: int, device: torch.device) -> float:
    """Mean seconds per call over `calls` calls, synchronised at both ends."""
    synchronize(device)
    start = time.perf_counter()
    for _ in range(calls):
        step()
    synchronize(device)
    return (time.perf_counter() - start) / calls


@dataclass
class Timings:
    """Seconds per call of each variant, one entry per round, and each variant's peak memory."""

    seconds: dict[str, list[float]] = field(default_factory=dict)
    peak_bytes: dict[str, int] = field(default_factory=dict)

    def median(self, name: str) -> float:
        return statistics.median(self.seconds[name])

    def ratio(self, name: str, baseline: str) -> float:
        """Median over rounds of name/baseline (paired: both timed in the same round)."""
        pairs = zip(self.seconds[name], self.seconds[baseline], strict=True)
        return statistics.median(a / b for a, b in pairs)

    def peak_gib(self, name: str) -> float | None:
        peak = self.peak_bytes.get(name)
        return None if peak is None else peak / 2**30


def time_variants(
    variants: dict[str, Variant],
    device: torch.device,
    rounds: int,
    warmup: int,
    calls: int,
    cpu_memory: bool = False,
) -> Timings:
    """Time every variant `rounds` times, rotating their order each round."""
    timings = Timings({name: [] for name in variants})
    names = list(variants)
    for index in range(rounds):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            with variants[name]() as step:
                for _ in range(warmup):
                    step()
                reset_peak(device)
                timings.seconds[name].append(time_calls(step, calls, device))
                peak = device_peak(device)
                if peak is None and cpu_memory and name not in timings.peak_bytes:
                    peak = cpu_peak(step)
                if peak is not None:
                    timings.peak_bytes[name] = max(peak, timings.peak_bytes.get(name, 0))
    return timings


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def device_peak(device: torch.device) -> int | None:
    """Peak bytes allocated on a GPU since the last reset (None on the CPU and MPS)."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return None


def cpu_peak(step: Step) -> int:
    """Peak bytes `step` allocates on the CPU above what was allocated before it, read from
    torch's profiler (its allocation events carry the allocator's running total)."""
    from torch._C._profiler import _EventType
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    allocations = []
    pending = list(prof.profiler.kineto_results.experimental_event_tree())
    while pending:
        event = pending.pop()
        if event.tag == _EventType.Allocation and str(event.extra_fields.device) == "cpu":
            fields = event.extra_fields
            allocations.append((event.start_time_ns, fields.alloc_size, fields.total_allocated))
        pending.extend(event.children)
    if not allocations:
        return 0
    allocations.sort()
    _, first_size, first_total = allocations[0]
    before = first_total - first_size  # the running total just before the first event
    return max(total for _, _, total in allocations) - before


def repeat_median(step: Step, device: torch.device, repeats: int) -> float:
    """Median seconds of `repeats` single synchronised calls."""
    return statistics.median(time_calls(step, 1, device) for _ in range(repeats))

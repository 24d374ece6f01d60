"""Device and precision policy (DESIGN §3): CUDA, then Apple MPS, then CPU."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from ostaf.errors import OutOfMemoryError, SettingsError

DEVICE_CHOICES = ("auto", "cuda", "mps", "cpu")
PRECISION_CHOICES = ("auto", "fp32", "fp16", "bf16")
# Kept free on a GPU for what the memory preflight does not count: the allocator's
# fragmentation and the math libraries' workspaces.
GPU_RESERVE_FRACTION = 0.10
GPU_RESERVE_BYTES = 512 * 2**20


@dataclass(frozen=True)
class Placement:
    """Where the base model runs and in which precision."""

    device: torch.device
    dtype: torch.dtype

    @property
    def label(self) -> str:
        return f"{self.device.type} {str(self.dtype).removeprefix('torch.')}"


def available_devices() -> list[str]:
    """The device names usable on this machine, best first."""
    found = []
    if torch.cuda.is_available():
        found.append("cuda")
    if torch.backends.mps.is_available():
        found.append("mps")
    found.append("cpu")
    return found


def choose_placement(device: str = "auto", precision: str = "auto") -> Placement:
    """Resolve the user's device/precision choice into a Placement, or explain why not."""
    if device not in DEVICE_CHOICES:
        raise SettingsError(
            f"device {device!r} is unknown; choose one of {', '.join(DEVICE_CHOICES)}"
        )
    if precision not in PRECISION_CHOICES:
        raise SettingsError(
            f"precision {precision!r} is unknown; choose one of {', '.join(PRECISION_CHOICES)}"
        )
    available = available_devices()
    name = available[0] if device == "auto" else device
    if name not in available:
        raise SettingsError(
            f"device {name!r} is not available here (available: {', '.join(available)}); "
            "choose 'auto' in Settings or with --device"
        )
    dtype = _dtype_for(name, precision)
    return Placement(torch.device(name), dtype)


def _dtype_for(device: str, precision: str) -> torch.dtype:
    if precision == "auto":
        if device == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        if device == "mps":
            return torch.float16
        return torch.float32
    if device == "cpu" and precision != "fp32":
        raise SettingsError(f"{precision} is not supported on the CPU; use fp32 or auto")
    if device == "mps" and precision == "bf16":
        raise SettingsError("bf16 is not supported on Apple MPS; use fp16, fp32 or auto")
    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]


@contextlib.contextmanager
def out_of_memory_as_error(what: str, advice: str) -> Iterator[None]:
    """Turn a device out-of-memory into OutOfMemoryError with advice, and free the cache."""
    try:
        yield
    except torch.OutOfMemoryError as exc:
        empty_cache()
        raise OutOfMemoryError(f"out of GPU memory while {what}; {advice}") from exc
    except RuntimeError as exc:  # MPS reports OOM as a plain RuntimeError
        if "out of memory" not in str(exc).lower():
            raise
        empty_cache()
        raise OutOfMemoryError(f"out of memory while {what}; {advice}") from exc


def device_memory_budget(device: torch.device) -> int | None:
    """Bytes a job may hold on `device`: what is free plus what this process already holds,
    less a reserve. None on the CPU, which pages to disk rather than failing."""
    if device.type == "cuda":
        free, total = torch.cuda.mem_get_info(device)
        usable = free + torch.cuda.memory_reserved(device)
        return max(0, int(usable - max(GPU_RESERVE_BYTES, GPU_RESERVE_FRACTION * total)))
    if device.type == "mps" and hasattr(torch.mps, "recommended_max_memory"):
        limit = torch.mps.recommended_max_memory()
        usable = limit - torch.mps.driver_allocated_memory() + torch.mps.current_allocated_memory()
        return max(0, int(usable - GPU_RESERVE_FRACTION * limit))
    return None


def cpu_job_threads() -> int:
    """Threads for a CPU job: `OSTAF_CPU_THREADS` if set, else one less than the usable cores.

    Leaving a core free matters more than it looks: when the GUI or anything else wants a
    core, a full OpenMP team stalls at every barrier (16× slower steps on 2 busy cores, see
    BENCHMARKS.md)."""
    chosen = os.environ.get("OSTAF_CPU_THREADS", "").strip()
    if chosen.isdigit() and int(chosen) > 0:
        return int(chosen)
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity call
        cores = os.cpu_count() or 1
    return max(1, cores - 1)


def use_job_threads(device: torch.device) -> None:
    """Before a CPU job: give torch `cpu_job_threads()` threads for this process from now on.

    Process-wide on purpose: every later computation (a plain diffusers pipeline included)
    then runs with the same thread count and so rounds the same way. A thread count the user
    chose with OMP_NUM_THREADS is kept unless OSTAF_CPU_THREADS is set."""
    if device.type != "cpu":
        return
    if "OMP_NUM_THREADS" in os.environ and "OSTAF_CPU_THREADS" not in os.environ:
        return
    wanted = cpu_job_threads()
    if torch.get_num_threads() != wanted:
        torch.set_num_threads(wanted)


def empty_cache() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    if torch.backends.mps.is_available():
        torch.mps.empty_cache()


def generator_for(device: torch.device, seed: int) -> torch.Generator:
    """A seeded generator on `device` (diffusers' convention for reproducible sampling)."""
    # MPS generators are not reproducible across runs; diffusers samples on the CPU there.
    gen_device = "cpu" if device.type == "mps" else device
    return torch.Generator(gen_device).manual_seed(int(seed))

"""Host memory a base-model load needs, checked before the load starts.

Loading reads every weight into host memory at the load precision, and the converters and
the copy out of the weight file's memory map (`base_model._own_memory`) hold transient
copies on top. Measured: SDXL 1.0 in fp32 on a CPU-only machine peaked at 19.9 GB for its
13.9 GB of weights (3.47 G parameters × 4 bytes), so a load needs LOAD_PEAK_FACTOR times the
weights. On the CPU the weights then stay in that memory for every job, so a machine with
less is told before a load that would swap for minutes or be killed. (A GPU load moves the
weights to the card; what it holds there is the tuning preflight's business.)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ostaf.errors import OutOfMemoryError
from ostaf.models.devices import Placement
from ostaf.models.families import Family, read_checkpoint_keys
from ostaf.progress import Progress, ProgressCallback

# Peak host memory of a load over the bytes of its weights: 19.9 GB / 13.9 GB measured for
# SDXL in fp32 (1.43), rounded up.
LOAD_PEAK_FACTOR = 1.45
GB = 1e9


@dataclass(frozen=True)
class HostMemory:
    """The machine's memory in bytes: physical, free for a new process now, and swap."""

    total: int
    available: int
    swap: int


def host_memory() -> HostMemory:
    """This machine's memory, as the OS reports it."""
    import psutil  # a dependency of accelerate, which diffusers needs for low-memory loads

    virtual = psutil.virtual_memory()
    return HostMemory(int(virtual.total), int(virtual.available), int(psutil.swap_memory().total))


def weight_parameters(path: Path, family: Family) -> int:
    """The number of weights a load of `path` (a single file or a diffusers folder) reads,
    from the safetensors headers alone."""
    if path.is_file():
        shapes = read_checkpoint_keys(path).shapes
        # EMA copies of training checkpoints are not part of the model that is kept.
        return sum(_numel(s) for k, s in shapes.items() if not k.startswith("model_ema"))
    total = 0
    for component in ("unet", "vae", *family.text_encoders):
        files = sorted((path / component).glob("*.safetensors"))
        # A folder with both keeps loading the full-precision files; fp16 ones only without.
        plain = [f for f in files if ".fp16." not in f.name]
        for file in plain or files:
            total += sum(_numel(s) for s in read_checkpoint_keys(file).shapes.values())
    return total


def load_bytes(parameters: int, dtype: torch.dtype) -> int:
    """Peak host memory of loading `parameters` weights at `dtype`."""
    return int(parameters * dtype.itemsize * LOAD_PEAK_FACTOR)


def check_load_memory(
    path: Path, family: Family, placement: Placement, progress: ProgressCallback
) -> None:
    """Before a CPU load: refuse it in one line when the machine cannot hold the model even
    with swap, and note it when it will swap or when too little is free now."""
    if placement.device.type != "cpu":
        return
    need = load_bytes(weight_parameters(path, family), placement.dtype)
    memory = host_memory()
    needs = (
        f"{path.name} ({family.label}) needs about {need / GB:.1f} GB of memory on the CPU "
        f"in {str(placement.dtype).removeprefix('torch.')}"
    )
    if memory.total + memory.swap < need:
        raise OutOfMemoryError(
            f"{needs}, and this machine has {memory.total / GB:.1f} GB (and "
            f"{memory.swap / GB:.1f} GB of swap); run it on a GPU (Settings → Device, or "
            "--device), or choose a smaller model"
        )
    if memory.total < need:
        note = (
            f"{needs} and this machine has {memory.total / GB:.1f} GB: it will swap and run "
            "very slowly; a GPU avoids it"
        )
    elif memory.available < need:
        note = (
            f"{needs} and {memory.available / GB:.1f} GB are free now: close other programs, "
            "or it will swap"
        )
    else:
        return
    progress(Progress("loading", 1, 3, message=note, note=note))


def _numel(shape: tuple[int, ...]) -> int:
    count = 1
    for dim in shape:
        count *= dim
    return count

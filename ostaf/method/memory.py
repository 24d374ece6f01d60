"""Memory preflight: predict a tuning step's peak device memory before the run starts, and
choose settings that fit the card (DESIGN §3: gradient checkpointing only when short).

The activations are counted, not guessed: the U-Net is rebuilt from its config on the meta
device (no memory, well under a second), wrapped exactly as tuning wraps it, and one sample
is traced while every tensor autograd saves for the backward pass is tallied. Attention is
counted as a fused kernel (flash / memory-efficient SDPA keeps q, k, v, the output and the
log-sum-exp, never the N×N matrix). Everything saved grows linearly with the timesteps in a
pass. What the tally cannot see (gradients in flight, kernel scratch space) is a workspace
term, a multiple of the largest saved tensor calibrated on CPU measurements (BENCHMARKS.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from ostaf.method.hypernetwork import Hypernetwork, HypernetworkConfig
from ostaf.method.offsets import offset_layers, set_terms, target_layers
from ostaf.method.regions import Region

# Transient memory at the peak (activation gradients in flight, kernel scratch), in units of
# the largest tensor saved in the pass. Fitted on CPU: see "Memory preflight" in BENCHMARKS.md.
WORKSPACE_FACTOR = 1.5
FP32_BYTES = 4
OPTIMISER_SLOTS = 3  # the parameters and AdamW's two moments, all fp32
GIB = 2**30


@dataclass(frozen=True)
class ActivationProfile:
    """What one sample of one pass keeps for the backward pass, in bytes."""

    saved: int  # everything saved, without checkpointing
    outside_units: int  # saved outside the blocks that checkpointing recomputes
    unit_inputs: int  # inputs those blocks keep for their recomputation
    largest_unit: int  # the most any one block saves (alive while it is recomputed)
    largest_tensor: int  # the largest single saved tensor
    hyper_parameters: int  # parameters of the hypernetwork for this region

    def activations(self, checkpointing: bool) -> int:
        if checkpointing:
            return self.outside_units + self.unit_inputs + self.largest_unit
        return self.saved


@dataclass(frozen=True)
class MemoryEstimate:
    """Predicted peak device memory of a tuning step, in bytes, by what holds it."""

    resident: int  # model weights already on the device (U-Net, text encoder, VAE)
    optimiser: int  # hypernetwork parameters and AdamW's two moments
    gradients: int  # the hypernetwork's gradients (freed between steps)
    activations: int  # tensors saved for the backward pass
    workspace: int  # transient buffers at the peak

    @property
    def step(self) -> int:
        """What one step allocates on top of the weights and the optimiser state."""
        return self.gradients + self.activations + self.workspace

    @property
    def total(self) -> int:
        return self.resident + self.optimiser + self.step


@dataclass(frozen=True)
class MemoryPlan:
    """Settings that fit the memory budget, with the estimate that chose them."""

    timesteps_per_pass: int
    checkpointing: bool
    estimate: MemoryEstimate
    budget: int | None  # bytes, None when unknown (CPU)
    fits: bool

    def describe(self) -> str:
        """One line for progress messages and logs."""
        budget = "" if self.budget is None else f" of {self.budget / GIB:.1f} GiB"
        saving = ", memory saving on" if self.checkpointing else ""
        verdict = "" if self.fits else " (more than the budget: it may run out of memory)"
        return (
            f"predicted peak {self.estimate.total / GIB:.2f} GiB{budget}; "
            f"{self.timesteps_per_pass} timestep(s) per pass{saving}{verdict}"
        )


def plan_tuning_memory(
    unet_config: Mapping[str, Any],
    resolution: int,
    dtype: torch.dtype,
    region: Region,
    timesteps_per_step: int,
    resident_bytes: int,
    budget_bytes: int | None,
    rank: int = 4,
    timesteps_per_pass: int = 0,
    checkpointing: bool = False,
    vae_scale_factor: int = 8,
    added_inputs: Mapping[str, int] | None = None,
) -> MemoryPlan:
    """The fastest settings predicted to fit `budget_bytes`: all timesteps in one pass, then
    fewer per pass (gradients accumulate, so the step's result is the same), then gradient
    checkpointing. `timesteps_per_pass` > 0 or `checkpointing` fix those choices.
    `added_inputs` names the U-Net's extra inputs and their widths (the family's)."""
    profile = activation_profile(
        unet_config, resolution // vae_scale_factor, dtype, region, rank, added_inputs
    )
    n = timesteps_per_step
    sizes = [min(timesteps_per_pass, n)] if timesteps_per_pass > 0 else _halvings(n)
    modes = (True,) if checkpointing else (False, True)
    candidates = [(size, ckpt) for ckpt in modes for size in sizes]
    best: MemoryPlan | None = None
    for size, ckpt in candidates:
        estimate = estimate_tuning_memory(profile, size, ckpt, resident_bytes)
        fits = budget_bytes is None or estimate.total <= budget_bytes
        plan = MemoryPlan(size, ckpt, estimate, budget_bytes, fits)
        if fits:
            return plan
        if best is None or estimate.total < best.estimate.total:
            best = plan
    assert best is not None  # candidates is never empty
    return best


def estimate_tuning_memory(
    profile: ActivationProfile, timesteps_per_pass: int, checkpointing: bool, resident_bytes: int
) -> MemoryEstimate:
    """Peak memory of one step with `timesteps_per_pass` samples in each forward pass."""
    parameter_bytes = profile.hyper_parameters * FP32_BYTES
    return MemoryEstimate(
        resident=resident_bytes,
        optimiser=parameter_bytes * OPTIMISER_SLOTS,
        gradients=parameter_bytes,
        activations=timesteps_per_pass * profile.activations(checkpointing),
        workspace=int(WORKSPACE_FACTOR * timesteps_per_pass * profile.largest_tensor),
    )


def resident_bytes_of(modules: list[nn.Module], device: torch.device) -> int:
    """Bytes of the parameters and buffers of `modules` that live on `device`."""
    total = 0
    for module in modules:
        for tensor in (*module.parameters(), *module.buffers()):
            if tensor.device.type == device.type:
                total += tensor.numel() * tensor.element_size()
    return total


def activation_profile(
    unet_config: Mapping[str, Any],
    latent_size: int,
    dtype: torch.dtype,
    region: Region,
    rank: int = 4,
    added_inputs: Mapping[str, int] | None = None,
) -> ActivationProfile:
    """Trace one sample through a meta-device copy of the U-Net and tally what is saved."""
    key = json.dumps(_plain(unet_config), sort_keys=True)
    added = tuple(sorted((added_inputs or {}).items()))
    dtype_name = str(dtype).removeprefix("torch.")
    return _cached_profile(key, latent_size, dtype_name, region, rank, added)


@lru_cache(maxsize=16)
def _cached_profile(
    config_json: str,
    latent_size: int,
    dtype_name: str,
    region: Region,
    rank: int,
    added_inputs: tuple[tuple[str, int], ...] = (),
) -> ActivationProfile:
    from diffusers import UNet2DConditionModel

    config = json.loads(config_json)
    dtype = getattr(torch, dtype_name)
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(config).to(dtype)
    unet.requires_grad_(False)
    paths = region.select(name for name, _ in unet.named_modules())
    if not paths:
        raise ValueError("the region holds no attention projections in this U-Net")
    targets = target_layers(unet, paths)
    with torch.device("meta"):
        hyper = Hypernetwork(targets, HypernetworkConfig(rank=rank))
    factors = {
        t.path: (
            torch.empty(t.out_features, rank, device="meta", requires_grad=True),
            torch.empty(rank, t.in_features, device="meta", requires_grad=True),
        )
        for t in targets
    }
    tally = _SavedTally({p.untyped_storage()._cdata for p in unet.parameters()})
    unet.enable_gradient_checkpointing(gradient_checkpointing_func=tally.unit)
    size = (1, config["in_channels"], latent_size, latent_size)
    sample = torch.empty(size, device="meta", dtype=dtype)
    text = torch.empty(1, 77, config["cross_attention_dim"], device="meta", dtype=dtype)
    timestep = torch.zeros(1, dtype=torch.long, device="meta")
    added = {
        name: torch.empty(1, width, device="meta", dtype=dtype) for name, width in added_inputs
    }
    with (
        torch.enable_grad(),
        offset_layers(unet, paths) as wrappers,
        _FusedAttentionMode(),
        torch.autograd.graph.saved_tensors_hooks(tally.pack, _unpack),
    ):
        set_terms(wrappers, [(factors, 1.0)], dtype)
        out = unet(
            sample, timestep, encoder_hidden_states=text, added_cond_kwargs=added or None
        ).sample
    del out
    return tally.profile(sum(p.numel() for p in hyper.parameters()))


def _unpack(tensor: torch.Tensor) -> torch.Tensor:
    return tensor


class _SavedTally:
    """Counts the distinct storages autograd saves, and which checkpointable block saved them."""

    def __init__(self, parameter_storages: set[int]) -> None:
        self._skip = parameter_storages
        self._seen: dict[int, int] = {}
        self._unit_saved: list[int] = []
        self._unit_inputs: dict[int, int] = {}
        self._current: int | None = None
        self._outside = 0

    def pack(self, tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        key = storage._cdata
        if key not in self._skip and key not in self._seen:
            size = storage.nbytes()
            self._seen[key] = size
            if self._current is None:
                self._outside += size
            else:
                self._unit_saved[self._current] += size
        return tensor  # meta tensors hold no memory: keeping them costs nothing

    def unit(self, module: Callable[..., Any], *args: Any) -> Any:
        """Stands in for the checkpoint function: runs the block and marks what it saves."""
        outer = self._current
        self._current = len(self._unit_saved)
        self._unit_saved.append(0)
        try:
            output = module(*args)
        finally:
            self._current = outer
        first = output[0] if isinstance(output, tuple) else output
        if isinstance(first, torch.Tensor) and first.requires_grad:
            for arg in args:
                if isinstance(arg, torch.Tensor):
                    storage = arg.untyped_storage()
                    self._unit_inputs[storage._cdata] = storage.nbytes()
        return output

    def profile(self, hyper_parameters: int) -> ActivationProfile:
        return ActivationProfile(
            saved=sum(self._seen.values()),
            outside_units=self._outside,
            unit_inputs=sum(self._unit_inputs.values()),
            largest_unit=max(self._unit_saved, default=0),
            largest_tensor=max(self._seen.values(), default=0),
            hyper_parameters=hyper_parameters,
        )


class _FusedAttention(torch.autograd.Function):
    """What a fused SDPA kernel keeps for backward (q, k, v, output, log-sum-exp)."""

    @staticmethod
    def forward(ctx: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        out = torch.empty_like(q)  # (B, heads, N, d)
        logsumexp = q.new_empty(q.shape[:-1], dtype=torch.float32)  # (B, heads, N)
        ctx.save_for_backward(q, k, v, out, logsumexp)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, ...]:
        q, k, v, _, _ = ctx.saved_tensors
        return torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)


class _FusedAttentionMode(TorchFunctionMode):
    """Routes scaled_dot_product_attention to _FusedAttention while tracing."""

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        if func is F.scaled_dot_product_attention:
            return _FusedAttention.apply(*args[:3])
        return func(*args, **(kwargs or {}))


def _halvings(n: int) -> list[int]:
    """n, then about half as many per pass, down to one: [4, 2, 1], [5, 3, 2, 1]."""
    sizes = [n]
    while sizes[-1] > 1:
        sizes.append(-(-sizes[-1] // 2))
    return sizes


def _plain(value: Any) -> Any:
    """A JSON-able copy of a diffusers FrozenDict config (tuples become lists)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items() if not str(k).startswith("_")}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value

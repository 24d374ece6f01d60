"""Model FLOPs of a tuning step, counted (not estimated) with torch's FlopCounterMode.

FlopCounterMode sees every aten operation and counts the matrix multiplications,
convolutions and attention kernels (2 FLOPs per multiply-add) of what actually runs:
the U-Net's forward over the step's timesteps, the backward as far as the targets need it
(input gradients only: the base weights are frozen), the offsets' low-rank matmuls and the
hypernetwork. Element-wise work (norms, activations, AdamW) is not counted, as in the usual
"model FLOPs" of MFU. Attention is counted with torch's formulas for its fused kernels: the
backward as 2.5 forwards (the fused kernels recompute the scores). PyTorch has no formula for
the CPU's fused attention kernel; this module gives it the same one, and on the meta device
routes attention to that kernel (it would otherwise be counted as plain matmuls, 2 forwards),
so that CPU, meta and GPU counts agree.

`python -m bench.flops` counts the real sizes on the meta device (shapes only, no memory,
no time), which is how BENCHMARKS.md's FLOPs per step were obtained without a GPU.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

aten = torch.ops.aten


def _cpu_attention(
    query: Any, key: Any, value: Any, *args: Any, out_shape: Any = None, **kwargs: Any
) -> int:
    return sdpa_flop_count(query, key, value)


def _cpu_attention_backward(
    grad_out: Any, query: Any, key: Any, value: Any, *args: Any, out_shape: Any = None, **kw: Any
) -> int:
    return sdpa_backward_flop_count(grad_out, query, key, value)


CPU_ATTENTION = {
    aten._scaled_dot_product_flash_attention_for_cpu: _cpu_attention,
    aten._scaled_dot_product_flash_attention_for_cpu_backward: _cpu_attention_backward,
}


class _FusedAttentionOnMeta(TorchFunctionMode):
    """Attention on the meta device through the CPU's fused kernel (which has meta shapes),
    so that it is counted as a fused kernel is."""

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        query = args[0] if args else None
        if (
            func is F.scaled_dot_product_attention
            and isinstance(query, torch.Tensor)
            and query.device.type == "meta"
            and kwargs.get("attn_mask") is None
        ):
            scale = {"scale": kwargs["scale"]} if kwargs.get("scale") is not None else {}
            out, _ = aten._scaled_dot_product_flash_attention_for_cpu(*args[:3], **scale)
            return out
        return func(*args, **kwargs)


@dataclass(frozen=True)
class FlopCount:
    """FLOPs of one call, in total and per top-level module (including its backward)."""

    total: int
    by_module: dict[str, int]


@contextmanager
def counting_flops() -> Iterator[list[FlopCount]]:
    """Count the FLOPs of what runs inside; the list yielded holds the count afterwards."""
    found: list[FlopCount] = []
    with (
        FlopCounterMode(display=False, custom_mapping=CPU_ATTENTION) as counter,
        _FusedAttentionOnMeta(),
    ):
        yield found
    counts = counter.get_flop_counts()
    by_module = {
        name: sum(ops.values())
        for name, ops in counts.items()
        if name != "Global" and name.count(".") <= 1
    }
    found.append(FlopCount(counter.get_total_flops(), by_module))


def count_flops(run: Callable[[], object]) -> FlopCount:
    """FLOPs of `run()` as FlopCounterMode counts them (CPU attention included)."""
    with counting_flops() as found:
        run()
    return found[0]


def unet_forward_flops(
    unet: torch.nn.Module,
    latent: int,
    dtype: torch.dtype,
    device: torch.device,
    added: dict[str, int] | None = None,
) -> int:
    """FLOPs of one U-Net forward of one sample at `latent`×`latent` (no gradients)."""
    config: Any = unet.config
    sample = torch.zeros(1, config.in_channels, latent, latent, device=device, dtype=dtype)
    text = torch.zeros(1, 77, config.cross_attention_dim, device=device, dtype=dtype)
    extra = {k: torch.zeros(1, w, device=device, dtype=dtype) for k, w in (added or {}).items()}
    timestep = torch.tensor([500], device=device)

    def forward() -> object:
        with torch.no_grad():
            return unet(sample, timestep, encoder_hidden_states=text, added_cond_kwargs=extra)

    return count_flops(forward).total


def meta_step_flops(arch: str, resolution: int, kind: str, timesteps: int = 4) -> FlopCount:
    """FLOPs of one default tuning step (forward and backward of `timesteps` samples, the
    hypernetwork included) of `arch` at `resolution` px, counted on the meta device."""
    from diffusers import DDPMScheduler

    from bench.architectures import added_inputs, config_dir, meta_unet
    from bench.tuning_steps import random_batch, region_paths
    from ostaf.method.hypernetwork import Hypernetwork, HypernetworkConfig
    from ostaf.method.offsets import offset_layers, target_layers
    from ostaf.method.regions import REGION_BY_KIND, AttributeKind
    from ostaf.method.tuning import _step
    from ostaf.models.devices import Placement

    placement = Placement(torch.device("meta"), torch.bfloat16)
    unet = meta_unet(arch).to(torch.bfloat16).requires_grad_(False)
    batch = random_batch(unet, placement, resolution // 8, 2, added_inputs(arch, unet))
    region = REGION_BY_KIND[AttributeKind(kind)]
    paths = region_paths(unet, region)
    with torch.device("meta"):
        hyper = Hypernetwork(target_layers(unet, paths), HypernetworkConfig())
    config = DDPMScheduler.load_config(config_dir(arch) / "scheduler")
    scheduler = DDPMScheduler.from_config(config)
    sampler = torch.Generator().manual_seed(0)
    with offset_layers(unet, paths) as wrappers:
        return count_flops(
            lambda: _step(unet, placement, hyper, wrappers, batch, scheduler, sampler, timesteps, 4)
        )


def main(argv: list[str] | None = None) -> None:
    """Print the counted FLOPs per step of SD 1.5 at 512 px and SDXL at 1024 px."""
    import ostaf.models.offline  # noqa: F401  (before diffusers: no hub)
    from bench.architectures import added_inputs, meta_unet

    parser = argparse.ArgumentParser(prog="python -m bench.flops", description=main.__doc__)
    parser.add_argument("--models", default="sd15:512,sdxl:1024")
    args = parser.parse_args(argv)
    for item in args.models.split(","):
        arch, _, size = item.partition(":")
        unet = meta_unet(arch).to(torch.bfloat16)
        forward = unet_forward_flops(
            unet, int(size) // 8, torch.bfloat16, torch.device("meta"), added_inputs(arch, unet)
        )
        print(f"{arch} at {size} px: U-Net forward, one sample: {forward / 1e12:.3f} TFLOP")
        for kind in ("appearance", "shape"):
            count = meta_step_flops(arch, int(size), kind)
            print(
                f"{arch} at {size} px, {kind}: tuning step (4 timesteps, forward + backward, "
                f"hypernetwork): {count.total / 1e12:.3f} TFLOP "
                f"= {count.total / forward:.2f} forwards of one sample"
            )


if __name__ == "__main__":
    main()

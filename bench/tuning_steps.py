"""The tuning steps compared, sharing one batch, one noise sampler and one loss.

- OSTAF: the project's own step (`ostaf.method.tuning._step`): hypernetwork → factors → U-Net.
- Baseline A: a peft LoRA of the same rank on every attention projection of the U-Net
  (`to_q`, `to_k`, `to_v`, `to_out.0`), as diffusers' train_dreambooth_lora.py sets it up,
  with the LoRA weights in fp32 (its `cast_training_params`).
- Baseline B: the same peft LoRA on exactly OSTAF's region: the difference to OSTAF is the
  hypernetwork. "B, U-Net precision" keeps the LoRA weights in the U-Net's dtype, as OSTAF's
  factors are cast, to isolate the hypernetwork on a GPU (on the CPU both are fp32).

Every step: sample timesteps and noise, forward, ε/v loss, backward, clip to 1, AdamW.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import torch
from diffusers import DDPMScheduler, UNet2DConditionModel

from bench.timing import Step
from ostaf.method.hypernetwork import Hypernetwork, HypernetworkConfig
from ostaf.method.offsets import offset_layers, target_layers
from ostaf.method.regions import Region
from ostaf.method.tuning import (
    _Batch,
    _noisy_samples,
    _step,
    make_optimizer,
    masked_mse,
    unet_inputs,
)
from ostaf.models.devices import Placement

LORA_TARGET_MODULES = ["to_k", "to_q", "to_v", "to_out.0"]  # train_dreambooth_lora.py
TIMESTEPS = 4  # the default timesteps per step (TuningSettings)


def random_batch(
    unet: UNet2DConditionModel,
    placement: Placement,
    latent_size: int,
    views: int,
    added_inputs: Mapping[str, int] | None = None,
) -> _Batch:
    """Latents, a text embedding and the U-Net's extra inputs (SDXL: pooled embedding and
    size/crop ids, by width) of the right shapes, as `_prepare` would compute once."""
    g = torch.Generator().manual_seed(0)
    latents = torch.randn(views, unet.config.in_channels, latent_size, latent_size, generator=g)
    text = torch.randn(1, 77, unet.config.cross_attention_dim, generator=g)
    device, dtype = placement.device, placement.dtype
    added = {
        name: torch.randn(1, width, generator=g).to(device, dtype)
        for name, width in (added_inputs or {}).items()
    }
    return _Batch(latents.to(device), None, text.to(device, dtype), added or None)


def region_paths(unet: torch.nn.Module, region: Region) -> list[str]:
    return region.select(name for name, _ in unet.named_modules())


@contextmanager
def ostaf_step(
    unet: UNet2DConditionModel,
    placement: Placement,
    scheduler_config: dict,
    batch: _Batch,
    region: Region,
    timesteps: int = TIMESTEPS,
    per_pass: int = 0,
    checkpointing: bool = False,
    rank: int = 4,
    fused_optimizer: bool = True,
) -> Iterator[Step]:
    """The project's tuning step on `region`, as `tune()` runs it."""
    paths = region_paths(unet, region)
    torch.manual_seed(0)
    hyper = Hypernetwork(target_layers(unet, paths), HypernetworkConfig(rank=rank))
    hyper.to(placement.device)
    parameters = list(hyper.parameters())
    if fused_optimizer:
        optimizer = make_optimizer(parameters, 1e-3)
    else:
        optimizer = torch.optim.AdamW(parameters, lr=1e-3, weight_decay=1e-4)
    noise_scheduler = DDPMScheduler.from_config(scheduler_config)
    sampler = torch.Generator().manual_seed(0)
    if checkpointing:
        unet.enable_gradient_checkpointing()
    try:
        with offset_layers(unet, paths) as wrappers:

            def step() -> float:
                optimizer.zero_grad(set_to_none=True)
                loss = _step(
                    unet,
                    placement,
                    hyper,
                    wrappers,
                    batch,
                    noise_scheduler,
                    sampler,
                    timesteps,
                    per_pass or timesteps,
                )
                value = float(loss)
                torch.nn.utils.clip_grad_norm_(parameters, 1.0)
                optimizer.step()
                return value

            yield step
    finally:
        if checkpointing:
            unet.disable_gradient_checkpointing()


@contextmanager
def hypernetwork_step(
    unet: UNet2DConditionModel,
    placement: Placement,
    region: Region,
    rank: int = 4,
    fused_optimizer: bool = True,
) -> Iterator[Step]:
    """Only what the hypernetwork adds to a step, whatever the resolution: its forward and
    backward, gradient clipping and AdamW (the U-Net is not run; a meta U-Net will do)."""
    paths = region_paths(unet, region)
    hyper = Hypernetwork(target_layers(unet, paths), HypernetworkConfig(rank=rank))
    hyper.to(placement.device)
    parameters = list(hyper.parameters())
    if fused_optimizer:
        optimizer = make_optimizer(parameters, 1e-3)
    else:
        optimizer = torch.optim.AdamW(parameters, lr=1e-3, weight_decay=1e-4)
    dtype = placement.dtype

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        factors = hyper()
        sums = [(a.to(dtype).sum() + b.to(dtype).sum()).float() for a, b in factors.values()]
        torch.stack(sums).sum().backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()

    yield step


@contextmanager
def lora_step(
    unet: UNet2DConditionModel,
    placement: Placement,
    scheduler_config: dict,
    batch: _Batch,
    target_modules: list[str],
    timesteps: int = TIMESTEPS,
    lora_dtype: torch.dtype = torch.float32,
    rank: int = 4,
) -> Iterator[Step]:
    """A peft LoRA step on `target_modules`; the U-Net is restored on exit."""
    from peft import LoraConfig
    from peft.tuners.lora import LoraModel

    config = LoraConfig(
        r=rank, lora_alpha=rank, init_lora_weights="gaussian", target_modules=target_modules
    )
    torch.manual_seed(0)
    lora = LoraModel(unet, config, "bench")
    try:
        parameters = [p for name, p in unet.named_parameters() if "lora_" in name]
        for parameter in parameters:
            parameter.data = parameter.data.to(lora_dtype)
            parameter.requires_grad_(True)
        optimizer = torch.optim.AdamW(parameters, lr=1e-4, weight_decay=1e-4)
        noise_scheduler = DDPMScheduler.from_config(scheduler_config)
        sampler = torch.Generator().manual_seed(0)
        dtype = placement.dtype

        def step() -> float:
            optimizer.zero_grad(set_to_none=True)
            noisy, t, target, _ = _noisy_samples(
                batch, noise_scheduler, sampler, timesteps, placement.device
            )
            text, added = unet_inputs(batch, timesteps, dtype)
            pred = unet(
                noisy.to(dtype), t, encoder_hidden_states=text, added_cond_kwargs=added
            ).sample
            loss = masked_mse(pred.float(), target, None)
            loss.backward()
            value = float(loss.detach())
            torch.nn.utils.clip_grad_norm_(parameters, 1.0)
            optimizer.step()
            return value

        yield step
    finally:
        lora.unload()
        unet.requires_grad_(False)

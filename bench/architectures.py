"""The models benchmarked: the demo model, and U-Nets / pipelines with the exact SD 1.5,
SD 2.1 and SDXL 1.0 architectures built from the shipped diffusers configs with random
weights (timing needs no trained weights, and nothing is downloaded).

"sd15-tiny" and "sdxl-tiny" (for `--dry-run`) keep their model's layout (blocks, transformer
depths, target layers) at toy widths: every Python call and kernel launch of the real model
is there, at a fraction of its arithmetic, so a CPU runs a GPU plan in minutes."""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import torch
import transformers
from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
from transformers import CLIPTextConfig

from bench.plans import TINY
from ostaf.models.base_model import (
    DEMO,
    BaseModel,
    architecture_of,
    fingerprint_of,
    load_base_model,
)
from ostaf.models.devices import Placement
from ostaf.models.families import Family, by_id
from ostaf.models.single_file import load_tokenizer, model_config_dir

_Module = TypeVar("_Module", bound=torch.nn.Module)
RANDOM_BLOCK = 1_000_003  # a prime, so the tiling does not line up with rows
NATIVE_RESOLUTION = {
    "demo": 64,
    "sd15": 512,
    "sd21": 768,
    "sdxl": 1024,
    "sd15-tiny": 64,
    "sdxl-tiny": 64,
}
LABELS = {
    "demo": "OSTAF demo model",
    "sd15": "SD 1.5 (random)",
    "sd21": "SD 2.1 (random)",
    "sdxl": "SDXL 1.0 (random)",
    "sd15-tiny": "SD 1.5 layout at toy widths (random)",
    "sdxl-tiny": "SDXL 1.0 layout at toy widths (random)",
}
FAMILY_IDS = {
    "demo": "sd1",
    "sd15": "sd1",
    "sd21": "sd2",
    "sdxl": "sdxl",
    "sd15-tiny": "sd1",
    "sdxl-tiny": "sdxl",
}
TINY_LATENT = 8  # latent pixels per side: 64 px images
TINY_TEXT_LAYERS = 2


def config_dir(arch: str) -> Path:
    """The shipped diffusers config folder `arch` is built from."""
    return model_config_dir(TINY.get(arch, arch))


def unet_config(arch: str) -> dict[str, Any]:
    """`arch`'s U-Net config (shrunk for a tiny architecture)."""
    config = dict(UNet2DConditionModel.load_config(config_dir(arch) / "unet"))
    if arch not in TINY:
        return config
    widths = [min(c // 10, 64) for c in config["block_out_channels"]]  # 32, 64, 64, …
    config.update(
        block_out_channels=widths,
        attention_head_dim=[2] * len(widths),  # heads (diffusers' legacy name)
        cross_attention_dim=_tiny_text_width(arch) * len(family_of(arch).text_encoders),
        sample_size=TINY_LATENT,
    )
    if config.get("addition_embed_type") == "text_time":
        time_embed = 8
        config.update(
            addition_time_embed_dim=time_embed,
            projection_class_embeddings_input_dim=6 * time_embed + _tiny_text_width(arch),
        )
    return config


def _tiny_text_width(arch: str) -> int:
    return 64 if family_of(arch).id == "sd1" else 32


def text_config(arch: str, name: str) -> CLIPTextConfig:
    """The config of `arch`'s text encoder `name` (shrunk for a tiny architecture)."""
    config = CLIPTextConfig.from_pretrained(config_dir(arch) / name)
    if arch in TINY:
        width = _tiny_text_width(arch)
        config.hidden_size, config.intermediate_size = width, 4 * width
        config.num_hidden_layers, config.num_attention_heads = TINY_TEXT_LAYERS, 2
        config.projection_dim = width
    return config


def vae_config(arch: str) -> dict[str, Any]:
    """`arch`'s VAE config (shrunk for a tiny architecture: same 8× downscale)."""
    config = dict(AutoencoderKL.load_config(config_dir(arch) / "vae"))
    if arch in TINY:
        blocks = len(config["block_out_channels"])
        config.update(block_out_channels=[32] * blocks, layers_per_block=1, sample_size=64)
    return config


def family_of(arch: str) -> Family:
    return by_id(FAMILY_IDS[arch])


def added_inputs(arch: str, unet: UNet2DConditionModel) -> dict[str, int]:
    """The U-Net's extra inputs (SDXL's pooled embedding and size/crop ids) and widths."""
    return family_of(arch).added_inputs(unet.config)


def precision_name(dtype: torch.dtype) -> str:
    return {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}[dtype]


@lru_cache(maxsize=4)
def build_unet(arch: str, placement: Placement) -> UNet2DConditionModel:
    """A U-Net with `arch`'s exact architecture and random weights, frozen, on the device
    (built once per run and shared by the sections)."""
    if arch == DEMO:
        return build_model(arch, placement).unet
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(unet_config(arch))
    unet.to_empty(device=placement.device)
    fill_random(unet)
    return _freeze(unet.to(dtype=placement.dtype))


@lru_cache(maxsize=2)
def meta_unet(arch: str) -> UNet2DConditionModel:
    """`arch`'s U-Net on the meta device: its layer shapes, no memory and no weights."""
    with torch.device("meta"):
        return UNet2DConditionModel.from_config(unet_config(arch))


def fill_random(module: torch.nn.Module, seed: int = 0) -> None:
    """Random weights at the speed of a copy (SD 1.5's default init takes 12 s on this CPU):
    one uniform block, tiled over each weight and scaled to variance 1/fan-in; norm scales 1,
    biases 0. Timing needs finite, non-denormal values, not trained ones."""
    first = next(module.parameters())
    g = torch.Generator().manual_seed(seed)
    block = (torch.rand(RANDOM_BLOCK, generator=g) * 2 - 1).to(first.device)
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            if parameter.ndim >= 2:
                flat = parameter.view(-1)
                for start in range(0, flat.numel(), RANDOM_BLOCK):
                    end = min(start + RANDOM_BLOCK, flat.numel())
                    flat[start:end].copy_(block[: end - start])
                flat.mul_(math.sqrt(3 / parameter[0].numel()))
            elif name.endswith("bias"):
                parameter.zero_()
            else:
                parameter.fill_(1.0)


@lru_cache(maxsize=4)
def build_model(arch: str, placement: Placement) -> BaseModel:
    """A whole base model (U-Net, VAE, text encoders, tokenizers) as the app would hold it."""
    if arch == DEMO:
        return load_base_model(DEMO, placement.device.type, precision_name(placement.dtype))
    folder = config_dir(arch)
    family = family_of(arch)
    unet = build_unet(arch, placement)
    with torch.device("meta"):
        vae = AutoencoderKL.from_config(vae_config(arch))
    vae.to_empty(device=placement.device)
    fill_random(vae)
    encoders = {}
    for name in family.text_encoders:
        config = text_config(arch, name)
        # CLIPTextModel, or CLIPTextModelWithProjection for SDXL's second encoder.
        cls = getattr(transformers, (config.architectures or ["CLIPTextModel"])[0])
        with torch.device(placement.device):  # its position ids are buffers: a real init
            encoder = cls(config)
        encoders[name] = _freeze(torch.nn.Module.to(encoder, dtype=placement.dtype))
    tokenizers = {name: load_tokenizer(folder / name) for name in family.tokenizers}
    scheduler = DDIMScheduler.from_config(DDIMScheduler.load_config(folder / "scheduler"))
    pipe = family.pipeline_class()(
        vae=_freeze(vae.to(dtype=torch.float32)),  # the project keeps the VAE in fp32
        unet=unet,
        scheduler=scheduler,
        **encoders,
        **tokenizers,
        **family.pipeline_options(),
    )
    pipe.set_progress_bar_config(disable=True)
    return BaseModel(
        pipe=pipe,
        placement=placement,
        name=LABELS[arch],
        source=arch,
        architecture=architecture_of(unet),
        fingerprint=fingerprint_of(unet),
    )


def _freeze(module: _Module) -> _Module:
    module.requires_grad_(False)
    module.eval()
    return module

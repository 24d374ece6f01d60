"""A tiny SDXL-shaped model built from a seed, as a diffusers folder and as an SGM single file.

SDXL's layout at toy widths: two CLIP text encoders (the second a CLIPTextModelWithProjection
whose pooled, projected output is an extra U-Net input), a U-Net with SDXL's three levels
(no attention at the first), `addition_embed_type="text_time"` and two transformer layers per
block at the deepest level, and an SD VAE (64 px images, 8×8 latents). The text encoders have
CLIP's real vocabulary size, so the shipped tokenizers work with them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from ostaf.paths import resource
from tests.core import ldm_keys

WIDTHS = (32, 48)  # the two text encoders: they must differ, diffusers tells them apart so
PROJECTION = 16  # the second encoder's pooled output
TIME_EMBED = 8  # per size/crop id
VAE_BLOCKS = 4  # 64 px → 8×8 latents
SDXL_CONFIGS = resource("model_configs", "sdxl")
COMPONENTS = ("unet", "vae", "text_encoder", "text_encoder_2")


def _randomise(model: torch.nn.Module, seed: int) -> None:
    # Random values everywhere (default inits leave many exact 0s and 1s): a swapped or
    # skipped tensor then shows in bit-exact comparisons.
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.randn(param.shape, generator=generator) * 0.2)


def build_tiny_sdxl(seed: int = 0) -> dict[str, Any]:
    """U-Net, VAE and both text encoders with SDXL's layout at toy sizes, from `seed`."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import (
        CLIPTextConfig,
        CLIPTextModel,
        CLIPTextModelWithProjection,
    )

    unet = UNet2DConditionModel(
        sample_size=8,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        block_out_channels=(16, 32, 32),
        layers_per_block=2,  # as in every SDXL U-Net (kohya's SGM names depend on it)
        transformer_layers_per_block=(1, 1, 2),
        attention_head_dim=(1, 2, 2),  # legacy naming: heads
        norm_num_groups=8,
        cross_attention_dim=sum(WIDTHS),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=TIME_EMBED,
        projection_class_embeddings_input_dim=6 * TIME_EMBED + PROJECTION,
    )
    vae = AutoencoderKL(
        down_block_types=("DownEncoderBlock2D",) * VAE_BLOCKS,
        up_block_types=("UpDecoderBlock2D",) * VAE_BLOCKS,
        block_out_channels=(8, 8, 16, 16),
        layers_per_block=1,
        norm_num_groups=8,
        sample_size=64,
        scaling_factor=0.13025,
        force_upcast=True,
    )

    def text_config(width: int, act: str, **extra: Any) -> CLIPTextConfig:
        return CLIPTextConfig(
            vocab_size=49408,  # the real CLIP vocabulary, shared by the shipped configs
            hidden_size=width,
            intermediate_size=2 * width,
            num_hidden_layers=2,
            num_attention_heads=2,
            hidden_act=act,
            max_position_embeddings=77,
            bos_token_id=49406,
            eos_token_id=49407,
            **extra,
        )

    text_encoder = CLIPTextModel(text_config(WIDTHS[0], "quick_gelu"))
    text_encoder_2 = CLIPTextModelWithProjection(
        text_config(WIDTHS[1], "gelu", projection_dim=PROJECTION)
    )
    models = {
        "unet": unet,
        "vae": vae,
        "text_encoder": text_encoder,
        "text_encoder_2": text_encoder_2,
    }
    for offset, model in enumerate(models.values()):
        _randomise(model, seed + offset)
        model.eval()
    return models


def sgm_state_dict(models: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The tiny models as one state dict in SDXL's original single-file (SGM) key layout."""
    return {
        **ldm_keys.unet_to_ldm(models["unet"].state_dict(), layers_per_block=2),
        **ldm_keys.vae_to_ldm(models["vae"].state_dict(), VAE_BLOCKS),
        **ldm_keys.clip_to_ldm(models["text_encoder"].state_dict(), ldm_keys.SDXL_CLIP),
        **ldm_keys.sdxl_open_clip_to_sgm(models["text_encoder_2"].state_dict()),
    }


def write_config_dir(models: dict[str, Any], out: Path) -> Path:
    """The shipped SDXL folder with the tiny models' configs in place of the real ones."""
    shutil.copytree(SDXL_CONFIGS, out)
    models["unet"].save_config(out / "unet")
    models["vae"].save_config(out / "vae")
    for name in ("text_encoder", "text_encoder_2"):
        models[name].config.save_pretrained(out / name)
    return out


def write_folder(models: dict[str, Any], out: Path) -> Path:
    """The tiny models as a complete diffusers SDXL folder (weights, tokenizers, scheduler),
    loadable offline like a downloaded one."""
    from ostaf.models.single_file import load_tokenizer

    out.mkdir(parents=True)
    for name in COMPONENTS:
        models[name].save_pretrained(out / name)
    shutil.copytree(SDXL_CONFIGS / "scheduler", out / "scheduler")
    for name in ("tokenizer", "tokenizer_2"):
        load_tokenizer(SDXL_CONFIGS / name).save_pretrained(out / name)
    index = json.loads((SDXL_CONFIGS / "model_index.json").read_text())
    (out / "model_index.json").write_text(json.dumps(index, indent=2))
    return out


def save_checkpoint(state: dict[str, torch.Tensor], path: Path) -> Path:
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    return path

"""The second embedded demo model: Stable Diffusion XL-shaped, trained on the same world.

Every quality figure of the first demo model comes from one SD 1.x-shaped network; this one
has SDXL's shape, so that the method's defaults can be checked on a second family: two CLIP
text encoders of different widths whose penultimate states are concatenated (the second with
a projection that gives the pooled embedding), a U-Net with `addition_embed_type="text_time"`
(pooled embedding + six size/crop ids), SDXL's block pattern (no attention in the first level,
two layers per block, two transformer layers in the deeper levels and the middle) and SDXL's
Euler scheduler. It loads as any SDXL diffusers folder. Its VAE is the first demo model's
(SDXL's VAE has SD's architecture; the world and its 64 px pictures are the same), so both
models see the same latents. `python -m ostaf.world.train --model demo-xl --out DIR` trains it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ostaf import paths

DEMO_XL = "demo-xl"  # the source word of this model (Settings, --model)
DEMO_XL_SEED = 20261207
DEMO_XL_NAME = "OSTAF demo world XL (64 px)"
DEMO_XL_VERSION = "world-xl-v2"
SHIPPED_DEMO_XL_DIR = paths.RESOURCES / "demo_model_xl"
TRAIN_XL_COMMAND = "python -m ostaf.world.train --model demo-xl --out resources/demo_model_xl"
SCHEDULER_FILE = paths.RESOURCES / "model_configs" / "sdxl" / "scheduler" / "scheduler_config.json"


@dataclass(frozen=True)
class DemoXlArchitecture:
    """Sizes of the SDXL-shaped demo model (the VAE is the first demo model's)."""

    text_width: int = 64  # the first encoder (CLIP ViT-L's place)
    text_width_2: int = 96  # the second, with a projection (OpenCLIP bigG's place)
    pooled_width: int = 96  # the second encoder's projection: the pooled embedding
    text_layers: int = 3  # the penultimate layer's states are used, as SDXL does
    text_heads: int = 4
    unet_channels: tuple[int, ...] = (32, 64, 96)
    unet_heads: tuple[int, ...] = (2, 4, 6)  # head width 16 everywhere
    transformer_layers: tuple[int, ...] = (1, 2, 2)  # the first level has no attention
    layers_per_block: int = 2  # as every SDXL U-Net (the SGM names of its LoRAs need it)
    time_embed_width: int = 16  # per size/crop id (SDXL: 256)
    norm_groups: int = 16
    max_tokens: int = 77
    latent_size: int = 16  # 64 px through the first demo model's VAE (factor 4)


DEMO_XL_ARCHITECTURE = DemoXlArchitecture()


def build_demo_xl_pipeline(
    vae: Any, seed: int = DEMO_XL_SEED, architecture: DemoXlArchitecture = DEMO_XL_ARCHITECTURE
) -> Any:
    """The StableDiffusionXLPipeline with fresh text encoders and U-Net around `vae`."""
    from ostaf.models.offline import quiet_libraries

    quiet_libraries()
    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import (
        CLIPTextConfig,
        CLIPTextModel,
        CLIPTextModelWithProjection,
        CLIPTokenizer,
    )

    from ostaf.models.demo_model import demo_tokenizer_files

    arch = architecture
    vocab, merges = demo_tokenizer_files()

    def tokenizer() -> Any:
        made = CLIPTokenizer(vocab=vocab, merges=merges)  # type: ignore[arg-type]
        made.model_max_length = arch.max_tokens
        return made

    def text_config(width: int, **extra: Any) -> Any:
        return CLIPTextConfig(
            vocab_size=len(vocab),
            hidden_size=width,
            intermediate_size=4 * width,
            num_hidden_layers=arch.text_layers,
            num_attention_heads=arch.text_heads,
            max_position_embeddings=arch.max_tokens,
            bos_token_id=vocab["<|startoftext|>"],
            eos_token_id=vocab["<|endoftext|>"],
            pad_token_id=vocab["<|endoftext|>"],
            **extra,
        )

    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(text_config(arch.text_width))
    torch.manual_seed(seed + 1)
    text_encoder_2 = CLIPTextModelWithProjection(
        text_config(arch.text_width_2, projection_dim=arch.pooled_width)
    )
    torch.manual_seed(seed + 2)
    unet = UNet2DConditionModel(
        sample_size=arch.latent_size,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        block_out_channels=arch.unet_channels,
        layers_per_block=arch.layers_per_block,
        transformer_layers_per_block=arch.transformer_layers,
        attention_head_dim=arch.unet_heads,  # the number of heads (diffusers' legacy name)
        cross_attention_dim=arch.text_width + arch.text_width_2,
        addition_embed_type="text_time",
        addition_time_embed_dim=arch.time_embed_width,
        projection_class_embeddings_input_dim=arch.pooled_width + 6 * arch.time_embed_width,
        use_linear_projection=True,
        norm_num_groups=arch.norm_groups,
    )
    scheduler_config = json.loads(SCHEDULER_FILE.read_text())
    return StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=tokenizer(),
        tokenizer_2=tokenizer(),
        unet=unet,
        scheduler=EulerDiscreteScheduler.from_config(scheduler_config),
        # The unconditional input is the encoded empty prompt, as in training and as the
        # app renders it (SDXL's published models use zeros instead).
        force_zeros_for_empty_prompt=False,
        add_watermarker=False,
    )


def demo_xl_vae() -> Any:
    """The first demo model's trained VAE (see the module docstring)."""
    from diffusers import AutoencoderKL

    from ostaf.models.demo_model import demo_model_dir

    return AutoencoderKL.from_pretrained(demo_model_dir() / "vae", local_files_only=True)


def xl_time_ids(size: int) -> list[int]:
    """SDXL's six size/crop ids for a whole, uncropped picture of `size` px, as the pipeline
    and the app pass them when rendering at that size."""
    return [size, size, 0, 0, size, size]

"""Write the config-only diffusers folders for Stable Diffusion 1.5, 2.1 and XL 1.0 (DESIGN §3).

diffusers' `from_single_file` needs a local diffusers-format folder for the component configs,
or it goes to the Hub. These folders hold the published architectures as JSON and no weights.
The tokenizer vocabulary is shared by all and lives in `clip_tokenizer/` (see
scripts/build_clip_tokenizer.py); each `tokenizer*/` folder holds only its settings.

    python scripts/build_model_configs.py           # write resources/model_configs/sd15, sd21, sdxl
    python scripts/build_model_configs.py --check   # also build each model on the meta device
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "resources" / "model_configs"

BOS, EOS = "<|startoftext|>", "<|endoftext|>"
BOS_ID, EOS_ID = 49406, 49407
SD_DOWN = ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"]
SD_UP = ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]
# Both families train with the same 1000-step scaled-linear schedule.
SCHEDULE = {
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "clip_sample": False,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "trained_betas": None,
}


def unet(cross_attention_dim: int, heads: int | list[int], sample_size: int, **extra: Any) -> dict:
    return {
        "_class_name": "UNet2DConditionModel",
        "act_fn": "silu",
        # Legacy naming: for SD this is the number of heads per block (DESIGN §7).
        "attention_head_dim": heads,
        "block_out_channels": [320, 640, 1280, 1280],
        "center_input_sample": False,
        "cross_attention_dim": cross_attention_dim,
        "down_block_types": SD_DOWN,
        "downsample_padding": 1,
        "flip_sin_to_cos": True,
        "freq_shift": 0,
        "in_channels": 4,
        "layers_per_block": 2,
        "mid_block_scale_factor": 1,
        "norm_eps": 1e-05,
        "norm_num_groups": 32,
        "out_channels": 4,
        "sample_size": sample_size,
        "up_block_types": SD_UP,
        **extra,
    }


def vae(sample_size: int, **extra: Any) -> dict:
    return {
        "_class_name": "AutoencoderKL",
        "act_fn": "silu",
        "block_out_channels": [128, 256, 512, 512],
        "down_block_types": ["DownEncoderBlock2D"] * 4,
        "in_channels": 3,
        "latent_channels": 4,
        "layers_per_block": 2,
        "norm_num_groups": 32,
        "out_channels": 3,
        "sample_size": sample_size,
        "scaling_factor": 0.18215,
        "up_block_types": ["UpDecoderBlock2D"] * 4,
        **extra,
    }


def text_encoder(architecture: str = "CLIPTextModel", **arch: Any) -> dict:
    return {
        "architectures": [architecture],
        "attention_dropout": 0.0,
        # The real token ids rather than the placeholders (0, 1, 2) of the published
        # files: the pooled output then finds <|endoftext|> even after tokens are added.
        "bos_token_id": BOS_ID,
        "dropout": 0.0,
        "eos_token_id": EOS_ID,
        "initializer_factor": 1.0,
        "initializer_range": 0.02,
        "layer_norm_eps": 1e-05,
        "max_position_embeddings": 77,
        "model_type": "clip_text_model",
        "vocab_size": 49408,
        **arch,
    }


def tokenizer_settings(pad_token: str) -> dict:
    return {
        "tokenizer_class": "CLIPTokenizer",
        "bos_token": BOS,
        "eos_token": EOS,
        "unk_token": EOS,
        "pad_token": pad_token,
        "model_max_length": 77,
        "do_lower_case": True,
    }


def model_index(scheduler: str) -> dict:
    # No safety checker or feature extractor: the app never loads them.
    return {
        "_class_name": "StableDiffusionPipeline",
        "feature_extractor": [None, None],
        "requires_safety_checker": False,
        "safety_checker": [None, None],
        "scheduler": ["diffusers", scheduler],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }


def sd15() -> dict[str, dict]:
    """Stable Diffusion 1.5: CLIP ViT-L/14 text encoder, 512 px, epsilon prediction."""
    return {
        "model_index.json": model_index("PNDMScheduler"),
        "scheduler/scheduler_config.json": {
            "_class_name": "PNDMScheduler",
            **SCHEDULE,
            "prediction_type": "epsilon",
        },
        "text_encoder/config.json": text_encoder(
            hidden_act="quick_gelu",
            hidden_size=768,
            intermediate_size=3072,
            num_attention_heads=12,
            num_hidden_layers=12,
            pad_token_id=EOS_ID,
            projection_dim=768,
        ),
        "tokenizer/tokenizer_config.json": tokenizer_settings(pad_token=EOS),
        "unet/config.json": unet(cross_attention_dim=768, heads=8, sample_size=64),
        "vae/config.json": vae(sample_size=512),
    }


def sd21() -> dict[str, dict]:
    """Stable Diffusion 2.1 (768-v): OpenCLIP ViT-H text encoder without its last layer."""
    return {
        "model_index.json": model_index("DDIMScheduler"),
        "scheduler/scheduler_config.json": {
            "_class_name": "DDIMScheduler",
            **SCHEDULE,
            "prediction_type": "v_prediction",
        },
        # SD 2 conditions on the penultimate layer of OpenCLIP ViT-H/14's 24-layer text
        # tower, so the diffusers text encoder has 23 layers.
        "text_encoder/config.json": text_encoder(
            hidden_act="gelu",
            hidden_size=1024,
            intermediate_size=4096,
            num_attention_heads=16,
            num_hidden_layers=23,
            pad_token_id=0,
            projection_dim=512,
        ),
        "tokenizer/tokenizer_config.json": tokenizer_settings(pad_token="!"),
        "unet/config.json": unet(
            cross_attention_dim=1024,
            heads=[5, 10, 20, 20],
            sample_size=96,
            use_linear_projection=True,
            # 2.1 overflows in fp16 attention without it.
            upcast_attention=True,
        ),
        "vae/config.json": vae(sample_size=768),
    }


def sdxl() -> dict[str, dict]:
    """Stable Diffusion XL 1.0 base: CLIP ViT-L/14 and OpenCLIP ViT-bigG/14 text encoders
    (penultimate layers, 768 + 1280 = 2048-wide states), the bigG pooled embedding and six
    size/crop ids as extra U-Net inputs, 1024 px, epsilon prediction."""
    return {
        "model_index.json": {
            "_class_name": "StableDiffusionXLPipeline",
            "feature_extractor": [None, None],
            "force_zeros_for_empty_prompt": True,
            "image_encoder": [None, None],
            "scheduler": ["diffusers", "EulerDiscreteScheduler"],
            "text_encoder": ["transformers", "CLIPTextModel"],
            "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
            "tokenizer": ["transformers", "CLIPTokenizer"],
            "tokenizer_2": ["transformers", "CLIPTokenizer"],
            "unet": ["diffusers", "UNet2DConditionModel"],
            "vae": ["diffusers", "AutoencoderKL"],
        },
        "scheduler/scheduler_config.json": {
            "_class_name": "EulerDiscreteScheduler",
            **SCHEDULE,
            "interpolation_type": "linear",
            "prediction_type": "epsilon",
            "sample_max_value": 1.0,
            "timestep_spacing": "leading",
            "use_karras_sigmas": False,
        },
        "text_encoder/config.json": text_encoder(
            hidden_act="quick_gelu",
            hidden_size=768,
            intermediate_size=3072,
            num_attention_heads=12,
            num_hidden_layers=12,
            pad_token_id=EOS_ID,
            projection_dim=768,
        ),
        # All 32 layers: the pipeline reads the penultimate hidden state and pools the last.
        "text_encoder_2/config.json": text_encoder(
            "CLIPTextModelWithProjection",
            hidden_act="gelu",
            hidden_size=1280,
            intermediate_size=5120,
            num_attention_heads=20,
            num_hidden_layers=32,
            pad_token_id=0,
            projection_dim=1280,
        ),
        "tokenizer/tokenizer_config.json": tokenizer_settings(pad_token=EOS),
        "tokenizer_2/tokenizer_config.json": tokenizer_settings(pad_token="!"),
        "unet/config.json": {
            **unet(cross_attention_dim=2048, heads=[5, 10, 20], sample_size=128),
            "addition_embed_type": "text_time",
            "addition_embed_type_num_heads": 64,
            "addition_time_embed_dim": 256,
            "block_out_channels": [320, 640, 1280],
            "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
            # 1280 pooled + 6 ids × 256.
            "projection_class_embeddings_input_dim": 2816,
            "transformer_layers_per_block": [1, 2, 10],
            "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
            "use_linear_projection": True,
        },
        # The SDXL VAE overflows in fp16 (force_upcast): the project decodes it in fp32.
        "vae/config.json": vae(sample_size=1024, scaling_factor=0.13025, force_upcast=True),
    }


FAMILIES = {"sd15": sd15, "sd21": sd21, "sdxl": sdxl}
TEXT_ENCODERS = {"text_encoder": "CLIPTextModel", "text_encoder_2": "CLIPTextModelWithProjection"}


def write(out_dir: Path) -> None:
    """Write every family's folder under `out_dir` (sorted keys, so the bytes are stable)."""
    for family, files in FAMILIES.items():
        for name, content in files().items():
            target = out_dir / family / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(content, indent=2, sort_keys=True) + "\n")


def check(out_dir: Path) -> None:
    """Build each component on the meta device (no memory) and report its parameter count."""
    import torch
    import transformers
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig

    for family in FAMILIES:
        folder = out_dir / family
        with torch.device("meta"):
            models = {
                "unet": UNet2DConditionModel.from_config(
                    UNet2DConditionModel.load_config(folder / "unet")
                ),
                "vae": AutoencoderKL.from_config(AutoencoderKL.load_config(folder / "vae")),
            }
            for name, cls in TEXT_ENCODERS.items():
                if (folder / name).is_dir():
                    config = CLIPTextConfig.from_pretrained(folder / name)
                    models[name] = getattr(transformers, cls)(config)
        for name, model in models.items():
            count = sum(p.numel() for p in model.parameters())
            sys.stdout.write(f"{family}/{name}: {count:,} parameters\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--check", action="store_true", help="build each model on meta")
    args = parser.parse_args()
    write(args.out)
    if args.check:
        check(args.out)


if __name__ == "__main__":
    main()

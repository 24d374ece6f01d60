"""Stable Diffusion XL (SDXL 1.0 base and its fine-tunes: Pony, Illustrious, NoobAI, …).

Two text encoders — CLIP ViT-L/14 and OpenCLIP ViT-bigG/14, penultimate layers concatenated
into 2048-wide states — plus two extra U-Net inputs (`added_cond_kwargs`): the bigG pooled
embedding and six size/crop ids (original size, crop corner, target size). 1024 px,
ε-prediction (v-prediction fine-tunes carry a `v_pred` key, those also trained with zero
terminal SNR a `ztsnr` key; EDM models such as Playground v2.5 are refused). Single files use
Stability AI's SGM layout (`conditioner.embedders.0.transformer.*`,
`conditioner.embedders.1.model.*`), and kohya names SDXL LoRAs after the SGM U-Net
(`lora_unet_input_blocks_4_1_…`), which A1111, Forge and ComfyUI map natively and diffusers
converts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from ostaf.models.families.family import (
    UNET,
    CheckpointKeys,
    Conditioning,
    Family,
    Prediction,
    SizeChoice,
)

if TYPE_CHECKING:
    import torch

    from ostaf.models.component_configs import ModelIndex

EMBEDDERS = "conditioner.embedders."
LABEL_EMBEDDING = UNET + "label_emb.0.0.weight"
REFINER_LABEL_WIDTH = 2560  # the refiner: 5 ids (aesthetic score, no target size) + 1280
TIME_IDS = 6  # original height, width; crop top, left; target height, width
# SDXL's training buckets (about one megapixel each), as multiples of 64 px at 1024.
BUCKETS = (
    ("Square", 16, 16),
    ("Landscape 4:3", 18, 14),
    ("Portrait 3:4", 14, 18),
    ("Landscape 3:2", 19, 13),
    ("Portrait 2:3", 13, 19),
    ("Landscape 16:9", 21, 12),
    ("Portrait 9:16", 12, 21),
    ("Wide 21:9", 24, 10),
    ("Tall 9:21", 10, 24),
)
LAYERS_PER_BLOCK = 2  # every SDXL U-Net: 3 SGM blocks per level (2 layers + a resampler)
SGM_LEVEL_BLOCKS = LAYERS_PER_BLOCK + 1
_DIFFUSERS_ATTENTION = re.compile(r"(down_blocks|up_blocks)\.(\d+)\.attentions\.(\d+)\.(.+)")


class StableDiffusionXL(Family):
    id = "sdxl"
    label = "Stable Diffusion XL"
    config_folder = "sdxl"
    pipeline_name = "StableDiffusionXLPipeline"
    folder_pipelines: ClassVar[tuple[str, ...]] = (
        "StableDiffusionXLPipeline",
        "StableDiffusionXLImg2ImgPipeline",  # the base model saved from its img2img pipeline
    )
    text_encoders: ClassVar[tuple[str, ...]] = ("text_encoder", "text_encoder_2")
    tokenizers: ClassVar[tuple[str, ...]] = ("tokenizer", "tokenizer_2")
    context_width = 2048
    native_size = 1024
    lora_version = "sdxl_base_v1-0"
    # diffusers' SDXL pipeline default; on the SDXL-shaped world model 7.5 drew the asked style
    # 4 points less often than 5 (BENCHMARKS.md, "Render guidance per family").
    render_guidance = 5.0
    clip_l_prefix = EMBEDDERS + "0.transformer."

    # --- recognition ---------------------------------------------------------------------

    def text_encoder_in(self, keys: CheckpointKeys) -> bool:
        return keys.has_prefix(EMBEDDERS)

    def unet_in(self, keys: CheckpointKeys) -> bool:
        return keys.has(LABEL_EMBEDDING)

    def unsupported_variant(self, keys: CheckpointKeys) -> str | None:
        refiner_encoders = keys.has_prefix(EMBEDDERS + "0.model.") and not keys.has_prefix(
            EMBEDDERS + "1."
        )
        if refiner_encoders or keys.dim(LABEL_EMBEDDING, 1) == REFINER_LABEL_WIDTH:
            return "a Stable Diffusion XL refiner (it only refines other models' images)"
        # EDM models keep SDXL's layout but are trained on another noise process (continuous
        # sigmas, other latent scaling): run as ε- or v-prediction SDXL they give noise.
        if keys.has("edm_mean") and keys.has("edm_std"):
            return (
                "an EDM model (Playground v2.5 style: it has edm_mean/edm_std), whose noise "
                "schedule and latent scale OSTAF cannot run"
            )
        if keys.has("edm_vpred.sigma_max"):
            return (
                "an EDM v-prediction model (CosXL style: it has edm_vpred.sigma_max), whose "
                "noise schedule OSTAF cannot run"
            )
        return None

    def prediction_in(self, keys: CheckpointKeys) -> Prediction | None:
        # v-prediction fine-tunes mark themselves with an empty `v_pred` tensor, and those
        # trained with zero terminal SNR (NoobAI-XL v-pred) also with `ztsnr`; ComfyUI reads
        # `ztsnr` only beside `v_pred`, and so does this.
        if not keys.has("v_pred"):
            return None
        return Prediction("v_prediction", zero_terminal_snr=keys.has("ztsnr"))

    def unsupported_folder(self, index: ModelIndex) -> str | None:
        text_encoder = index.text_encoder
        if index.requires_aesthetics_score or text_encoder in (None, [None, None]):
            return "a Stable Diffusion XL refiner (it only refines other models' images)"
        return None

    # --- text conditioning ---------------------------------------------------------------

    def encode_prompt(
        self, pipe: Any, prompt: str, device: torch.device, size: tuple[int, int]
    ) -> Conditioning:
        import torch

        hidden, _, pooled, _ = pipe.encode_prompt(
            prompt, device=device, num_images_per_prompt=1, do_classifier_free_guidance=False
        )  # (1, T, 2048), (1, 1280)
        height, width = size
        # What the pipeline passes when it renders at this size: no crop, original = target.
        ids = [height, width, 0, 0, height, width]
        time_ids = torch.tensor([ids], dtype=hidden.dtype, device=device)  # (1, 6)
        return Conditioning(hidden, {"text_embeds": pooled, "time_ids": time_ids})

    def prompt_inputs(self, cond: Conditioning) -> dict[str, Any]:
        # The size/crop ids are the pipeline's own for the size it renders.
        return {"prompt_embeds": cond.hidden, "pooled_prompt_embeds": cond.added["text_embeds"]}

    def added_inputs(self, unet_config: Mapping[str, Any]) -> dict[str, int]:
        ids = TIME_IDS * int(unet_config["addition_time_embed_dim"])
        pooled = int(unet_config["projection_class_embeddings_input_dim"]) - ids
        return {"text_embeds": pooled, "time_ids": TIME_IDS}

    # --- sizes ---------------------------------------------------------------------------

    def offered_sizes(self, native: int) -> tuple[SizeChoice, ...]:
        unit = native / 16
        choices = []
        for label, w, h in BUCKETS:
            width, height = (round(w * unit / 8) * 8, round(h * unit / 8) * 8)
            suffix = " (native)" if width == height == native else ""
            choices.append((f"{label} {width}×{height}{suffix}", width, height))
        return tuple(choices)

    # --- LoRA ----------------------------------------------------------------------------

    def kohya_name(self, module_path: str) -> str:
        """The SGM name kohya gives SDXL U-Net modules: `down_blocks.1.attentions.0.X` is
        `input_blocks.4.1.X`, `mid_block.attentions.0.X` is `middle_block.1.X` and
        `up_blocks.0.attentions.2.X` is `output_blocks.2.1.X`."""
        return "lora_unet_" + sgm_path(module_path).replace(".", "_")

    def lora_metadata(self, fmt: str, resolution: int, prediction_type: str) -> dict[str, str]:
        metadata = super().lora_metadata(fmt, resolution, prediction_type)
        if fmt == "kohya":  # SGM names, as kohya's SDXL LoRAs declare
            metadata["modelspec.implementation"] = (
                "https://github.com/Stability-AI/generative-models"
            )
        return metadata

    def architecture(self, resolution: int, prediction_type: str) -> str:
        return "stable-diffusion-xl-v1-base"


def sgm_path(module_path: str) -> str:
    """The SGM (original SDXL) path of a diffusers attention module path."""
    if module_path.startswith("mid_block.attentions.0."):
        return "middle_block.1." + module_path.removeprefix("mid_block.attentions.0.")
    match = _DIFFUSERS_ATTENTION.fullmatch(module_path)
    if match is None:
        raise ValueError(f"{module_path} is not inside an attention block of the U-Net")
    blocks, level, index, rest = match[1], int(match[2]), int(match[3]), match[4]
    if blocks == "down_blocks":  # input_blocks.0 is conv_in
        return f"input_blocks.{1 + level * SGM_LEVEL_BLOCKS + index}.1.{rest}"
    return f"output_blocks.{level * SGM_LEVEL_BLOCKS + index}.1.{rest}"


FAMILY = StableDiffusionXL()

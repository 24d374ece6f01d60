"""Stable Diffusion 1.x (1.4, 1.5 and their fine-tunes; the demo model has this layout).

One CLIP ViT-L/14 text encoder (768-wide states), 512 px, ε-prediction. Single files keep
the text encoder under `cond_stage_model.transformer.`; kohya names its LoRAs after the
diffusers module paths (`lora_unet_down_blocks_1_attentions_0_…`).
"""

from __future__ import annotations

from typing import Any, ClassVar

from ostaf.models.families.family import UNET, CheckpointKeys, Family

CLIP = "cond_stage_model.transformer."
# The first cross-attention key projection: its input width is the text encoder's width.
CONTEXT_KEY = UNET + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"
SD_PIPELINES = ("StableDiffusionPipeline", "StableDiffusionImg2ImgPipeline")


class StableDiffusion1(Family):
    id = "sd1"
    label = "Stable Diffusion 1.x"
    config_folder = "sd15"
    pipeline_name = "StableDiffusionPipeline"
    folder_pipelines: ClassVar[tuple[str, ...]] = SD_PIPELINES
    context_width = 768
    native_size = 512
    lora_version = "sd_v1"
    clip_l_prefix: ClassVar[str | None] = CLIP

    def text_encoder_in(self, keys: CheckpointKeys) -> bool:
        return keys.has_prefix(CLIP)

    def unet_in(self, keys: CheckpointKeys) -> bool:
        return keys.dim(CONTEXT_KEY, 1) == self.context_width

    def claims_folder(self, pipeline: str, context_width: int | None) -> bool:
        # SD 2.x models use the same pipelines; their cross-attention reads 1024-wide states.
        return pipeline in self.folder_pipelines and (context_width or 0) < 1024

    def pipeline_options(self) -> dict[str, Any]:
        return {"safety_checker": None, "feature_extractor": None, "requires_safety_checker": False}

    def architecture(self, resolution: int, prediction_type: str) -> str:
        return "stable-diffusion-v1"


FAMILY = StableDiffusion1()

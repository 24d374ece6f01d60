"""Stable Diffusion 2.x (2.0, 2.1 and their fine-tunes): SD 1.x's layout with another text
encoder.

OpenCLIP ViT-H/14 without its last layer (1024-wide states), stored under
`cond_stage_model.model.` in single files; 768 px v-prediction, or 512 px ε-prediction for
the "-base" models (a sibling .yaml says which). LoRAs are named as SD 1.x's.
"""

from __future__ import annotations

from ostaf.models.families.family import CheckpointKeys
from ostaf.models.families.sd1 import CONTEXT_KEY, StableDiffusion1

OPEN_CLIP = "cond_stage_model.model."


class StableDiffusion2(StableDiffusion1):
    id = "sd2"
    label = "Stable Diffusion 2.x"
    config_folder = "sd21"
    context_width = 1024
    native_size = 768
    lora_version = "sd_v2"
    clip_l_prefix = None  # OpenCLIP's layout

    def text_encoder_in(self, keys: CheckpointKeys) -> bool:
        return keys.has_prefix(OPEN_CLIP)

    def unet_in(self, keys: CheckpointKeys) -> bool:
        return keys.dim(CONTEXT_KEY, 1) == self.context_width

    def claims_folder(self, pipeline: str, context_width: int | None) -> bool:
        return pipeline in self.folder_pipelines and (context_width or 0) >= 1024

    def sample_size_for(self, prediction_type: str, sample_size: int) -> int:
        # The ε-prediction SD 2.x models are the 512 px "-base" ones (v: 768 px).
        return 64 if prediction_type == "epsilon" else sample_size

    def lora_metadata(self, fmt: str, resolution: int, prediction_type: str) -> dict[str, str]:
        return {**super().lora_metadata(fmt, resolution, prediction_type), "ss_v2": "True"}

    def is_v(self, resolution: int, prediction_type: str) -> bool:
        # Attributes from before the prediction type was recorded: the 768 px models are v.
        return prediction_type == "v_prediction" or (not prediction_type and resolution >= 768)

    def architecture(self, resolution: int, prediction_type: str) -> str:
        v = self.is_v(resolution, prediction_type)
        return "stable-diffusion-v2-768-v" if v else "stable-diffusion-v2-512"


FAMILY = StableDiffusion2()

"""Single files whose CLIP ViT-L/14 text-encoder keys lack the `text_model.` level.

Older tools, and kohya's saver under transformers 5, write the CLIP text encoder of an SD 1.x
checkpoint as `cond_stage_model.transformer.embeddings.*`, `….encoder.layers.*` and
`….final_layer_norm.*` instead of `cond_stage_model.transformer.text_model.*`, and an SDXL
checkpoint's first text encoder likewise under `conditioner.embedders.0.transformer.`.
ComfyUI, A1111 and kohya read both; diffusers recognises only the second and reports the text
encoder as missing. Such a file's text encoder is built here, by diffusers' own converter,
from the same tensors under the names it expects, and handed to the pipeline.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors import safe_open

if TYPE_CHECKING:
    from transformers import CLIPTextModel

STANDARD_LEVEL = "text_model."
LEGACY_LEVELS = ("embeddings.", "encoder.", "final_layer_norm.")


def legacy_key_names(keys: Iterable[str], prefix: str) -> dict[str, str]:
    """Old name → standard name of every text-encoder tensor under `prefix` (the family's
    CLIP prefix), when the file uses the layout without `text_model.` (and none of the
    standard one); empty otherwise."""
    keys = list(keys)
    if any(k.startswith(prefix + STANDARD_LEVEL) for k in keys):
        return {}
    legacy = tuple(prefix + level for level in LEGACY_LEVELS)
    return {k: prefix + STANDARD_LEVEL + k[len(prefix) :] for k in keys if k.startswith(legacy)}


def load_legacy_text_encoder(
    path: Path, prefix: str, config_dir: Path, dtype: torch.dtype
) -> CLIPTextModel | None:
    """The CLIP text encoder under `prefix` in `path` if it is stored in the legacy layout,
    else None."""
    from diffusers.loaders.single_file_utils import create_diffusers_clip_model_from_ldm
    from transformers import CLIPTextModel

    with safe_open(str(path), framework="pt") as handle:
        names = legacy_key_names(handle.keys(), prefix)
        if not names:
            return None
        renamed = {new: handle.get_tensor(old) for old, new in names.items()}
    model: CLIPTextModel = create_diffusers_clip_model_from_ldm(
        CLIPTextModel,
        renamed,
        subfolder="text_encoder",
        config=str(config_dir),
        torch_dtype=dtype,
        local_files_only=True,
    )
    return model

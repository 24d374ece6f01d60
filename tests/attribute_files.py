"""Small, valid attribute files written without torch (for library and GUI tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from safetensors.numpy import save_file

from ostaf.images import thumbnail_data_url
from ostaf.library.attribute_meta import METADATA_KEY, AttributeMeta, BaseModelInfo, ReferenceInfo
from ostaf.method.regions import REGION_BY_KIND, AttributeKind

TARGETS = {
    AttributeKind.SHAPE: "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q",
    AttributeKind.APPEARANCE: "up_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q",
    AttributeKind.STYLE: "up_blocks.1.attentions.0.transformer_blocks.0.attn2.to_v",
}


def write_attribute_file(
    path: Path,
    name: str = "Blue glaze",
    kind: AttributeKind = AttributeKind.APPEARANCE,
    seed: int = 0,
    created_at: str = "2026-01-01T00:00:00Z",
    default_lambda: float = 1.0,
    base_model: str = "test model",
    steps: int = 10,
    notes: str = "",
    word: str = "",
    learned_word: bool = False,
) -> Path:
    """A tiny attribute file (one target layer, rank 2) with a coloured thumbnail, named in
    prompts by `word` (none recorded: `sks`, as in files from before words); with
    `learned_word`, a shift of the word's embedding (token id 5 of an 8-wide encoder)."""
    rng = np.random.default_rng(seed)
    target = TARGETS[kind]
    colour = tuple(int(c) for c in rng.integers(0, 255, 3))
    meta = AttributeMeta(
        name=name,
        kind=kind,
        region=REGION_BY_KIND[kind],
        targets=[target],
        rank=2,
        base_model=BaseModelInfo(base_model, "arch0", "fp0"),
        reference=ReferenceInfo(
            sha256="0" * 64,
            width=64,
            height=64,
            thumbnail=thumbnail_data_url(Image.new("RGB", (32, 32), colour)),
            file_name="ref.png",
        ),
        tuning={
            "prompt": f"a photo of a {word or 'sks'} object",
            "steps": steps,
            "final_loss": 0.1,
            **({"token": word} if word else {}),
        },
        default_lambda=default_lambda,
        created_at=created_at,
        notes=notes,
        shifts=["text_encoder.5"] if learned_word else [],
        format_version=2 if learned_word else 1,
    )
    tensors = {
        f"{target}.A": rng.standard_normal((8, 2)).astype(np.float32),
        f"{target}.B": rng.standard_normal((2, 8)).astype(np.float32),
    }
    if learned_word:
        tensors["placeholder.text_encoder.5"] = rng.standard_normal(8).astype(np.float32)
        tensors["placeholder_base.text_encoder.5"] = rng.standard_normal(8).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata={METADATA_KEY: meta.to_json()})
    return path

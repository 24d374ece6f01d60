"""The shipped demo model: complete, described by its record, and drawing what it is asked."""

from __future__ import annotations

from pathlib import Path

import pytest

import ostaf.models.demo_model as demo_model
from ostaf.errors import ModelLoadError
from ostaf.models.base_model import BaseModel, load_base_model
from ostaf.models.demo_model import (
    DEMO_NAME,
    demo_model_dir,
    embedded_models,
    is_demo_folder,
    is_demo_source,
    read_demo_record,
)
from ostaf.render.rendering import pipeline_for
from ostaf.world import prompt_follows
from ostaf.world.oracle import analyse
from ostaf.world.prompt_following import evaluation_scenes, render_prompts


def test_the_shipped_folder_is_complete_and_records_how_it_was_made() -> None:
    folder = demo_model_dir()
    assert is_demo_folder(folder)
    record = read_demo_record(folder)
    assert record["name"] == DEMO_NAME
    assert record["prompt_following"]["prompts"] >= 200
    assert record["prompt_following"]["rates"]["shape+colour"] >= 0.9
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert size < 20 * 2**20


def test_a_missing_demo_model_says_how_to_rebuild_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(demo_model, "SHIPPED_DEMO_DIR", tmp_path / "gone")
    with pytest.raises(ModelLoadError, match=r"python -m ostaf\.world\.train --out"):
        load_base_model("demo", device="cpu")


def test_a_missing_xl_demo_model_says_how_to_rebuild_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import ostaf.models.demo_model_xl as demo_model_xl

    monkeypatch.setattr(demo_model_xl, "SHIPPED_DEMO_XL_DIR", tmp_path / "gone")
    with pytest.raises(ModelLoadError, match=r"--model demo-xl --out resources/demo_model_xl"):
        load_base_model("demo-xl", device="cpu")


def test_the_embedded_models_are_chosen_by_their_source_word() -> None:
    models = embedded_models()
    assert list(models) == ["demo", "demo-xl"]  # the first-start default first
    assert is_demo_source("demo") and is_demo_source("demo-xl")
    assert not is_demo_source("demo-xxl") and not is_demo_source("/models/demo")
    assert len({model.name for model in models.values()}) == 2


def test_the_demo_model_draws_the_shape_and_colour_it_is_asked_for(model: BaseModel) -> None:
    scenes = evaluation_scenes(8, seed=5)
    images = render_prompts(
        pipeline_for(model, "ddim"),
        [scene.caption() for scene in scenes],
        range(8),
        steps=20,
    )
    followed = [
        prompt_follows(analyse(image), {"shape": scene.shape, "colour": scene.colour})
        for image, scene in zip(images, scenes, strict=True)
    ]
    assert sum(followed) >= 6, followed


def test_the_vae_gives_the_unit_variance_latents_the_unet_was_trained_on() -> None:
    """The pipeline multiplies encoder latents by `scaling_factor` (and divides before
    decoding): with the factor the U-Net saw in training, world images land at unit scale."""
    import numpy as np
    import torch
    from diffusers import AutoencoderKL

    from ostaf.world import dataset

    vae = AutoencoderKL.from_pretrained(demo_model_dir() / "vae").eval()
    images = np.stack([np.asarray(image) for image, _, _ in dataset(48, seed=11)])
    pixels = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    with torch.no_grad():
        latents = vae.encode(pixels).latent_dist.mean * vae.config.scaling_factor
    spread = latents.std(dim=(0, 2, 3))
    assert torch.all((spread > 0.6) & (spread < 1.6)), spread
    assert latents.mean(dim=(0, 2, 3)).abs().max() < 0.5

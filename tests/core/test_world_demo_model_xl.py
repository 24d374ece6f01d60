"""The shipped SDXL-shaped demo model (issue 26): a diffusers folder the SDXL family loads like
any other, trained from its seed, drawing what it is asked, and every SDXL path of the app —
both encoders' words, the pooled embedding, size/crop ids, render, export — running on it."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from safetensors import safe_open

from ostaf.cli.main import main
from ostaf.library.attribute_meta import read_meta
from ostaf.models.base_model import BaseModel, load_base_model
from ostaf.models.demo_model import demo_model_dir, is_demo_folder, read_demo_record
from ostaf.models.demo_model_xl import DEMO_XL, DEMO_XL_NAME
from ostaf.render.rendering import pipeline_for
from ostaf.world import prompt_follows
from ostaf.world.oracle import analyse
from ostaf.world.prompt_following import evaluation_scenes, render_prompts
from tests.core.conftest import draw_reference


@pytest.fixture(scope="module")
def xl() -> BaseModel:
    return load_base_model(DEMO_XL, device="cpu")


def test_the_shipped_folder_is_complete_and_records_how_it_was_made() -> None:
    folder = demo_model_dir(DEMO_XL)
    assert is_demo_folder(folder)
    record = read_demo_record(folder)
    first = read_demo_record(demo_model_dir("demo"))
    assert record["name"] == DEMO_XL_NAME
    assert record["prompt_following"]["prompts"] >= 200
    assert record["prompt_following"]["rates"]["shape+colour"] >= 0.9
    assert record["parameters"]["unet"] >= 4 * first["parameters"]["unet"]
    assert record["training_seconds"]["denoiser"]["wall"] < 3 * 3600
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert size < 30 * 2**20
    assert not list(folder.rglob("*.partial"))


def test_the_sdxl_family_loads_it_with_sdxls_shape(xl: BaseModel) -> None:
    assert xl.family.label == "Stable Diffusion XL"
    pipe, config = xl.pipe, xl.unet.config
    assert config.addition_embed_type == "text_time"
    assert config.down_block_types[0] == "DownBlock2D"  # no attention in the first block
    assert max(config.transformer_layers_per_block) > 1
    widths = (pipe.text_encoder.config.hidden_size, pipe.text_encoder_2.config.hidden_size)
    assert widths[0] != widths[1] and config.cross_attention_dim == sum(widths)
    pooled = config.projection_class_embeddings_input_dim - 6 * config.addition_time_embed_dim
    assert pipe.text_encoder_2.config.projection_dim == pooled


def test_it_draws_the_shape_and_colour_it_is_asked_for(xl: BaseModel) -> None:
    scenes = evaluation_scenes(8, seed=5)
    images = render_prompts(
        pipeline_for(xl, "euler"), [scene.caption() for scene in scenes], range(8), steps=20
    )
    followed = [
        prompt_follows(analyse(image), {"shape": scene.shape, "colour": scene.colour})
        for image, scene in zip(images, scenes, strict=True)
    ]
    assert sum(followed) >= 6, followed


def test_tune_render_and_export_on_it_from_the_command_line(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reference = tmp_path / "reference.png"
    draw_reference(64).save(reference)
    model = ["--model", DEMO_XL, "--device", "cpu"]
    out = tmp_path / "look.safetensors"
    tune = ["tune", str(reference), "--attribute", "appearance", "--out", str(out)]
    assert main([*tune, "--steps", "2", *model]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    meta = read_meta(out)
    assert meta.tuning["family"] == "sdxl" and meta.tuning["resolution"] == 64
    # Appearance learns its word by default: in both text encoders.
    assert {shift.split(".")[0] for shift in meta.shifts} == {"text_encoder", "text_encoder_2"}

    render = ["render", "--prompt", "a sks star, flat style, on a white background"]
    applied = ["--attribute", f"{out}:0.8", "--steps", "3", "--out", str(tmp_path / "imgs")]
    assert main([*render, *applied, *model]) == 0
    (png,) = [Path(p) for p in capsys.readouterr().out.split()]
    assert Image.open(png).size == (64, 64)

    lora = tmp_path / "look-lora.safetensors"
    assert main(["export-lora", str(out), "--out", str(lora)]) == 0
    captured = capsys.readouterr()
    assert captured.out.split()[0] == str(lora)
    # A LoRA of a demo model is for that model only, in SDXL's layout.
    assert "for the demo model only (Stable Diffusion XL layout" in captured.err
    with safe_open(str(lora), "pt") as exported:
        assert exported.metadata()["modelspec.architecture"].startswith("stable-diffusion-xl")
        names = exported.keys()  # safe_open is not iterable
        assert any(name.startswith("lora_unet_") for name in names)

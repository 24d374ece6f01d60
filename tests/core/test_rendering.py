"""Rendering: λ = 0 is the base image bit for bit, a plain diffusers pipeline reproduces our
images (to one level of 255), samplers and PNG metadata work."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionPipeline
from PIL import Image

from ostaf.images import load_reference
from ostaf.interop.pngmeta import parse_a1111, read_png_metadata
from ostaf.library.attribute_file import Attribute
from ostaf.method.hypernetwork import delta_weight
from ostaf.method.regions import AttributeKind
from ostaf.method.tuning import tune
from ostaf.models.base_model import BaseModel
from ostaf.render.rendering import make_scheduler, render, schedule_timesteps
from ostaf.requests import AppliedAttribute, ModelChoice, RenderJob, RenderSettings, TuningSettings
from ostaf.service import OstafService

PROMPT = "a photo of a sks object"
PIXEL_TOLERANCE = 1  # of 255; measured 0 on this machine (2026-12, 2-core x86-64 CPU)


@pytest.fixture(scope="module")
def attributes(demo: BaseModel, tmp_path_factory: pytest.TempPathFactory) -> list[Attribute]:
    from tests.core.conftest import draw_reference

    folder = tmp_path_factory.mktemp("refs")
    found = []
    for kind, colour, shape, word in (
        (AttributeKind.APPEARANCE, "red", "circle", "sks"),
        (AttributeKind.SHAPE, "blue", "triangle", "cat"),  # applied together: its own word
    ):
        path = folder / f"{kind}.png"
        draw_reference(colour=colour, shape=shape).save(path)
        reference = load_reference(path, demo.resolution)
        settings = TuningSettings(kind=kind, steps=30, seed=2, learning_rate=3e-3, token=word)
        found.append(tune(demo, reference, settings, name=f"{colour} {shape}").attribute)
    return found


def test_lambda_zero_reproduces_the_base_image(
    model: BaseModel, attributes: list[Attribute]
) -> None:
    settings = RenderSettings(prompt=PROMPT, seeds=[7], steps=8)
    base = render(model, settings)[0].image
    zero = render(model, settings, [(attributes[0], 0.0), (attributes[1], 0.0)])[0].image
    one = render(model, settings, [(attributes[0], 1.0)])[0].image
    again = render(model, settings)[0].image
    assert zero.tobytes() == base.tobytes()
    assert one.tobytes() != base.tobytes()
    assert again.tobytes() == base.tobytes()  # nothing stays merged between renders


@pytest.mark.parametrize(
    ("sampler", "schedule"),
    [("ddim", "karras"), ("euler", "karras"), ("dpmpp2m", "simple"), ("dpmpp2m", "model")],
)
def test_plain_diffusers_pipeline_reproduces_the_image(
    model: BaseModel, attributes: list[Attribute], sampler: str, schedule: str
) -> None:
    settings = RenderSettings(
        prompt=PROMPT,
        negative_prompt="blurry",
        seeds=[11],
        steps=6,
        sampler=sampler,
        schedule=schedule,
        guidance=6.0,
    )
    ours = render(model, settings, [(attributes[0], 0.8), (attributes[1], 1.2)])[0].image

    plain = StableDiffusionPipeline.from_pretrained(
        model.source if model.source != "demo" else _demo_dir(),
        safety_checker=None,
        requires_safety_checker=False,
    )
    with torch.no_grad():
        for attribute, lam in ((attributes[0], 0.8), (attributes[1], 1.2)):
            for path, (a, b) in attribute.factors.items():
                plain.unet.get_submodule(path).weight += lam * delta_weight(a, b)
    plain.scheduler = make_scheduler(sampler, plain.scheduler.config, schedule)
    plain.set_progress_bar_config(disable=True)
    timesteps = schedule_timesteps(sampler, schedule, 6, plain.scheduler.config)
    theirs = plain(
        PROMPT,
        negative_prompt="blurry",
        num_inference_steps=6,
        timesteps=timesteps,
        guidance_scale=6.0,
        generator=torch.Generator("cpu").manual_seed(11),
    ).images[0]
    _assert_same_picture(ours, theirs)
    single = RenderSettings(
        prompt=PROMPT, seeds=[11], steps=6, sampler=sampler, schedule=schedule, guidance=6.0
    )
    mine = render(model, single)[0].image
    base_plain = StableDiffusionPipeline.from_pretrained(
        _demo_dir(), safety_checker=None, requires_safety_checker=False
    )
    base_plain.scheduler = make_scheduler(sampler, base_plain.scheduler.config, schedule)
    base_plain.set_progress_bar_config(disable=True)
    reference = base_plain(
        PROMPT,
        num_inference_steps=6,
        timesteps=timesteps,
        guidance_scale=6.0,
        generator=torch.Generator("cpu").manual_seed(11),
    ).images[0]
    _assert_same_picture(mine, reference)


def _assert_same_picture(ours: Image.Image, theirs: Image.Image) -> None:
    # Two model instances (ours in memory of its own, diffusers' in its files' memory maps)
    # may run other CPU kernels, whose last float bits differ: allow one level of 255.
    difference = np.abs(np.asarray(ours, np.int16) - np.asarray(theirs, np.int16))
    assert ours.size == theirs.size and difference.max() <= PIXEL_TOLERANCE


def _demo_dir() -> Path:
    from ostaf.models.demo_model import demo_model_dir

    return demo_model_dir()


def test_render_job_writes_pngs_with_metadata(
    model: BaseModel, attributes: list[Attribute], tmp_path: Path
) -> None:
    from ostaf.library.attribute_file import save_attribute

    path = save_attribute(tmp_path / "look.safetensors", attributes[0])
    service = OstafService()
    service._model, service._model_choice = model, ModelChoice(device="cpu")
    settings = RenderSettings(
        prompt="a red, shiny: vase",
        negative_prompt="blur",
        seeds=[1, 2],
        steps=4,
        attributes=[AppliedAttribute(path, 1.25)],
    )
    outcome = service.render(
        RenderJob(settings, tmp_path / "out", ModelChoice(device="cpu")),
    )
    assert [p.name for p in outcome.paths] == ["00000-1.png", "00001-2.png"]
    parameters, record = read_png_metadata(outcome.paths[1])
    assert parameters is not None and record is not None
    parsed = parse_a1111(parameters)
    assert parsed["prompt"] == "a red, shiny: vase"
    assert parsed["negative_prompt"] == "blur"
    values = parsed["values"]
    assert values["Seed"] == "2" and values["Steps"] == "4" and values["Sampler"] == "DPM++ 2M"
    assert values["Schedule type"] == "Karras" and record["schedule"] == "karras"
    # A diffusers folder has no file whose SHA-256 A1111 could know: no Model hash.
    assert values["Size"] == "64x64" and "Model hash" not in values
    assert record["model"]["fingerprint"] == model.fingerprint and record["model"]["sha256"] is None
    assert values["OSTAF attribute"] == "red circle" and values["OSTAF lambda"] == "1.25"
    assert record["attributes"][0]["intensity"] == 1.25
    assert record["attributes"][0]["content_hash"] == attributes[0].content_hash()
    again = service.render(RenderJob(settings, tmp_path / "out", ModelChoice(device="cpu")))
    assert [p.name for p in again.paths] == ["00002-1.png", "00003-2.png"]
    assert again.paths[0].read_bytes() == outcome.paths[0].read_bytes()


def test_cancel_stops_rendering(model: BaseModel) -> None:
    from ostaf.errors import Cancelled
    from ostaf.progress import CancelToken

    token = CancelToken()
    seen = []

    def on_progress(report) -> None:  # type: ignore[no-untyped-def]
        seen.append(report.step)
        if report.step == 2:
            token.cancel()

    with pytest.raises(Cancelled):
        render(model, RenderSettings(prompt=PROMPT, seeds=[1, 2], steps=10), (), on_progress, token)
    assert seen == [1, 2]


def test_no_guidance_given_renders_at_the_models_own(
    model: BaseModel, sdxl: BaseModel, tmp_path: Path
) -> None:
    """Guidance None means the model's: 5 for the demo models (what their benchmark uses),
    an SDXL model's family's 5, an SD 1.x folder's 7.5; the metadata records the value used."""
    import shutil

    from ostaf.models.base_model import load_base_model
    from ostaf.models.demo_model import MARKER

    plain = RenderSettings(prompt=PROMPT, seeds=[3], steps=4)
    (image,) = render(model, plain)
    assert model.guidance == 5.0 and image.record["guidance"] == 5.0
    assert parse_a1111(image.parameters)["values"]["CFG scale"] == "5.0"
    (given,) = render(model, RenderSettings(prompt=PROMPT, seeds=[3], steps=4, guidance=5.0))
    assert given.image.tobytes() == image.image.tobytes()
    (other,) = render(model, RenderSettings(prompt=PROMPT, seeds=[3], steps=4, guidance=7.5))
    assert other.image.tobytes() != image.image.tobytes()

    assert sdxl.guidance == 5.0
    assert (
        render(sdxl, RenderSettings(prompt=PROMPT, seeds=[1], steps=2))[0].record["guidance"] == 5.0
    )

    copy = shutil.copytree(_demo_dir(), tmp_path / "demo-copy")
    assert load_base_model(copy, device="cpu").guidance == 5.0  # a copy is still the demo
    (copy / MARKER).unlink()
    assert load_base_model(copy, device="cpu").guidance == 7.5  # an SD 1.x folder

"""Prior preservation: a second loss keeps the base model's prediction for the description
without the attribute, so that the offsets act through the placeholder."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ostaf.errors import SettingsError
from ostaf.images import load_reference
from ostaf.method.offsets import offset_layers, set_terms
from ostaf.method.regions import AttributeKind, prior_prompt
from ostaf.method.tuning import tune
from ostaf.models.base_model import BaseModel
from ostaf.requests import KIND_TUNING, TuningSettings


@pytest.mark.parametrize(
    ("kind", "prompt", "class_word", "kept"),
    [
        (
            AttributeKind.STYLE,
            "an orange plain circle, sks style, on a sky background",
            "",
            "an orange plain circle, on a sky background",
        ),
        (
            AttributeKind.STYLE,
            "a painting of a picture in sks style",
            "",
            "a painting of a picture",
        ),
        (
            AttributeKind.SHAPE,
            "a white plain sks, outline style, on a teal background",
            "shape",
            "a white plain shape, outline style, on a teal background",
        ),
        (AttributeKind.APPEARANCE, "a sks triangle, flat style", "", "a triangle, flat style"),
        (AttributeKind.APPEARANCE, "a photo of a sks vase", "vase", "a photo of a vase"),
        (AttributeKind.SHAPE, "a photo of sksy sks", "", "a photo of sksy shape"),
        (AttributeKind.SHAPE, "a red sks on a table", "vase", "a red vase on a table"),
    ],
)
def test_the_prior_prompt_is_the_description_without_the_attribute(
    kind: AttributeKind, prompt: str, class_word: str, kept: str
) -> None:
    assert prior_prompt(kind, prompt, "sks", class_word) == kept


def test_the_prior_weight_is_checked_and_recorded() -> None:
    for bad in (-0.5, 11.0, float("nan"), "1"):
        with pytest.raises(SettingsError, match="prior-preservation weight"):
            TuningSettings(kind=AttributeKind.STYLE, prior=bad).validate()  # type: ignore[arg-type]
    settings = TuningSettings(kind=AttributeKind.STYLE, prior=0.5)
    assert TuningSettings.from_record(settings.to_record()) == settings
    older = settings.to_record()
    del older["prior"]
    assert TuningSettings.from_record(older).prior == 0.0  # files from before: no prior
    for kind in AttributeKind:
        defaults = TuningSettings.for_kind(kind)
        assert defaults.prior == KIND_TUNING[kind].prior
        assert defaults.strength == KIND_TUNING[kind].strength


def _drift(model: BaseModel, factors: dict, prompt: str) -> float:
    """How far the tuned U-Net's prediction for `prompt` moves from the base model's."""
    unet = model.unet
    latents = torch.randn(4, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    t = torch.tensor([550, 700, 850, 950])  # inside shape's window
    text = model.family.encode_prompt(model.pipe, prompt, torch.device("cpu"), (64, 64)).hidden
    text = text.expand(4, -1, -1)
    with torch.no_grad(), offset_layers(unet, sorted(factors)) as wrappers:
        base = unet(latents, t, encoder_hidden_states=text).sample
        set_terms(wrappers, [(factors, 1.0)])
        tuned = unet(latents, t, encoder_hidden_states=text).sample
    return float((tuned - base).pow(2).mean())


def test_the_prior_keeps_the_prompt_without_the_placeholder(
    model: BaseModel, reference_png: Path
) -> None:
    reference = load_reference(reference_png, model.resolution)
    caption = "a red {token}, flat style, on a white background"
    kept = "a red shape, flat style, on a white background"
    drift = {}
    for weight in (0.0, 4.0):
        settings = TuningSettings.for_kind(
            AttributeKind.SHAPE,
            steps=40,
            learning_rate=3e-3,
            caption=caption,
            prior=weight,
            embedding_rate=0.0,  # the offsets alone: a learned word takes part of the change
        )
        result = tune(model, reference, settings)
        assert result.attribute.meta.tuning["prior"] == weight
        drift[weight] = _drift(model, result.attribute.factors, kept)
        model.merger.restore()
    assert drift[0.0] > 0
    assert drift[4.0] < 0.5 * drift[0.0], drift


def test_the_strength_scales_the_stored_offsets_exactly(
    model: BaseModel, reference_png: Path
) -> None:
    reference = load_reference(reference_png, model.resolution)
    found = {}
    for strength in (1.0, 0.5):
        settings = TuningSettings.for_kind(AttributeKind.SHAPE, steps=3, strength=strength)
        attribute = tune(model, reference, settings).attribute
        assert attribute.meta.tuning["strength"] == strength
        found[strength] = attribute.factors
    for path, (a, b) in found[1.0].items():
        half_a, same_b = found[0.5][path]
        assert torch.equal(half_a, a * 0.5) and torch.equal(same_b, b)
    for bad in (0.0, 5.0, float("inf")):
        with pytest.raises(SettingsError, match="strength"):
            TuningSettings(kind=AttributeKind.SHAPE, strength=bad).validate()

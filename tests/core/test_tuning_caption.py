"""Tuning on the reference's own description, per-kind timesteps and per-kind presets:
what the attribute benchmark made the defaults (BENCHMARKS.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from diffusers import DDPMScheduler

from ostaf.errors import SettingsError
from ostaf.images import load_reference
from ostaf.method.regions import (
    DEFAULT_TOKEN,
    TIMESTEPS_BY_KIND,
    AttributeKind,
    caption_names_token,
    suggested_caption,
    timestep_window,
    tuning_prompt,
)
from ostaf.method.tuning import _noisy_samples, _prepare, tune
from ostaf.models.base_model import BaseModel
from ostaf.requests import KIND_TUNING, PRESETS, TuningSettings, preset_steps


def test_the_description_replaces_the_template_and_names_the_token() -> None:
    kind = AttributeKind.SHAPE
    assert tuning_prompt(kind, "zqx", caption="a red  {token}, on a white background") == (
        "a red zqx, on a white background"
    )
    assert tuning_prompt(kind, "zqx") == "a photo of a zqx object"  # no description: as before
    assert suggested_caption(kind, "vase") == "a photo of a {token} vase"
    assert caption_names_token("a {token} vase", "zqx")
    assert caption_names_token("a zqx vase, flat style", "zqx")
    assert not caption_names_token("a zqxy vase", "zqx")
    assert not caption_names_token("a red vase", "zqx")


def test_a_description_without_the_placeholder_is_refused_with_advice() -> None:
    with pytest.raises(SettingsError, match=r"must name the placeholder \{token\}"):
        TuningSettings(kind=AttributeKind.STYLE, caption="a cat on a sofa").validate()
    TuningSettings(kind=AttributeKind.STYLE, caption="a cat on a sofa, {token} style").validate()
    with pytest.raises(SettingsError, match="timestep range"):
        TuningSettings(kind=AttributeKind.SHAPE, timesteps=(0.6, 0.4)).validate()


def test_settings_records_keep_the_description_and_read_older_records() -> None:
    settings = TuningSettings(kind=AttributeKind.SHAPE, caption="a {token}", timesteps=(0.5, 1.0))
    again = TuningSettings.from_record(settings.to_record())
    assert again == settings
    older = settings.to_record()
    del older["caption"], older["timesteps"]
    assert TuningSettings.from_record(older) == TuningSettings(kind=AttributeKind.SHAPE)
    with pytest.raises(SettingsError, match="damaged"):
        TuningSettings.from_record({**settings.to_record(), "timesteps": [0.5]})


@pytest.mark.parametrize("kind", list(AttributeKind))
def test_kind_presets_come_from_one_table(kind: AttributeKind) -> None:
    settings = TuningSettings.for_kind(kind, seed=2)
    assert settings.learning_rate == KIND_TUNING[kind].learning_rate
    assert settings.steps == KIND_TUNING[kind].steps and settings.seed == 2
    fast = TuningSettings.for_kind(kind, "fast").steps
    assert fast == preset_steps(kind, "fast") < settings.steps < preset_steps(kind, "best")
    assert fast == round(KIND_TUNING[kind].steps * PRESETS["fast"].steps / 300)
    assert TuningSettings.for_kind(kind, learning_rate=0.01).learning_rate == 0.01


def test_timestep_windows_are_data_per_kind() -> None:
    assert TIMESTEPS_BY_KIND[AttributeKind.SHAPE] == (0.5, 1.0)
    assert timestep_window((0.5, 1.0), 1000) == (500, 1000)
    assert timestep_window((0.0, 1.0), 1000) == (0, 1000)
    assert timestep_window((0.9999, 1.0), 1000) == (999, 1000)


def test_samples_stay_in_the_window(model: BaseModel, reference_png: Path) -> None:
    reference = load_reference(reference_png, model.resolution)
    batch = _prepare(model, reference, "a zqx", False)
    scheduler = DDPMScheduler.from_config(model.pipe.scheduler.config)
    sampler = torch.Generator().manual_seed(0)
    _, t, _, _ = _noisy_samples(batch, scheduler, sampler, 256, torch.device("cpu"), (500, 1000))
    assert int(t.min()) >= 500 and int(t.max()) < 1000 and int(t.min()) < 520


def test_the_attribute_file_records_the_description_and_window(
    model: BaseModel, reference_png: Path
) -> None:
    reference = load_reference(reference_png, model.resolution)
    settings = TuningSettings.for_kind(
        AttributeKind.SHAPE, steps=2, caption="a red {token}, flat style"
    )
    tuning = tune(model, reference, settings).attribute.meta.tuning
    assert tuning["prompt"] == f"a red {DEFAULT_TOKEN}, flat style"
    assert tuning["caption"] == "a red {token}, flat style"
    assert (tuning["timestep_low"], tuning["timestep_high"]) == (0.5, 1.0)

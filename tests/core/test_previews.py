"""Tuning previews render the kind's probe prompt: the attribute on a subject of its own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from ostaf.images import load_reference
from ostaf.method import tuning
from ostaf.method.previews import NATURAL_PROBES, WORLD_PROBES, preview_prompt
from ostaf.method.regions import AttributeKind, tuning_prompt
from ostaf.models.base_model import BaseModel
from ostaf.requests import TuningSettings
from tests.world_vocabulary import unknown_words


@pytest.mark.parametrize("kind", list(AttributeKind))
def test_demo_probes_use_only_words_the_demo_model_knows(kind: AttributeKind) -> None:
    prompt = preview_prompt(kind, "zwx", demo_world=True)
    assert unknown_words(prompt, "zwx") == []
    assert prompt.split().count("zwx") + prompt.count("zwx,") == 1


@pytest.mark.parametrize("kind", list(AttributeKind))
def test_probes_carry_the_runs_own_token(kind: AttributeKind) -> None:
    for demo_world in (True, False):
        prompt = preview_prompt(kind, "qzt", demo_world)
        assert "qzt" in prompt and "sks" not in prompt
    assert set(WORLD_PROBES) == set(NATURAL_PROBES) == set(AttributeKind)


def test_tuning_previews_render_the_probe_not_the_tuning_prompt(
    model: BaseModel, reference_png: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rendered: list[str] = []

    def fake_preview(*args: Any) -> Image.Image:
        rendered.append(args[3])
        return Image.new("RGB", (8, 8))

    monkeypatch.setattr(tuning, "_preview", fake_preview)
    kind = AttributeKind.SHAPE
    settings = TuningSettings(kind=kind, steps=2, preview_every=1, token="zwx")
    reference = load_reference(reference_png, model.tuning_size(0))
    tuning.tune(model, reference, settings)
    probe = preview_prompt(kind, "zwx", demo_world=True)
    assert rendered == [probe, probe]
    assert probe != tuning_prompt(kind, "zwx")

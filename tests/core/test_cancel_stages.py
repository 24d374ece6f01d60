"""Cancel works at every stage: model loading, preprocessing, tuning, rendering, export."""

from __future__ import annotations

from pathlib import Path

import pytest

from ostaf.errors import Cancelled
from ostaf.images import load_reference
from ostaf.interop.lora_export import export_lora
from ostaf.method.regions import AttributeKind
from ostaf.method.tuning import tune
from ostaf.models.base_model import BaseModel, load_base_model
from ostaf.progress import CancelToken, Progress
from ostaf.requests import TuningSettings
from tests.core.attribute_factory import make_attribute


def _cancel_on(stage: str, token: CancelToken, step: int = 0):  # type: ignore[no-untyped-def]
    seen: list[Progress] = []

    def on_progress(report: Progress) -> None:
        seen.append(report)
        if report.stage == stage and report.step >= step:
            token.cancel()

    return on_progress, seen


def test_cancel_while_loading_the_model() -> None:
    token = CancelToken()
    on_progress, seen = _cancel_on("loading", token, step=1)
    with pytest.raises(Cancelled):
        load_base_model("demo", device="cpu", progress=on_progress, cancel=token)
    assert [r.step for r in seen] == [0, 1]  # stopped before moving the model to its device


def test_cancel_while_preparing_the_reference(model: BaseModel, reference_png: Path) -> None:
    token = CancelToken()
    on_progress, seen = _cancel_on("preparing", token)
    reference = load_reference(reference_png, model.resolution)
    with pytest.raises(Cancelled):
        tune(
            model,
            reference,
            TuningSettings(kind=AttributeKind.STYLE, steps=5),
            "",
            on_progress,
            token,
        )
    assert all(r.stage == "preparing" for r in seen)  # no tuning step ran


def test_cancel_before_an_export_is_written(demo: BaseModel, tmp_path: Path) -> None:
    token = CancelToken()
    token.cancel()
    out = tmp_path / "lora.safetensors"
    with pytest.raises(Cancelled):
        export_lora(make_attribute(demo), out, "kohya", 1.0, cancel=token)
    assert list(tmp_path.iterdir()) == []

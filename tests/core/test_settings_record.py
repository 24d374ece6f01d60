"""Tuning settings as a JSON record (the sidecar of a resumable run carries them): a record
reads back to equal settings, garbage is refused with the project's error, and the service
writes the settings and the model choice beside the checkpoint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ostaf.errors import SettingsError
from ostaf.method.regions import AttributeKind, Region
from ostaf.method.tuning_checkpoint import read_sidecar
from ostaf.models.base_model import BaseModel
from ostaf.progress import Progress
from ostaf.requests import ModelChoice, TuneJob, TuningSettings
from ostaf.service import OstafService


def _full() -> TuningSettings:
    return TuningSettings(
        kind=AttributeKind.STYLE,
        steps=123,
        learning_rate=3e-4,
        rank=8,
        seed=2**40,
        timesteps_per_step=3,
        class_word="teapot",
        token="zwx",
        crop=(4, 8, 90, 94),
        mask=Path("/somewhere/mask.png"),
        flip=False,
        rotate=True,
        region=Region(blocks=("mid_block", "up_blocks"), attentions=("attn2",)),
        preview_every=20,
        preview_steps=6,
        memory_saving=True,
        timesteps_per_pass=1,
        memory_budget_mb=2048,
    )


@pytest.mark.parametrize("settings", [_full(), TuningSettings(kind=AttributeKind.SHAPE)])
def test_a_record_reads_back_to_equal_settings(settings: TuningSettings) -> None:
    record = json.loads(json.dumps(settings.to_record()))
    assert TuningSettings.from_record(record) == settings
    assert ("region" in record) == (settings.region is not None)


def test_unknown_keys_are_ignored() -> None:
    record = {**TuningSettings(kind=AttributeKind.APPEARANCE).to_record(), "future": 1}
    assert TuningSettings.from_record(record).kind is AttributeKind.APPEARANCE


GOOD = TuningSettings(kind=AttributeKind.APPEARANCE).to_record()


@pytest.mark.parametrize(
    "record",
    [
        None,
        [],
        "settings",
        {},
        {k: v for k, v in GOOD.items() if k != "kind"},
        {**GOOD, "kind": "colour"},
        {**GOOD, "kind": ["appearance"]},
        {**GOOD, "steps": "300"},
        {**GOOD, "steps": True},
        {**GOOD, "steps": 0},
        {**GOOD, "learning_rate": "fast"},
        {**GOOD, "learning_rate": float("nan")},
        {**GOOD, "learning_rate": True},
        {**GOOD, "seed": -1},
        {**GOOD, "crop": [1, 2, 3]},
        {**GOOD, "crop": "0,0,9,9"},
        {**GOOD, "crop": [0, 0, 9.5, 9]},
        {**GOOD, "mask": 5},
        {**GOOD, "region": {"blocks": ["nowhere"]}},
        {**GOOD, "region": "up_blocks"},
        {**GOOD, "token": 7},
        {**GOOD, "token": "two words"},
        {**GOOD, "class_word": None},
        {**GOOD, "flip": "yes"},
        {**GOOD, "flip": 1},
        {**GOOD, "memory_saving": None},
        {**GOOD, "kind": "shape", "flip": True},
        {**GOOD, "rotate": "no"},
        {**GOOD, "kind": "shape", "rotate": True},
    ],
)
def test_garbage_is_refused(record: Any) -> None:
    with pytest.raises(SettingsError):
        TuningSettings.from_record(record)


class Crash(Exception):
    """Stands for the process dying after a few steps."""


def test_the_sidecar_describes_the_whole_job(
    model: BaseModel, reference_png: Path, tmp_path: Path
) -> None:
    service = OstafService()
    service._model, service._model_choice = model, ModelChoice(device="cpu")
    settings = TuningSettings(kind=AttributeKind.SHAPE, steps=8, seed=3, class_word="ball")
    job = TuneJob(
        reference_png, settings, tmp_path / "a.safetensors", "Ball", ModelChoice(device="cpu"),
        checkpoint=tmp_path / "a.pt", checkpoint_interval_s=0.0,
    )  # fmt: skip

    def crash_at_4(report: Progress) -> None:
        if report.stage == "tuning" and report.step == 4:
            raise Crash

    with pytest.raises(Crash):
        service.tune(job, crash_at_4)
    record = read_sidecar(tmp_path / "a.pt")
    assert record is not None
    assert (record["image"], record["name"], record["step"]) == (str(reference_png), "Ball", 4)
    assert TuningSettings.from_record(record["settings"]) == settings
    assert ModelChoice(**record["model"]) == job.model
    assert len(record["losses"]) == 4

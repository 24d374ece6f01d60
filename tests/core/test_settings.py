"""settings.json: defaults, round trip, and damaged or newer files named clearly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ostaf.errors import SettingsError
from ostaf.settings import Settings, load_settings, save_settings


def test_missing_file_gives_defaults_and_round_trip(home: Path) -> None:
    assert load_settings() == Settings()
    chosen = Settings(model_source="/models/sd15", device="cpu", memory_saving=True)
    save_settings(chosen)
    assert load_settings() == chosen
    assert json.loads((home / "settings.json").read_text())["memory_saving"] is True


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "settings.json is damaged"),
        ('{"device": "tpu"}', "device 'tpu' is unknown"),
        ('{"memory_saving": "yes"}', r"settings\.json is damaged \(memory_saving: .*boolean"),
        # A wrong type names the file and the field (it said "base model is empty" before).
        ('{"model_source": 123}', r"settings\.json is damaged \(model_source: .*string"),
        ('{"model_source": ""}', r"settings\.json: base model is empty"),
        ('{"device": null}', r"settings\.json is damaged \(device: .*string"),
        ('{"schema_version": 99}', "written by a newer OSTAF"),
        ("[]", "settings.json is damaged"),
    ],
)
def test_bad_files_are_named(home: Path, content: str, message: str) -> None:
    (home / "settings.json").write_text(content)
    with pytest.raises(SettingsError, match=message):
        load_settings()

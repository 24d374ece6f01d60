"""User settings in settings.json (atomic writes; a damaged file is reported, kept aside and
replaced by defaults — never silently overwritten)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from pydantic import ConfigDict, with_config
from typing_extensions import TypedDict

from ostaf import paths
from ostaf.errors import SettingsError
from ostaf.file_reading import MiB, read_regular_text
from ostaf.library.atomic import atomic_write_text
from ostaf.records import RecordError, parse_record

SCHEMA_VERSION = 1
DEVICES = ("auto", "cuda", "mps", "cpu")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")


@dataclass
class Settings:
    """What the user chose in Settings; the field types are the schema settings.json is
    read with (values are then checked by `validate`)."""

    schema_version: int = SCHEMA_VERSION
    model_source: str = "demo"  # 'demo', a diffusers folder or a .safetensors checkpoint
    device: str = "auto"
    precision: str = "auto"
    output_dir: str = ""  # '' = the project's exports folder
    memory_saving: bool = False  # gradient checkpointing while tuning: slower, for small GPUs
    last_project: str = ""

    def validate(self) -> None:
        if self.device not in DEVICES:
            raise SettingsError(
                f"device {self.device!r} is unknown; use one of {', '.join(DEVICES)}"
            )
        if self.precision not in PRECISIONS:
            raise SettingsError(
                f"precision {self.precision!r} is unknown; use one of {', '.join(PRECISIONS)}"
            )
        if not isinstance(self.memory_saving, bool):
            raise SettingsError("memory_saving must be true or false")
        if not isinstance(self.model_source, str) or not self.model_source:
            raise SettingsError("base model is empty; choose 'demo' or a model path")


@with_config(ConfigDict(extra="ignore"))
class _Versioned(TypedDict, total=False):
    schema_version: int


def load_settings(path: Path | None = None) -> Settings:
    """Read settings.json; missing → defaults; damaged → SettingsError naming the file."""
    path = path or paths.settings_file()
    if not path.exists() and not path.is_symlink():
        return Settings()
    try:
        text = read_regular_text(path, MiB)
        version = parse_record(_Versioned, text).get("schema_version", SCHEMA_VERSION)
        if version > SCHEMA_VERSION:
            raise SettingsError(
                f"{path} was written by a newer OSTAF (schema {version}); update the app"
            )
        settings = parse_record(Settings, text)
    except (RecordError, OSError) as exc:
        raise SettingsError(
            f"{path} is damaged ({exc}); fix or delete it to start from the defaults"
        ) from exc
    try:
        settings.validate()
    except SettingsError as exc:
        raise SettingsError(f"{path}: {exc}; fix it in Settings or delete the file") from exc
    return settings


def save_settings(settings: Settings, path: Path | None = None) -> None:
    settings.validate()
    atomic_write_text(path or paths.settings_file(), json.dumps(asdict(settings), indent=2) + "\n")

"""User settings in settings.json (atomic writes; a damaged file is reported, kept aside and
replaced by defaults — never silently overwritten)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from ostaf import paths
from ostaf.errors import SettingsError
from ostaf.library.atomic import atomic_write_text

SCHEMA_VERSION = 1
DEVICES = ("auto", "cuda", "mps", "cpu")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")


@dataclass
class Settings:
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


def load_settings(path: Path | None = None) -> Settings:
    """Read settings.json; missing → defaults; damaged → SettingsError naming the file."""
    path = path or paths.settings_file()
    if not path.exists():
        return Settings()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        version = data.get("schema_version", SCHEMA_VERSION)
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise SettingsError(
                f"{path} was written by a newer OSTAF (schema {version}); update the app"
            )
        known = {f.name for f in fields(Settings)}
        settings = Settings(**{k: v for k, v in data.items() if k in known})
        settings.validate()
        return settings
    except SettingsError:
        raise
    except (ValueError, TypeError, OSError, RecursionError) as exc:
        raise SettingsError(
            f"{path} is damaged ({exc}); fix or delete it to start from the defaults"
        ) from exc


def save_settings(settings: Settings, path: Path | None = None) -> None:
    settings.validate()
    atomic_write_text(path or paths.settings_file(), json.dumps(asdict(settings), indent=2) + "\n")

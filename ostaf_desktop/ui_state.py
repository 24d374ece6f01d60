"""Window and per-project UI state, kept as JSON beside settings.json (not user settings:
losing this file only resets the layout)."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ostaf import paths
from ostaf.errors import StorageError
from ostaf.file_reading import MiB, read_regular_file
from ostaf.library.atomic import atomic_write_text
from ostaf.records import RecordError, parse_record

log = logging.getLogger(__name__)
FILE_NAME = "desktop.json"
MAX_FILE = 4 * MiB  # window state and a few lines per project: a few kB in practice


@dataclass
class ProjectUiState:
    """What a project looked like when it was last open (read through `parse_record`: every
    field is type-checked, unknown keys are ignored)."""

    reference: str = ""  # the reference image shown on the canvas
    crop: list[int] | None = None
    applied: dict[str, float] = field(default_factory=dict)  # attribute id → λ
    prompt: str = ""
    results: list[str] = field(default_factory=list)  # file names in the results strip, in order


@dataclass
class UiState:
    geometry: str = ""  # base64 of QMainWindow.saveGeometry()
    window_state: str = ""  # base64 of QMainWindow.saveState()
    splitters: dict[str, str] = field(default_factory=dict)  # base64 of QSplitter.saveState()
    demo_hint_dismissed: bool = False
    projects: dict[str, ProjectUiState] = field(default_factory=dict)

    def project(self, slug: str) -> ProjectUiState:
        return self.projects.setdefault(slug, ProjectUiState())


def ui_state_file() -> Path:
    return paths.data_dir() / FILE_NAME


def load_ui_state(path: Path | None = None) -> UiState:
    """The saved UI state; a missing or damaged file gives the defaults (logged), as does a
    pipe, a device or an oversized file (read through the capped regular-file reader)."""
    path = path or ui_state_file()
    try:
        return parse_record(UiState, read_regular_file(path, MAX_FILE))
    except FileNotFoundError:
        return UiState()
    except (OSError, RecordError) as exc:
        log.warning("ignoring the damaged UI state file %s: %s", path, exc)
        return UiState()


def save_ui_state(state: UiState, path: Path | None = None) -> None:
    """Write the UI state atomically; failures are logged, never fatal."""
    data: dict[str, Any] = asdict(state)
    try:
        atomic_write_text(path or ui_state_file(), json.dumps(data, indent=2) + "\n")
    except StorageError as exc:
        log.warning("could not save the UI state: %s", exc)

"""A project's interrupted tuning run: where its resumable state lives and what it was.

Every tuning run of the app checkpoints into `<project>/.resume/` (one run per project; a new
run replaces the old one). The painted mask is kept there too for the run's life, out of the
staging folder that is emptied whenever a project opens. The JSON sidecar the core writes
beside the checkpoint describes the job, so the app can offer to resume without torch. No Qt.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ostaf.errors import SettingsError
from ostaf.library.projects import Project
from ostaf.method.tuning_checkpoint import discard, read_sidecar
from ostaf.requests import ModelChoice, TuneJob, TuningSettings

log = logging.getLogger(__name__)
RESUME_FOLDER = ".resume"
CHECKPOINT_NAME = "tuning.pt"
MASK_NAME = "mask.png"
CHECKPOINT_INTERVAL_S = 10.0  # at most this much work is lost to a crash


def checkpoint_path(project: Project) -> Path:
    """Where the project's tuning runs keep their resumable state (the folder is created)."""
    folder = project.folder / RESUME_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    return folder / CHECKPOINT_NAME


def mask_path(project: Project) -> Path:
    """Where the running (or interrupted) run's mask is kept."""
    return project.folder / RESUME_FOLDER / MASK_NAME


@dataclass(frozen=True)
class InterruptedRun:
    """What an interrupted run was and how far it got; `problem` says why it cannot resume."""

    name: str
    step: int
    total: int
    checkpoint: Path
    image: Path | None = None
    settings: TuningSettings | None = None
    model: ModelChoice | None = None
    losses: tuple[float, ...] = ()
    problem: str = ""

    @property
    def resumable(self) -> bool:
        return not self.problem and self.settings is not None and self.image is not None

    def job(self, out: Path, learning_rate: float, memory_saving: bool) -> TuneJob:
        """The same job again, continuing from the checkpoint, with the given learning rate
        and memory saving (neither changes which run it is)."""
        if self.settings is None or self.image is None:
            raise SettingsError(f"the interrupted run '{self.name}' cannot be resumed")
        settings = replace(self.settings, learning_rate=learning_rate, memory_saving=memory_saving)
        settings.validate()
        return TuneJob(
            self.image,
            settings,
            out,
            self.name,
            self.model or ModelChoice(),
            checkpoint=self.checkpoint,
            checkpoint_interval_s=CHECKPOINT_INTERVAL_S,
        )


def find_interrupted(project: Project) -> InterruptedRun | None:
    """The project's interrupted run, or None; what a run that saved no state left behind
    (a mask) is removed. Call it only while no run of this project is going."""
    checkpoint = project.folder / RESUME_FOLDER / CHECKPOINT_NAME
    record = read_sidecar(checkpoint)
    if record is None:
        discard_interrupted(project)
        return None
    return parse_record(record, checkpoint)


def parse_record(record: dict[str, Any], checkpoint: Path) -> InterruptedRun:
    """Read a sidecar; a damaged or foreign one gives a run with a `problem`, never an error."""
    name = record.get("name") if isinstance(record.get("name"), str) else ""
    step = record.get("step")
    step = step if type(step) is int and step >= 0 else 0
    try:
        settings = TuningSettings.from_record(record.get("settings"))
        model = ModelChoice(**record["model"])
        image = Path(record["image"])
        if not all(isinstance(v, str) for v in (model.source, model.device, model.precision)):
            raise TypeError("the model choice is not text")
    except (SettingsError, KeyError, TypeError, ValueError) as exc:
        log.warning("cannot resume the run in %s: %s", checkpoint, exc)
        return InterruptedRun(
            name or "unnamed", step, 0, checkpoint, problem="its saved description is damaged"
        )
    name = name or f"{settings.kind.value.title()} of {image.stem}"
    losses = _losses(record.get("losses"), step)
    problem = "" if image.is_file() else f"its reference image {image} no longer exists"
    return InterruptedRun(
        name, step, settings.steps, checkpoint, image, settings, model, losses, problem
    )


def discard_interrupted(project: Project) -> None:
    """Remove the project's checkpoint, its sidecar and the kept mask."""
    folder = project.folder / RESUME_FOLDER
    discard(folder / CHECKPOINT_NAME)
    (folder / MASK_NAME).unlink(missing_ok=True)


def _losses(values: object, step: int) -> tuple[float, ...]:
    """The saved losses of steps 1..step, or none when they do not add up."""
    if not isinstance(values, list) or len(values) != step:
        return ()
    if not all(type(v) in (int, float) and math.isfinite(v) for v in values):
        return ()
    return tuple(float(v) for v in values)

"""A project's interrupted tuning run: where its resumable state lives and what it was.

Every tuning run of the app checkpoints into `<project>/.resume/` (one run per project; a new
run replaces the old one). The painted mask and a copy of the reference image are kept there
too for the run's life, out of the staging folder that is emptied whenever a project opens:
a resumed run reads only files inside its project, and a sidecar naming any other path (a
file elsewhere, a network share) is refused. The JSON sidecar the core writes beside the
checkpoint describes the job, so the app can offer to resume without torch. No Qt.
"""

from __future__ import annotations

import logging
import math
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ostaf.decompose_request import ALL_KINDS, DecomposeJob, DecomposeSettings
from ostaf.errors import ProjectError, SettingsError, StorageError
from ostaf.library.atomic import atomic_write_bytes, describe_os_error
from ostaf.library.project_paths import entry_kind, inside, library_folder, make_library_folder
from ostaf.library.projects import Project
from ostaf.method.regions import AttributeKind
from ostaf.method.tuning_checkpoint import DamagedStateError, discard, load_sidecar
from ostaf.requests import ModelChoice, TuneJob, TuningSettings

log = logging.getLogger(__name__)
RESUME_FOLDER = ".resume"
CHECKPOINT_NAME = "tuning-state.safetensors"
LEGACY_CHECKPOINTS = ("tuning.pt",)  # torch files of older versions: never read, removed
MASK_NAME = "mask.png"
REFERENCE_FOLDER = "reference"
CHECKPOINT_INTERVAL_S = 10.0  # at most this much work is lost to a crash


def resume_folder(project: Project, *parts: str, create: bool = False) -> Path:
    """The project's run folder (or a folder in it), never a link out of the project
    (ProjectError naming the link); `create` makes what is missing inside the project."""
    check = make_library_folder if create else library_folder
    return check(project.folder, RESUME_FOLDER, *parts)


def checkpoint_path(project: Project) -> Path:
    """Where the project's tuning runs keep their resumable state (the folder is created)."""
    return resume_folder(project, create=True) / CHECKPOINT_NAME


def mask_path(project: Project) -> Path:
    """Where the running (or interrupted) run's mask is kept."""
    return resume_folder(project) / MASK_NAME


def keep_reference(project: Project, image: Path) -> Path:
    """A copy of the run's reference image inside the project, under its own name (so the
    attribute records the same file name), for the run's life."""
    target = resume_folder(project, REFERENCE_FOLDER, create=True) / image.name
    try:
        data = image.read_bytes()
    except OSError as exc:
        raise SettingsError(
            f"reference image {image} cannot be read: {describe_os_error(exc)}"
        ) from exc
    atomic_write_bytes(target, data)
    return target


@dataclass(frozen=True)
class InterruptedRun:
    """What an interrupted run was and how far it got; `problem` says why it cannot resume.
    A run that learnt all three kinds at once has `learn_all` (and its names) instead of
    `settings`."""

    name: str
    step: int
    total: int
    checkpoint: Path
    image: Path | None = None
    settings: TuningSettings | None = None
    model: ModelChoice | None = None
    losses: tuple[float, ...] = ()
    problem: str = ""
    learn_all: DecomposeSettings | None = None
    names: tuple[tuple[AttributeKind, str], ...] = ()

    @property
    def resumable(self) -> bool:
        known = self.settings is not None or self.learn_all is not None
        return not self.problem and known and self.image is not None

    @property
    def memory_saving(self) -> bool:
        """Whether the run saved memory (the three kinds of a learn-all run share it)."""
        if self.learn_all is not None:
            return self.learn_all.members[ALL_KINDS[0]].memory_saving
        return self.settings is not None and self.settings.memory_saving

    def learn_all_job(
        self, outs: dict[AttributeKind, Path], memory_saving: bool, rate_factor: float = 1.0
    ) -> DecomposeJob:
        """The same learn-all job again, continuing from the checkpoint; only memory saving
        and, after a diverged loss, every rate scaled by `rate_factor` may differ."""
        if self.learn_all is None or self.image is None:
            raise SettingsError(f"the interrupted run '{self.name}' cannot be resumed")
        members = {
            kind: replace(
                member,
                learning_rate=member.learning_rate * rate_factor,
                embedding_rate=member.embedding_rate * rate_factor,
                memory_saving=memory_saving,
            )
            for kind, member in self.learn_all.members.items()
        }
        settings = replace(self.learn_all, members=members)
        job = DecomposeJob(
            self.image,
            settings,
            outs,
            dict(self.names),
            self.model or ModelChoice(),
            checkpoint=self.checkpoint,
            checkpoint_interval_s=CHECKPOINT_INTERVAL_S,
        )
        job.validate()
        return job

    def job(self, out: Path, memory_saving: bool, learning_rate: float | None = None) -> TuneJob:
        """The same job again, continuing from the checkpoint with every setting of the run,
        except memory saving and, when given, a learning rate (neither changes which run
        it is)."""
        if self.settings is None or self.image is None:
            raise SettingsError(f"the interrupted run '{self.name}' cannot be resumed")
        rate = self.settings.learning_rate if learning_rate is None else learning_rate
        settings = replace(self.settings, learning_rate=rate, memory_saving=memory_saving)
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
    (a mask, a reference copy) is removed. Call it only while no run of this project is
    going."""
    try:
        checkpoint = resume_folder(project) / CHECKPOINT_NAME
    except ProjectError as exc:
        log.warning("no interrupted run is read from %s: %s", project.folder, exc)
        return None
    try:
        record = load_sidecar(checkpoint)
    except FileNotFoundError:
        discard_interrupted(project)
        return None
    except (DamagedStateError, OSError) as exc:
        log.warning("cannot resume the run in %s: %s", checkpoint, exc)
        damaged = "its saved description is damaged"
        return InterruptedRun("unnamed", 0, 0, checkpoint, problem=damaged)
    return parse_record(dict(record), checkpoint)


def parse_record(record: dict[str, Any], checkpoint: Path) -> InterruptedRun:
    """Read a sidecar; a damaged or foreign one gives a run with a `problem`, never an error.
    Its image and mask must be the copies kept beside the checkpoint."""
    name = record.get("name") if isinstance(record.get("name"), str) else ""
    step = record.get("step")
    step = step if type(step) is int and step >= 0 else 0
    if "learn_all" in record:
        return _parse_learn_all(record, checkpoint, str(name or ""), step)
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
    if _outside(checkpoint, image, settings.mask):
        log.warning("the run in %s names files outside its project: %s", checkpoint, image)
        return InterruptedRun(
            name or "unnamed",
            step,
            0,
            checkpoint,
            problem="its saved description names files outside the project",
        )
    name = name or f"{settings.kind.value.title()} of {image.stem}"
    losses = _losses(record.get("losses"), step)
    problem = "" if image.is_file() else f"its reference image {image} no longer exists"
    return InterruptedRun(
        name, step, settings.steps, checkpoint, image, settings, model, losses, problem
    )


def _parse_learn_all(
    record: dict[str, Any], checkpoint: Path, name: str, step: int
) -> InterruptedRun:
    """A learn-all run's sidecar (see parse_record)."""
    try:
        settings = DecomposeSettings.from_record(record.get("learn_all"))
        model = ModelChoice(**record["model"])
        image = Path(record["image"])
        names = record.get("names") or {}
        if not isinstance(names, dict) or not all(isinstance(v, str) for v in names.values()):
            raise TypeError("the names are not text")
        named = tuple((AttributeKind(kind), value) for kind, value in names.items())
        if not all(isinstance(v, str) for v in (model.source, model.device, model.precision)):
            raise TypeError("the model choice is not text")
    except (SettingsError, KeyError, TypeError, ValueError) as exc:
        log.warning("cannot resume the run in %s: %s", checkpoint, exc)
        return InterruptedRun(
            name or "unnamed", step, 0, checkpoint, problem="its saved description is damaged"
        )
    name = name or f"All three of {image.stem}"
    if _outside(checkpoint, image, settings.members[ALL_KINDS[0]].mask):
        log.warning("the run in %s names files outside its project: %s", checkpoint, image)
        return InterruptedRun(
            name,
            step,
            0,
            checkpoint,
            problem="its saved description names files outside the project",
        )
    problem = "" if image.is_file() else f"its reference image {image} no longer exists"
    losses = _losses(record.get("losses"), step)
    return InterruptedRun(
        name,
        step,
        settings.steps,
        checkpoint,
        image,
        None,
        model,
        losses,
        problem,
        learn_all=settings,
        names=named,
    )


def _outside(checkpoint: Path, image: Path, mask: Path | None) -> bool:
    """Whether a run's image or mask is not the copy kept beside its checkpoint."""
    kept = inside(checkpoint.parent / REFERENCE_FOLDER, image.name)
    if kept is None or image != kept:
        return True
    return mask is not None and mask != checkpoint.parent / MASK_NAME


def discard_interrupted(project: Project) -> None:
    """Remove the project's checkpoint, its sidecar, the kept mask and reference copy (and
    an older version's checkpoint, which is never read)."""
    try:
        folder = resume_folder(project)
    except ProjectError as exc:  # a link: nothing is deleted through it
        log.warning("nothing removed from %s: %s", project.folder, exc)
        return
    for name in (CHECKPOINT_NAME, *LEGACY_CHECKPOINTS):
        discard(folder / name)
    forget_kept_files(project)


def forget_kept_files(project: Project) -> None:
    """Remove the mask and reference copy kept for a run that will not be resumed."""
    try:
        folder = resume_folder(project)
    except ProjectError as exc:  # a link: nothing is deleted through it
        log.warning("nothing removed from %s: %s", project.folder, exc)
        return
    try:
        (folder / MASK_NAME).unlink(missing_ok=True)
        if entry_kind(folder / REFERENCE_FOLDER) == "folder":
            shutil.rmtree(folder / REFERENCE_FOLDER)
    except OSError as exc:
        raise StorageError(f"cannot tidy {folder}: {describe_os_error(exc)}") from exc


def _losses(values: object, step: int) -> tuple[float, ...]:
    """The saved losses of steps 1..step, or none when they do not add up."""
    if not isinstance(values, list) or len(values) != step:
        return ()
    if not all(type(v) in (int, float) and math.isfinite(v) for v in values):
        return ()
    return tuple(float(v) for v in values)

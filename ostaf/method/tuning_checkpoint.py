"""Resumable tuning: the small state of a run (hypernetwork, optimiser, sampler, losses) is
saved atomically every few seconds, so a crash, a kill or an out-of-memory loses little and
resuming gives exactly the result of an uninterrupted run under the same seed.

A checkpoint is a torch file read with `weights_only=True` (no code can run on load) plus a
JSON sidecar describing the job, readable without torch (the app offers to resume from it).
This module imports torch only inside the functions that need it.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ostaf.images import Reference
from ostaf.library.atomic import atomic_write_bytes, atomic_write_text
from ostaf.method.regions import Region
from ostaf.requests import TuningSettings

if TYPE_CHECKING:  # torch loads only where a checkpoint is written or read
    import torch

    from ostaf.models.base_model import BaseModel

SIDECAR_SUFFIX = ".json"


@dataclass
class Checkpointing:
    """Where a run keeps its resumable state, how often, and what the sidecar says of it."""

    path: Path
    interval_s: float = 10.0
    job: dict[str, Any] = field(default_factory=dict)


@dataclass
class TuningState:
    """Where a run stands after `step` steps."""

    key: str  # identity of the run: a checkpoint resumes only the run it came from
    step: int
    losses: list[float]
    hypernetwork: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    sampler: torch.Tensor  # the CPU generator's state


def run_key(
    model: BaseModel, reference: Reference, settings: TuningSettings, region: Region
) -> str:
    """What must be equal for a resumed run to continue the same run. The learning rate and
    the step count are left out on purpose: a diverged run may resume from its last good
    state with a lower rate, and a finished count may be extended."""
    mask = b"" if reference.mask is None else np.asarray(reference.mask).tobytes()
    parts = [
        model.architecture,
        model.fingerprint,
        reference.sha256,
        hashlib.sha256(np.asarray(reference.image).tobytes() + mask).hexdigest(),
        str(settings.kind),
        json.dumps(region.to_dict(), sort_keys=True),
        str(settings.seed),
        str(settings.rank),
        str(settings.timesteps_per_step),
        settings.class_word,
        settings.token,
        str(settings.flip),
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]


def save_state(path: Path, state: TuningState, job: dict[str, Any]) -> None:
    """Write the checkpoint and its sidecar atomically (sidecar last, so it never describes a
    checkpoint that is not there)."""
    import torch

    buffer = io.BytesIO()
    torch.save(
        {
            "key": state.key,
            "step": state.step,
            "losses": state.losses,
            "hypernetwork": state.hypernetwork,
            "optimizer": state.optimizer,
            "sampler": state.sampler,
        },
        buffer,
    )
    atomic_write_bytes(path, buffer.getvalue())
    atomic_write_text(
        sidecar(path),
        json.dumps({**job, "key": state.key, "step": state.step, "losses": state.losses}, indent=2),
    )


def load_state(path: Path) -> TuningState | None:
    """The saved state, or None when there is none or it cannot be read (then the run starts
    over: a damaged checkpoint must never stop a user from tuning)."""
    import torch

    if not path.is_file():
        return None
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
        return TuningState(
            key=str(data["key"]),
            step=int(data["step"]),
            losses=[float(v) for v in data["losses"]],
            hypernetwork=dict(data["hypernetwork"]),
            optimizer=dict(data["optimizer"]),
            sampler=data["sampler"],
        )
    except (OSError, RuntimeError, KeyError, TypeError, ValueError, EOFError):
        return None


def sidecar(path: Path) -> Path:
    return path.with_name(path.name + SIDECAR_SUFFIX)


def read_sidecar(path: Path) -> dict[str, Any] | None:
    """The job description saved beside a checkpoint (no torch), or None."""
    try:
        data = json.loads(sidecar(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) and path.is_file() else None


def discard(path: Path) -> None:
    """Remove a checkpoint and its sidecar."""
    path.unlink(missing_ok=True)
    sidecar(path).unlink(missing_ok=True)

"""Resumable tuning: the small state of a run (hypernetwork, optimiser, sampler, losses) is
saved atomically every few seconds, so a crash, a kill or an out-of-memory loses little and
resuming gives exactly the result of an uninterrupted run under the same seed.

A state is a `.safetensors` file: the tensors, plus one JSON record in its header (step,
losses, the optimiser's settings) checked against a typed schema when read, and then against
the run's own optimiser (`fit_optimizer_state`): every setting of the type and shape it has,
every tensor of the shape one of its steps keeps, every value finite. Nothing is ever
unpickled. Beside it, a JSON sidecar describes the job, readable without torch (the app offers
to resume from it). A state that cannot be read or used is set aside as `<name>.damaged` and
the run starts over. This module imports torch only inside the functions that need it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
from pydantic import ConfigDict, Field, JsonValue, with_config
from typing_extensions import TypedDict

from ostaf.file_reading import MiB, UnreadableFileError, read_regular_text
from ostaf.images import Reference
from ostaf.library.atomic import (
    TEMP_SUFFIX,
    atomic_write_bytes,
    atomic_write_text,
    remove_abandoned,
    storage_error,
)
from ostaf.method.regions import Region
from ostaf.records import RecordError, parse_record
from ostaf.requests import TuningSettings

if TYPE_CHECKING:  # torch loads only where a checkpoint is written or read
    import torch

    from ostaf.models.base_model import BaseModel

SIDECAR_SUFFIX = ".json"
DAMAGED_SUFFIX = ".damaged"
STATE_KEY = "ostaf-tuning-state"
STATE_FORMAT = 1
MAX_SIDECAR = 16 * MiB
Finite = Annotated[float, Field(allow_inf_nan=False)]
HYPERNETWORK, OPTIMIZER, SAMPLER = "hypernetwork/", "optimizer/", "sampler"
# Optimiser settings that pick a kernel, not the optimisation: the resuming run keeps its own
# (a state saved on a GPU resumes on a CPU).
KERNEL_SETTINGS = frozenset({"foreach", "fused", "capturable", "differentiable"})


class DamagedStateError(ValueError):
    """A saved state or its sidecar that cannot be used; the message says why."""


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


@dataclass
class StateRecord:
    """The JSON part of a saved state (in its header); the tensors hold the rest."""

    key: str
    step: Annotated[int, Field(ge=0)]
    losses: list[Finite]
    param_groups: list[dict[str, JsonValue]]  # the optimiser's settings, per group
    format_version: Annotated[int, Field(ge=1, le=STATE_FORMAT)] = STATE_FORMAT


@with_config(ConfigDict(extra="allow"))
class ModelRecord(TypedDict):
    source: str
    device: str
    precision: str


@with_config(ConfigDict(extra="allow"))
class RunRecord(TypedDict, total=False):
    """The sidecar: which job the state belongs to (the app reads it without torch)."""

    key: str
    step: Annotated[int, Field(ge=0)]
    losses: list[Finite]
    image: str
    out: str
    name: str
    settings: dict[str, JsonValue]  # TuningSettings.to_record(), read by from_record
    model: ModelRecord


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
        settings.caption,
        str(settings.timesteps),
    ]
    if settings.prior:  # (absent when off: states saved before the prior keep their key)
        parts.append(f"prior {settings.prior:g}")
    if settings.embedding_rate:  # (likewise)
        parts.append("embedding")
    if settings.rotate:  # (likewise)
        parts.append("rotate")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]


def state_bytes(state: TuningState) -> bytes:
    """The state as safetensors bytes: tensors by name, the rest as a JSON record."""
    from safetensors.torch import save

    tensors = {f"{HYPERNETWORK}{k}": v for k, v in state.hypernetwork.items()}
    for index, values in state.optimizer.get("state", {}).items():
        for name, value in values.items():
            tensors[f"{OPTIMIZER}{int(index)}/{name}"] = value
    tensors[SAMPLER] = state.sampler
    record = StateRecord(
        state.key,
        state.step,
        list(state.losses),
        [_json_group(group) for group in state.optimizer["param_groups"]],
    )
    text = json.dumps(asdict(record), sort_keys=True)
    # Copies: safetensors refuses tensors that share memory (and must not see the live ones).
    copies = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    return save(copies, metadata={STATE_KEY: text})


def save_state(path: Path, state: TuningState, job: dict[str, Any]) -> None:
    """Write the checkpoint and its sidecar atomically (sidecar last, so it never describes a
    checkpoint that is not there)."""
    atomic_write_bytes(path, state_bytes(state))
    record = {**job, "key": state.key, "step": state.step, "losses": list(state.losses)}
    atomic_write_text(sidecar(path), json.dumps(record, indent=2))


def load_state(path: Path) -> TuningState | None:
    """The saved state, or None when there is none; DamagedStateError when it cannot be
    read (a torn, foreign or older-format file)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.exists():
        return None
    try:
        if not path.is_file():
            raise DamagedStateError("it is not a file")
        tensors = load_file(str(path), device="cpu")
        record = parse_record(StateRecord, _header(path).get(STATE_KEY, ""))
    except (SafetensorError, OSError, RecordError) as exc:
        raise DamagedStateError(str(exc)) from exc
    hyper: dict[str, torch.Tensor] = {}
    optimizer: dict[int, dict[str, torch.Tensor]] = {}
    sampler = None
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(tensor.isfinite().all()):
            raise DamagedStateError(f"its tensor {name} holds values that are not finite")
        if name.startswith(HYPERNETWORK):
            hyper[name.removeprefix(HYPERNETWORK)] = tensor
        elif name.startswith(OPTIMIZER):
            index, _, key = name.removeprefix(OPTIMIZER).partition("/")
            if not index.isascii() or not index.isdigit() or not key:
                raise DamagedStateError(f"unexpected tensor {name}")
            optimizer.setdefault(int(index), {})[key] = tensor
        elif name == SAMPLER:
            sampler = tensor
        else:
            raise DamagedStateError(f"unexpected tensor {name}")
    if sampler is None or len(record.losses) != record.step:
        raise DamagedStateError("its sampler state or losses are missing")
    groups = [_torch_group(group) for group in record.param_groups]
    return TuningState(
        record.key,
        record.step,
        list(record.losses),
        hyper,
        {"state": optimizer, "param_groups": groups},
        sampler,
    )


def fit_optimizer_state(saved: dict[str, Any], optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """`saved` (a loaded state's optimiser part) checked against the run's own `optimizer`:
    the same groups and settings, each of the type and shape it has; per parameter the
    tensors one of its steps keeps, of their shapes. DamagedStateError names the first
    difference; the kernel settings are taken from `optimizer`."""
    own = optimizer.state_dict()
    groups = saved["param_groups"]
    if len(groups) != len(own["param_groups"]):
        raise DamagedStateError(
            f"it has {len(groups)} optimiser groups; this run has {len(own['param_groups'])}"
        )
    fitted = []
    for index, (mine, theirs) in enumerate(zip(own["param_groups"], groups, strict=True)):
        where = f"optimiser group {index}"
        if set(theirs) != set(mine):
            raise DamagedStateError(
                f"{where} has the settings {sorted(theirs)}; this run's has {sorted(mine)}"
            )
        if theirs["params"] != mine["params"]:
            raise DamagedStateError(f"{where} holds other parameters than this run's")
        for key, value in mine.items():
            if key != "params" and key not in KERNEL_SETTINGS:
                _check_setting(f"{where} setting {key}", theirs[key], value)
        fitted.append({**theirs, **{k: v for k, v in mine.items() if k in KERNEL_SETTINGS}})
    expected = _one_step_state(optimizer)
    for index, values in saved["state"].items():
        wanted = expected.get(index)
        if wanted is None or set(values) != set(wanted):
            raise DamagedStateError(
                f"the optimiser state of parameter {index} holds {sorted(values)}; this run's "
                f"optimiser keeps {sorted(wanted or {})}"
            )
        for name, tensor in values.items():
            shape, like = tuple(tensor.shape), tuple(wanted[name].shape)
            if shape != like or not tensor.is_floating_point():
                raise DamagedStateError(
                    f"the optimiser's {name} of parameter {index} is a {tensor.dtype} of shape "
                    f"{list(shape)}; this run's is of shape {list(like)}"
                )
    return {"state": saved["state"], "param_groups": fitted}


def _check_setting(where: str, value: object, like: object) -> None:
    """`value` of the type and shape of `like`, the run's own setting: a yes/no or a
    choice equal to it, numbers finite and not negative (as every setting of AdamW)."""
    if isinstance(like, tuple | list):
        if not isinstance(value, tuple | list) or len(value) != len(like):
            raise DamagedStateError(f"{where} is {value!r}; this run's is {list(like)!r}")
        for part, own in zip(value, like, strict=True):
            _check_setting(where, part, own)
    elif isinstance(like, int | float) and not isinstance(like, bool):
        plain = isinstance(value, int | float) and not isinstance(value, bool)
        number = float(value) if isinstance(value, int | float) and plain else math.nan
        if not math.isfinite(number) or number < 0:
            raise DamagedStateError(f"{where} is {value!r}, not a finite number of at least 0")
        if "betas" in where and number >= 1:
            raise DamagedStateError(f"{where} is {value!r}; a beta must be below 1")
    elif type(value) is not type(like) or value != like:
        raise DamagedStateError(f"{where} is {value!r}; this run's optimiser uses {like!r}")


def _one_step_state(optimizer: torch.optim.Optimizer) -> dict[int, dict[str, torch.Tensor]]:
    """What `optimizer` keeps per parameter after a step: one step of a copy of it, with its
    settings, on zero tensors shaped like its parameters (the run's own are untouched)."""
    import torch

    groups = []
    for group in optimizer.param_groups:
        params = [torch.zeros_like(p, requires_grad=True) for p in group["params"]]
        for param in params:
            param.grad = torch.zeros_like(param)
        groups.append({**group, "params": params})
    # Every torch optimiser takes its groups alone: each group holds all its settings.
    probe = type(optimizer)(groups)  # type: ignore[call-arg]
    probe.step()
    return dict(probe.state_dict()["state"])


def set_aside(path: Path) -> Path:
    """Move a damaged state out of the way (kept for a look, never read again) and remove its
    sidecar; returns where it went."""
    target = path.with_name(path.name + DAMAGED_SUFFIX)
    try:
        os.replace(path, target)
        sidecar(path).unlink(missing_ok=True)
    except OSError as exc:
        raise storage_error(path, exc) from exc
    return target


def sweep_leftovers(*paths: Path) -> int:
    """Remove the half-written temporary files a killed run left beside `paths` (those of
    its output, state and sidecar only); returns how many."""
    removed = 0
    for path in paths:
        if not path.parent.is_dir():
            continue
        for leftover in path.parent.glob(f".{_glob_escape(path.name)}.*{TEMP_SUFFIX}"):
            if remove_abandoned(leftover):  # a live writer's file stays
                removed += 1
    return removed


def sidecar(path: Path) -> Path:
    return path.with_name(path.name + SIDECAR_SUFFIX)


def load_sidecar(path: Path) -> RunRecord:
    """The job description saved beside a checkpoint (no torch); FileNotFoundError when
    there is none, DamagedStateError when it does not fit its schema."""
    if not path.is_file():
        raise FileNotFoundError(path)
    try:
        return parse_record(RunRecord, read_regular_text(sidecar(path), MAX_SIDECAR))
    except FileNotFoundError:
        raise
    except (UnreadableFileError, RecordError) as exc:
        raise DamagedStateError(str(exc)) from exc


def read_sidecar(path: Path) -> RunRecord | None:
    """The job description saved beside a checkpoint, or None when there is none or it is
    damaged."""
    try:
        return load_sidecar(path)
    except (OSError, DamagedStateError):
        return None


def discard(path: Path) -> None:
    """Remove a checkpoint and its sidecar."""
    path.unlink(missing_ok=True)
    sidecar(path).unlink(missing_ok=True)


def _header(path: Path) -> dict[str, str]:
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as handle:
        return dict(handle.metadata() or {})


def _json_group(group: dict[str, Any]) -> dict[str, Any]:
    """An optimiser group's settings as JSON values (tuples become lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in group.items()}


def _torch_group(group: dict[str, JsonValue]) -> dict[str, Any]:
    """The inverse of `_json_group` for the values torch keeps as tuples."""
    params = group.get("params")
    if not isinstance(params, list) or not all(type(p) is int for p in params):
        raise DamagedStateError("the optimiser's parameter list is damaged")
    return {k: tuple(v) if k == "betas" and isinstance(v, list) else v for k, v in group.items()}


def _glob_escape(name: str) -> str:
    return "".join(f"[{ch}]" if ch in "*?[]" else ch for ch in name)

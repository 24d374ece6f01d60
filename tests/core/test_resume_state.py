"""The saved state of a tuning run: safetensors + JSON, never unpickled; a damaged one is set
aside and the run starts over; the first state is saved before step 1; what a killed run left
half-written is swept; an output that cannot be written is found before the model loads."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save

from ostaf.cli.main import main
from ostaf.errors import OstafError, SettingsError, StorageError
from ostaf.method.regions import AttributeKind
from ostaf.method.tuning_checkpoint import STATE_KEY, read_sidecar
from ostaf.models.base_model import BaseModel
from ostaf.progress import Progress
from ostaf.requests import ModelChoice, TuneJob, TuningSettings
from ostaf.service import OstafService

STEPS = 8


class Crash(Exception):
    """Stands for the process dying."""


class _Payload:
    """Unpickling this would create a marker file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path.touch, (self.marker,))


def _service(model: BaseModel) -> OstafService:
    service = OstafService()
    service._model, service._model_choice = model, ModelChoice(device="cpu")
    return service


def _job(reference: Path, out: Path, resume: bool = True, interval: float = 0.0) -> TuneJob:
    settings = TuningSettings(kind=AttributeKind.APPEARANCE, steps=STEPS, seed=2)
    checkpoint = out.with_name(out.name + ".resume") if resume else None
    return TuneJob(
        reference, settings, out, "state", ModelChoice(device="cpu"),
        checkpoint=checkpoint, checkpoint_interval_s=interval,
    )  # fmt: skip


def _crash_at(step: int, stage: str = "tuning"):  # type: ignore[no-untyped-def]
    def on_progress(report: Progress) -> None:
        if report.stage == stage and report.step == step:
            raise Crash

    return on_progress


@pytest.fixture
def straight(model: BaseModel, reference_png: Path, tmp_path: Path) -> bytes:
    """The bytes an uninterrupted run writes."""
    return (
        _service(model)
        .tune(_job(reference_png, tmp_path / "s.safetensors", False))
        .path.read_bytes()
    )


def test_the_state_is_safetensors_and_resumes_without_unpickling(
    model: BaseModel,
    reference_png: Path,
    tmp_path: Path,
    straight: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "a.safetensors"
    job = _job(reference_png, out)
    with pytest.raises(Crash):
        _service(model).tune(job, _crash_at(5))
    assert job.checkpoint is not None
    with safe_open(str(job.checkpoint), framework="pt") as handle:
        assert STATE_KEY in (handle.metadata() or {})
        assert "sampler" in set(handle.keys())

    def no_unpickling(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the state was unpickled")

    monkeypatch.setattr(torch, "load", no_unpickling)
    monkeypatch.setattr(pickle, "load", no_unpickling)
    monkeypatch.setattr(pickle, "loads", no_unpickling)
    steps: list[int] = []
    _service(model).tune(job, lambda r: steps.append(r.step) if r.stage == "tuning" else None)
    assert steps == list(range(6, STEPS + 1))
    assert out.read_bytes() == straight


def test_a_run_that_dies_before_step_one_resumes(
    model: BaseModel, reference_png: Path, tmp_path: Path, straight: bytes
) -> None:
    """The first state is saved as soon as the reference is prepared: a run killed during
    its first step (an hour between periodic saves) still resumes, from step 0."""
    out = tmp_path / "early.safetensors"
    job = _job(reference_png, out, interval=3600.0)
    with pytest.raises(Crash):
        _service(model).tune(job, _crash_at(1))
    assert job.checkpoint is not None
    assert (read_sidecar(job.checkpoint) or {}).get("step") == 0
    steps: list[int] = []
    _service(model).tune(job, lambda r: steps.append(r.step) if r.stage == "tuning" else None)
    assert steps == list(range(1, STEPS + 1))
    assert out.read_bytes() == straight


@pytest.mark.parametrize("damage", ["garbage", "truncated", "pickle", "foreign", "wrong shapes"])
def test_a_damaged_state_is_set_aside_and_the_run_starts_over(
    model: BaseModel,
    reference_png: Path,
    tmp_path: Path,
    straight: bytes,
    damage: str,
) -> None:
    out = tmp_path / "d.safetensors"
    job = _job(reference_png, out)
    with pytest.raises(Crash):
        _service(model).tune(job, _crash_at(4))
    assert job.checkpoint is not None
    marker = tmp_path / "pwned"
    if damage == "garbage":
        job.checkpoint.write_bytes(b"\x80\x04garbage that is not a state")
    elif damage == "truncated":
        job.checkpoint.write_bytes(job.checkpoint.read_bytes()[:5000])
    elif damage == "pickle":  # what older versions wrote, or a planted payload
        job.checkpoint.write_bytes(pickle.dumps({"step": 3, "x": _Payload(marker)}))
    elif damage == "foreign":  # a safetensors file that is not a state
        job.checkpoint.write_bytes(save({"w": torch.ones(2)}, metadata={"x": "y"}))
    else:  # a state whose JSON and tensors do not fit this run's hypernetwork
        with safe_open(str(job.checkpoint), framework="pt") as handle:
            meta = handle.metadata() or {}
            tensors = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118
        tensors = {k: t[..., :1].clone() if t.ndim else t for k, t in tensors.items()}
        job.checkpoint.write_bytes(save(tensors, metadata=meta))
    notes: list[str] = []
    steps: list[int] = []

    def on_progress(report: Progress) -> None:
        notes.extend([report.note] if report.note else [])
        steps.extend([report.step] if report.stage == "tuning" else [])

    outcome = _service(model).tune(job, on_progress)
    assert steps[0] == 1 and out.read_bytes() == straight
    assert not marker.exists()
    aside = job.checkpoint.with_name(job.checkpoint.name + ".damaged")
    assert aside.exists()
    assert any("could not be read" in n and aside.name in n for n in notes)
    assert any("starts over" in n for n in outcome.notes)


def test_the_cli_says_so_and_starts_over(
    reference_png: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cli.safetensors"
    state = out.with_name(out.name + ".resume")
    state.write_bytes(b"torn")
    state.with_name(state.name + ".json").write_text('{"step": 3, "key": "x"}')
    code = main(
        ["tune", str(reference_png), "--attribute", "style", "--out", str(out), "--steps", "2",
         "--device", "cpu"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0, err
    assert "Traceback" not in err and "weights_only" not in err
    assert "could not be read" in err and "starts over" in err
    assert out.is_file() and not state.exists()


def test_leftovers_of_a_killed_run_are_swept(
    model: BaseModel, reference_png: Path, tmp_path: Path
) -> None:
    out = tmp_path / "k.safetensors"
    leftovers = [
        tmp_path / ".k.safetensors.resume.0123abcd.ostaf-tmp",  # the state, 2 MB on SD
        tmp_path / ".k.safetensors.resume.json.89abcdef.ostaf-tmp",
        tmp_path / ".k.safetensors.deadbeef.ostaf-tmp",
    ]
    for leftover in leftovers:
        leftover.write_bytes(b"half written")
    unrelated = tmp_path / ".other.safetensors.0123abcd.ostaf-tmp"
    unrelated.write_bytes(b"another output's")
    _service(model).tune(_job(reference_png, out))
    assert not any(p.exists() for p in leftovers)
    assert unrelated.exists()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted([unrelated.name, "k.safetensors", "reference.png"])


@pytest.mark.parametrize("problem", ["folder", "long name", "file as folder"])
def test_an_unwritable_output_is_found_before_the_model_loads(
    reference_png: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, problem: str
) -> None:
    if problem == "folder":
        out = tmp_path / "x.safetensors"
        out.mkdir()
    elif problem == "long name":
        out = tmp_path / ("n" * 236 + ".safetensors")  # fits alone, not with its state's name
    else:
        (tmp_path / "file").write_text("a file")
        out = tmp_path / "file" / "x.safetensors"

    def no_model(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the model was loaded before the output was checked")

    monkeypatch.setattr(OstafService, "model", no_model)
    with pytest.raises(StorageError, match="cannot write"):
        OstafService().tune(_job(reference_png, out))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--checkpoint-interval", "nan"], "is not a number"),
        (["--checkpoint-interval", "-1"], "checkpoint interval -1.0 must be"),
        (["--name", "x" * 121], "keep it to 120 at most"),
    ],
)
def test_impossible_run_settings_are_refused_before_the_run(
    reference_png: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    out = tmp_path / "v.safetensors"
    try:
        code = main(["tune", str(reference_png), "--attribute", "shape", "--out", str(out), *args])
    except SystemExit as exit_:  # argparse refuses some values itself
        code = int(exit_.code or 0)
    assert code == 2 and message in capsys.readouterr().err
    assert not out.exists()


def test_a_job_checks_its_name_and_interval(reference_png: Path, tmp_path: Path) -> None:
    job = _job(reference_png, tmp_path / "j.safetensors", interval=float("nan"))
    with pytest.raises(SettingsError, match="checkpoint interval"):
        job.validate()
    with pytest.raises(OstafError, match="120"):
        TuneJob(job.image, job.settings, job.out, "y" * 500).validate()


def _rewrite_state(path: Path, change: str) -> None:
    """Rewrite a saved state as a crafted one that keeps its run key: one optimiser setting
    mistyped in the JSON record, or one optimiser tensor of another shape."""
    import json

    with safe_open(str(path), framework="pt") as handle:
        meta = dict(handle.metadata() or {})
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118
    record = json.loads(meta[STATE_KEY])
    if change == "exp_avg shape":
        name = next(k for k in tensors if k.endswith("/exp_avg") and tensors[k].ndim == 2)
        tensors[name] = tensors[name][:1].clone()  # broadcasts against its parameter
    else:
        key, value = change.split("=", 1)
        record["param_groups"][0][key] = json.loads(value)
    meta[STATE_KEY] = json.dumps(record)
    path.write_bytes(save(tensors, metadata=meta))


@pytest.mark.parametrize(
    "change",
    [
        'eps="abc"',
        "betas=[0.9]",
        'weight_decay="x"',
        'maximize="x"',
        "amsgrad=true",
        "eps=-1",
        "betas=[0.9, 1.5]",
        "exp_avg shape",
    ],
)
def test_a_state_the_optimiser_cannot_use_is_set_aside(
    model: BaseModel, reference_png: Path, tmp_path: Path, straight: bytes, change: str
) -> None:
    """Mistyped optimiser settings passed the schema and crashed every rerun inside
    `optimizer.step()`; a wrong-shaped optimiser tensor ended in 'the loss became nan … lower
    the learning rate' and was resumed again. Each is a damaged state now: set aside, run
    over, the same bytes as an uninterrupted run."""
    out = tmp_path / "o.safetensors"
    job = _job(reference_png, out)
    with pytest.raises(Crash):
        _service(model).tune(job, _crash_at(4))
    assert job.checkpoint is not None
    _rewrite_state(job.checkpoint, change)
    notes: list[str] = []
    outcome = _service(model).tune(job, lambda r: notes.extend([r.note] if r.note else []))
    assert out.read_bytes() == straight
    aside = job.checkpoint.with_name(job.checkpoint.name + ".damaged")
    assert aside.exists() and not job.checkpoint.exists()
    (note,) = [n for n in outcome.notes if "starts over" in n]
    assert "\n" not in note and aside.name in note and "optimiser" in note

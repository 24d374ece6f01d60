"""Resume: a run interrupted by a crash, a kill or a NaN continues from its saved state and
ends with exactly the file an uninterrupted run writes."""

from __future__ import annotations

import signal
import time
from dataclasses import replace
from pathlib import Path

import pytest

from ostaf.errors import Cancelled, TuningDivergedError
from ostaf.method.regions import AttributeKind
from ostaf.method.tuning_checkpoint import read_sidecar
from ostaf.models.base_model import BaseModel
from ostaf.progress import CancelToken, Progress
from ostaf.requests import ModelChoice, TuneJob, TuningSettings
from ostaf.service import OstafService
from tests.cli_process import run_cli, start_cli

STEPS = 16


class Crash(Exception):
    """Stands for the process dying (a real kill is tested through the CLI below)."""


def _service(model: BaseModel) -> OstafService:
    service = OstafService()
    service._model, service._model_choice = model, ModelChoice(device="cpu")
    return service


def _job(reference: Path, out: Path, checkpoint: Path | None, **kw: object) -> TuneJob:
    settings = TuningSettings(kind=AttributeKind.SHAPE, steps=STEPS, seed=5, **kw)  # type: ignore[arg-type]
    return TuneJob(
        reference, settings, out, "resumable", ModelChoice(device="cpu"),
        checkpoint=checkpoint, checkpoint_interval_s=0.0,
    )  # fmt: skip


def _crash_at(step: int):  # type: ignore[no-untyped-def]
    def on_progress(report: Progress) -> None:
        if report.stage == "tuning" and report.step == step:
            raise Crash

    return on_progress


def test_resumed_run_equals_an_uninterrupted_one(
    model: BaseModel, reference_png: Path, tmp_path: Path
) -> None:
    service = _service(model)
    straight = service.tune(_job(reference_png, tmp_path / "straight.safetensors", None)).path
    out, checkpoint = tmp_path / "resumed.safetensors", tmp_path / "resumed.resume"
    with pytest.raises(Crash):
        service.tune(_job(reference_png, out, checkpoint), _crash_at(7))
    assert not out.exists()
    assert read_sidecar(checkpoint) is not None and read_sidecar(checkpoint)["step"] == 7  # type: ignore[index]
    steps: list[int] = []
    resumed = service.tune(
        _job(reference_png, out, checkpoint),
        lambda r: steps.append(r.step) if r.stage == "tuning" else None,
    )
    assert steps == list(range(8, STEPS + 1))  # only what was left
    assert len(resumed.result.losses) == STEPS
    assert out.read_bytes() == straight.read_bytes()
    assert not checkpoint.exists() and read_sidecar(checkpoint) is None  # gone after success


def test_state_of_another_run_is_not_resumed(
    model: BaseModel, reference_png: Path, tmp_path: Path
) -> None:
    service = _service(model)
    checkpoint = tmp_path / "x.resume"
    with pytest.raises(Crash):
        service.tune(_job(reference_png, tmp_path / "a.safetensors", checkpoint), _crash_at(5))
    steps: list[int] = []
    service.tune(
        _job(reference_png, tmp_path / "b.safetensors", checkpoint, rank=2),
        lambda r: steps.append(r.step) if r.stage == "tuning" else None,
    )
    assert steps[0] == 1


def test_cancel_removes_the_state(model: BaseModel, reference_png: Path, tmp_path: Path) -> None:
    token = CancelToken()
    checkpoint = tmp_path / "c.resume"

    def on_progress(report: Progress) -> None:
        if report.stage == "tuning" and report.step == 4:
            token.cancel()

    with pytest.raises(Cancelled):
        _service(model).tune(
            _job(reference_png, tmp_path / "c.safetensors", checkpoint), on_progress, token
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reference.png"]


def test_quitting_keeps_the_state_at_the_last_step_and_the_run_resumes_from_it(
    model: BaseModel, reference_png: Path, tmp_path: Path
) -> None:
    service = _service(model)
    straight = service.tune(_job(reference_png, tmp_path / "straight.safetensors", None)).path
    token = CancelToken()
    out, checkpoint = tmp_path / "quit.safetensors", tmp_path / "quit.resume"

    def quit_at_5(report: Progress) -> None:
        if report.stage == "tuning" and report.step == 5:
            token.cancel(keep_progress=True)

    # An hour between saves: only the save made on quitting can hold step 5.
    job = _job(reference_png, out, checkpoint)
    job = replace(job, checkpoint_interval_s=3600.0)
    with pytest.raises(Cancelled):
        service.tune(job, quit_at_5, token)
    assert not out.exists()
    assert read_sidecar(checkpoint)["step"] == 5  # type: ignore[index]
    steps: list[int] = []
    service.tune(job, lambda r: steps.append(r.step) if r.stage == "tuning" else None)
    assert steps == list(range(6, STEPS + 1))
    assert out.read_bytes() == straight.read_bytes()


def test_a_nan_keeps_the_last_good_state_to_resume_with_a_lower_rate(
    model: BaseModel, reference_png: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ostaf.method.tuning as tuning

    real_step, calls = tuning._step, {"n": 0}

    def nan_at_step_6(*args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        loss = real_step(*args, **kwargs)  # type: ignore[arg-type]
        return loss * float("nan") if calls["n"] == 6 else loss

    monkeypatch.setattr(tuning, "_step", nan_at_step_6)
    checkpoint, out = tmp_path / "n.resume", tmp_path / "n.safetensors"
    with pytest.raises(TuningDivergedError, match=r"at step 6.*last good state is kept"):
        _service(model).tune(
            _job(reference_png, out, checkpoint),
        )
    assert read_sidecar(checkpoint)["step"] == 5  # type: ignore[index]
    monkeypatch.setattr(tuning, "_step", real_step)
    steps: list[int] = []
    _service(model).tune(
        _job(reference_png, out, checkpoint, learning_rate=5e-4),
        lambda r: steps.append(r.step) if r.stage == "tuning" else None,
    )
    assert steps[0] == 6 and out.is_file()


def test_sigkill_then_rerun_resumes_and_matches(reference_png: Path, tmp_path: Path) -> None:
    """The CLI after a real SIGKILL: the rerun resumes and writes the uninterrupted file."""
    base = [
        *("tune", str(reference_png), "--attribute", "appearance", "--steps", "40"),
        *("--device", "cpu", "--checkpoint-interval", "0", "--name", "k"),
    ]
    out = tmp_path / "killed.safetensors"
    proc = start_cli([*base, "--out", str(out)])
    checkpoint = out.with_name(out.name + ".resume")
    deadline = time.time() + 180
    while (read_sidecar(checkpoint) or {}).get("step", 0) < 10 and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    proc.close()
    assert not out.exists() and checkpoint.exists()
    resumed = run_cli([*base, "--out", str(out)])
    assert resumed.returncode == 0, resumed.stderr
    assert "an interrupted run left its state at step" in resumed.stderr
    assert "Resuming from step" in resumed.stderr
    straight = tmp_path / "straight.safetensors"
    run = run_cli([*base, "--out", str(straight), "--restart"])
    assert run.returncode == 0, run.stderr
    assert out.read_bytes() == straight.read_bytes()
    assert not checkpoint.exists()

"""Resuming an interrupted tuning run from the window: the bar appears when a project with a
saved run opens or right after a run fails, Resume submits the same job from its checkpoint,
Discard removes the saved state, and a missing reference image leaves only Discard."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from PySide6.QtGui import QImage
from pytestqt.qtbot import QtBot

from ostaf.errors import OutOfMemoryError, ProjectError, TuningDivergedError
from ostaf.library.projects import Project, ProjectStore
from ostaf.library.staging import clear_staging
from ostaf.method.regions import AttributeKind
from ostaf.method.tuning_checkpoint import read_sidecar
from ostaf.requests import KIND_TUNING, ModelChoice, TuneJob, TuningSettings
from ostaf_desktop.interrupted_run import (
    RESUME_FOLDER,
    checkpoint_path,
    discard_interrupted,
    find_interrupted,
    keep_reference,
    mask_path,
)
from ostaf_desktop.ui_state import UiState
from ostaf_desktop.viewmodels.main import MainViewModel
from ostaf_desktop.widgets.main_window import MainWindow
from tests.desktop.conftest import FakeBackend, reference_image, save_fake_state


def _project(vm: MainViewModel) -> Project:
    project = vm.projects.current
    assert project is not None
    return project


def _fail_a_run(
    vm: MainViewModel, fake: FakeBackend, qtbot: QtBot, error: Exception, at: int = 4
) -> TuneJob:
    fake.fail_tune, fake.fail_tune_at = error, at
    vm.tuning.steps = 10
    assert vm.tuning.tune() is not None
    qtbot.waitUntil(lambda: not vm.tuning.running, timeout=5000)
    return fake.of_kind("tune")[-1].request


def _plant(project: Project, image: Path, step: int = 6, total: int = 20) -> TuneJob:
    """What a crashed run of the app leaves in a project."""
    settings = TuningSettings(kind=AttributeKind.STYLE, steps=total, seed=9, class_word="jug")
    job = TuneJob(
        keep_reference(project, image), settings, project.folder / "gone.safetensors", "Glaze",
        ModelChoice(), checkpoint=checkpoint_path(project),
    )  # fmt: skip
    save_fake_state(job, [1.0 / s for s in range(1, step + 1)])
    return job


RUN_FILES = ["mask.png", "reference", "tuning-state.safetensors", "tuning-state.safetensors.json"]


def _resume_files(project: Project) -> list[str]:
    return sorted(p.name for p in (project.folder / RESUME_FOLDER).iterdir())


def test_a_saved_run_is_offered_when_the_project_opens(
    window: MainWindow, vm: MainViewModel, qtbot: QtBot, tmp_path: Path
) -> None:
    project = _project(vm)
    assert not window.resume_bar.isVisible()
    _plant(project, reference_image(tmp_path))
    vm.projects.close_current()
    assert not window.resume_bar.isVisible()
    vm.projects.open(project.slug)
    assert window.resume_bar.isVisible()
    text = window.resume_bar.text.text()
    assert "'Glaze'</b> (step 6 of 20) can be resumed" in text
    assert window.resume_bar.resume_button.isVisible()
    assert window.resume_bar.discard_button.isVisible()


def test_start_up_reopens_the_project_and_offers_its_saved_run(
    home: Path, fake: FakeBackend, qtbot: QtBot, tmp_path: Path
) -> None:
    first = MainViewModel(lambda: fake, UiState())
    first.start()
    _plant(_project(first), reference_image(tmp_path), step=3)
    first.shutdown()
    again = MainViewModel(lambda: fake, UiState())
    window = MainWindow(again)
    qtbot.addWidget(window)
    window.show()
    again.start()
    try:
        assert window.resume_bar.isVisible()
        assert "(step 3 of 20)" in again.resume.message
    finally:
        again.shutdown()


def test_discard_removes_the_checkpoint_sidecar_and_mask(
    window: MainWindow, vm: MainViewModel, tmp_path: Path
) -> None:
    project = _project(vm)
    _plant(project, reference_image(tmp_path))
    mask_path(project).write_bytes(b"png")
    vm.resume.refresh()
    assert _resume_files(project) == RUN_FILES
    window.resume_bar.discard_button.click()
    assert _resume_files(project) == []
    assert not window.resume_bar.isVisible()
    assert "Discarded the interrupted run 'Glaze'" in vm.session.status_message


def test_resume_submits_the_same_job_from_its_checkpoint(
    window: MainWindow, vm: MainViewModel, fake: FakeBackend, qtbot: QtBot, tmp_path: Path
) -> None:
    project = _project(vm)
    planted = _plant(project, reference_image(tmp_path))
    vm.resume.refresh()
    vm.tuning.kind, vm.tuning.steps, vm.tuning.seed = "shape", 55, 1  # the panel does not matter
    window.resume_bar.resume_button.click()
    assert not window.resume_bar.isVisible()
    assert vm.tuning.step == 6 and len(vm.tuning.losses) == 6  # the earlier curve is shown
    qtbot.waitUntil(lambda: not vm.tuning.running, timeout=5000)
    (call,) = fake.of_kind("tune")
    request: TuneJob = call.request
    assert request.settings == planted.settings
    assert (request.image, request.name, request.model) == (planted.image, "Glaze", ModelChoice())
    assert request.checkpoint == planted.checkpoint
    assert request.out.parent == project.folder / ".staging"
    expected = [1 / s for s in range(1, 21)]  # the run's whole curve, kept with the attribute
    assert list(vm.tuning.losses) == pytest.approx(expected, abs=1e-6)
    (row,) = vm.library.rows
    assert row.name == "Glaze"
    assert _resume_files(project) == []


def test_a_failed_run_keeps_its_mask_and_is_offered_right_away(
    window: MainWindow, vm: MainViewModel, fake: FakeBackend, qtbot: QtBot, tmp_path: Path
) -> None:
    project = _project(vm)
    vm.reference.open_image(reference_image(tmp_path))
    mask = vm.reference.ensure_mask()
    assert isinstance(mask, QImage)
    mask.fill(255)
    vm.reference.mask_painted()
    failed = _fail_a_run(vm, fake, qtbot, RuntimeError("the device went away"))
    assert failed.settings.mask == mask_path(project) and failed.checkpoint is not None
    assert vm.session.error is not None and "device went away" in vm.session.error.message
    assert vm.tuning.stage_text == "Stopped: it can resume from step 4"
    assert window.resume_bar.isVisible() and "(step 4 of 10)" in vm.resume.message
    clear_staging(project)  # what opening the project again does
    assert _resume_files(project) == RUN_FILES
    vm.resume.resume()
    qtbot.waitUntil(lambda: not vm.tuning.running, timeout=5000)
    resumed = fake.of_kind("tune")[-1].request
    assert resumed.settings.mask == mask_path(project)
    assert len(vm.library.rows) == 1 and _resume_files(project) == []


def test_out_of_memory_offers_to_resume_with_memory_saving(
    window: MainWindow, vm: MainViewModel, fake: FakeBackend, qtbot: QtBot, tmp_path: Path
) -> None:
    vm.reference.open_image(reference_image(tmp_path))
    _fail_a_run(vm, fake, qtbot, OutOfMemoryError("out of memory while tuning"), at=5)
    assert window.resume_bar.isVisible()
    assert "continues with memory saving on" in vm.resume.message
    assert vm.session.error is not None  # the banner says what happened
    window.resume_bar.resume_button.click()
    qtbot.waitUntil(lambda: not vm.tuning.running, timeout=5000)
    first, resumed = (c.request for c in fake.of_kind("tune"))
    assert resumed.settings.memory_saving and not first.settings.memory_saving
    assert dataclasses.replace(resumed.settings, memory_saving=False) == first.settings


@pytest.mark.parametrize("kind", [AttributeKind.SHAPE, AttributeKind.STYLE])
def test_resume_continues_with_every_setting_of_the_run_whatever_the_panel_shows(
    window: MainWindow, vm: MainViewModel, fake: FakeBackend, qtbot: QtBot, tmp_path: Path,
    kind: AttributeKind,
) -> None:  # fmt: skip
    """After a restart the Learn panel opens on Appearance (1e-5): a shape run at 3e-4 or a
    style run at 1e-3 still continues at its own rate, strength, prior and word rate."""
    project = _project(vm)
    tuning = KIND_TUNING[kind]
    settings = TuningSettings(
        kind=kind, steps=20, seed=3, learning_rate=tuning.learning_rate, prior=0.5,
        strength=2.0, embedding_rate=0.002, size=48, memory_saving=True, caption="a {token}",
    )  # fmt: skip
    planted = TuneJob(
        keep_reference(project, reference_image(tmp_path)), settings,
        project.folder / "gone.safetensors", "Run", ModelChoice(),
        checkpoint=checkpoint_path(project),
    )  # fmt: skip
    save_fake_state(planted, [1.0, 0.5, 0.25])
    vm.resume.refresh()
    assert vm.tuning.kind == "appearance"
    assert vm.tuning.learning_rate == pytest.approx(1e-5)  # what the panel opens on
    assert "Advanced" not in vm.resume.message and "can be resumed" in vm.resume.message
    assert window.resume_bar.resume_button.text() == "Resume"
    window.resume_bar.resume_button.click()
    assert vm.tuning.kind == str(kind)  # the panel shows the run it continues
    assert vm.tuning.learning_rate == pytest.approx(tuning.learning_rate, rel=1e-9)
    assert vm.tuning.prior == pytest.approx(0.5) and vm.tuning.embedding_rate == 0.002
    qtbot.waitUntil(lambda: not vm.tuning.running, timeout=5000)
    resumed = fake.of_kind("tune")[-1].request
    assert resumed.settings == planted.settings


def test_a_diverged_run_offers_to_resume_at_half_its_rate(
    window: MainWindow, vm: MainViewModel, fake: FakeBackend, qtbot: QtBot, tmp_path: Path
) -> None:
    vm.reference.open_image(reference_image(tmp_path))
    vm.tuning.kind = "style"
    first = _fail_a_run(vm, fake, qtbot, TuningDivergedError("the loss became nan at step 4"))
    ran_at = KIND_TUNING[AttributeKind.STYLE].learning_rate
    assert first.settings.learning_rate == pytest.approx(ran_at)
    said = f"diverged at learning rate {ran_at:g}, so it continues at half that, {ran_at / 2:g}"
    assert said in vm.resume.message
    assert window.resume_bar.resume_button.text() == f"Resume at {ran_at / 2:g}"
    vm.tuning.kind = "appearance"  # the panel does not matter
    window.resume_bar.resume_button.click()
    qtbot.waitUntil(lambda: not vm.tuning.running, timeout=5000)
    resumed = fake.of_kind("tune")[-1].request
    assert resumed.settings.learning_rate == pytest.approx(ran_at / 2)
    assert dataclasses.replace(resumed.settings, learning_rate=ran_at) == first.settings


def test_a_missing_reference_image_leaves_only_discard(
    window: MainWindow, vm: MainViewModel, tmp_path: Path
) -> None:
    project = _project(vm)
    _plant(project, reference_image(tmp_path)).image.unlink()
    vm.resume.refresh()
    assert window.resume_bar.isVisible()
    assert "cannot be resumed: its reference image" in vm.resume.message
    assert "no longer exists" in vm.resume.message
    assert not window.resume_bar.resume_button.isVisible()
    assert vm.resume.resume() is None
    window.resume_bar.discard_button.click()
    assert _resume_files(project) == []


def test_a_damaged_sidecar_is_offered_for_discarding_only(vm: MainViewModel) -> None:
    project = _project(vm)
    checkpoint = checkpoint_path(project)
    checkpoint.write_bytes(b"state")
    checkpoint.with_name(f"{checkpoint.name}.json").write_text('{"name": "Old", "step": 3}')
    vm.resume.refresh()
    assert vm.resume.visible and not vm.resume.can_resume
    assert "saved description is damaged" in vm.resume.message


@pytest.mark.parametrize(
    "sidecar",
    [
        '{"name": "Old", "step": "3"}',  # a wrong type: read strictly, still offered
        '{"name": "Old", "step": 3, "losses": ["x"]}',
    ],
)
def test_a_sidecar_of_wrong_types_is_offered_for_discarding_only(
    vm: MainViewModel, sidecar: str
) -> None:
    project = _project(vm)
    checkpoint = checkpoint_path(project)
    checkpoint.write_bytes(b"state")
    checkpoint.with_name(f"{checkpoint.name}.json").write_text(sidecar)
    vm.resume.refresh()
    assert vm.resume.visible and not vm.resume.can_resume
    assert "saved description is damaged" in vm.resume.message
    assert vm.resume.resume() is None


@pytest.mark.parametrize("where", ["elsewhere", "unc"])
def test_a_sidecar_naming_files_outside_the_project_is_never_resumed(
    vm: MainViewModel, fake: FakeBackend, tmp_path: Path, where: str
) -> None:
    """The image and mask of a resumable run are the copies kept in the project: a sidecar
    pointing anywhere else (a file elsewhere, a network share) is not followed."""
    project = _project(vm)
    outside = reference_image(tmp_path) if where == "elsewhere" else Path("//server/share/x.png")
    settings = TuningSettings(kind=AttributeKind.STYLE, steps=20, seed=9)
    job = TuneJob(
        outside, settings, project.folder / "gone.safetensors", "Elsewhere", ModelChoice(),
        checkpoint=checkpoint_path(project),
    )  # fmt: skip
    save_fake_state(job, [1.0, 0.5])
    vm.resume.refresh()
    assert vm.resume.visible and not vm.resume.can_resume
    assert "names files outside the project" in vm.resume.message
    assert vm.resume.resume() is None and fake.of_kind("tune") == []


@pytest.mark.parametrize("action", ["cancel", "new run"])
def test_cancel_or_a_new_run_leaves_no_saved_state(
    vm: MainViewModel, fake: FakeBackend, qtbot: QtBot, tmp_path: Path, action: str
) -> None:
    project = _project(vm)
    vm.reference.open_image(reference_image(tmp_path))
    _fail_a_run(vm, fake, qtbot, RuntimeError("crash"))
    assert read_sidecar(checkpoint_path(project)) is not None
    if action == "cancel":
        fake.step_delay_s = 0.02
        vm.resume.resume()
        qtbot.waitUntil(lambda: vm.tuning.step >= 6, timeout=5000)
        vm.tuning.cancel()
    else:
        vm.tuning.tune()  # replaces the interrupted run: it starts over
    qtbot.waitUntil(lambda: not vm.tuning.running, timeout=5000)
    assert not vm.resume.visible
    assert _resume_files(project) == []
    if action == "new run":
        assert len(vm.tuning.losses) == 10 and vm.tuning.losses[0] == 1.0


def test_a_linked_run_folder_is_never_followed(home: Path, tmp_path: Path) -> None:
    """`.resume` as a link to a folder elsewhere (a project from an archive): nothing there
    is read as a run, deleted by Discard, or written by a new run."""
    project = ProjectStore().create("Linked run")
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "reference").mkdir(parents=True)
    kept = {
        "mask.png": b"someone's mask",
        "tuning-state.safetensors": b"someone's state",
        "reference/photo.png": b"someone's photo",
    }
    for name, data in kept.items():
        (elsewhere / name).write_bytes(data)
    (project.folder / RESUME_FOLDER).symlink_to(elsewhere, target_is_directory=True)
    assert find_interrupted(project) is None
    discard_interrupted(project)
    with pytest.raises(ProjectError, match=r"\.resume is a symbolic link"):
        checkpoint_path(project)
    with pytest.raises(ProjectError, match=r"\.resume is a symbolic link"):
        keep_reference(project, reference_image(tmp_path))
    assert {n: (elsewhere / n).read_bytes() for n in kept} == kept
    project.release()

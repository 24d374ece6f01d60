"""A tuning run as the window shows it: previews say what they render, the Name field starts
empty for the next run, and a resumed run shows its own kind, reference, name and values."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QImage
from pytestqt.qtbot import QtBot

from ostaf.method.previews import preview_prompt
from ostaf.method.regions import AttributeKind
from ostaf.requests import ModelChoice, TuneJob, TuningSettings
from ostaf_desktop.interrupted_run import checkpoint_path, keep_reference, mask_path
from ostaf_desktop.viewmodels.main import MainViewModel
from ostaf_desktop.widgets.main_window import MainWindow
from tests.desktop.conftest import FakeBackend, reference_image, save_fake_state


def tune(vm: MainViewModel, qtbot: QtBot, steps: int = 20) -> None:
    vm.tuning.steps = steps
    assert vm.tuning.tune() is not None
    qtbot.waitUntil(lambda: not vm.tuning.running, timeout=5000)


def test_previews_are_captioned_with_the_probe_they_render(
    window: MainWindow, vm: MainViewModel, fake: FakeBackend, qtbot: QtBot, tmp_path: Path
) -> None:
    assert vm.reference.open_image(reference_image(tmp_path))
    vm.tuning.kind = "style"
    tune(vm, qtbot)
    token = fake.of_kind("tune")[0].request.settings.token
    probe = preview_prompt(AttributeKind.STYLE, token, demo_world=True)
    assert probe in window.tuning_progress.preview_caption.full_text()
    row = window.tuning_progress.preview_row
    tips = [row.itemAt(i).widget().toolTip() for i in range(row.count() - 1)]  # type: ignore[union-attr]
    assert tips == [f"Step {s}: “{probe}”" for s in (10, 20)]

    vm.library.selected_id = ""  # another attribute's run, then this one's again
    assert window.tuning_progress.preview_caption.full_text() == ""
    vm.library.selected_id = vm.library.rows[0].id
    assert probe in window.tuning_progress.preview_caption.full_text()


def test_the_name_field_is_empty_for_the_next_run(
    window: MainWindow, vm: MainViewModel, qtbot: QtBot, tmp_path: Path
) -> None:
    assert vm.reference.open_image(reference_image(tmp_path))
    window.tuning.picker.name.setText("Blue crackle glaze")
    tune(vm, qtbot)
    assert [row.name for row in vm.library.rows] == ["Blue crackle glaze"]
    assert vm.tuning.name == "" and window.tuning.picker.name.text() == ""


def test_a_resumed_run_shows_its_kind_reference_name_and_values(
    window: MainWindow, vm: MainViewModel, qtbot: QtBot, tmp_path: Path
) -> None:
    project = vm.projects.current
    assert project is not None
    image = reference_image(tmp_path, size=120, name="jug.png")
    mask = QImage(120, 120, QImage.Format.Format_Grayscale8)
    mask.fill(255)
    mask_path(project).parent.mkdir(parents=True, exist_ok=True)
    assert mask.save(str(mask_path(project)))
    settings = TuningSettings(
        kind=AttributeKind.STYLE, steps=40, seed=9, rank=8, class_word="jug",
        crop=(10, 10, 110, 110), mask=mask_path(project),
        caption="a red jug in {token} style on a gray background",
    )  # fmt: skip
    job = TuneJob(
        keep_reference(project, image), settings, project.folder / "gone.safetensors",
        "Loose ink", ModelChoice(), checkpoint=checkpoint_path(project),
    )  # fmt: skip
    save_fake_state(job, [1.0, 0.5])
    vm.projects.close_current()
    vm.projects.open(project.slug)
    assert vm.reference.image is None  # nothing was on the canvas
    window.resume_bar.resume_button.click()

    picker = window.tuning.picker
    assert picker.cards[AttributeKind.STYLE].radio.isChecked()
    assert picker.name.text() == "Loose ink" and picker.class_word.text() == "jug"
    assert picker.caption.text() == "a red jug in {token} style on a gray background"
    assert (picker.steps.value(), picker.seed.value(), picker.rank.value()) == (40, 9, 8)
    assert vm.reference.path == job.image and vm.reference.crop == (10, 10, 110, 110)
    assert vm.reference.has_mask
    qtbot.waitUntil(lambda: not vm.tuning.running, timeout=5000)

"""Batch export: the dialog's live plan (names, count, refused templates), the job's progress,
Cancel, resume by running again, and a failure (a full disk) reported."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from ostaf.errors import StorageError
from ostaf_desktop.viewmodels.main import MainViewModel
from ostaf_desktop.widgets.batch_dialog import BatchDialog
from ostaf_desktop.widgets.main_window import MainWindow
from tests.desktop.conftest import Dialogs, FakeBackend, add_attribute


def open_dialog(window: MainWindow) -> BatchDialog:
    window.shortcuts.batch.trigger()
    dialog = window.batch_dialog
    assert dialog is not None and dialog.isVisible()
    return dialog


def test_preview_follows_the_form_and_refuses_bad_templates(
    window: MainWindow, vm: MainViewModel, dialogs: Dialogs, tmp_path: Path
) -> None:
    glaze = add_attribute(vm, "Blue glaze", seed=1)
    add_attribute(vm, "Curled pose", seed=2)
    vm.library.set_applied(glaze, True)
    vm.rendering.prompt, vm.rendering.seed, vm.rendering.steps = "a sks vase", 7, 12
    dialog = open_dialog(window)
    assert dialog.prompts.toPlainText() == "a sks vase" and dialog.seeds.text() == "7"
    assert dialog.steps.value() == 12 and vm.batch.chosen == (glaze,)
    assert dialog.out_dir.text() == str(vm.projects.current.exports_dir)  # type: ignore[union-attr]
    assert dialog.plan.text().startswith("1 image + a contact sheet")
    assert dialog.names.text() == "my-first-project_blue-glaze_a-sks-vase_7_1.png"
    assert dialog.start.isEnabled() and dialog.error.isHidden()

    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a sks teapot\n# a comment\n\na sks bowl\n", encoding="utf-8")
    dialogs.files.append(str(prompts))
    dialog.load_prompts.click()
    assert dialog.prompts.toPlainText() == "a sks teapot\na sks bowl"
    dialog.seeds.setText("1,2,5-7")
    dialog.intensities.setText("0.5, 1")
    for index in range(dialog.attributes.count()):
        item = dialog.attributes.item(index)
        item.setCheckState(Qt.CheckState.Checked)
    dialog.combine.setCurrentIndex(dialog.combine.findData("each"))
    # 2 prompts × (2 attributes × 2 λ) × 5 seeds
    assert dialog.plan.text().startswith("40 images + a contact sheet: 2 prompts")
    names = dialog.names.text().splitlines()
    assert len(names) == 6 and names[-1] == "… and 35 more"

    dialog.template.setText("../{seed}.png")
    assert not dialog.start.isEnabled() and not dialog.error.isHidden()
    assert "folder separator" in dialog.error.text() and dialog.names.text() == ""
    dialog.template.setText("{prompt}.png")
    assert "the same name" in dialog.error.text() and not dialog.start.isEnabled()
    dialog.template.setText("{index}_{seed}")
    assert dialog.error.isHidden() and dialog.start.isEnabled()
    assert dialog.names.text().splitlines()[0] == "0000_1.png"
    dialog.seed_count_choice.click()
    dialog.seed_count.setValue(3)
    assert dialog.plan.text().startswith("24 images") and not dialog.seeds.isEnabled()
    dialog.intensities.setText("3")
    assert "0..2" in dialog.error.text() and not dialog.start.isEnabled()


def test_batch_progress_cancel_and_resume(
    window: MainWindow, vm: MainViewModel, fake: FakeBackend, qtbot: QtBot, tmp_path: Path
) -> None:
    add_attribute(vm, "Blue glaze", seed=1)
    dialog = open_dialog(window)
    out = tmp_path / "variations"
    dialog.out_dir.setText(str(out))
    dialog.prompts.setPlainText("a sks vase")
    dialog.seed_count_choice.click()
    dialog.seed_count.setValue(6)
    dialog.steps.setValue(2)
    fake.step_delay_s = 0.02
    dialog.start.click()
    assert not dialog.start.isEnabled() and dialog.cancel.isEnabled()
    qtbot.waitUntil(lambda: vm.batch.step >= 4, timeout=5000)  # two images finished
    assert not dialog.progress.isHidden() and dialog.progress.maximum() == 12
    assert dialog.status.text().startswith("Rendering image") and "elapsed" in dialog.time.text()
    dialog.cancel.click()
    qtbot.waitUntil(lambda: not vm.batch.running, timeout=5000)
    kept = sorted(out.glob("*.png"))
    assert 2 <= len(kept) < 6 and dialog.status.text().startswith("Cancelled after")
    assert dialog.start.isEnabled() and not dialog.open_folder.isHidden()

    fake.step_delay_s = 0.0
    dialog.start.click()  # the same batch again resumes
    qtbot.waitUntil(lambda: not vm.batch.running, timeout=5000)
    call = fake.of_kind("batch")[-1]
    assert call.request.request.seeds == list(range(6))
    assert dialog.status.text() == (
        f"Done: {6 - len(kept)} rendered, {len(kept)} already complete (batch of 6)"
    )
    assert len(list(out.glob("*.png"))) == 7  # six images and the contact sheet
    assert not dialog.open_sheet.isHidden() and vm.batch.sheet is not None
    assert vm.session.error is None


def test_a_failed_batch_says_why(
    window: MainWindow, vm: MainViewModel, fake: FakeBackend, qtbot: QtBot, tmp_path: Path
) -> None:
    dialog = open_dialog(window)
    dialog.out_dir.setText(str(tmp_path))
    dialog.seeds.setText("1-3")
    dialog.steps.setValue(1)
    fake.fail_batch = StorageError("the disk is full; the 1 images finished before are complete")
    fake.fail_batch_after = 1
    dialog.start.click()
    qtbot.waitUntil(lambda: not vm.batch.running, timeout=5000)
    assert dialog.status.text().startswith("Stopped: the disk is full")
    assert vm.session.error is not None and "disk is full" in vm.session.error.message
    assert len(list(tmp_path.glob("*.png"))) == 1 and dialog.start.isEnabled()
    dialog.close()
    assert not window.batch_dialog.isVisible()  # type: ignore[union-attr]


def test_the_dialog_follows_the_open_project(
    window: MainWindow, vm: MainViewModel, dialogs: Dialogs
) -> None:
    dialog = open_dialog(window)
    first = vm.projects.current
    assert first is not None and dialog.out_dir.text() == str(first.exports_dir)
    dialogs.texts.append("Second")
    window.shortcuts.new_project.trigger()
    second = vm.projects.current
    assert second is not None and second is not first
    assert dialog.out_dir.text() == str(second.exports_dir)
    assert dialog.names.text().startswith("second_base_")

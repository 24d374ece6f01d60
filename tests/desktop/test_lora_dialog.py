"""The LoRA dialog's messages: the outcome of an export, never next to a stale warning, and
the models it is for named in words (the demo model's LoRA says so)."""

from __future__ import annotations

from pathlib import Path

from pytestqt.qtbot import QtBot

from ostaf.models.demo_model import DEMO_NAME
from ostaf_desktop.viewmodels.main import MainViewModel
from ostaf_desktop.widgets.lora_dialog import LoraExportDialog
from ostaf_desktop.widgets.main_window import MainWindow
from tests.attribute_files import write_attribute_file


def open_dialog(
    window: MainWindow, vm: MainViewModel, base_model: str, **file: object
) -> LoraExportDialog:
    project = vm.projects.current
    assert project is not None
    path = project.attribute_path("1" * 16 + "0" * 48)
    write_attribute_file(path, name="Blue glaze", base_model=base_model, **file)  # type: ignore[arg-type]
    vm.library.refresh()
    vm.library.selected_id = path.stem
    window.shortcuts.export_lora.trigger()
    dialog = window.library_actions.dialog
    assert isinstance(dialog, LoraExportDialog)
    return dialog


def export(dialog: LoraExportDialog, qtbot: QtBot) -> None:
    dialog.export.click()
    qtbot.waitUntil(lambda: not dialog.vm.running, timeout=120_000)  # torch loads once


def test_a_written_lora_is_not_shown_with_a_stale_warning(
    window: MainWindow, vm: MainViewModel, qtbot: QtBot
) -> None:
    dialog = open_dialog(window, vm, "test model")
    export(dialog, qtbot)
    assert dialog.outcome.text().startswith("Wrote ")
    assert "for Stable Diffusion 1.x models" in dialog.outcome.text()
    assert "sd_v1" not in dialog.outcome.text()
    assert "already exists" not in dialog.hint.text()
    assert dialog.show_folder.isVisible()

    dialog.intensity.setValue(0.5)  # another export now: the last outcome is not about it
    assert dialog.outcome.text() == "" and not dialog.show_folder.isVisible()
    assert "already exists" in dialog.hint.text()
    dialog.overwrite.setChecked(True)
    export(dialog, qtbot)
    assert dialog.outcome.text().startswith("Wrote ") and "λ 0.5" in dialog.outcome.text()


def test_a_failure_is_cleared_when_the_file_changes(
    window: MainWindow, vm: MainViewModel, qtbot: QtBot, tmp_path: Path
) -> None:
    dialog = open_dialog(window, vm, "test model")
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    dialog.out.setText(str(blocker / "lora.safetensors"))
    export(dialog, qtbot)
    assert dialog.outcome.text().startswith("Not written")
    dialog.out.setText(str(tmp_path / "lora.safetensors"))
    assert dialog.outcome.text() == ""
    export(dialog, qtbot)
    assert dialog.outcome.text().startswith("Wrote ")


def test_a_demo_model_lora_is_labelled_as_the_demo_models(
    window: MainWindow, vm: MainViewModel, qtbot: QtBot
) -> None:
    dialog = open_dialog(window, vm, DEMO_NAME)
    export(dialog, qtbot)
    text = dialog.outcome.text()
    assert "for the demo model only" in text and "sd_v1" not in text


def test_the_dialog_says_how_to_use_the_word_and_names_its_embedding_after_it(
    window: MainWindow, vm: MainViewModel, qtbot: QtBot, tmp_path: Path
) -> None:
    dialog = open_dialog(window, vm, "test model", word="dog", learned_word=True)
    note = dialog.word_note.text()
    assert note.startswith("Write dog in prompts where the attribute goes, as in OSTAF")
    assert "put dog.safetensors (its learned word) in the tool's embeddings folder" in note
    assert "embedding:dog" in note
    dialog.out.setText(str(tmp_path / "dog.safetensors"))  # the word's own file name
    assert "is where the attribute's word goes" in dialog.hint.text()
    assert not dialog.export.isEnabled()
    dialog.out.setText(str(tmp_path / "glaze-lora.safetensors"))
    export(dialog, qtbot)
    assert dialog.outcome.text().startswith("Wrote ")
    assert (tmp_path / "glaze-lora.safetensors").is_file() and (
        tmp_path / "dog.safetensors"
    ).is_file()
    dialog.out.setText(str(tmp_path / "another.safetensors"))  # the word's file is there
    assert "dog.safetensors (the attribute's word) already exists" in dialog.hint.text()


def test_an_attribute_that_learned_no_word_is_still_named_by_it(
    window: MainWindow, vm: MainViewModel
) -> None:
    dialog = open_dialog(window, vm, "test model")
    assert dialog.word_note.text() == "Write sks in prompts where the attribute goes, as in OSTAF."

"""Attribute files in and out: import (validated, duplicates reported, bad files refused with
the library unchanged), import from another project, export a copy, export as LoRA."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from pytestqt.qtbot import QtBot
from safetensors import safe_open

from ostaf.library.projects import ProjectStore
from ostaf_desktop.viewmodels.main import MainViewModel
from ostaf_desktop.widgets.lora_dialog import LoraExportDialog
from ostaf_desktop.widgets.main_window import MainWindow
from ostaf_desktop.widgets.project_import_dialog import ProjectImportDialog
from tests.attribute_files import write_attribute_file
from tests.desktop.conftest import Dialogs, FakeBackend, add_attribute


def _library_files(vm: MainViewModel) -> list[str]:
    project = vm.projects.current
    assert project is not None
    return sorted(p.name for p in project.attributes_dir.glob("*.safetensors"))


def test_import_files_reports_duplicates(
    window: MainWindow, vm: MainViewModel, dialogs: Dialogs, tmp_path: Path
) -> None:
    first = write_attribute_file(tmp_path / "glaze.safetensors", name="Blue glaze", seed=1)
    second = write_attribute_file(tmp_path / "pose.safetensors", name="Curled pose", seed=2)
    dialogs.file_lists.append([str(first), str(second)])
    window.shortcuts.import_files.trigger()
    assert "Import attribute files" in dialogs.asked
    assert {r.name for r in vm.library.rows} == {"Blue glaze", "Curled pose"}
    assert vm.session.status_message == "Imported 'Blue glaze', 'Curled pose'"
    files = _library_files(vm)

    copy = tmp_path / "copy of glaze.safetensors"
    copy.write_bytes(first.read_bytes())
    dialogs.file_lists.append([str(copy)])
    window.shortcuts.import_files.trigger()
    assert _library_files(vm) == files  # not copied twice
    assert "Import attributes" in dialogs.asked  # told in a dialog
    assert "already in the library" in vm.session.status_message
    assert vm.library.selected is not None and vm.library.selected.name == "Blue glaze"


def _truncated(folder: Path) -> Path:
    good = write_attribute_file(folder / "whole.safetensors", seed=5)
    bad = folder / "truncated.safetensors"
    bad.write_bytes(good.read_bytes()[:-40])
    return bad


def _pickle(folder: Path) -> Path:
    path = folder / "model.ckpt"
    path.write_bytes(b"\x80\x04\x95 pickled")
    return path


def _lora(folder: Path) -> Path:
    import numpy as np
    from safetensors.numpy import save_file

    path = folder / "style.safetensors"
    save_file(
        {"lora_unet_up_blocks_1_attn.lora_down.weight": np.zeros((2, 8), np.float32)},
        str(path),
        metadata={"ss_network_module": "networks.lora"},
    )
    return path


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (_truncated, "truncated or corrupt"),
        (_pickle, "pickle"),
        (_lora, "this is a LoRA"),
    ],
)
def test_a_bad_file_is_refused_and_changes_nothing(
    window: MainWindow,
    vm: MainViewModel,
    dialogs: Dialogs,
    tmp_path: Path,
    make: Callable[[Path], Path],
    reason: str,
) -> None:
    add_attribute(vm, "Already here")
    before = _library_files(vm)
    good = write_attribute_file(tmp_path / "good.safetensors", name="Good one", seed=9)
    bad = make(tmp_path)
    dialogs.file_lists.append([str(good), str(bad)])
    window.library_actions.import_files()
    error = vm.session.error
    assert error is not None and bad.name in error.message and reason in error.message
    assert not window.banner.isHidden() and bad.name in window.banner.message.text()
    assert _library_files(vm) == before  # the good file was not imported either
    assert [r.name for r in vm.library.rows] == ["Already here"]


def test_import_from_another_project(window: MainWindow, vm: MainViewModel, qtbot: QtBot) -> None:
    other = ProjectStore().create("Ceramics")
    write_attribute_file(other.attribute_path("a" * 16), name="Celadon", seed=3)
    write_attribute_file(other.attribute_path("b" * 16), name="Raku", seed=4)
    other.release()
    window.shortcuts.import_project.trigger()
    dialog = window.library_actions.dialog
    assert isinstance(dialog, ProjectImportDialog)
    assert dialog.source.currentText() == "Ceramics" and dialog.list.count() == 2
    assert not dialog.import_button.isEnabled()
    raku = next(i for i in range(2) if "Raku" in dialog.list.item(i).text())
    dialog.list.item(raku).setCheckState(Qt.CheckState.Checked)
    assert dialog.import_button.isEnabled() and "1 attribute will be copied" in dialog.hint.text()
    dialog.import_button.click()
    assert [r.name for r in vm.library.rows] == ["Raku"]
    qtbot.waitUntil(lambda: window.library_actions.dialog is None, timeout=2000)
    assert other.attribute_path("b" * 16).exists()  # copied, not moved


def test_export_file_copies_it(
    window: MainWindow, vm: MainViewModel, dialogs: Dialogs, tmp_path: Path
) -> None:
    attribute = add_attribute(vm, "Blue glaze")
    vm.library.selected_id = attribute
    dialogs.files.append(str(tmp_path))
    window.shortcuts.export_file.trigger()
    (exported,) = tmp_path.glob("*.safetensors")
    assert exported.read_bytes() == vm.library.selected.path.read_bytes()  # type: ignore[union-attr]
    assert exported.name.startswith("blue-glaze") and str(exported) in vm.session.status_message


def test_export_as_lora_writes_a_file(
    window: MainWindow, vm: MainViewModel, fake: FakeBackend, qtbot: QtBot, tmp_path: Path
) -> None:
    attribute = add_attribute(vm, "Blue glaze")
    vm.library.selected_id = attribute
    window.shortcuts.export_lora.trigger()
    dialog = window.library_actions.dialog
    assert isinstance(dialog, LoraExportDialog)
    assert dialog.out.text().endswith("blue-glaze-lora-kohya.safetensors")
    dialog.format.setCurrentIndex(dialog.format.findData("diffusers"))
    assert dialog.out.text().endswith("blue-glaze-lora-diffusers.safetensors")
    dialog.intensity.setValue(0.5)
    target = tmp_path / "glaze.safetensors"
    dialog.out.setText(str(target))
    dialog.export.click()
    qtbot.waitUntil(lambda: vm.lora.written is not None, timeout=10_000)
    assert fake.of_kind("lora") and vm.session.error is None
    with safe_open(str(target), framework="numpy") as handle:
        keys, metadata = list(handle.keys()), handle.metadata()
    assert all(k.startswith("unet.") and ".lora_" in k for k in keys)
    assert metadata["ostaf.lambda"] == "0.5" and metadata["modelspec.title"] == "Blue glaze"
    assert str(target) in dialog.outcome.text() and not dialog.show_folder.isHidden()
    # The success is not followed by an error about the file it just wrote (issue 14 §6).
    assert "already exists" not in dialog.hint.text() and "again" in dialog.hint.text()
    assert "sd_v1" not in dialog.outcome.text()
    assert "LoRA for Stable Diffusion 1.x models" in dialog.outcome.text()
    assert not dialog.export.isEnabled()
    dialog.overwrite.setChecked(True)
    assert dialog.export.isEnabled()
    dialog.overwrite.setChecked(False)
    other = tmp_path / "elsewhere.safetensors"
    other.write_bytes(b"someone else's")
    dialog.out.setText(str(other))  # another existing file is still refused
    assert "already exists" in dialog.hint.text() and not dialog.export.isEnabled()


def test_dropped_attribute_files_are_imported(
    window: MainWindow, vm: MainViewModel, tmp_path: Path
) -> None:
    path = write_attribute_file(tmp_path / "ink.safetensors", name="Ink wash", seed=6)
    (tmp_path / "notes.txt").write_text("not an attribute")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path)), QUrl.fromLocalFile(str(tmp_path / "notes.txt"))])
    event = QDropEvent(
        QPointF(20, 20),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
    )
    window.library.dropEvent(event)
    assert [r.name for r in vm.library.rows] == ["Ink wash"] and vm.session.error is None

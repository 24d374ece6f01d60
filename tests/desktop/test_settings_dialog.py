"""Settings: the base model is checked when chosen; devices show what is available."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from ostaf.errors import ModelLoadError
from ostaf.settings import Settings, load_settings
from ostaf_desktop.viewmodels.main import MainViewModel
from ostaf_desktop.viewmodels.settings import DIALOG_FIELDS, SettingsViewModel
from ostaf_desktop.widgets.main_window import MainWindow
from ostaf_desktop.widgets.settings_dialog import SettingsDialog
from tests.desktop.conftest import Dialogs, FakeBackend


def checker(source: str) -> str:
    if source == "demo":
        return "the built-in demo model"
    if source.endswith("good.safetensors"):
        return "Stable Diffusion 1.x checkpoint, 2.1 GB"
    raise ModelLoadError(f"{Path(source).name}: this is a LoRA, not a base checkpoint")


def test_model_choice_is_checked(qtbot: QtBot, dialogs: Dialogs, tmp_path: Path) -> None:
    vm = SettingsViewModel(Settings(), ("cuda", "cpu"), checker)
    dialog = SettingsDialog(vm)
    qtbot.addWidget(dialog)
    ok = dialog.buttons.buttons()[0]
    qtbot.waitUntil(lambda: not vm.checking, timeout=5000)
    assert vm.check_ok and "✓ the built-in demo model" in dialog.check.text()
    dialogs.files.append(str(tmp_path / "lora.safetensors"))
    dialog.file_choice.click()
    dialog.browse_file.click()
    qtbot.waitUntil(lambda: not vm.checking, timeout=5000)
    assert not vm.check_ok and not ok.isEnabled()
    assert "Not usable: lora.safetensors: this is a LoRA" in dialog.check.text()
    dialog.file.setText(str(tmp_path / "good.safetensors"))
    qtbot.waitUntil(lambda: vm.check_ok and not vm.checking, timeout=5000)
    assert ok.isEnabled() and "2.1 GB" in dialog.check.text()
    labels = [dialog.device.itemText(i) for i in range(dialog.device.count())]
    assert labels == ["Automatic (cuda)", "cuda", "mps (not available here)", "cpu"]
    dialog.device.setCurrentIndex(3)
    result = vm.result()
    assert (result.model_source, result.device) == (str(tmp_path / "good.safetensors"), "cpu")


def test_new_settings_are_saved_and_reload_the_model(
    window: MainWindow, vm: MainViewModel, fake: FakeBackend, qtbot: QtBot, tmp_path: Path
) -> None:
    chosen = Settings(model_source=str(tmp_path), device="cpu", output_dir=str(tmp_path / "out"))
    vm.apply_settings(chosen)
    saved = load_settings()
    assert (saved.model_source, saved.device, saved.output_dir) == (
        str(tmp_path),
        "cpu",
        str(tmp_path / "out"),
    )
    qtbot.waitUntil(lambda: len(fake.of_kind("load")) == 2 and vm.idle, timeout=5000)
    assert fake.of_kind("load")[1].request.source == str(tmp_path)
    assert window.hint.isHidden()  # not on the demo model any more
    assert vm.rendering.output_dir() == tmp_path / "out"


def test_an_unusable_model_is_reported(
    window: MainWindow, vm: MainViewModel, fake: FakeBackend, qtbot: QtBot, tmp_path: Path
) -> None:
    fake.fail_load = ModelLoadError("model.safetensors: the file is truncated or corrupt")
    vm.apply_settings(Settings(model_source=str(tmp_path / "model.safetensors")))
    qtbot.waitUntil(lambda: vm.session.model_failed, timeout=5000)
    assert window.model_state.text() == "No model loaded: choose one in Settings"
    assert "truncated or corrupt" in window.banner.message.text()
    fake.fail_load = None
    vm.apply_settings(Settings())
    qtbot.waitUntil(lambda: vm.session.model is not None, timeout=5000)
    assert window.model_state.text() == "Fake model · cpu float32"


def test_every_choice_of_the_dialog_is_saved_memory_saving_too(
    window: MainWindow, vm: MainViewModel, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:  # fmt: skip
    """Settings → tick Memory saving → OK → Settings again: still ticked, and in the file."""
    out = str(tmp_path / "out")

    def accept(dialog: SettingsDialog) -> int:
        dialog.memory_saving.setChecked(True)
        dialog.output.setText(out)
        return SettingsDialog.DialogCode.Accepted

    monkeypatch.setattr(SettingsDialog, "exec", accept)
    window.open_settings()
    saved = load_settings()
    assert saved.memory_saving and saved.output_dir == out
    assert vm.session.settings.memory_saving
    again = SettingsViewModel(vm.session.settings)
    assert again.memory_saving and again.output_dir == out
    assert {f: getattr(again.result(), f) for f in DIALOG_FIELDS} == {
        f: getattr(saved, f) for f in DIALOG_FIELDS
    }


def test_both_demo_models_are_offered_by_name_and_the_choice_is_kept(qtbot: QtBot) -> None:
    vm = SettingsViewModel(Settings(model_source="demo-xl"), ("cpu",), lambda source: source)
    dialog = SettingsDialog(vm)
    qtbot.addWidget(dialog)
    assert set(dialog.demos) == {"demo", "demo-xl"}
    assert dialog.demos["demo-xl"].isChecked()
    assert "OSTAF demo world XL" in dialog.demos["demo-xl"].text()
    assert "SDXL-shaped" in dialog.demos["demo-xl"].text()
    assert vm.result().model_source == "demo-xl"
    dialog.demos["demo"].click()
    assert vm.result().model_source == "demo"

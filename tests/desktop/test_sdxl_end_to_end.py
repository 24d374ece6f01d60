"""The real service on a tiny SDXL-shaped model, through the window: the model's family and
SDXL sizes are shown, a tuning resolution is chosen under Advanced, the attribute is tuned,
previewed with λ, rendered at an SDXL bucket size, batch-exported and written as a LoRA whose
message names the family."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from pytestqt.qtbot import QtBot

from ostaf.interop.pngmeta import parse_a1111, read_png_metadata
from ostaf.library.attribute_meta import read_meta
from ostaf.settings import Settings, save_settings
from ostaf_desktop.backend import CoreBackend
from ostaf_desktop.ui_state import UiState
from ostaf_desktop.viewmodels.main import MainViewModel
from ostaf_desktop.widgets.main_window import MainWindow
from tests.core.sdxl_tiny import build_tiny_sdxl, write_folder
from tests.desktop.conftest import Dialogs, reference_image

TIMEOUT_MS = 120_000


@pytest.fixture
def xl_window(home: Path, tmp_path: Path, qtbot: QtBot) -> Iterator[MainWindow]:
    folder = write_folder(build_tiny_sdxl(seed=0), tmp_path / "tiny-sdxl")
    save_settings(Settings(model_source=str(folder), device="cpu"))
    backend = CoreBackend()
    vm = MainViewModel(lambda: backend, UiState())
    window = MainWindow(vm)
    qtbot.addWidget(window)
    window.resize(1440, 900)
    window.show()
    vm.start()
    qtbot.waitUntil(lambda: vm.session.model is not None, timeout=TIMEOUT_MS)
    yield window
    vm.shutdown()


def test_tune_preview_render_batch_and_lora_on_sdxl(
    xl_window: MainWindow, qtbot: QtBot, dialogs: Dialogs, tmp_path: Path
) -> None:
    window, vm = xl_window, xl_window.vm
    info = vm.session.model
    assert info is not None and info.family == "Stable Diffusion XL" and info.resolution == 64
    assert vm.session.model_status == "tiny-sdxl · Stable Diffusion XL · cpu float32"
    sizes = [window.render_panel.size_combo.itemText(i) for i in range(9)]
    assert sizes[0] == "Square 64×64 (native)" and "Landscape 4:3 72×56" in sizes
    picker = window.tuning.picker
    resolutions = [picker.resolution.itemText(i) for i in range(picker.resolution.count())]
    assert resolutions == ["Native (64 px)", "128 px"]

    dialogs.texts.append("Ceramics XL")
    window.shortcuts.new_project.trigger()
    dialogs.files.append(str(reference_image(tmp_path)))
    window.shortcuts.open_image.trigger()
    vm.tuning.steps = 2
    picker.resolution.setCurrentIndex(picker.resolution.findData("128"))
    assert vm.tuning.resolution == "128"
    window.tuning.tune_button.click()
    qtbot.waitUntil(lambda: not vm.tuning.running, timeout=TIMEOUT_MS)
    assert vm.session.error is None, vm.session.error
    (row,) = vm.library.rows
    assert row.steps == 2 and read_meta(row.path).tuning["resolution"] == 128

    qtbot.waitUntil(lambda: vm.idle and vm.rendering.preview_image is not None, timeout=TIMEOUT_MS)
    first = vm.rendering.preview_image
    (slider,) = window.render_panel.sliders()
    slider.slider.setValue(150)
    qtbot.waitUntil(lambda: vm.idle and vm.rendering.preview_image is not first, timeout=TIMEOUT_MS)
    assert "λ 1.50" in vm.rendering.preview_caption

    combo = window.render_panel.size_combo
    combo.setCurrentIndex(combo.findData("72x56"))
    vm.rendering.steps, vm.rendering.count = 2, 1
    vm.rendering.prompt = "a photo of a sks vase"
    window.render_panel.render_button.click()
    qtbot.waitUntil(lambda: not vm.rendering.rendering, timeout=TIMEOUT_MS)
    assert vm.session.error is None, vm.session.error
    (item,) = vm.results.items
    assert item.path is not None and Image.open(item.path).size == (72, 56)
    parameters, _ = read_png_metadata(item.path)
    assert parameters is not None and parse_a1111(parameters)["values"]["Size"] == "72x56"

    window.shortcuts.batch.trigger()
    assert vm.batch.size_options == vm.rendering.size_options and vm.batch.size == "72x56"
    vm.batch.out_dir, vm.batch.seeds_text, vm.batch.intensities_text = (
        str(tmp_path / "batch"),
        "1,2",
        "1",
    )
    assert vm.batch.start() is not None
    qtbot.waitUntil(lambda: not vm.batch.running, timeout=TIMEOUT_MS)
    assert vm.session.error is None, vm.session.error
    assert vm.batch.status_text == "Done: 2 rendered, 0 already complete (batch of 2)"

    vm.library.selected_id = row.id
    assert vm.lora.prepare(row.id)
    vm.lora.out_path = str(tmp_path / "xl-lora.safetensors")
    vm.lora.export()
    qtbot.waitUntil(lambda: not vm.lora.running, timeout=TIMEOUT_MS)
    assert vm.lora.written == tmp_path / "xl-lora.safetensors"
    assert "a kohya LoRA for Stable Diffusion XL models" in vm.lora.result_text
    assert "already exists" not in vm.lora.hint and "sdxl" not in vm.lora.result_text

"""The real service on the demo model, through the window: create a project, load an image,
tune a few steps, see the attribute in the library, move λ for a preview, Render a PNG with
metadata; and the GUI thread keeps processing events while tuning runs."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from pytestqt.qtbot import QtBot

from ostaf.interop.pngmeta import parse_a1111, read_png_metadata
from ostaf_desktop.backend import CoreBackend
from ostaf_desktop.ui_state import UiState
from ostaf_desktop.viewmodels.main import MainViewModel
from ostaf_desktop.widgets.main_window import MainWindow
from tests.desktop.conftest import Dialogs, reference_image

TIMEOUT_MS = 240_000


@pytest.fixture(scope="module")
def core_backend() -> CoreBackend:
    """One real backend for the module: the demo model loads once."""
    return CoreBackend()


@pytest.fixture
def real_window(home: Path, core_backend: CoreBackend, qtbot: QtBot) -> Iterator[MainWindow]:
    vm = MainViewModel(lambda: core_backend, UiState())
    window = MainWindow(vm)
    qtbot.addWidget(window)
    window.resize(1440, 900)
    window.show()
    vm.start()
    qtbot.waitUntil(lambda: vm.session.model is not None, timeout=TIMEOUT_MS)
    yield window
    vm.shutdown()


def test_tune_preview_render_on_the_demo_model(
    real_window: MainWindow, qtbot: QtBot, dialogs: Dialogs, tmp_path: Path
) -> None:
    window, vm = real_window, real_window.vm
    dialogs.texts.append("Ceramics")
    window.shortcuts.new_project.trigger()
    dialogs.files.append(str(reference_image(tmp_path)))
    window.shortcuts.open_image.trigger()
    vm.tuning.steps = 4
    window.tuning.tune_button.click()
    qtbot.waitUntil(lambda: not vm.tuning.running, timeout=TIMEOUT_MS)
    assert vm.session.error is None, vm.session.error
    (row,) = vm.library.rows
    assert row.kind == "appearance" and row.steps == 4 and row.path.is_file()
    assert row.path.parent == vm.projects.current.attributes_dir  # type: ignore[union-attr]
    assert len(vm.tuning.losses) == 4 and len(vm.tuning.previews) == 1
    assert window.library.list.item(0).checkState() == Qt.CheckState.Checked

    qtbot.waitUntil(lambda: vm.idle and vm.rendering.preview_image is not None, timeout=TIMEOUT_MS)
    first = vm.rendering.preview_image
    (slider,) = window.render_panel.sliders()
    slider.slider.setValue(180)
    qtbot.waitUntil(lambda: vm.idle and vm.rendering.preview_image is not first, timeout=TIMEOUT_MS)
    assert "λ 1.80" in vm.rendering.preview_caption

    vm.rendering.steps = 3
    vm.rendering.count = 1
    vm.rendering.prompt = "a photo of a sks vase"
    window.render_panel.render_button.click()
    qtbot.waitUntil(lambda: not vm.rendering.rendering, timeout=TIMEOUT_MS)
    assert vm.session.error is None, vm.session.error
    (item,) = vm.results.items
    assert item.path is not None and item.path.suffix == ".png"
    parameters, record = read_png_metadata(item.path)
    assert parameters is not None and record is not None
    values = parse_a1111(parameters)["values"]
    assert values["Steps"] == "3" and values["OSTAF lambda"] == "1.8"
    assert record["attributes"][0]["name"] == row.name


def test_gui_keeps_processing_events_while_tuning(
    real_window: MainWindow, qtbot: QtBot, tmp_path: Path
) -> None:
    vm = real_window.vm
    vm.reference.open_image(reference_image(tmp_path))
    vm.tuning.steps = 12
    ticks: list[float] = []
    probe = QTimer()
    probe.setTimerType(Qt.TimerType.PreciseTimer)
    probe.timeout.connect(lambda: ticks.append(time.perf_counter()))
    probe.start(10)
    vm.tuning.tune()
    qtbot.waitUntil(lambda: vm.tuning.running and vm.tuning.step > 0, timeout=TIMEOUT_MS)
    start = len(ticks)
    qtbot.waitUntil(lambda: not vm.tuning.running, timeout=TIMEOUT_MS)
    probe.stop()
    during = ticks[start:]
    gaps = [b - a for a, b in itertools.pairwise(during)]
    assert vm.session.error is None, vm.session.error
    assert len(gaps) >= 10, "the event loop barely ran while tuning"
    # Generous for a shared 2-core machine; the figure in BENCHMARKS.md is far lower.
    assert max(gaps) < 1.0, f"the GUI stalled for {max(gaps):.2f} s"


def test_batch_reopen_and_lora_on_the_demo_model(
    real_window: MainWindow, qtbot: QtBot, tmp_path: Path
) -> None:
    window, vm = real_window, real_window.vm
    vm.reference.open_image(reference_image(tmp_path))
    vm.tuning.steps = 2
    vm.tuning.tune()
    qtbot.waitUntil(lambda: not vm.tuning.running, timeout=TIMEOUT_MS)
    (row,) = vm.library.rows
    vm.library.set_intensity(row.id, 0.6)
    vm.rendering.prompt, vm.rendering.steps = "a photo of a sks bowl", 2
    window.shortcuts.batch.trigger()
    out = tmp_path / "batch"
    vm.batch.out_dir, vm.batch.seeds_text, vm.batch.intensities_text = str(out), "3,4", "0.6"
    assert vm.batch.start() is not None
    qtbot.waitUntil(lambda: not vm.batch.running, timeout=TIMEOUT_MS)
    assert vm.session.error is None, vm.session.error
    assert vm.batch.status_text == "Done: 2 rendered, 0 already complete (batch of 2)"
    assert vm.batch.sheet is not None and vm.batch.sheet.is_file()
    vm.batch.start()  # everything is complete: the re-run skips both
    qtbot.waitUntil(lambda: not vm.batch.running, timeout=TIMEOUT_MS)
    assert vm.batch.status_text == "Done: 0 rendered, 2 already complete (batch of 2)"

    image = next(p for p in sorted(out.glob("*.png")) if p != vm.batch.sheet)
    vm.library.set_applied(row.id, False)
    vm.rendering.prompt = "something else"
    assert vm.image_settings.open(image)
    assert vm.rendering.prompt == "a photo of a sks bowl" and vm.rendering.seed == 3
    assert [(a.id, a.intensity) for a in vm.library.applied] == [(row.id, 0.6)]

    vm.library.selected_id = row.id
    assert vm.lora.prepare(row.id)
    vm.lora.out_path = str(tmp_path / "bowl.safetensors")
    vm.lora.export()
    qtbot.waitUntil(lambda: not vm.lora.running, timeout=TIMEOUT_MS)
    assert vm.lora.written == tmp_path / "bowl.safetensors" and vm.lora.written.is_file()


def test_minimum_size_fits_a_1280x720_screen_with_the_demo_model(
    real_window: MainWindow, qtbot: QtBot, tmp_path: Path
) -> None:
    vm = real_window.vm
    assert vm.session.model is not None and vm.session.model.is_demo
    vm.reference.open_image(reference_image(tmp_path))
    qtbot.wait(50)
    hint = real_window.minimumSizeHint()
    assert hint.width() <= 1280 and hint.height() <= 720 - 70  # room for title and task bars


def test_learn_all_three_on_the_demo_model(
    real_window: MainWindow, qtbot: QtBot, tmp_path: Path
) -> None:
    from tests.desktop.test_learn_all_panel import star

    window, vm = real_window, real_window.vm
    assert vm.reference.open_image(star(tmp_path))
    window.tuning.picker.all_three.radio.click()
    vm.tuning.steps = 3
    window.tuning.tune_button.click()
    qtbot.waitUntil(lambda: not vm.tuning.running, timeout=TIMEOUT_MS)
    assert vm.session.error is None, vm.session.error
    rows = {row.kind: row for row in vm.library.rows}
    assert sorted(rows) == ["appearance", "shape", "style"]
    assert len({row.token for row in rows.values()}) == 3
    assert all(row.steps == 3 and row.path.is_file() for row in rows.values())
    assert len(vm.tuning.losses) == 3 and len(vm.tuning.previews) == 1
    assert sorted(a.id for a in vm.library.applied) == sorted(r.id for r in rows.values())
    assert "{token}" not in rows["shape"].tuning_prompt  # the one description, words in place

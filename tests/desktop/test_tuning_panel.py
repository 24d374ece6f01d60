"""Tuning from the window: progress, previews, cancel (the worker is told to stop and
nothing is saved), and the attribute lands in the library on success."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pytestqt.qtbot import QtBot

from ostaf.method.regions import AttributeKind, suggested_caption
from ostaf.requests import KIND_TUNING, PRESETS, preset_steps
from ostaf_desktop.run_history import load_run, save_run
from ostaf_desktop.viewmodels.main import MainViewModel
from ostaf_desktop.widgets.main_window import MainWindow
from tests.attribute_files import write_attribute_file
from tests.desktop.conftest import Dialogs, FakeBackend, reference_image


def test_cancel_tells_the_worker_to_stop_and_saves_nothing(
    window: MainWindow, vm: MainViewModel, fake: FakeBackend, qtbot: QtBot, tmp_path: Path
) -> None:
    vm.reference.open_image(reference_image(tmp_path))
    fake.step_delay_s = 0.02
    vm.tuning.steps = 500
    assert window.tuning.tune_button.isEnabled()
    window.tuning.tune_button.click()
    qtbot.waitUntil(lambda: vm.tuning.step >= 3, timeout=5000)
    assert window.tuning.cancel_button.isEnabled()
    window.tuning.cancel_button.click()
    (call,) = fake.of_kind("tune")
    assert call.cancel.cancelled
    qtbot.waitUntil(lambda: not vm.tuning.running, timeout=5000)
    assert vm.tuning.stage_text.startswith("Cancelled")
    assert vm.tuning.step < 500
    assert vm.library.rows == ()
    project = vm.projects.current
    assert project is not None and not any(project.attributes_dir.iterdir())
    assert not call.request.out.exists()
    assert window.tuning.tune_button.isEnabled()


def test_successful_run_lands_in_the_library(
    window: MainWindow, vm: MainViewModel, fake: FakeBackend, qtbot: QtBot, tmp_path: Path
) -> None:
    vm.reference.open_image(reference_image(tmp_path))
    window.tuning.picker.cards[AttributeKind.SHAPE].radio.click()
    window.tuning.picker.class_word.setText("vase")
    window.tuning.picker.preset.setCurrentIndex(0)  # Fast
    assert vm.tuning.kind == "shape" and vm.tuning.steps == 150
    vm.tuning.steps = 40
    assert vm.tuning.preset == "custom"
    window.shortcuts.tune.trigger()
    qtbot.waitUntil(lambda: not vm.tuning.running, timeout=5000)
    (call,) = fake.of_kind("tune")
    settings = call.request.settings
    assert (settings.kind, settings.class_word, settings.steps) == ("shape", "vase", 40)
    assert settings.preview_every == 10 and settings.mask is None
    assert vm.tuning.stage_text.startswith("Saved to the library")
    assert len(vm.tuning.losses) == 40 and len(vm.tuning.previews) == 4
    bar = window.tuning_progress.progress
    assert bar.value() == bar.maximum() and not bar.isHidden()
    (row,) = vm.library.rows
    assert row.name == "Shape of reference" and vm.library.selected_id == row.id
    assert [a.id for a in vm.library.applied] == [row.id]
    project = vm.projects.current
    assert project is not None and len(project.info.references) == 1
    assert not any((project.folder / ".staging").iterdir())
    record = load_run(row.id)
    assert record is not None and len(record.previews) == 4
    assert window.library.list.count() == 1


def test_description_is_suggested_per_kind_and_kept_once_edited(
    window: MainWindow, vm: MainViewModel, fake: FakeBackend, qtbot: QtBot, tmp_path: Path
) -> None:
    picker = window.tuning.picker
    picker.cards[AttributeKind.STYLE].radio.click()
    assert picker.caption.text() == suggested_caption(AttributeKind.STYLE)
    assert vm.tuning.learning_rate == KIND_TUNING[AttributeKind.STYLE].learning_rate
    assert picker.embedding_rate.value() == KIND_TUNING[AttributeKind.STYLE].embedding_rate > 0
    picker.class_word.setText("cat")
    assert picker.caption.text() == suggested_caption(AttributeKind.STYLE, "cat")
    picker.cards[AttributeKind.SHAPE].radio.click()
    assert picker.caption.text() == suggested_caption(AttributeKind.SHAPE, "cat")
    assert vm.tuning.steps == KIND_TUNING[AttributeKind.SHAPE].steps
    assert picker.prior.value() == KIND_TUNING[AttributeKind.SHAPE].prior
    assert picker.embedding_rate.value() == KIND_TUNING[AttributeKind.SHAPE].embedding_rate
    vm.reference.open_image(reference_image(tmp_path))
    picker.caption.setText("a black {token} cat on a white background")
    picker.cards[AttributeKind.APPEARANCE].radio.click()  # edited for this picture: it stays
    picker.cards[AttributeKind.SHAPE].radio.click()
    assert vm.tuning.caption == "a black {token} cat on a white background"
    picker.prior.setValue(2.5)  # Advanced → Keep prompt reaches the run
    picker.embedding_rate.setValue(0.002)  # and Word rate
    vm.tuning.steps = 10
    window.shortcuts.tune.trigger()
    qtbot.waitUntil(lambda: not vm.tuning.running, timeout=5000)
    (call,) = fake.of_kind("tune")
    assert call.request.settings.caption == "a black {token} cat on a white background"
    assert call.request.settings.prior == 2.5
    assert call.request.settings.embedding_rate == 0.002
    assert call.request.settings.strength == KIND_TUNING[AttributeKind.SHAPE].strength


def test_on_the_demo_model_a_world_reference_is_described_exactly(
    window: MainWindow, vm: MainViewModel
) -> None:
    assert vm.session.model is not None and vm.session.model.is_demo
    picker = window.tuning.picker
    assert vm.reference.open_sample()  # an orange striped star, flat style, on white
    assert picker.caption.text() == "a {token} star, flat style, on a white background"
    picker.cards[AttributeKind.SHAPE].radio.click()
    assert picker.caption.text() == "an orange striped {token}, flat style, on a white background"
    picker.cards[AttributeKind.STYLE].radio.click()
    assert picker.caption.text() == "an orange striped star, {token} style, on a white background"
    vm.reference.close_image()  # no reference: the kind's template again
    assert picker.caption.text() == suggested_caption(AttributeKind.STYLE)


def test_a_picture_from_outside_the_world_keeps_the_template(
    window: MainWindow, vm: MainViewModel, tmp_path: Path
) -> None:
    noise = np.random.default_rng(0).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "noise.png")
    assert vm.reference.open_image(tmp_path / "noise.png")
    assert window.tuning.picker.caption.text() == suggested_caption(AttributeKind.APPEARANCE)


def test_a_suggested_description_shows_from_its_start(
    window: MainWindow, vm: MainViewModel
) -> None:
    assert vm.reference.open_sample()
    assert window.tuning.picker.caption.cursorPosition() == 0


def test_the_learning_rate_box_shows_each_kinds_rate_and_steps_within_its_decade(
    window: MainWindow, vm: MainViewModel
) -> None:
    picker = window.tuning.picker
    picker.cards[AttributeKind.APPEARANCE].radio.click()
    box = picker.learning_rate
    assert vm.tuning.learning_rate == KIND_TUNING[AttributeKind.APPEARANCE].learning_rate == 1e-5
    assert box.text() == "0.00001"
    box.stepUp()  # a tenth of 1e-5, not a jump to 1e-4
    assert box.text() == "0.000011" and vm.tuning.learning_rate == pytest.approx(1.1e-5)
    picker.cards[AttributeKind.SHAPE].radio.click()
    assert box.text() == "0.0003"
    box.stepDown()
    assert vm.tuning.learning_rate == pytest.approx(2.9e-4)


def test_the_hint_under_tune_follows_the_quality_box(
    window: MainWindow, vm: MainViewModel, tmp_path: Path
) -> None:
    vm.reference.open_image(reference_image(tmp_path))
    picker, hint = window.tuning.picker, window.tuning.hint
    kind = AttributeKind(vm.tuning.kind)
    for key in ("fast", "best", "balanced"):
        picker.preset.setCurrentIndex(picker.preset.findData(key))
        preset = PRESETS[key]
        steps = preset_steps(kind, key)
        assert hint.full_text() == f"{preset.name} · {preset.summary} ({steps} steps)"
    picker.steps.setValue(123)  # Advanced → Steps: a custom run
    assert hint.full_text() == "Custom (123 steps)"


def test_a_finished_600_step_run_fills_the_loss_curve_to_its_last_step(
    window: MainWindow, vm: MainViewModel
) -> None:
    """The kept history of a run holds at most 400 values: they still span all 600 steps."""
    project = vm.projects.current
    assert project is not None
    path = write_attribute_file(project.attribute_path("a" * 64), name="Best run", steps=600)
    save_run(path.stem, [1.0 / step for step in range(1, 601)], [], 60.0)
    vm.library.refresh()
    vm.library.selected_id = path.stem  # shows the run that made it
    curve = window.tuning_progress.curve
    assert len(vm.tuning.losses) == 400 and vm.tuning.step == 600
    assert curve.last_step() == 600
    points = curve.points(vm.tuning.losses)
    area = curve.plot_area()
    assert points[0].x() == pytest.approx(area.left())
    assert points[-1].x() == pytest.approx(area.right())


def test_a_running_curve_ends_at_the_current_step(
    window: MainWindow, vm: MainViewModel, fake: FakeBackend, qtbot: QtBot, tmp_path: Path
) -> None:
    vm.reference.open_image(reference_image(tmp_path))
    vm.tuning.steps = 600
    fake.step_delay_s = 0.005
    vm.tuning.tune()
    qtbot.waitUntil(lambda: vm.tuning.step >= 30, timeout=5000)
    curve = window.tuning_progress.curve
    step = vm.tuning.step
    assert curve.last_step() == step == len(vm.tuning.losses)
    area = curve.plot_area()
    expected = area.left() + area.width() * (step - 1) / 599
    assert curve.points(vm.tuning.losses)[-1].x() == pytest.approx(expected)
    vm.tuning.cancel()
    qtbot.waitUntil(lambda: not vm.tuning.running, timeout=5000)


def test_a_tune_equal_to_an_attribute_in_the_library_says_so_and_selects_it(
    window: MainWindow, vm: MainViewModel, fake: FakeBackend, qtbot: QtBot, dialogs: Dialogs,
    tmp_path: Path,
) -> None:  # fmt: skip
    """The library keeps identical content once: the second run of the same tune does not
    claim a save under its new name."""
    fake.tune_content = 5
    vm.reference.open_image(reference_image(tmp_path))
    vm.tuning.steps = 10
    vm.tuning.tune()
    qtbot.waitUntil(lambda: not vm.tuning.running, timeout=5000)
    (first,) = vm.library.rows
    assert vm.session.status_message == f"Saved '{first.name}' to the library"
    vm.library.selected_id = ""
    window.tuning.picker.name.setText("Orange stripes again")
    window.tuning.tune_button.click()
    qtbot.waitUntil(lambda: not vm.tuning.running, timeout=5000)
    assert [row.id for row in vm.library.rows] == [first.id] and first.name != "Orange stripes"
    assert vm.library.selected_id == first.id
    assert [a.id for a in vm.library.applied] == [first.id]
    assert vm.session.status_message == f"Equal to '{first.name}' in the library: nothing new saved"
    assert dialogs.asked[-1] == "Already in the library"
    assert vm.tuning.stage_text == f"Equal to '{first.name}' in the library: nothing new saved"

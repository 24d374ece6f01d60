"""The reference canvas: open and drop images, clear feedback on bad ones, crop and mask."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from pytestqt.qtbot import QtBot

from ostaf_desktop.viewmodels.main import MainViewModel
from ostaf_desktop.widgets.main_window import MainWindow
from tests.desktop.conftest import Dialogs, FakeBackend, reference_image


def test_open_and_feedback(
    window: MainWindow, vm: MainViewModel, dialogs: Dialogs, tmp_path: Path
) -> None:
    dialogs.files.append(str(reference_image(tmp_path, size=48)))
    window.shortcuts.open_image.trigger()
    assert vm.reference.image is not None and vm.reference.original_size == (48, 48)
    assert "reference.png · 48×48" in window.reference.info.full_text()
    assert "upscaled" in window.reference.notes.full_text()  # the fake model works at 64 px

    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (16, 16)).save(tiny)
    assert not vm.reference.open_image(tiny)
    assert vm.session.error is not None and "only 16×16 pixels" in vm.session.error.message
    assert vm.reference.original_size == (48, 48)  # the previous image stays

    junk = tmp_path / "junk.webp"
    junk.write_bytes(b"this is not an image")
    assert not vm.reference.open_image(junk)
    assert vm.session.error is not None and "not a readable image" in vm.session.error.message

    wide = tmp_path / "wide.jpg"
    Image.new("RGB", (5000, 300), "blue").save(wide)
    assert vm.reference.open_image(wide)
    assert any("Large" in note for note in vm.reference.notes)
    assert any("Not square" in note for note in vm.reference.notes)
    assert vm.reference.image is not None and vm.reference.image.width() == 4096


def test_drop_an_image(window: MainWindow, vm: MainViewModel, tmp_path: Path) -> None:
    canvas = window.reference.canvas
    data = QMimeData()
    data.setUrls([QUrl.fromLocalFile(str(reference_image(tmp_path, name="dropped.png")))])
    event = QDropEvent(
        QPointF(50, 50),
        Qt.DropAction.CopyAction,
        data,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    canvas.dropEvent(event)  # Qt delivers drops only during a real drag, so call the handler
    assert event.isAccepted()
    assert vm.reference.path is not None and vm.reference.path.name == "dropped.png"


def test_crop_and_mask_drive_the_tuning_request(
    window: MainWindow, vm: MainViewModel, fake: FakeBackend, qtbot: QtBot, tmp_path: Path
) -> None:
    vm.reference.open_image(reference_image(tmp_path, size=200))
    canvas = window.reference.canvas
    canvas.fit()

    def at(x: float, y: float) -> QPoint:
        return canvas.to_widget(QPointF(x, y)).toPoint()

    window.shortcuts.tools["crop"].trigger()
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=at(20, 20))
    qtbot.mouseMove(canvas, at(120, 150))
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=at(180, 180))
    assert vm.reference.crop is not None
    left, top, right, bottom = vm.reference.crop
    assert max(abs(left - 20), abs(top - 20), abs(right - 180), abs(bottom - 180)) <= 2

    window.shortcuts.tools["brush"].trigger()
    vm.reference.brush_size = 30
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=at(60, 100))
    qtbot.mouseMove(canvas, at(140, 100))
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=at(140, 100))
    assert vm.reference.has_mask
    assert "masked" in window.reference.mask_state.full_text()

    fake.step_delay_s = 0.01
    vm.tuning.steps = 10
    vm.tuning.tune()
    qtbot.waitUntil(lambda: len(fake.of_kind("tune")) == 1 and vm.tuning.step >= 1, timeout=5000)
    settings = fake.of_kind("tune")[0].request.settings
    assert settings.crop == vm.reference.crop
    assert settings.mask is not None
    with Image.open(settings.mask) as mask:
        assert mask.size == (200, 200) and mask.getpixel((100, 100)) == 255
        assert mask.getpixel((100, 20)) == 0
    qtbot.waitUntil(lambda: not vm.tuning.running, timeout=5000)
    assert not settings.mask.exists()  # the staged mask is cleaned up

    window.reference.clear_mask.click()
    assert not vm.reference.has_mask


def test_a_small_painted_subject_is_noted_and_crop_to_the_mask_frames_it(
    window: MainWindow, vm: MainViewModel, qtbot: QtBot, tmp_path: Path
) -> None:
    from ostaf.images import SUBJECT_FILL

    reference = vm.reference
    panel = window.reference
    reference.open_image(reference_image(tmp_path, size=400))
    assert not panel.crop_to_mask.isEnabled()  # nothing painted yet
    window.shortcuts.crop_to_mask.trigger()
    assert vm.session.error is not None and "paint the subject" in vm.session.error.message
    assert reference.crop is None

    canvas = window.reference.canvas
    canvas.fit()

    def at(x: float, y: float) -> QPoint:
        return canvas.to_widget(QPointF(x, y)).toPoint()

    # A subject about 60 px across in a corner of a 400 px picture: small for the model.
    window.shortcuts.tools["brush"].trigger()
    reference.brush_size = 30
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=at(315, 330))
    qtbot.mouseMove(canvas, at(345, 350))
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=at(345, 360))
    assert panel.crop_to_mask.isEnabled()
    assert "Small subject" in panel.notes.full_text()

    panel.crop_to_mask.click()
    assert reference.crop is not None
    left, top, right, bottom = reference.crop
    assert right - left == bottom - top  # the square the model sees
    painted = reference.painted()
    assert painted is not None
    rows, columns = painted.nonzero()
    assert left <= columns.min() and columns.max() < right
    assert top <= rows.min() and rows.max() < bottom
    span = max(rows.max() - rows.min(), columns.max() - columns.min()) + 1
    assert span / (right - left) == pytest.approx(SUBJECT_FILL, abs=0.03)
    assert "Small subject" not in panel.notes.full_text()
    assert "The mask still limits tuning" in vm.session.status_message
    assert f"crop {right - left}×{bottom - top}" in panel.mask_state.full_text()

    panel.clear_mask.click()
    assert not panel.crop_to_mask.isEnabled()

"""Resizing the window converges: no widget's size hint follows its own size, so a scrolling
column cannot flip its scroll bar forever. The λ preview's hint once followed its scaled
picture; at some window sizes Qt's resize recursion between the render column and its scroll
bar then never ended, and the app died of a stack overflow (field soak, 2026-12-07)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QEvent, QObject
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from ostaf_desktop.viewmodels.main import MainViewModel
from ostaf_desktop.widgets.main_window import MainWindow
from tests.desktop.test_window_fit import busy_window

# From tall to short and back at many widths: the loop came after a shrink, as in the soak.
SIZES = [
    (width, height)
    for width in range(1157, 1700, 111)
    for short in (688, 700, 712)
    for height in (1050, short)
]
RUNAWAY = 30  # resize events of one column in one window resize: a loop, not a layout


class ResizeCounter(QObject):
    """Counts a column's resize events; at RUNAWAY it takes the picture away from the preview,
    which ends a loop that would otherwise overflow the stack and kill the test run."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.count = 0

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Resize:
            self.count += 1
            if self.count == RUNAWAY:
                self.window.render_panel.preview.set_image(None)
        return False


def gray_picture() -> QImage:
    image = QImage(64, 64, QImage.Format.Format_RGB32)
    image.fill(QColor("gray"))
    return image


def size_hints(window: MainWindow) -> dict[int, tuple[str, tuple[int, int], tuple[int, int]]]:
    return {
        id(widget): (
            type(widget).__name__,
            widget.sizeHint().toTuple(),
            widget.minimumSizeHint().toTuple(),
        )
        for widget in window.findChildren(QWidget)
        if widget.isVisible()
    }


def test_resizing_the_window_never_loops(
    window: MainWindow, vm: MainViewModel, qtbot: QtBot, tmp_path: Path
) -> None:
    busy_window(window, vm, qtbot, tmp_path)
    picture = gray_picture()
    vm.rendering.preview_image = picture
    counter = ResizeCounter(window)
    window.render_panel.installEventFilter(counter)
    runaway = []
    for width, height in SIZES:
        counter.count = 0
        window.resize(width, height)
        if counter.count >= RUNAWAY:
            runaway.append((width, height))
            window.render_panel.preview.set_image(picture)
    assert runaway == []


def test_no_size_hint_follows_the_widgets_size(
    window: MainWindow, vm: MainViewModel, qtbot: QtBot, tmp_path: Path
) -> None:
    busy_window(window, vm, qtbot, tmp_path)
    vm.rendering.preview_image = gray_picture()
    qtbot.wait(20)
    first = size_hints(window)
    changed = set()
    for size in ((1157, 688), (1700, 1050), (1300, 700), (1440, 900)):
        window.resize(*size)
        qtbot.wait(20)
        for key, hints in size_hints(window).items():
            if key in first and hints != first[key]:
                changed.add((first[key], hints))
    assert changed == set()


def test_the_preview_paints_its_picture_fitted_and_square(
    window: MainWindow, vm: MainViewModel, qtbot: QtBot
) -> None:
    preview = window.render_panel.preview
    assert preview.image is None
    vm.rendering.preview_image = gray_picture()
    assert preview.image is not None
    qtbot.waitUntil(lambda: preview.width() > 130 and preview.height() > 130, timeout=5000)
    shot = preview.grab().toImage()
    centre = shot.pixelColor(shot.width() // 2, shot.height() // 2)
    assert centre.name() == "#808080"  # the picture, scaled up to the widget
    assert shot.pixelColor(1, 1).name() != "#808080"  # the frame around it
    side = min(preview.width(), preview.height()) - 4
    left = (preview.width() - side) // 2
    assert shot.pixelColor(left + 1, shot.height() // 2).name() == "#808080"
    if preview.width() > preview.height() + 8:  # letterboxed: beside it is background
        assert shot.pixelColor(left - 3, shot.height() // 2).name() != "#808080"

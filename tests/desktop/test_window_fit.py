"""The window on small and large screens: its minimum size fits a 1280×720 laptop, and no
text is cut off (a label fits, or it is elided with "…" and its tooltip holds the full text)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import QPoint, QRect, QSize
from PySide6.QtWidgets import QLabel
from pytestqt.qtbot import QtBot

from ostaf_desktop.backend import RenderedImage
from ostaf_desktop.viewmodels.main import MainViewModel
from ostaf_desktop.widgets import main_window
from ostaf_desktop.widgets.layout import ElidedLabel
from ostaf_desktop.widgets.main_window import MainWindow, ScrolledColumn
from tests.desktop.conftest import FakeBackend, add_attribute, reference_image
from tests.desktop.test_resume_bar import _plant

# A 1280×720 screen less a title bar and a task bar or top bar (about 35 px each).
SMALL_SCREEN = (1280, 720 - 70)
LONG_NAME = "Orange stripes on a star, flat style, with a long descriptive name"


def busy_window(window: MainWindow, vm: MainViewModel, qtbot: QtBot, tmp_path: Path) -> None:
    """The window as an illustrator has it: the demo model's note, a 1024×768 reference with
    a long file name and a mask, a finished run, two applied attributes, many results."""
    path = tmp_path / "glazed_vase_reference_photo_from_the_studio.png"
    Image.new("RGB", (1024, 768), "white").save(path)
    assert vm.reference.open_image(path)
    mask = vm.reference.ensure_mask()
    assert mask is not None
    mask.fill(255)
    vm.reference.mask_painted()
    vm.tuning.steps = 20
    vm.tuning.name = LONG_NAME
    assert vm.tuning.tune() is not None
    qtbot.waitUntil(lambda: not vm.tuning.running, timeout=5000)
    vm.library.set_applied(add_attribute(vm, "Blue", seed=1), True)
    image = Image.new("RGB", (64, 64), "gray")
    vm.results.add([RenderedImage(image, seed, "", None) for seed in range(1, 17)])
    assert not window.hint.isHidden()  # the demo model's note takes room too
    qtbot.wait(50)


def test_minimum_size_fits_a_1280x720_screen(
    window: MainWindow, vm: MainViewModel, qtbot: QtBot, tmp_path: Path
) -> None:
    busy_window(window, vm, qtbot, tmp_path)
    project = vm.projects.current
    assert project is not None
    _plant(project, reference_image(tmp_path, name="other.png"))
    vm.resume.refresh()  # an interrupted run's bar takes room too
    assert window.resume_bar.isVisible()
    qtbot.wait(50)
    hint = window.minimumSizeHint()
    assert hint.width() <= SMALL_SCREEN[0] and hint.height() <= SMALL_SCREEN[1]


@pytest.mark.parametrize(
    ("area", "expected"),
    [
        (QRect(0, 27, 1280, 693), QRect(2, 61, 1276, 657)),  # a 1280×720 laptop, top bar
        (QRect(0, 0, 1920, 1040), QRect(240, 86, 1440, 900)),  # room for the default size
    ],
)
def test_the_first_window_fits_its_screen(
    vm: MainViewModel, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch, area: QRect,
    expected: QRect,
) -> None:  # fmt: skip
    """With no saved layout the window opens at 1440×900, or smaller where the screen's
    free area (less a title bar) is smaller; it never runs off the screen."""
    monkeypatch.setattr(main_window, "available_area", lambda _window: area)
    window = MainWindow(vm)
    qtbot.addWidget(window)
    assert not vm.session.ui.geometry
    window.restore_layout()
    assert window.geometry() == expected
    assert area.contains(window.geometry())
    window.show()
    qtbot.waitExposed(window)
    assert window.width() <= area.width() and window.height() <= area.height()


@pytest.mark.parametrize("size", [(1440, 900), "minimum"])
def test_tune_stays_in_view_with_advanced_open(
    window: MainWindow, vm: MainViewModel, qtbot: QtBot, tmp_path: Path, size: object
) -> None:
    busy_window(window, vm, qtbot, tmp_path)
    vm.tuning.advanced_open = True
    window.resize(window.minimumSizeHint() if size == "minimum" else QSize(*size))  # type: ignore[misc]
    qtbot.wait(50)
    for button in (window.tuning.tune_button, window.tuning.cancel_button):
        assert button.visibleRegion().boundingRect() == button.rect()
    assert window.tuning.hint.visibleRegion().boundingRect() == window.tuning.hint.rect()
    assert window.rect().contains(window.tuning.tune_button.mapTo(window, QPoint(0, 0)))


@pytest.mark.parametrize("size", [(1440, 900), "minimum"])
def test_the_tuning_header_is_never_cut(
    window: MainWindow, vm: MainViewModel, fake: FakeBackend, qtbot: QtBot, tmp_path: Path,
    size: object,
) -> None:  # fmt: skip
    """ "Step 145 of 1000" shows in full beside the bar, which carries no text of its own."""
    busy_window(window, vm, qtbot, tmp_path)
    window.resize(window.minimumSizeHint() if size == "minimum" else QSize(*size))  # type: ignore[misc]
    fake.step_delay_s = 0.01
    vm.tuning.steps = 1000
    vm.tuning.tune()
    qtbot.waitUntil(lambda: vm.tuning.step >= 145, timeout=10000)
    progress = window.tuning_progress
    qtbot.wait(50)
    assert progress.stage.text() == progress.stage.full_text()
    assert progress.stage.full_text().startswith("Step ")
    assert not progress.progress.isTextVisible()
    stage, bar = progress.stage.geometry(), progress.progress.geometry()
    assert not stage.intersects(bar)
    vm.tuning.cancel()
    qtbot.waitUntil(lambda: not vm.tuning.running, timeout=5000)


def cut_off_labels(window: MainWindow) -> list[str]:
    """Visible one-line labels whose text is wider than the label, unless elided with the
    full text in the tooltip; and scrolled columns whose content is wider than their view."""
    found = []
    for widget in window.findChildren(QLabel):
        text = widget.text()
        if (
            not widget.isVisible()
            or not text
            or widget.wordWrap()
            or "<" in text  # rich text wraps or is laid out by Qt
            or widget.width() == 0
        ):
            continue
        if isinstance(widget, ElidedLabel) and widget.full_text() != text:
            if widget.full_text() not in widget.toolTip():
                found.append(f"{widget.full_text()!r} elided without a tooltip")
            continue
        needed = max(widget.fontMetrics().horizontalAdvance(line) for line in text.split("\n"))
        if needed > widget.contentsRect().width() + 1:
            found.append(f"{text!r} needs {needed} px, has {widget.contentsRect().width()}")
    for column in window.findChildren(ScrolledColumn):
        content = column.widget()
        if content is not None and content.width() > column.viewport().width():
            found.append(f"{type(content).__name__} is wider than its column")
    return found


@pytest.mark.parametrize("size", [(1440, 900), "minimum"])
def test_no_text_is_cut_off(
    window: MainWindow, vm: MainViewModel, qtbot: QtBot, tmp_path: Path, size: object
) -> None:
    busy_window(window, vm, qtbot, tmp_path)
    if size == "minimum":
        window.resize(window.minimumSizeHint())
    else:
        assert isinstance(size, tuple)
        window.resize(*size)
    qtbot.wait(50)
    assert window.render_panel.sliders()[0].name.full_text() == LONG_NAME
    assert cut_off_labels(window) == []
    details = window.library.details.name  # a long name shows from its start
    assert details.text() == LONG_NAME and details.cursorPosition() == 0


def test_result_captions_stay_visible_when_the_strip_scrolls(
    window: MainWindow, vm: MainViewModel, qtbot: QtBot, tmp_path: Path
) -> None:
    busy_window(window, vm, qtbot, tmp_path)
    strip = window.results.list
    assert strip.horizontalScrollBar().isVisible()
    # A cell (thumbnail and caption) is laid out in the grid's height, whatever the font.
    assert strip.gridSize().height() <= strip.viewport().height()
    for row in range(strip.count()):
        assert strip.visualItemRect(strip.item(row)).bottom() < strip.viewport().height()


def test_lambda_sliders_of_several_attributes_line_up(
    window: MainWindow, vm: MainViewModel, qtbot: QtBot
) -> None:
    for seed, name in enumerate(("Ink", "Blue crackle glaze", LONG_NAME)):
        vm.library.set_applied(add_attribute(vm, name, seed=seed), True)
    qtbot.wait(50)
    sliders = window.render_panel.sliders()
    assert len(sliders) == 3
    lefts = {slider.slider.mapTo(window, slider.slider.rect().topLeft()).x() for slider in sliders}
    widths = {slider.slider.width() for slider in sliders}
    assert len(lefts) == 1 and len(widths) == 1

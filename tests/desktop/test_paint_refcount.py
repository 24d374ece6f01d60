"""No Qt call the app makes while painting may change Python's reference count of None.

PySide6-Essentials 6.12.0 drops one reference to None per void call; on Python 3.11 that
frees None and kills the process minutes into a tuning run (the loss curve repaints every
step). Each probe repeats one call the paint code makes, with the argument types it uses, and
the widgets themselves are rendered many times. From Python 3.12 None is immortal: a drift
cannot free it, and PySide6's stable-ABI code still moves its count a little (ReferenceCanvas
+1 per render on 3.12 with 6.11.3), so the tests run where the count matters."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import QPointF, QRect, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QImage, QPainter, QPainterPath, QPen, QPixmap
from PySide6.QtWidgets import QLabel, QProgressBar, QWidget

from ostaf_desktop.pyside_check import none_is_immortal, none_refcount_drift, probe_drift
from ostaf_desktop.viewmodels.main import MainViewModel
from ostaf_desktop.widgets.intensity_slider import IntensitySlider
from ostaf_desktop.widgets.loss_curve import LossCurve
from ostaf_desktop.widgets.main_window import MainWindow
from ostaf_desktop.widgets.reference_canvas import ReferenceCanvas

REPEAT = 1000

pytestmark = pytest.mark.skipif(
    none_is_immortal(), reason="None is immortal from Python 3.12: no drift can free it"
)


def paint_calls(painter: QPainter, image: QImage) -> dict[str, Callable[[], object]]:
    """One entry per kind of call in the paint code (loss_curve, reference_canvas,
    thumbnails), and the per-step updates that trigger painting.

    Only calls on long-lived objects: in 6.11.3 as in 6.12.0, constructing a QPainter on a new
    QPixmap or QImage adds 6 references to None (a harmless leak) that would hide a loss, so
    `square_icon` is covered here call by call, not as a whole."""
    pen, colour, brush = QPen(QColor("#2e3340"), 1), QColor("#7d8699"), QBrush(QColor("white"))
    rect, rectf = QRect(0, 0, 60, 40), QRectF(2.0, 2.0, 30.0, 20.0)
    a, b = QPointF(1, 2), QPointF(30, 20)
    path = QPainterPath(a)
    font = QFont(painter.font())
    pixmap = QPixmap(8, 8)
    pixmap.fill(Qt.GlobalColor.transparent)
    target = QImage(16, 16, QImage.Format.Format_ARGB32_Premultiplied)
    mask = QImage(16, 16, QImage.Format.Format_Grayscale8)
    mask.fill(0)
    label, bar, widget = QLabel(), QProgressBar(), QWidget()
    return {
        "QPainterPath.lineTo": lambda: path.lineTo(a),
        "QPainter.drawPath": lambda: painter.drawPath(path),
        "QPainter.drawLine(QPointF, QPointF)": lambda: painter.drawLine(a, b),
        "QPainter.setPen(QPen)": lambda: painter.setPen(pen),
        "QPainter.setPen(QColor)": lambda: painter.setPen(colour),
        "QPainter.setPen(QPen(colour, width, style, cap, join))": lambda: painter.setPen(
            QPen(
                colour,
                3.0,
                Qt.PenStyle.SolidLine,
                Qt.PenCapStyle.RoundCap,
                Qt.PenJoinStyle.RoundJoin,
            )
        ),
        "QPainter.fillRect(QRect, QColor)": lambda: painter.fillRect(rect, colour),
        "QPainter.fillRect(QRectF, QColor)": lambda: painter.fillRect(rectf, colour),
        "QPainter.fillRect(QRectF, QBrush)": lambda: painter.fillRect(rectf, brush),
        "QPainter.fillRect(int, int, int, int, QColor)": lambda: painter.fillRect(
            0, 0, 12, 12, colour
        ),
        "QPainter.setRenderHint": lambda: painter.setRenderHint(QPainter.RenderHint.Antialiasing),
        "QPainter.setRenderHint(hint, bool)": lambda: painter.setRenderHint(
            QPainter.RenderHint.SmoothPixmapTransform, True
        ),
        "QPainter.drawText(QRect, flags, str)": lambda: painter.drawText(
            rect, Qt.AlignmentFlag.AlignCenter, "loss curve"
        ),
        "QPainter.drawText(QRectF, flags, str)": lambda: painter.drawText(
            rectf, Qt.AlignmentFlag.AlignRight, "0.25"
        ),
        "QPainter.setFont": lambda: painter.setFont(font),
        "QFont.setPointSizeF": lambda: font.setPointSizeF(9.0),
        "QPainter.drawImage(QRectF, QImage)": lambda: painter.drawImage(rectf, image),
        "QPainter.setOpacity": lambda: painter.setOpacity(0.5),
        "QPainter.setBrush(BrushStyle)": lambda: painter.setBrush(Qt.BrushStyle.NoBrush),
        "QPainter.setBrush(QBrush)": lambda: painter.setBrush(brush),
        "QPainter.drawRect(QRectF)": lambda: painter.drawRect(rectf),
        "QPainter.drawEllipse(QPointF, rx, ry)": lambda: painter.drawEllipse(a, 4.0, 4.0),
        "QPainter.setCompositionMode": lambda: painter.setCompositionMode(
            QPainter.CompositionMode.CompositionMode_SourceOver
        ),
        "QPainter.drawPixmap(int, int, QPixmap)": lambda: painter.drawPixmap(0, 0, pixmap),
        "QPixmap.fill": lambda: pixmap.fill(Qt.GlobalColor.transparent),
        "QImage.fill(QColor)": lambda: target.fill(colour),
        "QImage.setAlphaChannel": lambda: target.setAlphaChannel(mask),
        "QPainter(QImage).end()": lambda: QPainter(target).end(),
        "QWidget.update": widget.update,
        "QLabel.setText": lambda: label.setText("λ 1.00"),
        "QProgressBar.setValue": lambda: bar.setValue(5),
    }


def assert_no_drift(drifts: dict[str, int]) -> None:
    moved = {name: drift for name, drift in drifts.items() if drift}
    assert not moved, "None's reference count moved: " + ", ".join(
        f"{name} {drift:+d}" for name, drift in moved.items()
    )


@pytest.fixture
def painter(qapp: object) -> tuple[QPainter, QImage]:
    image = QImage(64, 64, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(QColor("black"))
    painter = QPainter(image)
    yield painter, image
    painter.end()


def test_no_paint_call_changes_the_count_of_none(painter: tuple[QPainter, QImage]) -> None:
    drifts = {
        name: none_refcount_drift(call, REPEAT)
        for name, call in paint_calls(painter[0], painter[1]).items()
    }
    assert_no_drift(drifts)


def test_the_start_probe_sees_no_drift() -> None:
    assert probe_drift(REPEAT) == 0


def render_drift(widget: QWidget, times: int) -> int:
    """Drift of None's count over `times` full renders of `widget` (paintEvent included)."""
    canvas = QImage(widget.size(), QImage.Format.Format_ARGB32_Premultiplied)

    def render() -> None:
        widget.render(canvas)

    return none_refcount_drift(render, times)


def test_rendering_the_painted_widgets_keeps_the_count_of_none(
    window: MainWindow, vm: MainViewModel, tmp_path: Path
) -> None:
    curve = LossCurve()
    curve.resize(320, 120)
    curve.set_total(500)
    curve.set_losses(tuple(0.5 + 0.1 * ((i * 37) % 11) / 11 for i in range(300)))

    picture = tmp_path / "reference.png"
    Image.new("RGBA", (96, 64), (200, 80, 40, 128)).save(picture)
    assert vm.reference.open_image(picture)
    canvas = window.findChild(ReferenceCanvas)
    assert canvas is not None
    vm.reference.set_crop((8, 8, 80, 56))
    vm.reference.tool = "brush"
    canvas._cursor = QPointF(40, 40)
    canvas._last_paint = QPointF(10, 10)
    canvas._stroke(QPointF(30, 30))  # creates the mask overlay, drawn at MASK_OPACITY

    slider = IntensitySlider("a long attribute name", 1.0)
    slider.resize(300, 30)
    drifts = {
        "LossCurve": render_drift(curve, 20),  # ~12,000 Qt calls
        "ReferenceCanvas": render_drift(canvas, 50),
        "IntensitySlider": render_drift(slider, 50),
    }
    assert_no_drift(drifts)


def test_the_probe_sees_a_lost_reference() -> None:
    """The measure itself works: a call that leaks a reference to None shows as +n."""
    kept: list[object] = []
    assert none_refcount_drift(lambda: kept.append(None), 100) == 100

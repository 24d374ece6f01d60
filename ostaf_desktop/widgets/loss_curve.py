"""A live plot of the tuning loss (raw values faint, a moving average on top)."""

from __future__ import annotations

import math

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

SMOOTHING = 0.9


def smoothed(values: tuple[float, ...] | list[float], factor: float = SMOOTHING) -> list[float]:
    """Exponential moving average, bias-corrected so the start is not pulled to zero."""
    out, average = [], 0.0
    for i, value in enumerate(values, start=1):
        average = factor * average + (1 - factor) * value
        out.append(average / (1 - factor**i))
    return out


class LossCurve(QWidget):
    """Plots `set_losses(values)`; step 1 on the left, the newest step on the right."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._losses: tuple[float, ...] = ()
        self._total = 0
        self.setMinimumHeight(56)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_losses(self, losses: tuple[float, ...]) -> None:
        self._losses = tuple(v for v in losses if math.isfinite(v))
        self.update()

    def set_total(self, total: int) -> None:
        self._total = total
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), QColor("#1a1d23"))
        area = QRectF(self.rect()).adjusted(36, 8, -8, -16)
        painter.setPen(QPen(QColor("#2e3340"), 1))
        for i in range(4):
            y = area.top() + area.height() * i / 3
            painter.drawLine(QPointF(area.left(), y), QPointF(area.right(), y))
        painter.setPen(QColor("#7d8699"))
        if not self._losses:
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "loss curve")
            return
        low, high = min(self._losses), max(self._losses)
        if high - low < 1e-9:
            low, high = low - 0.5, high + 0.5
        painter.drawText(
            QRectF(0, area.top() - 6, 34, 14), Qt.AlignmentFlag.AlignRight, f"{high:.2f}"
        )
        painter.drawText(
            QRectF(0, area.bottom() - 8, 34, 14), Qt.AlignmentFlag.AlignRight, f"{low:.2f}"
        )
        count = max(len(self._losses), self._total, 2)
        painter.drawText(
            QRectF(area.left(), area.bottom() + 2, area.width(), 14),
            Qt.AlignmentFlag.AlignRight,
            f"step {len(self._losses)}",
        )

        def point(i: int, value: float) -> QPointF:
            x = area.left() + area.width() * i / (count - 1)
            y = area.bottom() - area.height() * (value - low) / (high - low)
            return QPointF(x, y)

        for values, colour, width in (
            (self._losses, QColor(91, 141, 239, 90), 1.0),
            (tuple(smoothed(self._losses)), QColor("#ffb454"), 2.0),
        ):
            path = QPainterPath(point(0, values[0]))
            for i, value in enumerate(values[1:], start=1):
                path.lineTo(point(i, value))
            painter.setPen(QPen(colour, width))
            painter.drawPath(path)

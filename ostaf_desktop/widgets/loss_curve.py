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
    """Plots `set_losses(values)`: step 1 on the left, the run's last step (`set_total`) on
    the right. The values cover steps 1 to `set_step(step)` evenly: one per step while a run
    goes, fewer for a finished run's kept history (it keeps at most a few hundred)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._losses: tuple[float, ...] = ()
        self._total = 0
        self._step = 0
        self.setMinimumHeight(56)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_losses(self, losses: tuple[float, ...]) -> None:
        self._losses = tuple(v for v in losses if math.isfinite(v))
        self.update()

    def set_total(self, total: int) -> None:
        self._total = total
        self.update()

    def set_step(self, step: int) -> None:
        self._step = step
        self.update()

    def plot_area(self) -> QRectF:
        """Where the curve is drawn (the rest holds the axis labels)."""
        return QRectF(self.rect()).adjusted(36, 8, -8, -16)

    def last_step(self) -> int:
        """The step the newest value belongs to (what the label under the curve says)."""
        return max(self._step, len(self._losses))

    def points(self, values: tuple[float, ...] | list[float]) -> list[QPointF]:
        """Where `values` (the losses, or their average) lie in `plot_area()`."""
        if not values:
            return []
        area = self.plot_area()
        low, high = self._range()
        last = self.last_step()
        count = max(last, self._total, 2)
        # value i stands for step 1 + i·(last − 1)/(n − 1): the first and the newest step
        per_value = (last - 1) / (len(values) - 1) if len(values) > 1 else 0.0
        return [
            QPointF(
                area.left() + area.width() * (i * per_value) / (count - 1),
                area.bottom() - area.height() * (value - low) / (high - low),
            )
            for i, value in enumerate(values)
        ]

    def _range(self) -> tuple[float, float]:
        low, high = min(self._losses), max(self._losses)
        if high - low < 1e-9:
            low, high = low - 0.5, high + 0.5
        return low, high

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), QColor("#1a1d23"))
        area = self.plot_area()
        painter.setPen(QPen(QColor("#2e3340"), 1))
        for i in range(4):
            y = area.top() + area.height() * i / 3
            painter.drawLine(QPointF(area.left(), y), QPointF(area.right(), y))
        painter.setPen(QColor("#7d8699"))
        if not self._losses:
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "loss curve")
            return
        low, high = self._range()
        painter.drawText(
            QRectF(0, area.top() - 6, 34, 14), Qt.AlignmentFlag.AlignRight, f"{high:.2f}"
        )
        painter.drawText(
            QRectF(0, area.bottom() - 8, 34, 14), Qt.AlignmentFlag.AlignRight, f"{low:.2f}"
        )
        painter.drawText(
            QRectF(area.left(), area.bottom() + 2, area.width(), 14),
            Qt.AlignmentFlag.AlignRight,
            f"step {self.last_step()}",
        )
        for values, colour, width in (
            (self._losses, QColor(91, 141, 239, 90), 1.0),
            (tuple(smoothed(self._losses)), QColor("#ffb454"), 2.0),
        ):
            points = self.points(values)
            path = QPainterPath(points[0])
            for point in points[1:]:
                path.lineTo(point)
            painter.setPen(QPen(colour, width))
            painter.drawPath(path)

"""The reference canvas: the image with zoom, pan and fit, a crop rectangle, and a mask
painted with a brush or eraser. Images can be dropped on it."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import (
    QBrush,
    QColor,
    QDragEnterEvent,
    QDropEvent,
    QImage,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QPixmap,
    QResizeEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import QSizePolicy, QWidget

from ostaf_desktop.binding import bind_to
from ostaf_desktop.viewmodels.reference import ReferenceViewModel

MASK_COLOUR = QColor(255, 140, 60)
MASK_OPACITY = 0.45
MIN_ZOOM, MAX_ZOOM = 0.02, 32.0
FIT_MARGIN = 16


class ReferenceCanvas(QWidget):
    """Shows `vm.image`; the tool in `vm.tool` decides what a left drag does."""

    def __init__(self, vm: ReferenceViewModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.vm = vm
        self.zoom = 1.0
        self.offset = QPointF(0, 0)
        self._overlay: QImage | None = None
        self._drag_start: QPointF | None = None  # widget coords where a drag began
        self._drag_offset = QPointF(0, 0)
        self._crop_preview: QRectF | None = None  # display-image coords while dragging
        self._last_paint: QPointF | None = None  # image coords of the previous brush point
        self._cursor: QPointF | None = None
        self.setAcceptDrops(True)
        self.setMouseTracking(True)
        self.setMinimumSize(200, 64)  # small enough for a 1280×720 screen with two bars
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        bind_to(vm, "image", lambda _: self._on_image(), self)
        bind_to(vm, "mask", lambda _: self._rebuild_overlay(), self)
        bind_to(vm, "mask_revision", lambda _: self._rebuild_overlay(), self)
        bind_to(vm, "crop", lambda _: self.update(), self)
        bind_to(vm, "tool", lambda _: self._on_tool(), self)

    # -- view ------------------------------------------------------------------------------
    def fit(self) -> None:
        image = self.vm.image
        if image is None or image.isNull():
            return
        room_w = max(1, self.width() - 2 * FIT_MARGIN)
        room_h = max(1, self.height() - 2 * FIT_MARGIN)
        self.zoom = max(MIN_ZOOM, min(MAX_ZOOM, room_w / image.width(), room_h / image.height()))
        self.offset = QPointF(
            (self.width() - image.width() * self.zoom) / 2,
            (self.height() - image.height() * self.zoom) / 2,
        )
        self.update()

    def zoom_by(self, factor: float, anchor: QPointF | None = None) -> None:
        """Zoom keeping the image point under `anchor` (default: the centre) in place."""
        anchor = anchor if anchor is not None else QPointF(self.width() / 2, self.height() / 2)
        new_zoom = max(MIN_ZOOM, min(MAX_ZOOM, self.zoom * factor))
        point = self.to_image(anchor)
        self.zoom = new_zoom
        self.offset = anchor - point * new_zoom
        self.update()

    def to_image(self, point: QPointF) -> QPointF:
        return (point - self.offset) / self.zoom

    def to_widget(self, point: QPointF) -> QPointF:
        return point * self.zoom + self.offset

    def image_rect(self) -> QRectF:
        image = self.vm.image
        if image is None:
            return QRectF()
        return QRectF(self.offset, self.offset + QPointF(image.width(), image.height()) * self.zoom)

    # -- painting --------------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor("#16181d"))
        image = self.vm.image
        if image is None or image.isNull():
            self._paint_empty(painter)
            return
        target = self.image_rect()
        if image.hasAlphaChannel():
            _paint_checkerboard(painter, target)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self.zoom < 2)
        painter.drawImage(target, image)
        if self._overlay is not None:
            painter.setOpacity(MASK_OPACITY)
            painter.drawImage(target, self._overlay)
            painter.setOpacity(1.0)
        self._paint_crop(painter, target)
        self._paint_brush_cursor(painter)

    def _paint_empty(self, painter: QPainter) -> None:
        painter.setPen(QColor("#8d97a8"))
        font = painter.font()
        font.setPointSizeF(font.pointSizeF() * 1.3)
        painter.setFont(font)
        painter.drawText(
            self.rect().adjusted(0, -30, 0, -30),
            Qt.AlignmentFlag.AlignCenter,
            "Drop a reference image here\nor press Ctrl+O to open one",
        )
        font.setPointSizeF(font.pointSizeF() / 1.3)
        painter.setFont(font)
        painter.setPen(QColor("#6c7485"))
        painter.drawText(
            self.rect().adjusted(20, 50, -20, 50),
            Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
            "PNG, JPEG, WebP, BMP or TIFF; the model's size or larger is best",
        )

    def _paint_crop(self, painter: QPainter, target: QRectF) -> None:
        if self._crop_preview is not None:
            crop = self._crop_preview
        elif self.vm.crop is not None:
            left, top, right, bottom = (v / self.vm.scale for v in self.vm.crop)
            crop = QRectF(left, top, right - left, bottom - top)
        else:
            return
        rect = QRectF(self.to_widget(crop.topLeft()), self.to_widget(crop.bottomRight()))
        shade = QColor(0, 0, 0, 150)
        for part in (
            QRectF(target.left(), target.top(), target.width(), rect.top() - target.top()),
            QRectF(target.left(), rect.bottom(), target.width(), target.bottom() - rect.bottom()),
            QRectF(target.left(), rect.top(), rect.left() - target.left(), rect.height()),
            QRectF(rect.right(), rect.top(), target.right() - rect.right(), rect.height()),
        ):
            if part.width() > 0 and part.height() > 0:
                painter.fillRect(part, shade)
        painter.setPen(QPen(QColor("white"), 1.5, Qt.PenStyle.DashLine))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(rect)
        painter.setBrush(QBrush(QColor("white")))
        for corner in (rect.topLeft(), rect.topRight(), rect.bottomLeft(), rect.bottomRight()):
            painter.drawRect(QRectF(corner - QPointF(3, 3), corner + QPointF(3, 3)))

    def _paint_brush_cursor(self, painter: QPainter) -> None:
        if self.vm.tool not in ("brush", "eraser") or self._cursor is None:
            return
        radius = self.vm.brush_size * self.zoom / 2
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.setPen(QPen(QColor("white"), 1))
        painter.drawEllipse(self._cursor, radius, radius)
        painter.setPen(QPen(QColor("black"), 1))
        painter.drawEllipse(self._cursor, radius + 1, radius + 1)

    # -- mouse -----------------------------------------------------------------------------
    def mousePressEvent(self, event: QMouseEvent) -> None:
        if self.vm.image is None:
            return
        pos = event.position()
        if event.button() == Qt.MouseButton.MiddleButton or (
            event.button() == Qt.MouseButton.LeftButton and self.vm.tool == "pan"
        ):
            self._drag_start, self._drag_offset = pos, QPointF(self.offset)
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
        elif event.button() == Qt.MouseButton.LeftButton and self.vm.tool == "crop":
            self._drag_start = pos
            self._crop_preview = QRectF(self.to_image(pos), self.to_image(pos))
        elif event.button() == Qt.MouseButton.LeftButton and self.vm.tool in ("brush", "eraser"):
            self._last_paint = self.to_image(pos)
            self._stroke(self._last_paint)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        self._cursor = pos
        if self._last_paint is not None:
            self._stroke(self.to_image(pos))
        elif self._crop_preview is not None and self._drag_start is not None:
            self._crop_preview = QRectF(self.to_image(self._drag_start), self.to_image(pos))
        elif self._drag_start is not None:
            self.offset = self._drag_offset + (pos - self._drag_start)
        self.update()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._last_paint is not None:
            self._last_paint = None
            self.vm.mask_painted()
        if self._crop_preview is not None and self._drag_start is not None:
            end = self.to_image(event.position())
            rect = QRectF(self.to_image(self._drag_start), end).normalized()
            scale = self.vm.scale
            self._crop_preview = None
            self.vm.set_crop(
                (
                    round(rect.left() * scale),
                    round(rect.top() * scale),
                    round(rect.right() * scale),
                    round(rect.bottom() * scale),
                )
            )
        self._drag_start = None
        self._on_tool()
        self.update()

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        if self.vm.tool == "crop":
            self.vm.set_crop(None)
        elif self.vm.tool == "pan":
            self.fit()

    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120
        if steps:
            self.zoom_by(1.15**steps, event.position())

    def leaveEvent(self, event: object) -> None:
        self._cursor = None
        self.update()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self.fit()

    # -- drag and drop ---------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        files = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if files:
            event.acceptProposedAction()
            self.vm.open_image(files[0])

    # -- mask strokes ----------------------------------------------------------------------
    def _stroke(self, point: QPointF) -> None:
        """Paint from the previous brush point to `point` into the mask and its overlay."""
        mask = self.vm.ensure_mask()
        if mask is None:
            return
        if self._overlay is None or self._overlay.size() != mask.size():
            self._rebuild_overlay()
        previous = self._last_paint or point
        erase = self.vm.tool == "eraser"
        pen_width = float(self.vm.brush_size)
        ink = QColor("black") if erase else QColor("white")
        for target, colour in ((mask, ink), (self._overlay, MASK_COLOUR)):
            if target is None:
                continue
            painter = QPainter(target)
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            if erase and target is self._overlay:
                painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_Clear)
            painter.setPen(
                QPen(
                    colour,
                    pen_width,
                    Qt.PenStyle.SolidLine,
                    Qt.PenCapStyle.RoundCap,
                    Qt.PenJoinStyle.RoundJoin,
                )
            )
            painter.drawLine(previous, point)
            painter.end()
        self._last_paint = point
        self.update()

    def _rebuild_overlay(self) -> None:
        mask = self.vm.mask
        if mask is None:
            self._overlay = None
        else:
            overlay = QImage(mask.size(), QImage.Format.Format_ARGB32_Premultiplied)
            overlay.fill(MASK_COLOUR)
            overlay.setAlphaChannel(mask)
            self._overlay = overlay
        self.update()

    def _on_image(self) -> None:
        self._rebuild_overlay()
        self.fit()

    def _on_tool(self) -> None:
        cursors = {
            "pan": Qt.CursorShape.OpenHandCursor,
            "crop": Qt.CursorShape.CrossCursor,
            "brush": Qt.CursorShape.BlankCursor,
            "eraser": Qt.CursorShape.BlankCursor,
        }
        self.setCursor(cursors.get(self.vm.tool, Qt.CursorShape.ArrowCursor))
        self.update()


def _paint_checkerboard(painter: QPainter, rect: QRectF) -> None:
    """A grey checkerboard under images with transparency."""
    global _CHECKER
    if _CHECKER is None:
        _CHECKER = QPixmap(24, 24)
        _CHECKER.fill(QColor("#3a3d44"))
        tiles = QPainter(_CHECKER)
        tiles.fillRect(0, 0, 12, 12, QColor("#4a4e57"))
        tiles.fillRect(12, 12, 12, 12, QColor("#4a4e57"))
        tiles.end()
    painter.fillRect(rect, QBrush(_CHECKER))


_CHECKER: QPixmap | None = None

"""Square list icons from data URLs and image files, centred on a transparent tile."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QIcon, QImage, QPainter, QPixmap

from ostaf_desktop.qt_images import display_pixmap


def square_icon(image: QImage, side: int, fallback: QIcon) -> QIcon:
    """`image` fitted into a side×side tile, or `fallback` when the image is empty."""
    if image.isNull():
        return fallback
    tile = QPixmap(side, side)
    tile.fill(Qt.GlobalColor.transparent)
    pixmap = display_pixmap(image, side, side)
    painter = QPainter(tile)
    painter.drawPixmap((side - pixmap.width()) // 2, (side - pixmap.height()) // 2, pixmap)
    painter.end()
    return QIcon(tile)

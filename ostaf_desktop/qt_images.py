"""Images between PIL, files, data URLs and Qt, and scaling for display (small model
outputs are enlarged with nearest-neighbour filtering so their pixels stay crisp)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QSize, Qt
from PySide6.QtGui import QImage, QImageReader, QPixmap

from ostaf.images import DATA_URL_PREFIX, MAX_THUMBNAIL_PIXELS


def qimage_from_pil(image: Any) -> QImage:
    """A QImage owning a copy of a PIL image's pixels (RGB or RGBA)."""
    if image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    fmt = QImage.Format.Format_RGBA8888 if image.mode == "RGBA" else QImage.Format.Format_RGB888
    data = image.tobytes()
    channels = 4 if image.mode == "RGBA" else 3
    return QImage(data, image.width, image.height, image.width * channels, fmt).copy()


def qimage_from_data_url(url: str, max_pixels: int = MAX_THUMBNAIL_PIXELS) -> QImage:
    """Decode a PNG data URL; an empty image when it is not one or declares more than
    `max_pixels` (checked from its header, before anything is decoded)."""
    if not url.startswith(DATA_URL_PREFIX):
        return QImage()
    try:
        data = QByteArray(base64.b64decode(url[len(DATA_URL_PREFIX) :], validate=True))
    except ValueError:
        return QImage()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.ReadOnly)
    reader = QImageReader(buffer, QByteArray(b"png"))
    size = reader.size()
    if not size.isValid() or size.width() * size.height() > max_pixels:
        return QImage()
    return reader.read()


def read_thumbnail(path: Path, side: int) -> QImage:
    """A file decoded at thumbnail size (fast even for large photos); empty when unreadable
    or not a regular file (opening a pipe would wait for a writer forever)."""
    if not path.is_file():
        return QImage()
    reader = QImageReader(str(path))
    reader.setAutoTransform(True)
    size = reader.size()
    if size.isValid() and max(size.width(), size.height()) > side:
        reader.setScaledSize(size.scaled(QSize(side, side), Qt.AspectRatioMode.KeepAspectRatio))
    return reader.read()


def display_pixmap(image: QImage, width: int, height: int) -> QPixmap:
    """Fit `image` into width×height: nearest-neighbour when enlarging twice or more."""
    if image.isNull() or width <= 0 or height <= 0:
        return QPixmap()
    target = image.size().scaled(QSize(width, height), Qt.AspectRatioMode.KeepAspectRatio)
    enlarge = target.width() >= 2 * image.width()
    mode = (
        Qt.TransformationMode.FastTransformation
        if enlarge
        else Qt.TransformationMode.SmoothTransformation
    )
    return QPixmap.fromImage(image.scaled(target, Qt.AspectRatioMode.KeepAspectRatio, mode))

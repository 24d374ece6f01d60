"""The reference image being prepared for tuning: the image, a crop and an optional mask."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject
from PySide6.QtGui import QImage

from ostaf import paths
from ostaf.errors import InputImageError
from ostaf.images import (
    MIN_SIDE,
    SMALL_SUBJECT,
    Box,
    open_image,
    square_box,
    subject_crop,
    subject_span,
)
from ostaf.library.projects import Project
from ostaf_desktop.observable import Observable, ViewModel
from ostaf_desktop.qt_images import qimage_from_pil
from ostaf_desktop.viewmodels.projects import ProjectsViewModel
from ostaf_desktop.viewmodels.session import SessionViewModel

log = logging.getLogger(__name__)
DISPLAY_MAX_SIDE = 4096  # larger images are shown (and masked) at this size
LARGE_SIDE = 4096
TOOLS = ("pan", "crop", "brush", "eraser")
IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.webp *.bmp *.tif *.tiff *.gif);;All files (*)"


class ReferenceViewModel(ViewModel):
    """The image on the canvas, its crop (in the image's own pixels) and the painted mask."""

    path = Observable[Path | None](None)
    image = Observable[QImage | None](None)  # upright, at most DISPLAY_MAX_SIDE
    original_size = Observable((0, 0))
    crop = Observable[Box | None](None)
    mask = Observable[QImage | None](None)  # Grayscale8 at the display size, 255 = keep
    mask_revision = Observable(0)
    has_mask = Observable(False)
    tool = Observable("pan")
    brush_size = Observable(48)  # in display-image pixels
    info = Observable("")
    notes = Observable[tuple[str, ...]](())

    def __init__(
        self,
        session: SessionViewModel,
        projects: ProjectsViewModel,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._session = session
        self._projects = projects
        self._slug = ""
        projects.closing.connect(self._save_state)
        projects.changed.connect(self._on_projects_changed)
        session.changed.connect(self._on_session_changed)

    @property
    def scale(self) -> float:
        """Original pixels per display pixel (1.0 unless the image is huge)."""
        if self.image is None or self.image.width() == 0:
            return 1.0
        return self.original_size[0] / self.image.width()

    # -- opening -------------------------------------------------------------------------
    def open_image(self, path: Path | str) -> bool:
        """Show `path` if it can be used as a reference; otherwise explain why in the banner."""
        path = Path(path)
        try:
            upright = open_image(path, "reference image")
            width, height = upright.size
            if min(width, height) < MIN_SIDE:
                model = self._session.model
                best = f"{model.resolution}" if model is not None else "the model's size"
                raise InputImageError(
                    f"{path.name} is only {width}×{height} pixels; use an image at least "
                    f"{MIN_SIDE} pixels on each side ({best} or more is best)"
                )
            if max(width, height) > DISPLAY_MAX_SIDE:
                upright.thumbnail((DISPLAY_MAX_SIDE, DISPLAY_MAX_SIDE))
            image = qimage_from_pil(upright)
        except InputImageError as exc:
            self._session.report(exc)
            return False
        except (OSError, ValueError, MemoryError) as exc:
            self._session.report(InputImageError(f"{path.name} cannot be shown ({exc})"))
            return False
        self.path = path
        self.original_size = (width, height)
        self.image = image
        self.crop = None
        self.clear_mask()
        self.info = f"{path.name} · {width}×{height}"
        self._update_notes()
        return True

    def open_sample(self) -> bool:
        """Open the built-in sample picture (drawn on the spot, nothing to download)."""
        from ostaf.world.demo_reference import demo_reference

        return self.open_image(demo_reference(paths.cache_dir() / "sample-star.png"))

    def close_image(self) -> None:
        self.path, self.image, self.crop, self.original_size = None, None, None, (0, 0)
        self.clear_mask()
        self.info, self.notes = "", ()

    # -- crop ------------------------------------------------------------------------------
    def set_crop(self, box: Box | None) -> None:
        """Set the crop in original-image pixels (clipped; too small a box means no crop)."""
        if box is not None:
            width, height = self.original_size
            left, top, right, bottom = box
            left, right = sorted((max(0, min(width, left)), max(0, min(width, right))))
            top, bottom = sorted((max(0, min(height, top)), max(0, min(height, bottom))))
            box = (left, top, right, bottom) if min(right - left, bottom - top) >= 8 else None
        self.crop = box
        self._update_notes()

    def crop_to_mask(self) -> None:
        """Crop to the painted subject: a square around it, which the subject spans
        `SUBJECT_FILL` of, as the world models' pictures do."""
        painted = self.painted()
        if painted is None or not painted.any():
            self._session.report(
                InputImageError(
                    "Crop to the mask frames what the mask brush painted: paint the subject "
                    "with the mask brush (B) first"
                )
            )
            return
        left, top, right, bottom = subject_crop(painted)
        scale = self.scale
        self.set_crop(
            (round(left * scale), round(top * scale), round(right * scale), round(bottom * scale))
        )
        self._session.notify(
            "Cropped to the painted subject. The mask still limits tuning to it; clear the "
            "mask to tune on the whole crop (in the benchmark the crop alone did as well or better)"
        )

    # -- mask ------------------------------------------------------------------------------
    def ensure_mask(self) -> QImage | None:
        """The mask to paint into, created empty on first use."""
        if self.image is None:
            return None
        if self.mask is None:
            mask = QImage(self.image.size(), QImage.Format.Format_Grayscale8)
            mask.fill(0)
            self.mask = mask
        return self.mask

    def mask_painted(self) -> None:
        """Called after a brush or eraser stroke changed the mask."""
        painted = self.painted()
        self.has_mask = painted is not None and bool(painted.any())
        self.mask_revision += 1
        self._update_notes(painted)

    def clear_mask(self) -> None:
        self.mask = None
        self.has_mask = False
        self.mask_revision += 1
        self._update_notes()

    def painted(self) -> np.ndarray | None:
        """The painted pixels of the mask (display size, true = painted), or None."""
        mask = self.mask
        if mask is None:
            return None
        rows = np.frombuffer(mask.constBits(), dtype=np.uint8, count=mask.sizeInBytes())
        rows = rows.reshape(mask.height(), mask.bytesPerLine())[:, : mask.width()]
        return rows > 127

    def load_mask(self, path: Path) -> bool:
        """Show a mask written by `write_mask` (e.g. an interrupted run's) over the image."""
        if self.image is None:
            return False
        mask = QImage(str(path))
        if mask.isNull():
            return False
        mask = mask.convertToFormat(QImage.Format.Format_Grayscale8).scaled(self.image.size())
        self.mask = mask
        self.mask_painted()
        return True

    def write_mask(self, path: Path) -> Path | None:
        """Save the mask as a PNG for tuning (None when nothing is painted)."""
        if self.mask is None or not self.has_mask:
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        if not self.mask.save(str(path)):
            raise InputImageError(f"cannot write the mask to {path}")
        return path

    # -- feedback --------------------------------------------------------------------------
    def _update_notes(self, painted: np.ndarray | None = None) -> None:
        """What the app thinks of the image; nothing about its size until the model, and so
        the size it sees, is known. `painted`: the mask's painted pixels where the caller has
        them already (read from the mask otherwise)."""
        notes: list[str] = []
        model = self._session.model
        if self.image is not None:
            width, height = self.original_size
            if self.crop is not None:
                width, height = self.crop[2] - self.crop[0], self.crop[3] - self.crop[1]
            side = min(width, height)
            if model is not None and side < model.resolution:
                target = model.resolution
                notes.append(
                    f"Small: the model sees {target}×{target}, so {side} pixels are upscaled "
                    "and details may blur"
                )
            if model is not None and max(self.original_size) > LARGE_SIDE:
                target = model.resolution
                notes.append(
                    f"Large: {self.original_size[0]}×{self.original_size[1]} is scaled down "
                    f"to {target}×{target}; crop to the part that matters"
                )
            if width != height:
                notes.append("Not square: the centre square of the crop is used")
            span = self._subject_span(painted)
            if span is not None and span < SMALL_SUBJECT:
                notes.append(f"Small subject, {span:.0%} of the view: Shift+C crops to it")
        self.notes = tuple(notes)

    def _subject_span(self, painted: np.ndarray | None = None) -> float | None:
        """How much of the model's view the painted subject spans (None: nothing painted)."""
        if not self.has_mask or self.image is None:
            return None
        painted = painted if painted is not None else self.painted()
        if painted is None:
            return None
        scale, crop = self.scale, self.crop
        shown: Box | None = None
        if crop is not None:
            left, top, right, bottom = (round(v / scale) for v in crop)
            shown = (left, top, right, bottom)
        size = (self.image.width(), self.image.height())
        try:
            view = square_box(size, shown)
        except InputImageError:
            return None
        return subject_span(painted, view) or None

    def _on_session_changed(self, name: str, value: object) -> None:
        if name == "model":
            self._update_notes()

    # -- per-project state -----------------------------------------------------------------
    def _save_state(self, project: Project) -> None:
        state = self._session.ui.project(project.slug)
        state.reference = str(self.path) if self.path is not None else ""
        state.crop = list(self.crop) if self.crop is not None else None

    def _on_projects_changed(self, name: str, value: object) -> None:
        project = self._projects.current
        slug = project.slug if project is not None else ""
        if name != "current" or slug == self._slug:
            return
        self._slug = slug
        self.close_image()
        if project is None:
            return
        state = self._session.ui.project(slug)
        reopened = Path(state.reference).is_file() and self.open_image(state.reference)
        if reopened and state.crop is not None and len(state.crop) == 4:
            self.set_crop((state.crop[0], state.crop[1], state.crop[2], state.crop[3]))

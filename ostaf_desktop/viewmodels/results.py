"""The results strip: rendered images, newest first, that can be saved or opened."""

from __future__ import annotations

import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtGui import QImage

from ostaf.errors import InputImageError, StorageError
from ostaf.interop.pngmeta import read_png_metadata
from ostaf_desktop.backend import RenderedImage
from ostaf_desktop.observable import Observable, ViewModel
from ostaf_desktop.qt_images import qimage_from_pil, read_thumbnail
from ostaf_desktop.viewmodels.session import SessionViewModel

MAX_ITEMS = 48
RENDER_NAME = re.compile(r"\d{5,}-(\d+)")
THUMB_SIDE = 256


@dataclass(frozen=True)
class ResultItem:
    image: QImage
    path: Path | None
    seed: int | None
    caption: str
    parameters: str = ""


class ResultsViewModel(ViewModel):
    """Recent renders of the open project."""

    items = Observable[tuple[ResultItem, ...]](())
    selected = Observable(-1)

    def __init__(self, session: SessionViewModel, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._session = session

    @property
    def current(self) -> ResultItem | None:
        return self.items[self.selected] if 0 <= self.selected < len(self.items) else None

    def add(self, images: list[RenderedImage]) -> None:
        new = tuple(
            ResultItem(
                qimage_from_pil(item.image),
                item.path,
                item.seed,
                f"seed {item.seed}",
                item.parameters,
            )
            for item in images
        )
        self.items = (*new, *self.items)[:MAX_ITEMS]
        self.selected = 0

    def file_names(self) -> list[str]:
        """The shown files' names, in the strip's order (what `load_folder` takes as order)."""
        return [item.path.name for item in self.items if item.path is not None]

    def load_folder(self, folder: Path | None, limit: int = 12, order: Sequence[str] = ()) -> None:
        """Show the first `limit` PNGs of `folder` (the project's earlier renders) in
        `shown_order`: `order` is the file names the strip last showed, in its order."""
        self.selected = -1
        if folder is None or not folder.is_dir():
            self.items = ()
            return
        items = []
        files = shown_order(folder, order)
        for path in files[:limit]:
            image = read_thumbnail(path, THUMB_SIDE)
            if not image.isNull():
                parameters, seed, caption = _metadata(path)
                items.append(ResultItem(image, path, seed, caption, parameters))
        self.items = tuple(items)

    def save_copy(self, index: int, target: Path) -> bool:
        """Copy a rendered PNG (with its metadata) to `target`."""
        item = self.items[index] if 0 <= index < len(self.items) else None
        if item is None:
            return False
        try:
            if item.path is not None and item.path.is_file():
                shutil.copyfile(item.path, target)
            elif not item.image.save(str(target)):
                raise OSError("the image could not be encoded")
        except OSError as exc:
            self._session.report(StorageError(f"cannot save {target}: {exc}"))
            return False
        self._session.notify(f"Saved {target}")
        return True


def shown_order(folder: Path, order: Sequence[str] = ()) -> list[Path]:
    """The PNGs of `folder` as the strip shows them: files newer than every remembered one
    first, then the remembered ones (`order`) in their order, then the older rest; newest
    first within each, by modification time and then by name, so that the same folder and
    order always give the same strip."""
    stamps: dict[Path, tuple[int, str]] = {}
    for path in folder.glob("*.png"):
        try:
            stamps[path] = (path.stat().st_mtime_ns, path.name)
        except OSError:  # removed while listed
            continue
    newest_first = sorted(stamps, key=stamps.__getitem__, reverse=True)
    position = {name: index for index, name in enumerate(order)}
    known = sorted((p for p in newest_first if p.name in position), key=lambda p: position[p.name])
    latest = max((stamps[p] for p in known), default=None)
    others = [p for p in newest_first if p.name not in position]
    newer = [p for p in others if latest is None or stamps[p] > latest]
    older = [p for p in others if latest is not None and stamps[p] <= latest]
    return [*newer, *known, *older]


def _metadata(path: Path) -> tuple[str, int | None, str]:
    """A PNG's A1111 parameters text (for the tooltip), its seed and a short caption: 'seed 3'
    for a render, 'seed 3 · λ 0.5+1' for a batch image that used attributes."""
    try:
        parameters, record = read_png_metadata(path)
    except InputImageError:
        parameters, record = None, None
    record = record or {}
    seed = record.get("seed")
    if not isinstance(seed, int):
        match = RENDER_NAME.fullmatch(path.stem)  # renders are named 00000-<seed>.png
        seed = int(match.group(1)) if match else None
    if seed is None:
        return parameters or "", None, path.stem
    caption = f"seed {seed}"
    attributes = record.get("attributes")
    if RENDER_NAME.fullmatch(path.stem) is None and isinstance(attributes, list) and attributes:
        lambdas = [a.get("intensity") for a in attributes if isinstance(a, dict)]
        caption += " · λ " + "+".join(f"{v:g}" for v in lambdas if isinstance(v, int | float))
    return parameters or "", seed, caption

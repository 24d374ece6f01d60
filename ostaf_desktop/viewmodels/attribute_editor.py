"""Editing the selected attribute's name, tags, notes and default λ; Save writes them into
the attribute file's metadata in one atomic write."""

from __future__ import annotations

from PySide6.QtCore import QObject

from ostaf.errors import ProjectError
from ostaf.library.projects import normalize_tags
from ostaf_desktop.observable import Observable, ViewModel
from ostaf_desktop.viewmodels.library import AttributeRow, LibraryViewModel

LAMBDA_TOLERANCE = 1e-6


def split_tags(text: str) -> list[str]:
    """'glaze, Blue  ,' → ['glaze', 'blue'] (the core's rules; unusable tags kept as typed)."""
    parts = [part for part in text.split(",") if part.strip()]
    try:
        return normalize_tags(parts)
    except ProjectError:
        return [" ".join(part.split()) for part in parts]


def join_tags(tags: tuple[str, ...] | list[str]) -> str:
    return ", ".join(tags)


class AttributeEditorViewModel(ViewModel):
    """The edit fields of the selected attribute; `dirty` while they differ from the file."""

    editing_id = Observable("")
    name = Observable("")
    tags = Observable("")  # comma-separated, as typed
    notes = Observable("")
    default_lambda = Observable(1.0)
    dirty = Observable(False)

    def __init__(self, library: LibraryViewModel, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._library = library
        self._loading = False
        self._saving = False
        library.changed.connect(self._on_library_changed)
        self.changed.connect(self._on_own_change)
        self._load(library.selected)

    def save(self) -> bool:
        """Write the edited fields into the attribute file; False (error shown) if refused."""
        if not self.editing_id or not self.dirty or self._saving:
            return False
        self._saving = True
        try:
            saved = self._library.update(
                self.editing_id,
                name=self.name,
                tags=split_tags(self.tags),
                notes=self.notes,
                default_lambda=float(self.default_lambda),
            )
        finally:
            self._saving = False
        if saved:
            self._load(self._row())
        return saved

    def revert(self) -> None:
        """Drop the edits: the fields show the file's values again."""
        self._load(self._library.row(self.editing_id))

    def keep_intensity(self, value: float) -> bool:
        """Make `value` (the Render panel's λ) the default λ and save."""
        self.default_lambda = round(float(value), 3)
        return self.save()

    def _row(self) -> AttributeRow | None:
        return self._library.row(self.editing_id)

    def _load(self, row: AttributeRow | None) -> None:
        self._loading = True
        try:
            self.editing_id = row.id if row is not None else ""
            self.name = row.name if row is not None else ""
            self.tags = join_tags(row.tags) if row is not None else ""
            self.notes = row.notes if row is not None else ""
            self.default_lambda = row.default_lambda if row is not None else 1.0
        finally:
            self._loading = False
        self.dirty = False

    def _on_library_changed(self, name: str, value: object) -> None:
        if name == "selected_id" and value != self.editing_id:
            if self.dirty:
                self.save()  # moving to another attribute keeps what was typed
            self._load(self._library.selected)
        elif name == "rows":
            row = self._row()
            if row is None or not self.dirty:
                self._load(row if row is not None else self._library.selected)

    def _on_own_change(self, name: str, value: object) -> None:
        if self._loading or name in ("dirty", "editing_id"):
            return
        row = self._row()
        self.dirty = row is not None and (
            " ".join(self.name.split()) != row.name
            or split_tags(self.tags) != list(row.tags)
            or self.notes.strip() != row.notes
            or abs(float(self.default_lambda) - row.default_lambda) > LAMBDA_TOLERANCE
        )

"""The open project's attributes: the list and its search filter, the ticked ones with their
λ, edits, and the project's trash."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from PySide6.QtCore import QObject

from ostaf.errors import OstafError
from ostaf.library.projects import AttributeEntry, Project, filter_attributes
from ostaf.method.regions import DEFAULT_TOKEN
from ostaf.method.words import attribute_word
from ostaf_desktop.observable import Observable, ViewModel
from ostaf_desktop.viewmodels.projects import ProjectsViewModel
from ostaf_desktop.viewmodels.session import SessionViewModel

DEFAULT_PROMPT = f"a photo of a {DEFAULT_TOKEN} object"


@dataclass(frozen=True)
class AttributeRow:
    """One attribute as the library shows it."""

    id: str
    path: Path
    name: str
    kind: str
    default_lambda: float
    thumbnail: str  # data URL of the reference
    notes: str
    created_at: str
    reference_name: str
    base_model: str
    tuning_prompt: str
    steps: int
    final_loss: float | None
    tags: tuple[str, ...] = ()
    token: str = DEFAULT_TOKEN  # the word that names the attribute in its prompts


def attribute_row(entry: AttributeEntry) -> AttributeRow:
    """The row of one attribute file (also used for the trash and other projects)."""
    meta = entry.meta
    return AttributeRow(
        id=entry.id,
        path=entry.path,
        name=meta.name,
        kind=str(meta.kind),
        default_lambda=float(meta.default_lambda),
        thumbnail=meta.reference.thumbnail,
        notes=meta.notes,
        created_at=meta.created_at,
        reference_name=meta.reference.file_name,
        base_model=meta.base_model.name,
        tuning_prompt=str(meta.tuning.get("prompt", "")) or DEFAULT_PROMPT,
        steps=int(meta.tuning.get("steps", 0) or 0),
        final_loss=_float_or_none(meta.tuning.get("final_loss")),
        tags=tuple(meta.tags),
        token=attribute_word(meta),
    )


def search_terms(text: str) -> tuple[str, list[str]]:
    """Search box text → (free text, exact tags): words written `#tag` must be tags."""
    words = text.split()
    tags = [w[1:] for w in words if w.startswith("#") and len(w) > 1]
    return " ".join(w for w in words if not w.startswith("#")), tags


@dataclass(frozen=True)
class AppliedEntry:
    """A ticked attribute and the intensity λ it is applied at."""

    id: str
    path: Path
    name: str
    intensity: float


class LibraryViewModel(ViewModel):
    """Attributes of the open project; several can be ticked, each with its own λ."""

    rows = Observable[tuple[AttributeRow, ...]](())
    visible = Observable[tuple[AttributeRow, ...]](())  # the rows the search lets through
    search_text = Observable("")
    kind_filter = Observable("")  # "" = every kind
    filter_summary = Observable("")
    problems = Observable[tuple[str, ...]](())
    selected_id = Observable("")
    applied = Observable[tuple[AppliedEntry, ...]](())
    trashed = Observable[tuple[AttributeRow, ...]](())

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
        self._entries: list[AttributeEntry] = []
        projects.closing.connect(self._save_state)
        projects.changed.connect(self._on_projects_changed)
        self.changed.connect(self._on_own_change)

    # -- reading -------------------------------------------------------------------------
    @property
    def project(self) -> Project | None:
        return self._projects.current

    @property
    def selected(self) -> AttributeRow | None:
        return self.row(self.selected_id)

    def row(self, attribute_id: str) -> AttributeRow | None:
        return next((r for r in self.rows if r.id == attribute_id), None)

    def refresh(self) -> None:
        """Re-read the project's attribute files (and its trash)."""
        project = self.project
        if project is None:
            self._entries = []
            self.rows, self.problems, self.applied, self.selected_id = (), (), (), ""
            self.trashed = ()
            self._apply_filter()
            return
        entries, problems = project.scan_attributes()
        self._entries = entries
        self.rows = tuple(attribute_row(e) for e in entries)
        self.problems = tuple(f"{p.path.name}: {p.message}" for p in problems)
        self.trashed = tuple(attribute_row(e) for e in project.trashed_attributes())
        ids = {r.id for r in self.rows}
        kept = tuple(
            replace(a, name=self.row(a.id).name)  # type: ignore[union-attr]
            for a in self.applied
            if a.id in ids
        )
        if kept != self.applied:
            self.applied = kept
        self._apply_filter()

    def entry(self, attribute_id: str) -> AttributeEntry | None:
        """The attribute file and its metadata, as last read."""
        return next((e for e in self._entries if e.id == attribute_id), None)

    def clear_filter(self) -> None:
        self.search_text, self.kind_filter = "", ""

    def _apply_filter(self) -> None:
        text, tags = search_terms(self.search_text)
        try:
            found = filter_attributes(self._entries, text, tags, self.kind_filter or None)
        except OstafError:  # a '#tag' that cannot be a tag matches nothing
            found = []
        ids = {e.id for e in found}
        self.visible = tuple(r for r in self.rows if r.id in ids)
        filtering = bool(self.search_text.strip() or self.kind_filter)
        self.filter_summary = (
            f"{len(self.visible)} of {len(self.rows)} shown" if filtering and self.rows else ""
        )
        if self.selected_id not in ids:
            self.selected_id = self.visible[0].id if self.visible else ""

    def _on_own_change(self, name: str, value: object) -> None:
        if name in ("search_text", "kind_filter"):
            self._apply_filter()

    # -- ticking and λ -------------------------------------------------------------------
    def set_applied(self, attribute_id: str, on: bool) -> None:
        """Tick or untick an attribute; a newly ticked one starts at its default λ."""
        present = any(a.id == attribute_id for a in self.applied)
        if on and not present:
            row = self.row(attribute_id)
            if row is not None:
                entry = AppliedEntry(row.id, row.path, row.name, row.default_lambda)
                self.applied = (*self.applied, entry)
        elif not on and present:
            self.applied = tuple(a for a in self.applied if a.id != attribute_id)

    def apply_only(self, attribute_id: str) -> None:
        row = self.row(attribute_id)
        if row is not None:
            self.applied = (AppliedEntry(row.id, row.path, row.name, row.default_lambda),)

    def set_intensity(self, attribute_id: str, intensity: float) -> None:
        intensity = round(min(2.0, max(0.0, float(intensity))), 3)
        self.applied = tuple(
            replace(a, intensity=intensity) if a.id == attribute_id else a for a in self.applied
        )

    def intensity(self, attribute_id: str) -> float | None:
        return next((a.intensity for a in self.applied if a.id == attribute_id), None)

    # -- edits ---------------------------------------------------------------------------
    def rename(self, attribute_id: str, name: str) -> bool:
        return self._edit(attribute_id, name=name)

    def update(self, attribute_id: str, **changes: object) -> bool:
        """Write new name, tags, notes or default λ into the attribute's file."""
        return self._edit(attribute_id, **changes)

    def delete(self, attribute_id: str) -> bool:
        """Move the attribute's file to the project's trash (see `restore`)."""
        row, project = self.row(attribute_id), self.project
        if row is None or project is None:
            return False
        try:
            project.delete_attribute(row.id)
        except OstafError as exc:
            self._session.report(exc)
            return False
        self.applied = tuple(a for a in self.applied if a.id != attribute_id)
        self._session.notify(f"Moved '{row.name}' to the project's trash (Attribute → Trash…)")
        self.refresh()
        self._projects.refresh()
        return True

    def restore(self, attribute_id: str) -> bool:
        """Bring an attribute back from the trash and select it."""
        project = self.project
        row = next((r for r in self.trashed if r.id == attribute_id), None)
        if row is None or project is None:
            return False
        try:
            outcome = project.restore_attribute(row.id)
        except OstafError as exc:
            self._session.report(exc)
            return False
        self.refresh()
        self._projects.refresh()
        self.clear_filter()
        self.selected_id = outcome.entry.id
        if outcome.already_present:
            self._session.notify(
                f"'{row.name}' is already in the library; the copy stays in the trash"
            )
        else:
            self._session.notify(f"Restored '{row.name}' from the trash")
        return True

    def purge(self, attribute_id: str) -> bool:
        """Delete a trashed attribute for good."""
        project = self.project
        row = next((r for r in self.trashed if r.id == attribute_id), None)
        if row is None or project is None:
            return False
        try:
            project.purge_attribute(row.id)
        except OstafError as exc:
            self._session.report(exc)
            return False
        self.refresh()
        self._session.notify(f"Deleted '{row.name}' for good")
        return True

    def empty_trash(self) -> bool:
        """Delete everything in the trash for good."""
        project = self.project
        if project is None:
            return False
        try:
            removed = project.empty_trash()
        except OstafError as exc:
            self._session.report(exc)
            return False
        self.refresh()
        self._session.notify(f"Emptied the trash ({len(removed)} attribute file(s) deleted)")
        return True

    def _edit(self, attribute_id: str, **changes: object) -> bool:
        row, project = self.row(attribute_id), self.project
        if row is None or project is None:
            return False
        try:
            project.update_attribute(row.id, **changes)  # type: ignore[arg-type]
        except OstafError as exc:
            self._session.report(exc)
            return False
        self.refresh()
        return True

    # -- per-project state ---------------------------------------------------------------
    def _save_state(self, project: Project) -> None:
        state = self._session.ui.project(project.slug)
        state.applied = {a.id: a.intensity for a in self.applied}

    def _on_projects_changed(self, name: str, value: object) -> None:
        if name != "current":
            return
        project = self.project
        slug = project.slug if project is not None else ""
        if slug == self._slug:  # the same project, renamed
            self.refresh()
            return
        self._slug = slug
        self.applied, self.selected_id = (), ""
        self.search_text, self.kind_filter = "", ""
        self.refresh()
        if project is None:
            return
        saved = self._session.ui.project(project.slug).applied
        self.applied = tuple(
            AppliedEntry(r.id, r.path, r.name, float(saved[r.id]))
            for r in self.rows
            if r.id in saved
        )


def _float_or_none(value: object) -> float | None:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None

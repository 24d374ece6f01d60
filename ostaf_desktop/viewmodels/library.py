"""The open project's attributes: the list, the ticked ones with their λ, and edits."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from PySide6.QtCore import QObject

from ostaf.errors import OstafError
from ostaf.library import Project
from ostaf_desktop.observable import Observable, ViewModel
from ostaf_desktop.viewmodels.projects import ProjectsViewModel
from ostaf_desktop.viewmodels.session import SessionViewModel

DEFAULT_PROMPT = "a photo of a sks object"


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
    problems = Observable[tuple[str, ...]](())
    selected_id = Observable("")
    applied = Observable[tuple[AppliedEntry, ...]](())

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
        project = self.project
        if project is None:
            self.rows, self.problems, self.applied, self.selected_id = (), (), (), ""
            return
        entries, problems = project.scan_attributes()
        self.rows = tuple(
            AttributeRow(
                id=e.id,
                path=e.path,
                name=e.meta.name,
                kind=str(e.meta.kind),
                default_lambda=float(e.meta.default_lambda),
                thumbnail=e.meta.reference.thumbnail,
                notes=e.meta.notes,
                created_at=e.meta.created_at,
                reference_name=e.meta.reference.file_name,
                base_model=e.meta.base_model.name,
                tuning_prompt=str(e.meta.tuning.get("prompt", "")) or DEFAULT_PROMPT,
                steps=int(e.meta.tuning.get("steps", 0) or 0),
                final_loss=_float_or_none(e.meta.tuning.get("final_loss")),
            )
            for e in entries
        )
        self.problems = tuple(f"{p.path.name}: {p.message}" for p in problems)
        ids = {r.id for r in self.rows}
        kept = tuple(
            replace(a, name=self.row(a.id).name)  # type: ignore[union-attr]
            for a in self.applied
            if a.id in ids
        )
        if kept != self.applied:
            self.applied = kept
        if self.selected_id not in ids:
            self.selected_id = self.rows[0].id if self.rows else ""

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

    def set_notes(self, attribute_id: str, notes: str) -> bool:
        return self._edit(attribute_id, notes=notes)

    def set_default_lambda(self, attribute_id: str, value: float) -> bool:
        return self._edit(attribute_id, default_lambda=value)

    def delete(self, attribute_id: str) -> bool:
        """Move the attribute's file to the project's trash (restorable from the CLI)."""
        row, project = self.row(attribute_id), self.project
        if row is None or project is None:
            return False
        try:
            project.delete_attribute(row.id)
        except OstafError as exc:
            self._session.report(exc)
            return False
        self.applied = tuple(a for a in self.applied if a.id != attribute_id)
        self._session.notify(f"Moved '{row.name}' to the project's trash")
        self.refresh()
        self._projects.refresh()
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

"""The project browser: the list of projects and the one that is open."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from ostaf.errors import OstafError, ProjectError
from ostaf.library.project_summary import summarize_projects
from ostaf.library.projects import Project, ProjectStore
from ostaf.library.staging import clear_staging
from ostaf_desktop.observable import Observable, ViewModel
from ostaf_desktop.viewmodels.session import SessionViewModel

log = logging.getLogger(__name__)
FIRST_PROJECT = "My first project"


@dataclass(frozen=True)
class ProjectRow:
    slug: str
    name: str
    attribute_count: int
    last_opened: str  # ISO time
    thumbnail: str  # data URL or ""
    reference_image: Path | None


class ProjectsViewModel(ViewModel):
    """Lists, creates, renames, deletes and opens projects; holds the open project's lock."""

    rows = Observable[tuple[ProjectRow, ...]](())
    problems = Observable[tuple[str, ...]](())
    current = Observable[Project | None](None)
    busy_slug = Observable("")  # a project a job is writing into: it cannot be deleted now

    # Emitted with the open project just before another one replaces it (panels save state).
    closing = Signal(object)

    def __init__(
        self,
        session: SessionViewModel,
        store: ProjectStore | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._session = session
        self.store = store or ProjectStore()

    @property
    def current_slug(self) -> str:
        return self.current.slug if self.current is not None else ""

    def refresh(self) -> None:
        try:
            summaries, problems = summarize_projects(self.store)
        except OSError as exc:
            self._session.report(exc, "listing projects")
            return
        self.rows = tuple(
            ProjectRow(
                s.slug, s.name, s.attribute_count, s.last_opened, s.thumbnail, s.reference_image
            )
            for s in summaries
        )
        self.problems = tuple(f"{p.path.name}: {p.message}" for p in problems)

    def open_initial(self) -> None:
        """Reopen the last project; on a fresh machine, create a first one."""
        self.refresh()
        last = self._session.settings.last_project
        slugs = [r.slug for r in self.rows]
        if last in slugs:
            self.open(last)
        elif slugs:
            self.open(slugs[0])
        else:
            self.create(FIRST_PROJECT)

    def open(self, slug: str) -> bool:
        """Open a project by folder name (taking its lock); False with the error shown."""
        if self.current is not None and self.current.slug == slug:
            return True
        try:
            project = self.store.find(slug)
            project.acquire()
        except OstafError as exc:
            self._session.report(exc)
            return False
        self._switch_to(project)
        return True

    def create(self, name: str) -> bool:
        try:
            project = self.store.create(name)
        except OstafError as exc:
            self._session.report(exc)
            return False
        self._switch_to(project)
        self._session.notify(f"Created project '{project.name}'")
        return True

    def rename(self, slug: str, name: str) -> bool:
        try:
            project = self.current if self.current_slug == slug else self.store.find(slug)
            assert project is not None
            project.rename(name)
            if project is not self.current:
                project.release()
        except OstafError as exc:
            self._session.report(exc)
            return False
        self.refresh()
        if project is self.current:
            self.changed.emit("current", project)  # the title shows the new name
        return True

    def delete(self, slug: str) -> bool:
        """Move a project to the trash; the open project is closed first."""
        if slug == self.busy_slug:
            self._session.report(
                ProjectError("a tuning run is writing into that project; cancel it first")
            )
            return False
        try:
            if slug == self.current_slug:
                project = self.current
                assert project is not None
                self._switch_to(None)
            else:
                project = self.store.find(slug)
            trash = self.store.delete(project)
        except (OstafError, OSError) as exc:
            self._session.report(exc, "deleting the project")
            self.refresh()
            return False
        self._session.notify(f"Moved '{project.name}' to {trash}")
        self.refresh()
        return True

    def close_current(self) -> None:
        self._switch_to(None)

    def _switch_to(self, project: Project | None) -> None:
        old = self.current
        if old is not None:
            self.closing.emit(old)
            old.release()
        if project is not None:
            try:
                clear_staging(project)
                project.touch()
            except OstafError as exc:
                log.warning("could not update %s: %s", project.folder, exc)
            self._session.update_settings(last_project=project.slug)
        self.current = project
        self.refresh()

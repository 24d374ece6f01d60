"""Attribute files in and out of the open project: import files (validated, duplicates found
by content), import from another project, and export a copy to any folder."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QObject

from ostaf.errors import OstafError
from ostaf.library.projects import ImportOutcome
from ostaf_desktop.observable import Observable, ViewModel
from ostaf_desktop.viewmodels.library import AttributeRow, LibraryViewModel, attribute_row
from ostaf_desktop.viewmodels.projects import ProjectsViewModel
from ostaf_desktop.viewmodels.session import SessionViewModel

log = logging.getLogger(__name__)
ATTRIBUTE_FILTER = "OSTAF attributes (*.safetensors);;All files (*)"


def describe_import(outcomes: Sequence[ImportOutcome]) -> tuple[str, str]:
    """(status line, details for a dialog or ''): what was imported, what was already there."""
    new = [f"'{o.entry.meta.name}'" for o in outcomes if not o.duplicate]
    old = [f"'{o.entry.meta.name}'" for o in outcomes if o.duplicate]
    status = f"Imported {', '.join(new)}" if new else ""
    if not old:
        return status, ""
    one = len(old) == 1
    details = (
        f"{', '.join(old)} {'is' if one else 'are'} already in the library (the same learned "
        f"factors), so {'it was' if one else 'they were'} not copied again."
    )
    if new:
        details = f"{status}.\n\n{details}"
    status = f"{status}; " if status else ""
    return f"{status}{len(old)} already in the library", details


class AttributeTransferViewModel(ViewModel):
    """Import into and export out of the open project's library."""

    def __init__(
        self,
        session: SessionViewModel,
        projects: ProjectsViewModel,
        library: LibraryViewModel,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._session = session
        self._projects = projects
        self._library = library

    def import_files(self, paths: Sequence[Path]) -> bool:
        """Copy attribute files in; one bad file and nothing changes (the banner says why)."""
        project = self._projects.current
        if project is None or not paths:
            return False
        try:
            outcomes = project.import_attributes([Path(p) for p in paths])
        except OstafError as exc:
            self._session.report(exc)
            return False
        self._library.refresh()
        self._projects.refresh()
        self._library.clear_filter()
        self._library.selected_id = outcomes[0].entry.id
        status, details = describe_import(outcomes)
        if details:
            self._session.inform("Import attributes", details, status)
        else:
            self._session.notify(status)
        return True

    def export_file(self, attribute_id: str, folder: Path) -> Path | None:
        """Copy an attribute file (unchanged, metadata and all) into `folder`."""
        project, row = self._projects.current, self._library.row(attribute_id)
        if project is None or row is None:
            return None
        try:
            target = project.export_attribute(row.id, Path(folder))
        except OstafError as exc:
            self._session.report(exc)
            return None
        self._session.notify(f"Exported '{row.name}' to {target}")
        return target


class ProjectImportViewModel(ViewModel):
    """The chooser for importing from another project: its projects, and the attributes of
    the chosen one with check boxes."""

    sources = Observable[tuple[tuple[str, str], ...]](())  # (slug, name), the open one left out
    source_slug = Observable("")
    rows = Observable[tuple[AttributeRow, ...]](())
    checked = Observable[tuple[str, ...]](())
    can_import = Observable(False)
    hint = Observable("")

    def __init__(
        self,
        projects: ProjectsViewModel,
        transfer: AttributeTransferViewModel,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._projects = projects
        self._transfer = transfer
        self._error = ""
        self.changed.connect(self._on_own_change)
        listed, _problems = projects.store.list()
        self.sources = tuple((p.slug, p.name) for p in listed if p.slug != projects.current_slug)
        self.source_slug = self.sources[0][0] if self.sources else ""
        self._update()

    def set_checked(self, attribute_id: str, on: bool) -> None:
        present = attribute_id in self.checked
        if on and not present:
            self.checked = (*self.checked, attribute_id)
        elif not on and present:
            self.checked = tuple(i for i in self.checked if i != attribute_id)

    def import_checked(self) -> bool:
        """Import the ticked attributes of the chosen project into the open one."""
        paths = [r.path for r in self.rows if r.id in self.checked]
        return bool(paths) and self._transfer.import_files(paths)

    def _on_own_change(self, name: str, value: object) -> None:
        if name == "source_slug":
            self._read_source()
        if name in ("source_slug", "checked", "rows"):
            self._update()

    def _read_source(self) -> None:
        self.rows, self.checked, self._error = (), (), ""
        if not self.source_slug:
            return
        try:
            source = self._projects.store.find(self.source_slug)  # read only: no lock taken
            entries = source.attributes()
        except OstafError as exc:
            log.warning("cannot read project %s: %s", self.source_slug, exc)
            self._error = str(exc)
            return
        self.rows = tuple(attribute_row(e) for e in entries)

    def _update(self) -> None:
        if self._error:
            self.hint = self._error
        elif not self.sources:
            self.hint = "There is no other project to import from."
        elif not self.rows:
            self.hint = "That project has no attributes."
        elif not self.checked:
            self.hint = "Tick the attributes to copy into this project."
        else:
            count = len(self.checked)
            self.hint = f"{count} attribute{'s' if count != 1 else ''} will be copied."
        self.can_import = bool(self.checked)

"""Staged results are never listed, enter the library by import, and are cleared."""

from __future__ import annotations

from pathlib import Path

from ostaf.library.projects import ProjectStore
from ostaf.library.staging import clear_staging, staging_path
from tests.attribute_files import write_attribute_file


def test_staged_files_are_not_listed_until_imported(home: Path) -> None:
    project = ProjectStore().create("P")
    staged = write_attribute_file(staging_path(project))
    assert project.attributes() == []
    entry = project.import_attribute(staged).entry
    assert entry.path.parent == project.attributes_dir
    assert [e.path for e in project.attributes()] == [entry.path]
    (project.folder / ".staging" / "left-over.mask.png").write_bytes(b"x")
    assert clear_staging(project) == 2 and not any((project.folder / ".staging").iterdir())
    project.release()

"""Library edits the desktop makes: adding a tuned file, renaming, notes, λ, trash."""

from __future__ import annotations

from pathlib import Path

import pytest
from safetensors.numpy import load_file

from ostaf.attribute_meta import read_meta
from ostaf.errors import AttributeFileError
from ostaf.library import ProjectStore
from ostaf.library_edits import (
    add_tuned_attribute,
    clear_staging,
    staging_path,
    trash_attribute,
    update_attribute_meta,
)
from ostaf.project_summary import summarize_projects
from tests.attribute_files import write_attribute_file


def test_tuned_file_enters_the_library_under_its_hash(home: Path) -> None:
    project = ProjectStore().create("P")
    staged = write_attribute_file(staging_path(project))
    assert project.attributes() == []  # staging is never listed
    path = add_tuned_attribute(project, staged, "ab" * 32)
    assert path == project.attribute_path("ab" * 32) and path.is_file() and not staged.exists()
    again = write_attribute_file(staging_path(project))
    assert add_tuned_attribute(project, again, "ab" * 32) == path and not again.exists()
    assert [e.path for e in project.attributes()] == [path]
    project.release()


def test_damaged_staged_file_never_enters(home: Path) -> None:
    project = ProjectStore().create("P")
    staged = staging_path(project)
    staged.write_bytes(b"half a file")
    with pytest.raises(AttributeFileError):
        add_tuned_attribute(project, staged, "cd" * 32)
    assert project.attributes() == []
    assert clear_staging(project) == 1 and not staged.exists()
    project.release()


def test_metadata_edits_keep_the_factors(home: Path) -> None:
    project = ProjectStore().create("P")
    path = write_attribute_file(project.attribute_path("ef" * 32))
    before = load_file(str(path))
    update_attribute_meta(path, name="  Red   clay ", notes="from the\nmarket", default_lambda=0.7)
    meta = read_meta(path)
    assert (meta.name, meta.notes, meta.default_lambda) == ("Red clay", "from the\nmarket", 0.7)
    after = load_file(str(path))
    assert before.keys() == after.keys()
    assert all((before[k] == after[k]).all() for k in before)
    with pytest.raises(AttributeFileError, match="cannot be empty"):
        update_attribute_meta(path, name="  ")
    with pytest.raises(AttributeFileError, match=r"outside 0\.\.2"):
        update_attribute_meta(path, default_lambda=3)
    assert read_meta(path).name == "Red clay"  # a refused edit changes nothing
    project.release()


def test_trash_moves_the_file_out_of_the_library(home: Path) -> None:
    project = ProjectStore().create("P")
    path = write_attribute_file(project.attribute_path("01" * 32))
    target = trash_attribute(project, path)
    assert target.is_file() and not path.exists() and project.attributes() == []
    with pytest.raises(AttributeFileError, match="not in the library"):
        trash_attribute(project, target)
    project.release()


def test_project_summaries(home: Path) -> None:
    store = ProjectStore()
    empty = store.create("Empty")
    full = store.create("Full")
    write_attribute_file(full.attribute_path("02" * 32), created_at="2026-01-02T00:00:00Z")
    write_attribute_file(full.attribute_path("03" * 32), name="Newer", seed=3)
    empty.release()
    full.release()
    summaries, problems = summarize_projects(store)
    by_name = {s.name: s for s in summaries}
    assert problems == [] and set(by_name) == {"Empty", "Full"}
    assert by_name["Full"].attribute_count == 2
    assert by_name["Full"].thumbnail.startswith("data:image/png;base64,")
    assert by_name["Empty"].attribute_count == 0 and by_name["Empty"].thumbnail == ""

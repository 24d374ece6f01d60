"""Projects on disk: create, list, rename, lock, and corrupt files reported, not fatal."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ostaf.errors import ProjectError, ProjectLockedError
from ostaf.library.project_paths import is_reserved_name
from ostaf.library.projects import Project, ProjectStore, slugify

ROOT = Path(__file__).resolve().parents[2]


def test_create_list_rename_delete(home: Path) -> None:
    store = ProjectStore()
    first = store.create("Cats & Dogs")
    second = store.create("Cats & Dogs")
    assert (first.slug, second.slug) == ("cats-dogs", "cats-dogs-2")
    assert (first.folder / "project.json").is_file() and first.attributes_dir.is_dir()
    first.rename("Felines")
    first.release()
    projects, problems = store.list()
    assert {p.name for p in projects} == {"Felines", "Cats & Dogs"} and problems == []
    assert store.find("Felines").slug == "cats-dogs"
    second.release()
    trashed = store.delete(store.find("cats-dogs-2"))
    assert trashed.is_dir() and not (store.root / "cats-dogs-2").exists()
    with pytest.raises(ProjectError, match="no project named"):
        store.find("cats-dogs-2")
    with pytest.raises(ProjectError, match="cannot be empty"):
        store.create("   ")


def test_damaged_project_is_reported_not_fatal(home: Path) -> None:
    store = ProjectStore()
    store.create("Good").release()
    bad = store.root / "bad"
    bad.mkdir()
    (bad / "project.json").write_text("{ nope")
    projects, problems = store.list()
    assert [p.name for p in projects] == ["Good"]
    assert len(problems) == 1 and "bad/project.json is damaged" in problems[0].message


def test_corrupt_attribute_files_are_listed_as_problems(home: Path) -> None:
    project = ProjectStore().create("P")
    (project.attributes_dir / "broken.safetensors").write_bytes(b"junk")
    (project.attributes_dir / ".x.safetensors.ostaf-tmp").write_bytes(b"half")
    entries, problems = project.scan_attributes()
    assert entries == []
    assert [p.path.name for p in problems] == ["broken.safetensors"]
    assert (project.attributes_dir / "broken.safetensors").read_bytes() == b"junk"  # untouched
    project.release()


def test_references_are_stored_once_by_content(
    home: Path, reference_png: Path, tmp_path: Path
) -> None:
    project = ProjectStore().create("Refs")
    copy = tmp_path / "copy.png"
    copy.write_bytes(reference_png.read_bytes())
    a = project.add_reference(reference_png)
    b = project.add_reference(copy)
    assert a == b and a.read_bytes() == reference_png.read_bytes()
    assert len(Project(project.folder).info.references) == 1
    project.release()


def test_second_process_is_told_the_project_is_in_use(home: Path) -> None:
    project = ProjectStore().create("Busy")
    code = (
        "from pathlib import Path\n"
        "from ostaf.library.projects import Project\n"
        "from ostaf.errors import ProjectLockedError\n"
        f"p = Project(Path({str(project.folder)!r}))\n"
        "try:\n"
        "    p.acquire()\n"
        "except ProjectLockedError as e:\n"
        "    print(e)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert "project 'Busy' is open in another OSTAF window or command (process" in result.stdout
    project.release()
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.stdout == "" and result.returncode == 0


def test_writes_take_the_lock(home: Path) -> None:
    store = ProjectStore()
    project = store.create("Mine")
    other = Project(project.folder)
    with pytest.raises(ProjectLockedError):
        other.rename("Theirs")
    project.release()


def test_slugify() -> None:
    assert slugify("Été 2026 / Final!") == "ete-2026-final"
    assert slugify("../../etc") == "etc"
    assert slugify("???") == "project"


@pytest.mark.parametrize("name", ["CON", "nul", "Prn", "AUX", "COM1", "lpt9", "Com²", "NUL."])
def test_project_folders_avoid_windows_device_names(home: Path, name: str) -> None:
    """Windows opens a device for CON, NUL, COM1 … in any folder, whatever the extension."""
    assert slugify(name).startswith("_") and not is_reserved_name(slugify(name))
    project = ProjectStore().create(name)
    assert not is_reserved_name(project.slug) and project.name == name.strip()
    project.release()
    assert ProjectStore().find(name).folder == project.folder
    assert slugify("Console") == "console" and slugify("COM10") == "com10"

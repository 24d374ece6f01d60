"""Symbolic links inside a project (a zip or tar keeps them) are never followed out of it:
the library's own folders and files that are links are refused or skipped by name, and
deleting removes only attribute files the library wrote (field report 2026-12, defect 1)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ostaf.cli.main import main
from ostaf.errors import ProjectError
from ostaf.library.project_summary import summarize_projects
from ostaf.library.projects import Project, ProjectStore, validate_attribute_file
from ostaf.library.staging import clear_staging, staging_path
from ostaf.render.recall import RecalledAttribute, _locate
from tests.attribute_files import write_attribute_file

pytestmark = pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symbolic links")


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["library", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _outside(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    """A folder outside every project: a valid attribute under a model-like name, a file
    that is no attribute, and a valid attribute under a library-like name."""
    folder = tmp_path / "mymodels"
    folder.mkdir()
    write_attribute_file(folder / "sd15-checkpoint.safetensors", name="Outside", seed=7)
    (folder / "other.safetensors").write_bytes(b"data\n")
    write_attribute_file(folder / "4444444444444444.safetensors", name="Secret", seed=8)
    return folder, {p.name: p.read_bytes() for p in folder.iterdir()}


def _project(home: Path, tmp_path: Path, name: str = "S") -> tuple[Project, str]:
    project = ProjectStore().create(name)
    entry = project.import_attribute(write_attribute_file(tmp_path / "a.safetensors")).entry
    project.release()
    return project, entry.id


def _unchanged(folder: Path, before: dict[str, bytes]) -> bool:
    return {p.name: p.read_bytes() for p in folder.iterdir()} == before


@pytest.mark.parametrize("relative", [False, True])
def test_a_linked_trash_is_refused_and_nothing_outside_is_deleted(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], relative: bool
) -> None:
    project, _ = _project(home, tmp_path)
    outside, before = _outside(tmp_path)
    trash = project.attributes_dir / ".trash"
    if trash.exists():
        trash.rmdir()
    trash.symlink_to(os.path.relpath(outside, trash.parent) if relative else outside)

    code, out, err = _run(capsys, "list", "--project", "S", "--trash")
    assert code == 0 and out == ""  # nothing outside is listed as trashed
    assert f"{trash} is a symbolic link" in err and "Traceback" not in err
    code, out, err = _run(capsys, "empty-trash", "--project", "S")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith(f"error: {trash} is a symbolic link")
    code, _, err = _run(capsys, "delete", "--project", "S", "Blue glaze")
    assert code == 2 and f"{trash} is a symbolic link" in err
    assert [e.meta.name for e in project.attributes()] == ["Blue glaze"]  # not moved out
    for action in ("restore", "purge"):
        code, _, err = _run(capsys, action, "--project", "S", "Outside")
        assert code == 2 and f"{trash} is a symbolic link" in err
    assert _unchanged(outside, before)


def test_a_linked_attributes_folder_is_refused(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project, _ = _project(home, tmp_path)
    outside, before = _outside(tmp_path)
    library = project.attributes_dir
    library.rename(tmp_path / "moved-away")
    library.symlink_to(outside)

    code, out, err = _run(capsys, "list", "--project", "S")
    assert code == 0 and out == "" and f"{library} is a symbolic link" in err
    assert summarize_projects(ProjectStore())[0][0].attribute_count == 0
    for args in (
        ("delete", "--project", "S", "Secret"),
        ("tag", "--project", "S", "Secret", "--add", "x"),
        ("export", "--project", "S", "Secret", "--out", str(tmp_path / "copy")),
        ("import", "--project", "S", str(tmp_path / "a.safetensors")),
    ):
        code, out, err = _run(capsys, *args)
        assert code == 2 and out == "" and f"{library} is a symbolic link" in err, args
        assert err.count("\n") == 1
    assert _unchanged(outside, before) and not (tmp_path / "copy").exists()


def test_linked_attribute_files_are_skipped_by_name(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project, own = _project(home, tmp_path)
    outside, before = _outside(tmp_path)
    secret = outside / "4444444444444444.safetensors"
    link = project.attributes_dir / secret.name
    link.symlink_to(secret)

    code, out, err = _run(capsys, "list", "--project", "S")
    assert code == 0 and out.startswith(own) and "Secret" not in out
    assert f"warning: skipped {link} is a symbolic link" in err
    for args in (
        ("export", "--project", "S", "4444", "--out", str(tmp_path / "copy")),
        ("tag", "--project", "S", "Secret", "--add", "x"),
        ("delete", "--project", "S", "4444444444444444"),
    ):
        code, _, err = _run(capsys, *args)
        assert code == 2 and "no attribute" in err, args
    # A link under the name an import writes is in the way; it is not written through.
    source = write_attribute_file(tmp_path / "new.safetensors", seed=5)
    in_the_way = project.attribute_path(validate_attribute_file(source).content_hash())
    in_the_way.symlink_to(outside / "other.safetensors")
    code, _, err = _run(capsys, "import", "--project", "S", str(source))
    assert code == 2 and f"{in_the_way} is in the way" in err
    assert _unchanged(outside, before) and link.is_symlink() and in_the_way.is_symlink()
    assert not (tmp_path / "copy").exists()


def test_a_link_in_the_trash_is_never_restored_purged_or_emptied(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project, own = _project(home, tmp_path)
    outside, before = _outside(tmp_path)
    project.delete_attribute(own)
    link = project.trash_dir / "4444444444444444.safetensors"
    link.symlink_to(outside / link.name)
    stray = project.trash_dir / "notes.safetensors"  # a file the library never wrote
    stray.write_bytes(b"keep me")
    custom = write_attribute_file(project.trash_dir / "renamed.safetensors", seed=3)

    code, out, err = _run(capsys, "list", "--project", "S", "--trash")
    assert code == 0 and "Secret" not in out and f"skipped {link} is a symbolic link" in err
    code, _, err = _run(capsys, "restore", "--project", "S", "Secret")
    assert code == 2 and "no attribute 'Secret' in the trash" in err
    code, _, err = _run(capsys, "purge", "--project", "S", "4444444444444444")
    assert code == 2 and "no attribute" in err
    code, out, _ = _run(capsys, "empty-trash", "--project", "S")
    assert code == 0 and "deleted 2 attribute file(s)" in out  # its own and the renamed one
    assert sorted(p.name for p in project.trash_dir.iterdir()) == [link.name, stray.name]
    assert stray.read_bytes() == b"keep me" and not custom.exists()
    assert _unchanged(outside, before)


def test_a_linked_references_folder_and_staging_folder_are_not_followed(
    home: Path, tmp_path: Path, reference_png: Path
) -> None:
    project, _ = _project(home, tmp_path)
    outside, before = _outside(tmp_path)
    project.references_dir.rmdir()
    project.references_dir.symlink_to(outside)
    with pytest.raises(ProjectError, match="references is a symbolic link"):
        project.add_reference(reference_png)
    staging = project.folder / ".staging"
    staging.symlink_to(outside)
    assert clear_staging(project) == 0
    with pytest.raises(ProjectError, match=r"\.staging is a symbolic link"):
        staging_path(project)
    with pytest.raises(ProjectError, match="exports is a symbolic link"):
        project.exports_dir.rmdir()
        project.exports_dir.symlink_to(outside)
        project.output_folder()
    assert _unchanged(outside, before)


def test_recall_and_project_json_never_read_through_links(home: Path, tmp_path: Path) -> None:
    project, own = _project(home, tmp_path)
    outside, _ = _outside(tmp_path)
    secret = outside / "4444444444444444.safetensors"
    (project.attributes_dir / secret.name).symlink_to(secret)
    wanted = RecalledAttribute("Secret", "appearance", 1.0, "4444444444444444" + "0" * 48)
    _locate(wanted, [project])
    assert wanted.path is None and wanted.trashed is None
    found = RecalledAttribute("Blue glaze", "appearance", 1.0, own + "0" * 48)
    _locate(found, [project])
    assert found.path == project.attributes_dir / f"{own}.safetensors"

    other = ProjectStore().create("T")
    other.release()
    info = other.folder / "project.json"
    kept = tmp_path / "project.json"
    info.rename(kept)
    info.symlink_to(kept)
    projects, problems = ProjectStore().list()  # listing does not crash: it names the link
    assert [p.name for p in projects] == ["S"]
    assert [p.path for p in problems] == [other.folder]
    assert f"{info} is a symbolic link" in problems[0].message
    with pytest.raises(ProjectError, match=r"project\.json is a symbolic link"):
        ProjectStore().find(other.slug)


def test_a_linked_project_folder_stays_usable(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The project folder itself may be a link: it is where the user keeps the project."""
    real = tmp_path / "elsewhere" / "kept"
    real.parent.mkdir()
    project, own = _project(home, tmp_path)
    project.folder.rename(real)
    project.folder.symlink_to(real, target_is_directory=True)
    code, out, _ = _run(capsys, "list", "--project", "S")
    assert code == 0 and out.startswith(own)
    assert _run(capsys, "tag", "--project", "S", own, "--add", "kiln")[0] == 0
    assert _run(capsys, "delete", "--project", "S", own)[0] == 0
    code, out, _ = _run(capsys, "empty-trash", "--project", "S")
    assert code == 0 and "deleted 1 attribute file(s)" in out
    assert not any((real / "attributes" / ".trash").iterdir())

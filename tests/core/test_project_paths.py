"""Every path read from project.json stays inside its project: a reference entry naming a file
elsewhere, a parent folder, a Windows drive or a network share, or a link leading out, is never
opened (the project browser used one as the project's thumbnail)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ostaf.library.project_file import inside, plain_file_name
from ostaf.library.project_summary import summarize_project
from ostaf.library.projects import Project, ProjectStore


@pytest.mark.parametrize(
    "name",
    [
        "/etc/hostname",
        "../../outside.png",
        "..",
        "sub/dir.png",
        "C:\\Windows\\win.ini",
        "C:evil.png",
        "\\\\server\\share\\x.png",
        "//server/share/x.png",
        "x.png:stream",
        "",
        "bell\x07.png",
    ],
)
def test_reference_names_leading_out_are_never_opened(
    home: Path, tmp_path: Path, name: str
) -> None:
    project = ProjectStore().create("Paths")
    good = tmp_path / "good.png"
    good.write_bytes(b"a reference")
    kept = project.add_reference(good)
    project.release()
    info = json.loads((project.folder / "project.json").read_text())
    info["references"].append(
        {"sha256": "f" * 64, "file": name, "original_name": "x.png", "added": "2026"}
    )
    (project.folder / "project.json").write_text(json.dumps(info))
    reopened = Project(project.folder)
    assert reopened.reference_path(reopened.info.references[-1]) is None
    assert summarize_project(reopened).reference_image == kept  # the newest one inside
    with pytest.raises(ValueError, match="not a plain file name"):
        plain_file_name(name)


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_a_link_out_of_the_references_folder_is_not_followed(home: Path, tmp_path: Path) -> None:
    project = ProjectStore().create("Links")
    secret = tmp_path / "secret.txt"
    secret.write_text("not yours")
    (project.references_dir / "0123456789abcdef.png").symlink_to(secret)
    assert inside(project.references_dir, "0123456789abcdef.png") is None
    (project.references_dir / "real.png").write_bytes(b"png")
    (project.references_dir / "alias.png").symlink_to(project.references_dir / "real.png")
    assert inside(project.references_dir, "alias.png") == project.references_dir / "alias.png"
    project.release()


def test_new_reference_names_are_plain(home: Path, tmp_path: Path) -> None:
    project = ProjectStore().create("Suffixes")
    odd = tmp_path / "photo.a:b"
    odd.write_bytes(b"image bytes")
    stored = project.add_reference(odd)
    assert stored.parent == project.references_dir and stored.suffix == ".png"
    assert project.reference_path(project.info.references[0]) == stored
    project.release()

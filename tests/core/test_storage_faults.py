"""The disk says no: a folder in the way of the sweep, a full disk or a read-only data folder
while taking the lock, a full disk while creating a project. Each is one line naming what to
do, and nothing half-made stays behind."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from filelock import FileLock

import ostaf.library.project_lock as project_lock
from ostaf.cli.main import main
from ostaf.library.attribute_meta import read_meta
from ostaf.library.projects import STORE_LOCK, ProjectStore
from tests.attribute_files import write_attribute_file


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in lines[0], lines
    return lines[0]


@pytest.fixture
def library(home: Path, tmp_path: Path) -> str:
    """A project with one attribute; returns the attribute's id."""
    project = ProjectStore().create("Disk")
    entry = project.import_attribute(write_attribute_file(tmp_path / "a.safetensors")).entry
    project.release()
    return entry.id


def test_a_folder_named_like_a_temporary_file_blocks_nothing(
    home: Path, library: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = ProjectStore().find("Disk")
    blocker = project.attributes_dir / ".x.safetensors.12345678.ostaf-tmp"
    blocker.mkdir()
    (blocker / "inside.ostaf-tmp").write_text("someone's")
    leftover = project.attributes_dir / ".y.safetensors.abcdef12.ostaf-tmp"
    leftover.write_bytes(b"half written")
    assert main(["library", "rename", "--project", "Disk", library, "Renamed"]) == 0
    assert read_meta(project.attributes()[0].path).name == "Renamed"
    assert blocker.is_dir() and (blocker / "inside.ostaf-tmp").is_file()  # not ours: kept
    assert not leftover.exists()  # a writer's leftover: swept by the lock holder


@pytest.mark.parametrize(
    ("code", "message"),
    [(errno.EROFS, "read-only"), (errno.ENOSPC, "disk full"), (errno.EACCES, "read-only")],
)
def test_the_lock_file_cannot_be_made(
    home: Path,
    library: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    code: int,
    message: str,
) -> None:
    class Refused(FileLock):
        def acquire(self, *args: object, **kwargs: object) -> None:  # type: ignore[override]
            raise OSError(code, os.strerror(code), self.lock_file)

    monkeypatch.setattr(project_lock, "FileLock", Refused)
    assert main(["library", "tag", "--project", "Disk", library, "--add", "x"]) == 2
    line = _one_error_line(capsys)
    assert line.startswith("error: ") and message in line and "cannot lock the project" in line


def test_a_full_disk_while_recording_the_owner_lets_go_of_the_lock(
    home: Path, library: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(os, "fsync", disk_full)
        assert main(["library", "tag", "--project", "Disk", library, "--add", "x"]) == 2
    assert "disk full" in _one_error_line(capsys)
    project = ProjectStore().find("Disk")
    project.acquire()  # the lock was let go
    project.release()


def test_create_on_a_full_disk_leaves_nothing_and_the_retry_gets_the_name(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    source = write_attribute_file(tmp_path / "a.safetensors")
    root = ProjectStore().root
    root.mkdir(parents=True, exist_ok=True)
    before = sorted(root.iterdir())

    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(os, "fsync", disk_full)
        assert main(["library", "import", "--project", "g", "--create", str(source)]) == 2
    assert "disk full" in _one_error_line(capsys)
    # No half-made project, no hidden leftover (the store's lock file stays, as lock files do).
    assert sorted(p for p in root.iterdir() if p.name != STORE_LOCK) == before
    assert main(["library", "import", "--project", "g", "--create", str(source)]) == 0
    assert [p.name for p in root.iterdir() if not p.name.startswith(".")] == ["g"]

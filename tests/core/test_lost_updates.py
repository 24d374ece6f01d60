"""Read-modify-write inside the lock: edits by two writers never lose each other's changes, on
attribute files and on project.json, whether the writers are processes or objects."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from ostaf.errors import ProjectLockedError
from ostaf.library.attribute_meta import read_meta
from ostaf.library.projects import Project, ProjectStore
from tests.attribute_files import write_attribute_file
from tests.cli_process import CliProcess, start_cli

WRITERS = int(os.environ.get("OSTAF_TAG_WRITERS", "4"))  # the README quotes a longer campaign


def _library(home: Path, *args: str) -> CliProcess:
    # Processes of their own (the lock is per process), forked without re-importing torch.
    return start_cli(["library", *args], env={**os.environ, "OSTAF_HOME": str(home)})


def test_concurrent_tag_commands_keep_every_tag(home: Path, tmp_path: Path) -> None:
    """Several `library tag --add` started together: each exits 0 and every tag is kept
    (the command used to read the tags before taking the lock, so the last one won)."""
    project = ProjectStore().create("Tags")
    entry = project.import_attribute(write_attribute_file(tmp_path / "a.safetensors")).entry
    project.release()
    procs = [
        _library(home, "tag", "--project", "Tags", entry.id, "--add", f"tag{i}")
        for i in range(WRITERS)
    ]
    results = [(p.wait(timeout=300), p.stderr()) for p in procs]
    for p in procs:
        p.close()
    assert [code for code, _ in results] == [0] * WRITERS, results
    assert sorted(read_meta(entry.path).tags) == sorted(f"tag{i}" for i in range(WRITERS))


def test_an_attribute_edit_starts_from_the_file_on_disk(home: Path, tmp_path: Path) -> None:
    store = ProjectStore()
    store.create("Shared").release()
    first, second = store.find("Shared"), store.find("Shared")  # two writers, both idle
    source = write_attribute_file(tmp_path / "a.safetensors")
    entry = first.import_attribute(source).entry
    assert not first.is_locked  # a writer that did not hold the lock lets go after the edit
    second.change_tags(entry.id, add=["kiln"])
    first.change_tags(entry.id, add=["glaze"])
    second.update_attribute(entry.id, notes="matte")
    first.update_attribute(entry.id, default_lambda=0.5)
    meta = read_meta(entry.path)
    assert (meta.tags, meta.notes, meta.default_lambda) == (["kiln", "glaze"], "matte", 0.5)
    first.change_tags(entry.id, remove=["kiln"])
    assert read_meta(entry.path).tags == ["glaze"]


def test_project_json_edits_start_from_the_file_on_disk(
    home: Path, tmp_path: Path, reference_png: Path
) -> None:
    """project.json read when a project object was made is never written back stale: a
    rename by one writer survives a reference added by another."""
    store = ProjectStore()
    store.create("Before").release()
    stale = store.find("Before")  # read now, written later
    other = store.find("Before")
    other.rename("After")
    other.release()
    stale.add_reference(reference_png)
    info = Project(stale.folder).info
    assert info.name == "After" and len(info.references) == 1
    stale.touch()
    assert Project(stale.folder).info.name == "After"


def test_a_command_waits_for_another_command_but_not_for_the_app(home: Path) -> None:
    holder = ProjectStore().create("Busy")  # holds the lock, as the app does
    waiting = ProjectStore().find("Busy")
    waiting.holder, waiting.lock_wait_s = "command", 30.0
    started = time.monotonic()
    with pytest.raises(ProjectLockedError, match="open in another OSTAF window"):
        waiting.acquire()
    assert time.monotonic() - started < 5  # the app's lock is refused at once
    holder.release()

    holder.holder = "command"  # now a command holds it for a moment
    holder.acquire()
    threading.Timer(0.5, holder.release).start()
    started = time.monotonic()
    waiting.acquire()  # waits for the other command, then gets it
    assert 0.3 < time.monotonic() - started < 20
    waiting.release()

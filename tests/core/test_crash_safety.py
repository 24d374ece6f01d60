"""Crash safety: SIGKILL a process at random moments while it edits a library and rewrites
attribute files; afterwards the library opens, every file is a complete old or new version,
leftover temporary files are never read as data, and the lock is free again."""

from __future__ import annotations

import os
import random
import re
import signal
import time
from pathlib import Path

import pytest

from ostaf.library.atomic import is_temporary
from ostaf.library.attribute_file import Attribute, load_attribute, save_attribute
from ostaf.library.projects import Project, ProjectStore
from ostaf.models.base_model import BaseModel
from tests.core.attribute_factory import make_attribute

KILLS = int(os.environ.get("OSTAF_KILLS", "60"))  # the README quotes a longer campaign


def _edit_until_killed(folder: Path, spare: Path, versions: list[Attribute]) -> None:
    """The child: an endless mix of every kind of library write."""
    project = Project(folder)
    project.acquire()
    if not project.attributes():  # killed between delete and restore last time
        project.restore_attribute(project.trashed_attributes()[0].id)
    ident = project.attributes()[0].id
    i = random.randrange(1_000_000)
    while True:
        i += 1
        step = i % 5
        if step == 0:
            project.update_attribute(ident, name=f"name {i}", tags=[f"t{i}"], notes=f"n{i}")
        elif step == 1:
            project.rename(f"Project {i}")
        elif step == 2:
            project.delete_attribute(ident)
            project.restore_attribute(ident)
        elif step == 3:
            save_attribute(spare, versions[i % 2])
        else:
            project.update_attribute(ident, default_lambda=(i % 20) / 10)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork to kill cheaply")
def test_sigkill_during_library_writes_loses_nothing(demo: BaseModel, home: Path) -> None:
    versions = [make_attribute(demo, seed=1, name="one"), make_attribute(demo, seed=2, name="two")]
    hashes = {v.content_hash() for v in versions}
    project = ProjectStore().create("Original")
    source = project.folder / "incoming.safetensors"
    save_attribute(source, make_attribute(demo, seed=3, name="original"))
    project.import_attribute(source)
    source.unlink()
    library_hash = load_attribute(project.attributes()[0].path).content_hash()
    spare = project.folder / "spare.safetensors"
    save_attribute(spare, versions[0])
    folder = project.folder
    project.release()

    rng = random.Random(7)
    for _ in range(KILLS):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child never returns
            try:
                _edit_until_killed(folder, spare, versions)
            finally:
                os._exit(1)
        time.sleep(rng.uniform(0.01, 0.25))
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status), "the child stopped on its own (an error in the writer)"
        _check_invariants(folder, spare, hashes, library_hash)


def _check_invariants(folder: Path, spare: Path, hashes: set[str], library_hash: str) -> None:
    project = Project(folder)  # project.json is complete
    assert re.fullmatch(r"Original|Project \d+", project.name)
    live, problems = project.scan_attributes()
    trashed = project.trashed_attributes()
    assert problems == []
    assert len(live) + len(trashed) >= 1 and len(live) <= 1
    for entry in live + trashed:
        attribute = load_attribute(entry.path)  # complete and valid
        assert attribute.content_hash() == library_hash
        assert re.fullmatch(r"original|name \d+", attribute.meta.name)
    assert load_attribute(spare).content_hash() in hashes
    assert not any(is_temporary(e.path) for e in live + trashed)
    project.acquire()  # the dead writer's lock is free, and its half-written files go
    assert not any(is_temporary(p) for p in folder.rglob("*"))
    project.release()


def test_sigkill_during_batch_export_then_resume(
    demo: BaseModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kill a batch export mid-run: every image left is complete, and a re-run finishes the
    grid with exactly the files of an uninterrupted run."""
    from ostaf.interop.pngmeta import read_png_metadata
    from tests.cli_process import run_cli, start_cli
    from tests.core.attribute_factory import write_attribute

    look = write_attribute(demo, tmp_path / "look.safetensors", name="look")
    args = [
        *("batch", "--prompt", "a photo of a sks object", "--attribute", str(look)),
        *("--count", "6", "--intensity", "0.5,1.5", "--steps", "6", "--device", "cpu"),
        *("--model", "demo"),
    ]
    monkeypatch.setenv("OSTAF_CPU_THREADS", "1")
    killed = tmp_path / "killed"
    proc = start_cli([*args, "--out", str(killed)])
    deadline = time.time() + 180
    while len(list(killed.glob("*.png"))) < 3 and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.close()
    survivors = sorted(killed.glob("*.png"))
    assert 3 <= len(survivors) < 12
    for png in survivors:  # complete images with their metadata, never a torn one
        parameters, record = read_png_metadata(png)
        assert parameters and record
    rerun = run_cli([*args, "--out", str(killed)])
    assert rerun.returncode == 0, rerun.stderr
    clean = tmp_path / "clean"
    straight = run_cli([*args, "--out", str(clean)])
    assert straight.returncode == 0, straight.stderr
    finished = {p.name: p.read_bytes() for p in killed.glob("*.png")}
    assert finished == {p.name: p.read_bytes() for p in clean.glob("*.png")}
    assert len(finished) == 12

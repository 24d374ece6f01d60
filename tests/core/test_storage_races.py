"""Processes that meet on one library: creating a project by name is atomic, a lock holder's
sweep spares a live writer's temporary file, a tuning run holds its output file, and a batch
into a project deleted meanwhile stops instead of re-creating it (field report 2026-12,
defect 3)."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from pathlib import Path

import pytest

from ostaf.cli.library import open_project
from ostaf.errors import StorageError
from ostaf.library.atomic import atomic_open, is_temporary
from ostaf.library.attribute_file import Attribute, save_attribute
from ostaf.library.projects import Problem, Project, ProjectStore
from ostaf.method.regions import AttributeKind
from ostaf.method.tuning_checkpoint import read_sidecar
from ostaf.models.base_model import BaseModel
from ostaf.progress import Progress
from ostaf.render.batch import run_batch
from ostaf.render.batch_plan import AttributeChoice, BatchRequest, plan_batch
from tests.attribute_files import write_attribute_file
from tests.cli_process import run_cli, start_cli
from tests.core.attribute_factory import make_attribute


def test_two_creations_of_one_name_make_one_project(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both look for "New" before either creates it (the listing waits for the other
    thread): one project, holding both attributes."""
    meet = threading.Barrier(2, timeout=1.0)
    listed = ProjectStore.list

    def slow_list(store: ProjectStore) -> tuple[list[Project], list[Problem]]:
        found = listed(store)
        # Times out (the barrier breaks) when the other creation is held back: the fixed case.
        with contextlib.suppress(threading.BrokenBarrierError):
            meet.wait()
        return found

    monkeypatch.setattr(ProjectStore, "list", slow_list)
    sources = [write_attribute_file(tmp_path / f"{i}.safetensors", seed=i) for i in range(2)]
    failures: list[BaseException] = []

    def import_one(source: Path) -> None:
        try:
            with open_project("New", create=True) as project:
                project.import_attributes([source])
        except BaseException as exc:  # reported below, with the thread's error
            failures.append(exc)

    threads = [threading.Thread(target=import_one, args=(s,)) for s in sources]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    monkeypatch.setattr(ProjectStore, "list", listed)
    assert failures == []
    projects, _ = ProjectStore().list()
    assert [(p.name, p.slug) for p in projects] == [("New", "new")]
    assert len(projects[0].attributes()) == 2


def test_two_create_commands_at_once_make_one_project(home: Path, tmp_path: Path) -> None:
    sources = [write_attribute_file(tmp_path / f"{i}.safetensors", seed=i) for i in range(3)]
    env = {**os.environ, "OSTAF_HOME": str(home)}
    procs = [
        start_cli(["library", "import", "--create", "--project", "New", str(s)], env=env)
        for s in sources
    ]
    results = [(p.wait(timeout=120), p.stderr()) for p in procs]
    for proc in procs:
        proc.close()
    assert [code for code, _ in results] == [0, 0, 0], results
    projects, _ = ProjectStore().list()
    assert [p.slug for p in projects] == ["new"] and len(projects[0].attributes()) == 3


def test_a_sweep_spares_a_live_writers_temporary(home: Path, tmp_path: Path) -> None:
    """A batch writes into exports/ without the project's lock; another process taking the
    lock (a tag edit) sweeps temporaries, but only those whose writer is gone."""
    project = ProjectStore().create("Q")
    project.release()
    abandoned = project.exports_dir / ".old.png.0123abcd.ostaf-tmp"
    abandoned.write_bytes(b"left by a writer that died")
    target = project.exports_dir / "img.png"
    with atomic_open(target) as handle:
        handle.write(b"first half ")
        (writing,) = [p for p in project.exports_dir.iterdir() if p.name.startswith(".img")]
        Project(project.folder).touch()  # takes the lock, which sweeps
        assert writing.exists() and not abandoned.exists()
        handle.write(b"second half")
    assert target.read_bytes() == b"first half second half"
    assert not any(is_temporary(p) for p in project.exports_dir.iterdir())


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symbolic links")
def test_a_sweep_leaves_links_alone(home: Path, tmp_path: Path) -> None:
    project = ProjectStore().create("Links")
    project.release()
    kept = tmp_path / "kept.txt"
    kept.write_text("mine")
    (project.exports_dir / ".x.png.00000000.ostaf-tmp").symlink_to(kept)
    Project(project.folder).touch()
    assert kept.read_text() == "mine"


def test_a_second_tune_into_the_same_file_fails_at_once(
    reference_png: Path, tmp_path: Path
) -> None:
    out = tmp_path / "o.safetensors"
    state = out.with_name(out.name + ".resume")
    common = ["tune", str(reference_png), "--attribute", "shape", "--out", str(out)]
    common += ["--device", "cpu", "--checkpoint-interval", "0"]
    first = start_cli([*common, "--steps", "5000", "--seed", "1"])
    try:
        first.wait_for_stderr("tuning", timeout=120)
        second = run_cli([*common, "--steps", "4", "--seed", "2", "--restart"], timeout=120)
        assert second.returncode == 2, second.stderr
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(
            f"error: {out} is being written by another run (process {first.pid} on "
        )
        assert not out.exists()
        record = read_sidecar(state)  # the first run's state, not shared or discarded
        assert record is not None and record["settings"]["seed"] == 1  # type: ignore[index]
        first.send_signal(signal.SIGINT)
        assert first.wait(timeout=60) == 130, first.stderr()
    finally:
        first.close()
    assert not (tmp_path / f".{out.name}.ostaf-lock").exists()  # let go of, and removed


@pytest.fixture(scope="module")
def look(demo: BaseModel) -> Attribute:
    return make_attribute(demo, AttributeKind.APPEARANCE, 1, "Blue glaze")


def test_a_batch_into_a_deleted_project_stops_without_a_ghost(
    home: Path, demo: BaseModel, look: Attribute, tmp_path: Path
) -> None:
    store = ProjectStore()
    project = store.create("P4")
    project.release()
    path = save_attribute(tmp_path / "look.safetensors", look)
    request = BatchRequest(
        prompts=["a red vase"],
        seeds=[1, 2],
        out_dir=project.exports_dir,
        combinations=[[AttributeChoice(path)]],
        project=project.slug,
        steps=2,
        sampler="ddim",
        width=32,
        height=32,
        guidance=1.0,
    )
    plan = plan_batch(request, {path: look.meta})
    deleted: list[Path] = []

    def delete_once(report: Progress) -> None:
        if not deleted:  # the app's Delete, while the first image renders
            deleted.append(store.delete(Project(project.folder)))

    with pytest.raises(StorageError) as caught:
        run_batch(demo, plan, {path: look}, progress=delete_once)
    assert "no longer exists" in str(caught.value) and "\n" not in str(caught.value)
    assert not project.folder.exists()  # no ghost project folder
    assert deleted and (deleted[0] / "project.json").is_file()
    # Deleted before the batch starts: refused before anything renders.
    again = store.create("P5")
    again.release()
    request.out_dir = again.exports_dir
    plan = plan_batch(request, {path: look.meta})
    store.delete(Project(again.folder))
    with pytest.raises(StorageError, match="deleted or moved after the batch started"):
        run_batch(demo, plan, {path: look})
    assert not again.folder.exists()

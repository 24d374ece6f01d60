"""The app and the command line on one project: the second writer is told the project is in
use and changes nothing; readers are never blocked; the library never tears."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from ostaf.library.attribute_meta import read_meta
from ostaf.library.projects import ProjectStore
from ostaf.models.base_model import BaseModel
from tests.cli_process import run_cli
from tests.core.attribute_factory import write_attribute


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # A process of its own (the lock is per process), forked without re-importing torch.
    return run_cli(["library", *args], env={**os.environ, "OSTAF_HOME": str(home)}, timeout=120)


def test_cli_writes_wait_for_the_app_and_reads_do_not(
    demo: BaseModel, home: Path, tmp_path: Path
) -> None:
    app_side = ProjectStore().create("Shared")  # the app holds the write lock
    source = write_attribute(demo, tmp_path / "a.safetensors", name="first")
    entry = app_side.import_attribute(source).entry
    before = entry.path.read_bytes()

    refused = _cli(home, "rename", "--project", "Shared", entry.id, "second")
    assert refused.returncode == 2
    assert (
        refused.stderr.strip()
        .splitlines()[-1]
        .startswith("error: project 'Shared' is open in another OSTAF window or command (process")
    )
    assert entry.path.read_bytes() == before  # nothing changed

    listed = _cli(home, "list", "--project", "Shared")
    assert listed.returncode == 0 and "first" in listed.stdout  # reading never waits

    app_side.release()  # the app closes the project
    done = _cli(home, "rename", "--project", "Shared", entry.id, "second")
    assert done.returncode == 0, done.stderr
    assert read_meta(entry.path).name == "second"
    app_side.acquire()  # and the app can take it back once the command has finished
    app_side.release()

"""A run that dies (fatal error, kill) is named at the next start: when, and where its crash
log is, in the banner, which does not block. A clean exit leaves nothing to report."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ostaf_desktop.app import report_dead_runs
from ostaf_desktop.crash_handling import collect_dead_runs, runs_dir
from ostaf_desktop.viewmodels.main import MainViewModel
from ostaf_desktop.widgets.main_window import MainWindow
from tests.fifo import fifo_at, finishes, needs_fifo

ROOT = Path(__file__).resolve().parents[2]

# What the app does at start (app.run_app), then a death no Python code can catch.
DIE = """
import os, signal, sys, time
from ostaf_desktop.crash_handling import RunRecord
record = RunRecord.start()
assert record is not None
print("running", flush=True)
how = sys.argv[1]
if how == "abort":
    os.abort()
elif how == "clean":
    record.stop()
else:
    time.sleep(60)  # killed from outside before this ends
"""


def start(home: Path, how: str) -> subprocess.Popen[str]:
    env = {**os.environ, "OSTAF_HOME": str(home), "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-c", DIE, how], env=env, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "running"
    return process


def run_and_end(home: Path, how: str) -> int:
    return start(home, how).wait(timeout=60)


def test_a_run_that_aborts_is_named_at_the_next_start(
    home: Path, vm: MainViewModel, window: MainWindow
) -> None:
    before = time.time()
    assert run_and_end(home, "abort") == -signal.SIGABRT

    dead = collect_dead_runs()
    assert len(dead) == 1
    run = dead[0]
    assert run.crash_log.parent == runs_dir() and run.crash_log.is_file()
    assert "Fatal Python error: Aborted" in run.crash_text
    assert before - 2 <= run.last_seen <= time.time() + 2

    report_dead_runs(vm.session, dead)
    assert not window.banner.isHidden()
    shown = window.banner.message.text()
    assert "stopped unexpectedly" in shown and "Fatal Python error: Aborted" in shown
    assert str(run.crash_log) in shown
    assert time.strftime("%H:%M", time.localtime(run.last_seen)) in shown
    assert "Fatal Python error: Aborted" in window.banner.full_text()
    assert collect_dead_runs() == []  # said once, not at every start
    assert run.crash_log.is_file()  # the log stays for the user to read


def test_a_clean_exit_is_not_reported(home: Path) -> None:
    assert run_and_end(home, "clean") == 0
    assert collect_dead_runs() == []
    assert list(runs_dir().iterdir()) == []


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_a_running_app_is_left_alone_and_a_killed_one_is_named(home: Path) -> None:
    process = start(home, "sleep")  # another OSTAF, still running
    try:
        assert collect_dead_runs() == []
        assert len(list(runs_dir().glob("*.running"))) == 1
    finally:
        process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=60) == -signal.SIGKILL

    dead = collect_dead_runs()
    assert len(dead) == 1 and dead[0].crash_text == ""
    message = dead[0].report().message
    assert "stopped unexpectedly" in message and "killed" in message
    assert list(runs_dir().glob("*.crash.log")) == []  # empty logs are not kept


@needs_fifo
def test_a_run_record_or_crash_log_that_never_ends_is_named_not_waited_for(
    home: Path,
) -> None:
    """The run records and crash logs are read at every start, from the data folder: a FIFO
    in their place would keep the window from ever appearing."""
    with (
        fifo_at(runs_dir() / "20260101-000000-7.running"),
        fifo_at(runs_dir() / "20260101-000000-7.crash.log") as log,
    ):
        done, result = finishes(collect_dead_runs)
        assert done
        (dead,) = result[0]
        assert dead.crash_log == log and "not a regular file" in dead.crash_text
        assert log.exists()  # not deleted as an empty log: it was never read

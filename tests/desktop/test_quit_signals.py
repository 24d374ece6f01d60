"""A logout, `kill`, Ctrl+C in the terminal or the terminal closing (SIGTERM, SIGINT, SIGHUP)
quits the app as a confirmed close does: state saved, a clean exit, and nothing reported as a
crash at the next start. A second signal while it quits ends it at once, and the next start
says so."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from ostaf_desktop.crash_handling import collect_dead_runs, runs_dir
from ostaf_desktop.quit_signals import QuitOnSignals
from ostaf_desktop.viewmodels.main import MainViewModel
from ostaf_desktop.widgets import main_window
from ostaf_desktop.widgets.main_window import MainWindow
from tests.desktop.conftest import FakeBackend, reference_image

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

# The real app (run_app: run record, quit signals, event loop), driven only to say when it
# is ready: "asking" opens a Yes / Cancel question first, "stuck" makes quitting hang.
PROGRAM = """
import sys, time
from PySide6.QtCore import QTimer
from ostaf_desktop.app import run_app
from ostaf_desktop.launch_options import LaunchOptions
from ostaf_desktop.widgets.layout import confirm

how = sys.argv[1]

def drive(window, vm):
    def painted():
        if how == "asking":
            QTimer.singleShot(0, lambda: print("answer", confirm(window, "Q", "Sure?"), flush=True))
            QTimer.singleShot(300, lambda: print("ready", flush=True))
            return
        if how == "stuck":
            def shutdown(save_state=True):
                print("quitting", flush=True)
                time.sleep(120)
            vm.shutdown = shutdown
        print("ready", flush=True)
    window.first_painted.connect(painted)

sys.exit(run_app(LaunchOptions(), [], drive))
"""


def start(home: Path, how: str = "plain") -> subprocess.Popen[str]:
    env = {**os.environ, "OSTAF_HOME": str(home), "QT_QPA_PLATFORM": "offscreen"}
    env["PYTHONPATH"] = str(ROOT)
    process = subprocess.Popen(
        [sys.executable, "-c", PROGRAM, how],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    return process


@pytest.mark.parametrize("name", ["SIGTERM", "SIGINT", "SIGHUP"])
def test_a_quit_signal_closes_the_app_cleanly(home: Path, name: str) -> None:
    process = start(home)
    process.send_signal(getattr(signal, name))
    assert process.wait(timeout=120) == 0

    assert list(runs_dir().iterdir()) == []  # no run record, no crash log
    assert collect_dead_runs() == []
    assert (home / "desktop.json").is_file()  # the window's state was saved
    log = (home / "logs" / "ostaf-desktop.log").read_text(encoding="utf-8")
    assert f"{name} received" in log and "exit code 0" in log


def test_an_open_question_is_dismissed_and_the_app_still_quits(home: Path) -> None:
    process = start(home, "asking")
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=120) == 0
    assert process.stdout is not None
    assert process.stdout.read().split() == ["answer", "False"]  # dismissed, not answered Yes
    assert collect_dead_runs() == []


def test_a_second_signal_while_quitting_ends_it_and_is_named_next_time(home: Path) -> None:
    process = start(home, "stuck")
    process.send_signal(signal.SIGTERM)
    assert process.stdout is not None and process.stdout.readline().strip() == "quitting"
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == -signal.SIGTERM

    (dead,) = collect_dead_runs()
    assert dead.cause == "ended by a second SIGTERM while it was quitting"
    message = dead.report().message
    assert "(ended by a second SIGTERM while it was quitting)" in message
    assert "most recent call first" in dead.crash_text  # where it was stuck, for the log


def test_closing_without_asking_skips_the_question_of_a_running_tuning(
    window: MainWindow,
    vm: MainViewModel,
    fake: FakeBackend,
    qtbot: QtBot,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[str] = []
    monkeypatch.setattr(main_window, "confirm", lambda _w, title, _t: asked.append(title))
    assert vm.reference.open_image(reference_image(tmp_path))
    fake.gate.clear()  # the run waits in its first step
    assert vm.tuning.tune() is not None
    qtbot.waitUntil(lambda: vm.tuning.running, timeout=5000)

    window.close()  # the user's close asks, and "Cancel" keeps the window
    assert asked == ["Tuning is running"] and window.isVisible()

    fake.gate.set()  # the run's step ends, as the worker's next step would
    window.close_without_asking("SIGTERM")
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=5000)
    assert asked == ["Tuning is running"]  # not asked again
    assert vm.jobs.running_job is None  # the worker was stopped


def test_a_signal_before_the_window_exists_still_quits_it(qtbot: QtBot) -> None:
    """The handlers are installed before the window is built; a signal in between is kept
    and delivered once the window says how to quit."""
    signals = QuitOnSignals()
    try:
        os.kill(os.getpid(), signal.SIGTERM)  # caught: this test process goes on
        assert signals.received == "SIGTERM"
        delivered: list[str] = []
        signals.quit_with(delivered.append)
        assert delivered == []  # from the event loop, not from inside the call
        qtbot.waitUntil(lambda: delivered == ["SIGTERM"], timeout=5000)
    finally:
        signals.uninstall()
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL

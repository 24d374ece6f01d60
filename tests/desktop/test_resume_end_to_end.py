"""The real service on the demo model: a GUI tuning run with a mask crashes part-way, the
project is opened again, Resume finishes it, and the attribute in the library is byte for byte
the file an uninterrupted run with the same seed writes."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QRect
from PySide6.QtGui import QColor, QImage, QPainter
from pytestqt.qtbot import QtBot

from ostaf.progress import CancelToken, Progress, ProgressCallback, ignore_progress
from ostaf.requests import TuneJob
from ostaf_desktop import interrupted_run
from ostaf_desktop.backend import CoreBackend, TunedAttribute
from ostaf_desktop.ui_state import UiState
from ostaf_desktop.viewmodels import tuning as tuning_vm
from ostaf_desktop.viewmodels.main import MainViewModel
from ostaf_desktop.widgets.main_window import MainWindow
from tests.desktop.conftest import reference_image

TIMEOUT_MS = 240_000
STEPS, CRASH_AT = 12, 7


class Crash(RuntimeError):
    """Stands for the engine dying mid-run (the app itself stays up)."""


class CrashingBackend:
    """The real backend, except that the next tuning run dies after step `crash_at`."""

    def __init__(self) -> None:
        self.core = CoreBackend()
        self.crash_at = 0
        self.tuned: list[tuple[TuneJob, list[int]]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.core, name)

    def tune(self, job: TuneJob, progress: ProgressCallback, cancel: CancelToken) -> TunedAttribute:
        steps: list[int] = []
        self.tuned.append((job, steps))

        def report(update: Progress) -> None:
            progress(update)
            if update.stage == "tuning":
                steps.append(update.step)
                if update.step == self.crash_at:
                    self.crash_at = 0
                    raise Crash("the engine died")

        return self.core.tune(job, report, cancel)


def test_a_crashed_gui_run_resumes_to_the_uninterrupted_file(
    home: Path, qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for module in (tuning_vm, interrupted_run):  # save the state after every step
        monkeypatch.setattr(module, "CHECKPOINT_INTERVAL_S", 0.0)
    backend = CrashingBackend()
    vm = MainViewModel(lambda: backend, UiState())  # type: ignore[arg-type, return-value]
    window = MainWindow(vm)
    qtbot.addWidget(window)
    window.show()
    vm.start()
    try:
        qtbot.waitUntil(lambda: vm.session.model is not None, timeout=TIMEOUT_MS)
        _crash_resume_and_compare(window, vm, backend, qtbot, tmp_path)
    finally:
        vm.shutdown()


def _crash_resume_and_compare(
    window: MainWindow, vm: MainViewModel, backend: CrashingBackend, qtbot: QtBot, tmp_path: Path
) -> None:
    vm.reference.open_image(reference_image(tmp_path))
    mask = vm.reference.ensure_mask()
    assert isinstance(mask, QImage)
    painter = QPainter(mask)
    painter.fillRect(QRect(0, 0, mask.width() // 2, mask.height()), QColor("white"))
    painter.end()
    vm.reference.mask_painted()
    vm.tuning.steps, vm.tuning.seed, vm.tuning.name = STEPS, 3, "Half glaze"
    backend.crash_at = CRASH_AT
    window.tuning.tune_button.click()
    qtbot.waitUntil(lambda: not vm.tuning.running, timeout=TIMEOUT_MS)
    assert vm.session.error is not None and "the engine died" in vm.session.error.message
    assert vm.library.rows == ()
    project = vm.projects.current
    assert project is not None
    kept_mask = tmp_path / "mask-copy.png"
    shutil.copyfile(interrupted_run.mask_path(project), kept_mask)
    (tmp_path / "kept").mkdir()  # the run reads the reference copy kept in the project
    kept_image = shutil.copy(backend.tuned[0][0].image, tmp_path / "kept")

    vm.session.dismiss_error()
    vm.projects.close_current()
    vm.projects.open(project.slug)
    assert window.resume_bar.isVisible()
    assert f"'Half glaze'</b> (step {CRASH_AT} of {STEPS}) can be resumed" in vm.resume.message
    window.resume_bar.resume_button.click()
    qtbot.waitUntil(lambda: not vm.tuning.running, timeout=TIMEOUT_MS)
    assert vm.session.error is None, vm.session.error
    (first, _), (resumed, steps) = backend.tuned
    assert steps == list(range(CRASH_AT + 1, STEPS + 1))  # only what was left
    assert resumed.settings == first.settings and resumed.checkpoint == first.checkpoint
    (row,) = vm.library.rows
    assert len(vm.tuning.losses) == STEPS
    assert not any((project.folder / interrupted_run.RESUME_FOLDER).iterdir())

    straight = dataclasses.replace(
        first,
        image=Path(kept_image),
        settings=dataclasses.replace(first.settings, mask=kept_mask),
        out=tmp_path / "straight.safetensors",
        checkpoint=None,
    )
    backend.core.tune(straight, ignore_progress, CancelToken())  # the worker is idle now
    assert row.path.read_bytes() == straight.out.read_bytes()


def test_quitting_mid_run_keeps_it_and_the_next_start_offers_to_resume(
    home: Path, qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An hour between periodic saves: what is offered comes from the save made on quitting.
    for module in (tuning_vm, interrupted_run):
        monkeypatch.setattr(module, "CHECKPOINT_INTERVAL_S", 3600.0)
    first = MainViewModel(CoreBackend, UiState())
    first.start()
    try:
        qtbot.waitUntil(lambda: first.session.model is not None, timeout=TIMEOUT_MS)
        first.reference.open_image(reference_image(tmp_path))
        first.tuning.steps, first.tuning.name = 400, "Quit halfway"
        assert first.tuning.tune() is not None
        qtbot.waitUntil(lambda: len(first.tuning.losses) >= 3, timeout=TIMEOUT_MS)
    finally:
        first.shutdown()  # what closing the window does once the user confirms
    again = MainViewModel(CoreBackend, UiState())
    window = MainWindow(again)
    qtbot.addWidget(window)
    window.show()
    again.start()
    try:
        assert window.resume_bar.isVisible()
        assert "'Quit halfway'</b> (step" in again.resume.message
        step = int(again.resume.message.split("(step ")[1].split(" ")[0])
        assert 3 <= step < 400
    finally:
        again.shutdown()
